// TFLM's portable reference kernels for int8 CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, ADD and SOFTMAX, registered under the
// names the op resolver asks for, so that bench/kernels.py and the kernel tests can link them in place of the
// CMSIS-NN kernels and count the instructions of both on the emulated Cortex-M4. Written for this benchmark only: the
// pinned Arduino library ships only the CMSIS-NN versions of these kernels' Eval. Prepare (per-channel multipliers,
// padding) is the library's own, shared by both (for FULLY_CONNECTED, TFLM's CalculateOpDataFullyConnected, which
// the library's Prepare calls; for ADD, AddPrepare; for SOFTMAX, SoftmaxInit and SoftmaxPrepare).
#include "tensorflow/lite/kernels/internal/reference/integer_ops/add.h"
#include "tensorflow/lite/kernels/internal/reference/integer_ops/conv.h"
#include "tensorflow/lite/kernels/internal/reference/integer_ops/depthwise_conv.h"
#include "tensorflow/lite/kernels/internal/reference/integer_ops/fully_connected.h"
#include "tensorflow/lite/kernels/internal/reference/softmax.h"
#include "tensorflow/lite/micro/kernels/add.h"
#include "tensorflow/lite/micro/kernels/conv.h"
#include "tensorflow/lite/micro/kernels/depthwise_conv.h"
#include "tensorflow/lite/micro/kernels/fully_connected.h"
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/kernels/softmax.h"
#include "tensorflow/lite/micro/micro_context.h"

