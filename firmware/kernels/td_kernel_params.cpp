#include "td_kernel_params.h"

#include <string.h>

#include "td_kernel_util.h"
#include "tensorflow/lite/c/builtin_op_data.h"
#include "tensorflow/lite/kernels/internal/quantization_util.h"
#include "tensorflow/lite/kernels/kernel_util.h"
#include "tensorflow/lite/kernels/padding.h"
#include "tensorflow/lite/micro/kernels/conv.h"
#include "tensorflow/lite/micro/kernels/depthwise_conv.h"
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "tensorflow/lite/micro/micro_log.h"

// Everything here runs once a node, at start-up (Init, Prepare), none of it in an inference: compiled for size, which
// leaves the kernels' code room under issue #20's limit (192 B less on the study's MobileNetV1).
#pragma GCC optimize("Os")

namespace td {
namespace kernels {

namespace {

// The entry of a generated list (ended by output_tensor -1) whose output tensor is the node's, or null.
template <typename Entry>
const Entry* FindByOutput(const Entry* list, const TfLiteNode* node) {
  if (node->outputs == nullptr || node->outputs->size != 1) return nullptr;
  const int32_t out = node->outputs->data[0];
  for (const Entry* e = list; e->output_tensor >= 0; ++e) {
    if (e->output_tensor == out) return e;
  }
  return nullptr;
}

}  // namespace

const ChannelParams* FindChannelParams(const TfLiteNode* node) { return FindByOutput(kChannelParams, node); }

const AddTables* FindAddTables(const TfLiteNode* node) { return FindByOutput(kAddTables, node); }

TfLiteStatus AddOpDataInFlash(TfLiteNode* node, const tflite::OpDataAdd& computed,
                              const tflite::OpDataAdd** in_flash) {
  *in_flash = nullptr;
  const AddTables* t = FindAddTables(node);
  if (t == nullptr) return kTfLiteOk;
  const tflite::OpDataAdd& f = t->op;
  const bool same = !computed.requires_broadcast && f.input1_offset == computed.input1_offset &&
                    f.input2_offset == computed.input2_offset && f.output_offset == computed.output_offset &&
                    f.left_shift == computed.left_shift && f.input1_multiplier == computed.input1_multiplier &&
                    f.input1_shift == computed.input1_shift && f.input2_multiplier == computed.input2_multiplier &&
                    f.input2_shift == computed.input2_shift && f.output_multiplier == computed.output_multiplier &&
                    f.output_shift == computed.output_shift &&
                    f.output_activation_min == computed.output_activation_min &&
                    f.output_activation_max == computed.output_activation_max;
  if (!same) {
    MicroPrintf("tinydeploy: tensor %d's ADD tables in flash were computed for other quantization parameters than "
                "TFLM's Prepare finds: the project was generated for another model; rebuild it",
                static_cast<int>(t->output_tensor));
    return kTfLiteError;
  }
  *in_flash = &f;
  return kTfLiteOk;
}

namespace {

// What the library's CalculateOpDataConv / CalculateOpDataDepthwiseConv do for an int8 node (the same checks, the
// padding, the zero points, PopulateConvolutionQuantizationParams' activation range), with the per-channel
// multipliers and shifts taken from flash once each channel equals TFLM's QuantizeMultiplier of the same scales.
// kQuantizedDimension: the filter's output-channel dimension (0 for CONV_2D, 3 for DEPTHWISE_CONV_2D).
template <typename Params, int kQuantizedDimension>
TfLiteStatus PrepareFromFlash(TfLiteContext* context, TfLiteNode* node, const ChannelParams& p) {
  TF_LITE_ENSURE(context, node->user_data != nullptr && node->builtin_data != nullptr);
  TF_LITE_ENSURE(context, node->inputs->size == 2 || node->inputs->size == 3);
  TF_LITE_ENSURE_EQ(context, node->outputs->size, 1);
  tflite::OpDataConv* data = static_cast<tflite::OpDataConv*>(node->user_data);
  const Params& params = *static_cast<const Params*>(node->builtin_data);
  tflite::MicroContext* mc = tflite::GetMicroContext(context);
  TfLiteTensor* input = mc->AllocateTempInputTensor(node, tflite::kConvInputTensor);
  TfLiteTensor* filter = mc->AllocateTempInputTensor(node, tflite::kConvWeightsTensor);
  TfLiteTensor* output = mc->AllocateTempOutputTensor(node, tflite::kConvOutputTensor);
  TfLiteStatus status = kTfLiteError;
  const auto* q = filter != nullptr && filter->quantization.type == kTfLiteAffineQuantization
                      ? static_cast<const TfLiteAffineQuantization*>(filter->quantization.params)
                      : nullptr;
  if (input != nullptr && output != nullptr && q != nullptr && q->scale != nullptr && q->zero_point != nullptr &&
      input->type == kTfLiteInt8 && filter->type == kTfLiteInt8 &&
      input->quantization.type == kTfLiteAffineQuantization && filter->dims->size == 4) {
    const int channels = filter->dims->data[kQuantizedDimension];
    const bool per_channel = q->scale->size > 1;
    const bool shapes_ok = (q->scale->size == 1 || (q->scale->size == channels &&
                                                    q->quantized_dimension == kQuantizedDimension)) &&
                           (kQuantizedDimension == 0 || q->scale->size == q->zero_point->size) &&
                           p.channels == channels;
    if (shapes_ok) {
      status = kTfLiteOk;
      const double input_scale = static_cast<double>(input->params.scale);
      const double output_scale = static_cast<double>(output->params.scale);
      for (int c = 0; c < channels && status == kTfLiteOk; ++c) {
        const double effective = input_scale * static_cast<double>(q->scale->data[per_channel ? c : 0]) / output_scale;
        int32_t multiplier;
        int shift;
        tflite::QuantizeMultiplier(effective, &multiplier, &shift);
        if (multiplier != p.multiplier[c] || shift != p.shift[c]) {
          MicroPrintf("tinydeploy: tensor %d's channel %d: multiplier/shift in flash %d/%d, TFLM's %d/%d: the project "
                      "was generated for another model; rebuild it", static_cast<int>(p.output_tensor), c,
                      static_cast<int>(p.multiplier[c]), static_cast<int>(p.shift[c]), static_cast<int>(multiplier),
                      shift);
          status = kTfLiteError;
        }
      }
    }
    if (status == kTfLiteOk) {
      int out_h = 0, out_w = 0;
      data->padding = tflite::ComputePaddingHeightWidth(
          params.stride_height, params.stride_width, params.dilation_height_factor, params.dilation_width_factor,
          input->dims->data[1], input->dims->data[2], filter->dims->data[1], filter->dims->data[2], params.padding,
          &out_h, &out_w);
      status = tflite::CalculateActivationRangeQuantized(context, params.activation, output,
                                                         &data->output_activation_min, &data->output_activation_max);
      // read only: the kernels never write their op data's parameters
      data->per_channel_output_multiplier = const_cast<int32_t*>(p.multiplier);
      data->per_channel_output_shift = const_cast<int32_t*>(p.shift);
      data->input_zero_point = input->params.zero_point;
      data->filter_zero_point = filter->params.zero_point;
      data->output_zero_point = output->params.zero_point;
    }
  }
  if (input) mc->DeallocateTempTfLiteTensor(input);
  if (filter) mc->DeallocateTempTfLiteTensor(filter);
  if (output) mc->DeallocateTempTfLiteTensor(output);
  return status;
}

}  // namespace

TfLiteStatus FlashOpData(TfLiteNode* node, const tflite::OpDataConv& computed, const tflite::OpDataConv** in_flash) {
  *in_flash = nullptr;
  const ChannelParams* p = OwnLoops(computed.filter_buffer_index) ? FindChannelParams(node) : nullptr;
  if (p == nullptr) return kTfLiteOk;
  // every field is 4 bytes wide: no padding between them, and the computed struct started zeroed
  if (memcmp(&p->op, &computed, sizeof(computed)) != 0) {
    MicroPrintf("tinydeploy: tensor %d's op data in flash differs from TFLM's Prepare (padding, zero points or "
                "activation range): the project was generated for another model; rebuild it",
                static_cast<int>(p->output_tensor));
    return kTfLiteError;
  }
  *in_flash = &p->op;
  return kTfLiteOk;
}

ShortcutRange FindShortcutRange(TfLiteContext* context, TfLiteNode* node, const tflite::OpDataConv& data,
                                bool depthwise) {
  // the constants' eval tensors, which hold their data from the start (no temporary TfLiteTensor: less code)
  const TfLiteEvalTensor* filter = tflite::micro::GetEvalInput(context, node, tflite::kConvWeightsTensor);
  const TfLiteEvalTensor* bias =
      node->inputs->size == 3 ? tflite::micro::GetEvalInput(context, node, tflite::kConvBiasTensor) : nullptr;
  if (filter == nullptr || filter->dims->size != 4) return {0, 0x7fffffff};  // (the loops do not take such a node)
  const int* fd = filter->dims->data;
  const int channels = fd[depthwise ? 3 : 0];
  const int32_t products = fd[1] * fd[2] * (depthwise ? 1 : fd[3]);
  if (!util::ShortcutZeroPoint(data.output_zero_point) || products <= 0 || products > util::kShortcutMaxProducts ||
      (bias != nullptr && (bias->type != kTfLiteInt32 || bias->data.data == nullptr))) {
    return {0, channels};
  }
  const int32_t* biases = bias ? bias->data.i32 : nullptr;
  const util::ShortcutBias fits(products);
  ShortcutRange r = {channels, 0};
  for (int c = 0; c < channels; ++c) {
    if (!util::ShortcutChannel(data.per_channel_output_multiplier[c], data.per_channel_output_shift[c]) ||
        !fits.Holds(biases ? biases[c] : 0)) {
      if (r.begin > c) r.begin = c;
      r.end = c + 1;
    }
  }
  if (r.end == 0) r.begin = 0;
  return r;
}

TfLiteStatus PrepareConv(TfLiteContext* context, TfLiteNode* node) {
  const ChannelParams* p = FindChannelParams(node);
  return p ? PrepareFromFlash<TfLiteConvParams, 0>(context, node, *p) : tflite::ConvPrepare(context, node);
}

TfLiteStatus PrepareDepthwiseConv(TfLiteContext* context, TfLiteNode* node) {
  const ChannelParams* p = FindChannelParams(node);
  return p ? PrepareFromFlash<TfLiteDepthwiseConvParams, 3>(context, node, *p)
           : tflite::DepthwiseConvPrepare(context, node);
}

}  // namespace kernels
}  // namespace td
