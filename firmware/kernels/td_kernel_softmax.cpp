// tinydeploy's int8 SOFTMAX: the pinned CMSIS-NN's arm_softmax_s8, as the library's kernel runs it, on op data of
// 16 bytes where the library keeps 64 (CMSISNNSoftmaxParams: TFLM's whole SoftmaxParams, a double, the int16 path's
// tables and LogSoftmax's divisor among them, for the three numbers the int8 function reads, and the rows). The
// numbers are TFLM's own (CalculateSoftmaxParams, in Prepare), so every output is the library kernel's; other nodes
// (float, int16) run the library's kernel, chosen in Prepare.
#include "td_kernel_util.h"
#include "td_kernels.h"
#include "tensorflow/lite/c/builtin_op_data.h"
#include "tensorflow/lite/kernels/internal/types.h"
#include "tensorflow/lite/kernels/kernel_util.h"
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/kernels/softmax.h"
#include "tensorflow/lite/micro/micro_context.h"
#include "third_party/cmsis_nn/Include/arm_nnfunctions.h"

namespace td {
namespace kernels {
namespace {

// What arm_softmax_s8 reads beside a row's length (the input's last dimension): TFLM's input multiplier, left shift
// and diff_min, and the rows (the input's other dimensions), each row's softmax on its own. 16 bytes, the arena's
// alignment: one more field would take 32.
struct SoftmaxOp {
  int32_t multiplier;
  int32_t left_shift;
  int32_t diff_min;
  int32_t rows;
};
using Op = util::KernelOpOf<SoftmaxOp>;

TfLiteRegistration Library() { return tflite::Register_SOFTMAX(); }

// int8 in and out, as many output values as input values (TFLM's kernel matches the shapes; the rows are the input's)
bool Applies(TfLiteContext* context, TfLiteNode* node) {
  if (node->inputs->size != 1 || node->outputs->size != 1) return false;
  tflite::MicroContext* mc = tflite::GetMicroContext(context);
  TfLiteTensor* in = mc->AllocateTempInputTensor(node, 0);
  TfLiteTensor* out = mc->AllocateTempOutputTensor(node, 0);
  const bool ok = in != nullptr && out != nullptr && in->type == kTfLiteInt8 && out->type == kTfLiteInt8 &&
                  in->dims->size >= 1 && tflite::NumElements(in) == tflite::NumElements(out);
  if (in) mc->DeallocateTempTfLiteTensor(in);
  if (out) mc->DeallocateTempTfLiteTensor(out);
  return ok;
}

TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  tflite::MicroContext* mc = tflite::GetMicroContext(context);
  TfLiteTensor* in = mc->AllocateTempInputTensor(node, 0);
  TF_LITE_ENSURE(context, in != nullptr);
  TfLiteTensor* out = mc->AllocateTempOutputTensor(node, 0);
  TF_LITE_ENSURE(context, out != nullptr);
  tflite::SoftmaxParams params = {};
  const TfLiteStatus s = tflite::CalculateSoftmaxParams(
      context, in, out, static_cast<const TfLiteSoftmaxParams*>(node->builtin_data), &params);
  SoftmaxOp& op = static_cast<Op*>(node->user_data)->data;
  op.multiplier = params.input_multiplier;
  op.left_shift = params.input_left_shift;
  op.diff_min = params.diff_min;
  const int32_t row_size = in->dims->data[in->dims->size - 1];
  op.rows = row_size > 0 ? static_cast<int32_t>(tflite::NumElements(in)) / row_size : 0;
  mc->DeallocateTempTfLiteTensor(in);
  mc->DeallocateTempTfLiteTensor(out);
  return s;
}

TfLiteStatus Eval(TfLiteContext* context, TfLiteNode* node, const Op& o) {
  // one input and one output (Applies): the tensors straight from the context, without GetEvalInput's index checks
  const TfLiteEvalTensor* input = context->GetEvalTensor(context, node->inputs->data[0]);
  TfLiteEvalTensor* output = context->GetEvalTensor(context, node->outputs->data[0]);
  const SoftmaxOp& op = o.data;
  const TfLiteIntArray& dims = *input->dims;
  arm_softmax_s8(tflite::micro::GetTensorData<int8_t>(input), op.rows, dims.data[dims.size - 1], op.multiplier,
                 op.left_shift, op.diff_min, tflite::micro::GetTensorData<int8_t>(output));
  return kTfLiteOk;
}

}  // namespace

TfLiteRegistration Register_SOFTMAX() {
  return util::Kernel<SoftmaxOp, Library, Applies, Prepare, Eval>::Registration();
}

TfLiteRegistration Register_SOFTMAX_INT8() {
  return util::Kernel<SoftmaxOp, nullptr, Applies, Prepare, Eval>::Registration();
}

}  // namespace kernels
}  // namespace td