namespace tflite {
namespace {

void* InitOpData(TfLiteContext* context, const char*, size_t) {
  return context->AllocatePersistentBuffer(context, sizeof(OpDataConv));
}

struct Tensors {
  const TfLiteEvalTensor* input;
  const TfLiteEvalTensor* filter;
  const TfLiteEvalTensor* bias;
  TfLiteEvalTensor* output;
};

Tensors GetTensors(TfLiteContext* context, TfLiteNode* node, int in, int weights, int bias, int out) {
  return {micro::GetEvalInput(context, node, in), micro::GetEvalInput(context, node, weights),
          node->inputs->size == 3 ? micro::GetEvalInput(context, node, bias) : nullptr,
          micro::GetEvalOutput(context, node, out)};
}

TfLiteStatus ConvEvalReference(TfLiteContext* context, TfLiteNode* node) {
  const Tensors t = GetTensors(context, node, kConvInputTensor, kConvWeightsTensor, kConvBiasTensor, kConvOutputTensor);
  TF_LITE_ENSURE_EQ(context, t.input->type, kTfLiteInt8);
  const auto& params = *static_cast<const TfLiteConvParams*>(node->builtin_data);
  const auto& data = *static_cast<const OpDataConv*>(node->user_data);
  reference_integer_ops::ConvPerChannel(
      ConvParamsQuantized(params, data), data.per_channel_output_multiplier, data.per_channel_output_shift,
      micro::GetTensorShape(t.input), micro::GetTensorData<int8_t>(t.input), micro::GetTensorShape(t.filter),
      micro::GetTensorData<int8_t>(t.filter), micro::GetTensorShape(t.bias), micro::GetOptionalTensorData<int32_t>(t.bias),
      micro::GetTensorShape(t.output), micro::GetTensorData<int8_t>(t.output));
  return kTfLiteOk;
}

TfLiteStatus DepthwiseEvalReference(TfLiteContext* context, TfLiteNode* node) {
  const Tensors t = GetTensors(context, node, kDepthwiseConvInputTensor, kDepthwiseConvWeightsTensor,
                               kDepthwiseConvBiasTensor, kDepthwiseConvOutputTensor);
  TF_LITE_ENSURE_EQ(context, t.input->type, kTfLiteInt8);
  const auto& params = *static_cast<const TfLiteDepthwiseConvParams*>(node->builtin_data);
  const auto& data = *static_cast<const OpDataConv*>(node->user_data);
  reference_integer_ops::DepthwiseConvPerChannel(
      DepthwiseConvParamsQuantized(params, data), data.per_channel_output_multiplier, data.per_channel_output_shift,
      micro::GetTensorShape(t.input), micro::GetTensorData<int8_t>(t.input), micro::GetTensorShape(t.filter),
      micro::GetTensorData<int8_t>(t.filter), micro::GetTensorShape(t.bias), micro::GetOptionalTensorData<int32_t>(t.bias),
      micro::GetTensorShape(t.output), micro::GetTensorData<int8_t>(t.output));
  return kTfLiteOk;
}

void* InitFullyConnected(TfLiteContext* context, const char*, size_t) {
  return context->AllocatePersistentBuffer(context, sizeof(OpDataFullyConnected));
}

TfLiteStatus FullyConnectedPrepare(TfLiteContext* context, TfLiteNode* node) {
  MicroContext* mc = GetMicroContext(context);
  TfLiteTensor* input = mc->AllocateTempInputTensor(node, kFullyConnectedInputTensor);
  TfLiteTensor* filter = mc->AllocateTempInputTensor(node, kFullyConnectedWeightsTensor);
  TfLiteTensor* bias = mc->AllocateTempInputTensor(node, kFullyConnectedBiasTensor);
  TfLiteTensor* output = mc->AllocateTempOutputTensor(node, kFullyConnectedOutputTensor);
  TF_LITE_ENSURE(context, input != nullptr && filter != nullptr && output != nullptr);
  TF_LITE_ENSURE_EQ(context, input->type, kTfLiteInt8);
  const auto* params = static_cast<const TfLiteFullyConnectedParams*>(node->builtin_data);
  const TfLiteStatus s = CalculateOpDataFullyConnected(context, params->activation, input->type, input, filter, bias,
                                                       output, static_cast<OpDataFullyConnected*>(node->user_data));
  mc->DeallocateTempTfLiteTensor(input);
  mc->DeallocateTempTfLiteTensor(filter);
  if (bias) mc->DeallocateTempTfLiteTensor(bias);
  mc->DeallocateTempTfLiteTensor(output);
  return s;
}

TfLiteStatus FullyConnectedEvalReference(TfLiteContext* context, TfLiteNode* node) {
  const Tensors t = GetTensors(context, node, kFullyConnectedInputTensor, kFullyConnectedWeightsTensor,
                               kFullyConnectedBiasTensor, kFullyConnectedOutputTensor);
  const auto& data = *static_cast<const OpDataFullyConnected*>(node->user_data);
  reference_integer_ops::FullyConnected(
      FullyConnectedParamsQuantized(data), micro::GetTensorShape(t.input), micro::GetTensorData<int8_t>(t.input),
      micro::GetTensorShape(t.filter), micro::GetTensorData<int8_t>(t.filter), micro::GetTensorShape(t.bias),
      micro::GetOptionalTensorData<int32_t>(t.bias), micro::GetTensorShape(t.output),
      micro::GetTensorData<int8_t>(t.output));
  return kTfLiteOk;
}

void* InitAdd(TfLiteContext* context, const char*, size_t) {
  return context->AllocatePersistentBuffer(context, sizeof(OpDataAdd));
}

TfLiteStatus AddEvalReference(TfLiteContext* context, TfLiteNode* node) {
  const TfLiteEvalTensor* a = micro::GetEvalInput(context, node, kAddInputTensor1);
  const TfLiteEvalTensor* b = micro::GetEvalInput(context, node, kAddInputTensor2);
  TfLiteEvalTensor* out = micro::GetEvalOutput(context, node, kAddOutputTensor);
  TF_LITE_ENSURE_EQ(context, out->type, kTfLiteInt8);
  const auto& data = *static_cast<const OpDataAdd*>(node->user_data);
  ArithmeticParams p;
  p.left_shift = data.left_shift;
  p.input1_offset = data.input1_offset;
  p.input1_multiplier = data.input1_multiplier;
  p.input1_shift = data.input1_shift;
  p.input2_offset = data.input2_offset;
  p.input2_multiplier = data.input2_multiplier;
  p.input2_shift = data.input2_shift;
  p.output_offset = data.output_offset;
  p.output_multiplier = data.output_multiplier;
  p.output_shift = data.output_shift;
  SetActivationParams(data.output_activation_min, data.output_activation_max, &p);
  if (data.requires_broadcast) {
    reference_integer_ops::BroadcastAdd4DSlow(p, micro::GetTensorShape(a), micro::GetTensorData<int8_t>(a),
                                              micro::GetTensorShape(b), micro::GetTensorData<int8_t>(b),
                                              micro::GetTensorShape(out), micro::GetTensorData<int8_t>(out));
  } else {
    reference_integer_ops::Add(p, micro::GetTensorShape(a), micro::GetTensorData<int8_t>(a), micro::GetTensorShape(b),
                               micro::GetTensorData<int8_t>(b), micro::GetTensorShape(out),
                               micro::GetTensorData<int8_t>(out));
  }
  return kTfLiteOk;
}

TfLiteStatus SoftmaxEvalReference(TfLiteContext* context, TfLiteNode* node) {
  const TfLiteEvalTensor* input = micro::GetEvalInput(context, node, 0);
  TfLiteEvalTensor* output = micro::GetEvalOutput(context, node, 0);
  TF_LITE_ENSURE(context, input->type == kTfLiteInt8 && output->type == kTfLiteInt8);
  reference_ops::Softmax(*static_cast<const SoftmaxParams*>(node->user_data), micro::GetTensorShape(input),
                         micro::GetTensorData<int8_t>(input), micro::GetTensorShape(output),
                         micro::GetTensorData<int8_t>(output));
  return kTfLiteOk;
}

}  // namespace

TfLiteRegistration Register_SOFTMAX() { return micro::RegisterOp(SoftmaxInit, SoftmaxPrepare, SoftmaxEvalReference); }

TfLiteRegistration Register_ADD() { return micro::RegisterOp(InitAdd, AddPrepare, AddEvalReference); }

TfLiteRegistration Register_FULLY_CONNECTED() {
  return micro::RegisterOp(InitFullyConnected, FullyConnectedPrepare, FullyConnectedEvalReference);
}

TfLiteRegistration Register_CONV_2D() { return micro::RegisterOp(InitOpData, ConvPrepare, ConvEvalReference); }
TfLiteRegistration Register_DEPTHWISE_CONV_2D() {
  return micro::RegisterOp(InitOpData, DepthwiseConvPrepare, DepthwiseEvalReference);
}

}  // namespace tflite
