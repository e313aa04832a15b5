#include "td_kernel_cmsis.h"

#include "tensorflow/lite/c/builtin_op_data.h"
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tensorflow/lite/micro/micro_log.h"
#include "third_party/cmsis_nn/Include/arm_nnfunctions.h"

// The build leaves out the CMSIS-NN function of an op where it predicts that tinydeploy's own loops take every node
// (generate/project.py: -DTD_CMSIS_CONV=0, -DTD_CMSIS_DEPTHWISE=0), so that the function and what it calls are not
// linked; a node its loops then do not take stops AllocateTensors() with one line. Where every DEPTHWISE_CONV_2D node
// left to CMSIS-NN is one its wrapper hands to arm_depthwise_conv_3x3_s8 (multiplier 1, batch 1, no dilation, 3x3,
// padding of at most 1), the build says -DTD_CMSIS_DEPTHWISE=2: that function is called directly, as the wrapper
// would, and the wrapper's two others are not linked; another node then stops AllocateTensors() the same way.
#ifndef TD_CMSIS_CONV
#define TD_CMSIS_CONV 1
#endif
#ifndef TD_CMSIS_DEPTHWISE
#define TD_CMSIS_DEPTHWISE 1
#endif

namespace td {
namespace kernels {
namespace cmsis {
namespace {

__attribute__((unused)) TfLiteStatus LeftOut(const char* op) {
  MicroPrintf("tinydeploy: a %s node tinydeploy's loops do not take, and this build left out the CMSIS-NN function "
              "(the project was generated for another model; rebuild it)", op);
  return kTfLiteError;
}

// The function's arguments from a node's tensor shapes (NHWC input and output; filter OHWI for CONV_2D, 1HWC for
// DEPTHWISE_CONV_2D), its parameters and TFLM's op data, as the library's kernel sets them.
struct Args {
  cmsis_nn_dims input, filter, bias, output;
  cmsis_nn_per_channel_quant_params quant;
};

template <typename Params>
void Common(const Params& params, const tflite::OpDataConv& d, cmsis_nn_tile* stride,
            cmsis_nn_tile* padding, cmsis_nn_tile* dilation, cmsis_nn_activation* act, int32_t* in_off,
            int32_t* out_off) {
  stride->h = params.stride_height;
  stride->w = params.stride_width;
  dilation->h = params.dilation_height_factor;
  dilation->w = params.dilation_width_factor;
  padding->h = d.padding.height;
  padding->w = d.padding.width;
  act->min = d.output_activation_min;
  act->max = d.output_activation_max;
  *in_off = -d.input_zero_point;
  *out_off = d.output_zero_point;
}

__attribute__((unused)) Args MakeArgs(const TfLiteIntArray* in, const TfLiteIntArray* filter,
                                      const TfLiteIntArray* out, const tflite::OpDataConv& d, bool depthwise) {
  Args a;
  a.input = {in->data[0], in->data[1], in->data[2], in->data[3]};
  const int out_c = out->data[3];
  a.filter = {depthwise ? filter->data[0] : out_c, filter->data[1], filter->data[2], depthwise ? out_c : in->data[3]};
  a.bias = {1, 1, 1, out_c};
  a.output = {in->data[0], out->data[1], out->data[2], out_c};
  a.quant.multiplier = d.per_channel_output_multiplier;
  a.quant.shift = d.per_channel_output_shift;
  return a;
}

__attribute__((unused)) cmsis_nn_conv_params ConvParams(TfLiteNode* node, const tflite::OpDataConv& d) {
  const auto& params = *static_cast<const TfLiteConvParams*>(node->builtin_data);
  cmsis_nn_conv_params p;
  Common(params, d, &p.stride, &p.padding, &p.dilation, &p.activation,
         &p.input_offset, &p.output_offset);
  return p;
}

#if TD_CMSIS_DEPTHWISE == 2
#define TD_CMSIS_DW_FUNCTION arm_depthwise_conv_3x3_s8
#else
#define TD_CMSIS_DW_FUNCTION arm_depthwise_conv_wrapper_s8
#endif

// Whether arm_depthwise_conv_wrapper_s8 runs a node by arm_depthwise_conv_3x3_s8 (its conditions, in its order).
__attribute__((unused)) bool WrapperTakes3x3(const cmsis_nn_dw_conv_params& p, const Args& a) {
  return p.ch_mult == 1 && a.input.n == 1 && p.dilation.w == 1 && p.dilation.h == 1 && a.filter.w == 3 &&
         a.filter.h == 3 && p.padding.h <= 1 && p.padding.w <= 1;
}

__attribute__((unused)) cmsis_nn_dw_conv_params DwParams(TfLiteNode* node, const tflite::OpDataConv& d) {
  const auto& params = *static_cast<const TfLiteDepthwiseConvParams*>(node->builtin_data);
  cmsis_nn_dw_conv_params p;
  Common(params, d, &p.stride, &p.padding, &p.dilation, &p.activation, &p.input_offset, &p.output_offset);
  p.ch_mult = params.depth_multiplier;
  return p;
}

// Prepare's shapes: the node's tensors as TFLM's temporary TfLiteTensors.
template <typename Size>
TfLiteStatus RequestBuffer(TfLiteContext* context, TfLiteNode* node, const tflite::OpDataConv& d, bool depthwise,
                           int* buffer, Size size) {
  tflite::MicroContext* mc = tflite::GetMicroContext(context);
  TfLiteTensor* input = mc->AllocateTempInputTensor(node, tflite::kConvInputTensor);
  TfLiteTensor* filter = mc->AllocateTempInputTensor(node, tflite::kConvWeightsTensor);
  TfLiteTensor* output = mc->AllocateTempOutputTensor(node, tflite::kConvOutputTensor);
  TfLiteStatus s = kTfLiteError;
  if (input != nullptr && filter != nullptr && output != nullptr && input->dims->size == 4 &&
      filter->dims->size == 4 && output->dims->size == 4) {
    Args a = MakeArgs(input->dims, filter->dims, output->dims, d, depthwise);
    const int32_t bytes = size(a);
    *buffer = -1;
    s = bytes > 0 ? context->RequestScratchBufferInArena(context, bytes, buffer) : kTfLiteOk;
  }
  if (input) mc->DeallocateTempTfLiteTensor(input);
  if (filter) mc->DeallocateTempTfLiteTensor(filter);
  if (output) mc->DeallocateTempTfLiteTensor(output);
  return s;
}

}  // namespace

TfLiteStatus PrepareConv(TfLiteContext* context, TfLiteNode* node, const tflite::OpDataConv& d, int* buffer) {
#if TD_CMSIS_CONV
  const cmsis_nn_conv_params p = ConvParams(node, d);
  return RequestBuffer(context, node, d, false, buffer, [&p](Args& a) {
    return arm_convolve_wrapper_s8_get_buffer_size(&p, &a.input, &a.filter, &a.output);
  });
#else
  (void)context, (void)node, (void)d, (void)buffer;
  return LeftOut("CONV_2D");
#endif
}

TfLiteStatus PrepareDepthwiseConv(TfLiteContext* context, TfLiteNode* node, const tflite::OpDataConv& d,
                                  int* buffer) {
#if TD_CMSIS_DEPTHWISE
  const cmsis_nn_dw_conv_params p = DwParams(node, d);
  bool three_by_three = false;
  // the wrapper's scratch either way (the 3x3 function needs none): the arena is the library kernel's
  const TfLiteStatus s = RequestBuffer(context, node, d, true, buffer, [&p, &three_by_three](Args& a) {
    three_by_three = WrapperTakes3x3(p, a);
    return arm_depthwise_conv_wrapper_s8_get_buffer_size(&p, &a.input, &a.filter, &a.output);
  });
  if (TD_CMSIS_DEPTHWISE == 2 && s == kTfLiteOk && !three_by_three) return LeftOut("DEPTHWISE_CONV_2D");
  return s;
#else
  (void)context, (void)node, (void)d, (void)buffer;
  return LeftOut("DEPTHWISE_CONV_2D");
#endif
}

namespace {

struct EvalTensors {
  const TfLiteEvalTensor *input, *filter, *bias;
  TfLiteEvalTensor* output;
  cmsis_nn_context ctx;
};

__attribute__((unused)) EvalTensors Tensors(TfLiteContext* context, TfLiteNode* node, int buffer) {
  EvalTensors t;
  t.input = tflite::micro::GetEvalInput(context, node, tflite::kConvInputTensor);
  t.filter = tflite::micro::GetEvalInput(context, node, tflite::kConvWeightsTensor);
  t.bias = node->inputs->size == 3 ? tflite::micro::GetEvalInput(context, node, tflite::kConvBiasTensor) : nullptr;
  t.output = tflite::micro::GetEvalOutput(context, node, tflite::kConvOutputTensor);
  t.ctx.buf = buffer >= 0 ? context->GetScratchBuffer(context, buffer) : nullptr;
  t.ctx.size = 0;  // unused by CMSIS-NN: the buffer has the size its _get_buffer_size asked for
  return t;
}

}  // namespace

TfLiteStatus EvalConv(TfLiteContext* context, TfLiteNode* node, const tflite::OpDataConv& d, int buffer) {
#if TD_CMSIS_CONV
  EvalTensors t = Tensors(context, node, buffer);
  Args a = MakeArgs(t.input->dims, t.filter->dims, t.output->dims, d, false);
  const cmsis_nn_conv_params p = ConvParams(node, d);
  const arm_cmsis_nn_status s = arm_convolve_wrapper_s8(
      &t.ctx, &p, &a.quant, &a.input, tflite::micro::GetTensorData<int8_t>(t.input), &a.filter,
      tflite::micro::GetTensorData<int8_t>(t.filter), &a.bias, tflite::micro::GetOptionalTensorData<int32_t>(t.bias),
      &a.output, tflite::micro::GetTensorData<int8_t>(t.output));
  return s == ARM_CMSIS_NN_SUCCESS ? kTfLiteOk : kTfLiteError;
#else
  (void)context, (void)node, (void)d, (void)buffer;
  return kTfLiteError;  // never reached: Prepare refused the node
#endif
}

TfLiteStatus EvalDepthwiseConv(TfLiteContext* context, TfLiteNode* node, const tflite::OpDataConv& d,
                               int buffer) {
#if TD_CMSIS_DEPTHWISE
  EvalTensors t = Tensors(context, node, buffer);
  Args a = MakeArgs(t.input->dims, t.filter->dims, t.output->dims, d, true);
  const cmsis_nn_dw_conv_params p = DwParams(node, d);
  const arm_cmsis_nn_status s = TD_CMSIS_DW_FUNCTION(
      &t.ctx, &p, &a.quant, &a.input, tflite::micro::GetTensorData<int8_t>(t.input), &a.filter,
      tflite::micro::GetTensorData<int8_t>(t.filter), &a.bias, tflite::micro::GetOptionalTensorData<int32_t>(t.bias),
      &a.output, tflite::micro::GetTensorData<int8_t>(t.output));
  return s == ARM_CMSIS_NN_SUCCESS ? kTfLiteOk : kTfLiteError;
#else
  (void)context, (void)node, (void)d, (void)buffer;
  return kTfLiteError;  // never reached: Prepare refused the node
#endif
}

}  // namespace cmsis
}  // namespace kernels
}  // namespace td
