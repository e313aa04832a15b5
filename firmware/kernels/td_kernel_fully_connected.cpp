// tinydeploy's int8 FULLY_CONNECTED, bit-exact with TFLM's reference kernel (FullyConnected, per-tensor): the
// batches times the weights on the matrix product of td_kernel_matmul.cpp (one batch: four output channels at a time
// against the widened input) where it is faster, the pinned CMSIS-NN's arm_fully_connected_s8 (the call the library's
// kernel makes) on the same op data for the other int8 nodes (classifier heads, few inputs), so that the registration
// takes every int8 per-tensor node and Register_FULLY_CONNECTED_INT8 links no library kernel. Other nodes (other
// types, a filter with a zero point) run the library's kernel, chosen in Prepare. The op data is TFLM's own
// (CalculateOpDataFullyConnected); nothing else is kept.
#include "td_kernel_cmsis.h"
#include "td_kernel_matmul.h"
#include "td_kernel_util.h"
#include "td_kernels.h"
#include "tensorflow/lite/c/builtin_op_data.h"
#include "tensorflow/lite/micro/kernels/fully_connected.h"
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "third_party/cmsis_nn/Include/arm_nnfunctions.h"

namespace td {
namespace kernels {
namespace {

using FcOp = util::KernelOpOf<tflite::OpDataFullyConnected>;

TfLiteRegistration Library() { return tflite::Register_FULLY_CONNECTED(); }

// Who computes a node, kept in its op data's filter_buffer_index (TFLM reads it for int4 filters only, which Applies
// refuses): kOneRow, a batch of one whose shape and constants FcRow takes (FcRowTakes: 4 outputs or more, K a
// multiple of 8), the one-row loop in assembly; else kOwnLoops, the matrix product (Run), where it measured faster
// than the library's kernel (bench/kernels.py: 16 outputs or more and 16 inputs or more; classifier heads of 8-12
// outputs ran 0.88-0.98x, 8 inputs 0.47x); else -1, the CMSIS-NN function (it asks for no scratch buffer).
constexpr int kMinOutputs = 16;
constexpr int kMinInputs = 16;
constexpr int kOneRow = -3;

// The batches: the output's elements over its channels.
int32_t Rows(const TfLiteIntArray* output_dims, int32_t cols) {
  int32_t elements = 1;
  for (int i = 0; i < output_dims->size; ++i) elements *= output_dims->data[i];
  return elements / cols;
}

bool Applies(TfLiteContext* context, TfLiteNode* node) {
  tflite::MicroContext* mc = tflite::GetMicroContext(context);
  TfLiteTensor* input = mc->AllocateTempInputTensor(node, tflite::kFullyConnectedInputTensor);
  TfLiteTensor* filter = mc->AllocateTempInputTensor(node, tflite::kFullyConnectedWeightsTensor);
  TfLiteTensor* bias = mc->AllocateTempInputTensor(node, tflite::kFullyConnectedBiasTensor);
  TfLiteTensor* output = mc->AllocateTempOutputTensor(node, tflite::kFullyConnectedOutputTensor);
  const bool ok = input != nullptr && filter != nullptr && output != nullptr && input->type == kTfLiteInt8 &&
                  filter->type == kTfLiteInt8 && output->type == kTfLiteInt8 && filter->dims->size == 2 &&
                  filter->params.zero_point == 0 && output->dims->size >= 2 && output->dims->size <= 4 &&
                  (bias == nullptr || bias->type == kTfLiteInt32);
  if (input) mc->DeallocateTempTfLiteTensor(input);
  if (filter) mc->DeallocateTempTfLiteTensor(filter);
  if (bias) mc->DeallocateTempTfLiteTensor(bias);
  if (output) mc->DeallocateTempTfLiteTensor(output);
  return ok;
}

// TFLM's op data, by TFLM's own function (the library's Prepare is not public).
TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  FcOp* op = static_cast<FcOp*>(node->user_data);
  const auto* params = static_cast<const TfLiteFullyConnectedParams*>(node->builtin_data);
  tflite::MicroContext* mc = tflite::GetMicroContext(context);
  TfLiteTensor* input = mc->AllocateTempInputTensor(node, tflite::kFullyConnectedInputTensor);
  TfLiteTensor* filter = mc->AllocateTempInputTensor(node, tflite::kFullyConnectedWeightsTensor);
  TfLiteTensor* bias = mc->AllocateTempInputTensor(node, tflite::kFullyConnectedBiasTensor);
  TfLiteTensor* output = mc->AllocateTempOutputTensor(node, tflite::kFullyConnectedOutputTensor);
  const TfLiteStatus s = tflite::CalculateOpDataFullyConnected(context, params->activation, input->type, input,
                                                                filter, bias, output, &op->data);
  const int k = filter->dims->data[1], cols = filter->dims->data[0];
  op->data.filter_buffer_index = k <= kMatMulMaxK && cols >= kMinOutputs && k >= kMinInputs ? kOwnLoops : -1;
  // the one-row loop's bound needs the biases: constants of the model
  const bool constant_bias = bias != nullptr && bias->allocation_type == kTfLiteMmapRo;
  if (s == kTfLiteOk && Rows(output->dims, cols) == 1 && constant_bias &&
      FcRowTakes(k, cols, op->data.output_multiplier, op->data.output_shift, op->data.output_zero_point,
                 bias->data.i32)) {
    op->data.filter_buffer_index = kOneRow;
  }
  mc->DeallocateTempTfLiteTensor(input);
  mc->DeallocateTempTfLiteTensor(filter);
  if (bias) mc->DeallocateTempTfLiteTensor(bias);
  mc->DeallocateTempTfLiteTensor(output);
  return s;
}

// The library kernel's arm_fully_connected_s8 call (its int8 path for 2-D outputs; for 3-D and 4-D ones it takes
// arm_convolve_1x1_s8_fast with per-channel copies of the one multiplier, the same figures).
TfLiteStatus EvalCmsis(const TfLiteEvalTensor* input, const TfLiteEvalTensor* filter, const TfLiteEvalTensor* bias,
                       TfLiteEvalTensor* output, const tflite::OpDataFullyConnected& d, int32_t rows) {
  const int32_t k = filter->dims->data[1], cols = filter->dims->data[0];
  cmsis_nn_context ctx = {nullptr, 0};
  cmsis_nn_fc_params fc;
  fc.input_offset = -d.input_zero_point;
  fc.filter_offset = 0;
  fc.output_offset = d.output_zero_point;
  fc.activation.min = d.output_activation_min;
  fc.activation.max = d.output_activation_max;
  cmsis_nn_per_tensor_quant_params quant = {d.output_multiplier, d.output_shift};
  const cmsis_nn_dims in_dims = {rows, 1, 1, k}, filter_dims = {k, 1, 1, cols}, bias_dims = {1, 1, 1, cols},
                      out_dims = {rows, 1, 1, cols};
  return arm_fully_connected_s8(&ctx, &fc, &quant, &in_dims, tflite::micro::GetTensorData<int8_t>(input),
                                &filter_dims, tflite::micro::GetTensorData<int8_t>(filter), &bias_dims,
                                bias ? tflite::micro::GetTensorData<int32_t>(bias) : nullptr, &out_dims,
                                tflite::micro::GetTensorData<int8_t>(output)) == ARM_CMSIS_NN_SUCCESS
             ? kTfLiteOk
             : kTfLiteError;
}

TfLiteStatus EvalOurs(TfLiteContext* context, TfLiteNode* node, const FcOp& op) {
  const TfLiteEvalTensor* input = tflite::micro::GetEvalInput(context, node, tflite::kFullyConnectedInputTensor);
  const TfLiteEvalTensor* filter = tflite::micro::GetEvalInput(context, node, tflite::kFullyConnectedWeightsTensor);
  const TfLiteEvalTensor* bias = tflite::micro::GetEvalInput(context, node, tflite::kFullyConnectedBiasTensor);
  TfLiteEvalTensor* output = tflite::micro::GetEvalOutput(context, node, tflite::kFullyConnectedOutputTensor);
  const tflite::OpDataFullyConnected& d = op.data;
  const int32_t rows = Rows(output->dims, filter->dims->data[0]);
  if (d.filter_buffer_index == -1) return EvalCmsis(input, filter, bias, output, d, rows);
  const int32_t mult = d.output_multiplier, shift = d.output_shift;
  MatMul m;
  m.in = tflite::micro::GetTensorData<int8_t>(input);
  m.w = tflite::micro::GetTensorData<int8_t>(filter);
  m.bias = bias ? tflite::micro::GetTensorData<int32_t>(bias) : nullptr;
  m.out = tflite::micro::GetTensorData<int8_t>(output);
  m.k = filter->dims->data[1];
  m.cols = filter->dims->data[0];
  m.rows = rows;
  m.input_zp = d.input_zero_point;
  m.output_zp = d.output_zero_point;
  m.act_min = d.output_activation_min;
  m.act_max = d.output_activation_max;
  m.mult = &mult;
  m.shift = &shift;
  m.per_channel = false;
  m.outside = {0, m.cols};  // (PerChannelRow's alone: FcRowTakes checks the fast form's bound itself)
  m.row = nullptr;
  m.ctx = nullptr;
  if (d.filter_buffer_index == kOneRow && m.rows == 1) {
    FcRow(m);
  } else {
    Run(m);
  }
  return kTfLiteOk;
}

}  // namespace

TfLiteRegistration Register_FULLY_CONNECTED() {
  return util::Kernel<tflite::OpDataFullyConnected, Library, Applies, Prepare, EvalOurs>::Registration();
}

TfLiteRegistration Register_FULLY_CONNECTED_INT8() {
  return util::Kernel<tflite::OpDataFullyConnected, nullptr, Applies, Prepare, EvalOurs>::Registration();
}

}  // namespace kernels
}  // namespace td
