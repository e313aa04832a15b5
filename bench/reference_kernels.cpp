// TFLM's portable reference kernels for int8 CONV_2D, DEPTHWISE_CONV_2D and FULLY_CONNECTED, registered under the
// names the op resolver asks for, so that bench/kernels.py and the kernel tests can link them in place of the
// CMSIS-NN kernels and count the instructions of both on the emulated Cortex-M4. Written for this benchmark only: the
// pinned Arduino library ships only the CMSIS-NN versions of these kernels' Eval. Prepare (per-channel multipliers,
// padding) is the library's own, shared by both (for FULLY_CONNECTED, TFLM's CalculateOpDataFullyConnected, which
// the library's Prepare calls).
#include "tensorflow/lite/kernels/internal/reference/integer_ops/conv.h"
#include "tensorflow/lite/kernels/internal/reference/integer_ops/depthwise_conv.h"
#include "tensorflow/lite/kernels/internal/reference/integer_ops/fully_connected.h"
#include "tensorflow/lite/micro/kernels/conv.h"
#include "tensorflow/lite/micro/kernels/depthwise_conv.h"
#include "tensorflow/lite/micro/kernels/fully_connected.h"
#include "tensorflow/lite/micro/kernels/kernel_util.h"
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

}  // namespace

TfLiteRegistration Register_FULLY_CONNECTED() {
  return micro::RegisterOp(InitFullyConnected, FullyConnectedPrepare, FullyConnectedEvalReference);
}

TfLiteRegistration Register_CONV_2D() { return micro::RegisterOp(InitOpData, ConvPrepare, ConvEvalReference); }
TfLiteRegistration Register_DEPTHWISE_CONV_2D() {
  return micro::RegisterOp(InitOpData, DepthwiseConvPrepare, DepthwiseEvalReference);
}

}  // namespace tflite
