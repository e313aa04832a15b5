// tinydeploy's int8 MEAN over a 4-D tensor's pixels (axes 1 and 2: a global average pooling), bit-exact with the
// pinned TFLM's reference kernel; other nodes run the library's kernel, chosen in Prepare. The op data is TFLM's
// (OpDataReduce, filled by the library's own PrepareMeanOrSumHelper), so the arena is the library kernel's.
//
// TFLM sums each channel's values through its generic index arithmetic (about 140 instructions a value on the
// Cortex-M4), then divides: where the output's scale or zero point differs from the input's (QuantizedMeanOrSum,
// what the converter writes for a real pooling) in float, where they are the same (Mean, what it writes for a 1x1
// map) in integers. Here the sums take one word load and two SXTAB16 per four channels of a pixel, in 16-bit lanes
// widened every 256 pixels (256 x 127 and 256 x -128 fit 16 bits), and each output is the library's expression,
// written as it writes it (the same compiler and flags then make the same instructions of it, the float path's fused
// multiply-add on the Cortex-M4F included).
#include "td_dsp.h"
#include "td_kernel_util.h"
#include "td_kernels.h"
#include "tensorflow/lite/c/builtin_op_data.h"
#include "tensorflow/lite/kernels/internal/cppmath.h"
#include "tensorflow/lite/kernels/internal/max.h"
#include "tensorflow/lite/kernels/internal/min.h"
#include "tensorflow/lite/kernels/kernel_util.h"
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/kernels/reduce.h"
#include "tensorflow/lite/micro/micro_context.h"

namespace td {
namespace kernels {
namespace {

using MeanOp = util::KernelOpOf<tflite::OpDataReduce>;

TfLiteRegistration Library() { return tflite::Register_MEAN(); }

constexpr int kLanePixels = 256;  // pixels summed in 16-bit lanes before they are widened

bool Applies(TfLiteContext* context, TfLiteNode* node) {
  if (node->inputs->size != 2 || node->outputs->size != 1) return false;
  tflite::MicroContext* mc = tflite::GetMicroContext(context);
  TfLiteTensor* in = mc->AllocateTempInputTensor(node, 0);
  TfLiteTensor* axis = mc->AllocateTempInputTensor(node, 1);
  TfLiteTensor* out = mc->AllocateTempOutputTensor(node, 0);
  bool ok = in != nullptr && axis != nullptr && out != nullptr && in->type == kTfLiteInt8 &&
            out->type == kTfLiteInt8 && in->dims->size == 4 && axis->type == kTfLiteInt32 &&
            tflite::IsConstantTensor(axis) && axis->data.i32 != nullptr && tflite::NumElements(axis) == 2 &&
            tflite::NumElements(out) == in->dims->data[0] * in->dims->data[3];
  if (ok) {
    const int a = axis->data.i32[0] < 0 ? axis->data.i32[0] + 4 : axis->data.i32[0];
    const int b = axis->data.i32[1] < 0 ? axis->data.i32[1] + 4 : axis->data.i32[1];
    ok = (a == 1 && b == 2) || (a == 2 && b == 1);
  }
  if (in) mc->DeallocateTempTfLiteTensor(in);
  if (axis) mc->DeallocateTempTfLiteTensor(axis);
  if (out) mc->DeallocateTempTfLiteTensor(out);
  return ok;
}

TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
  return tflite::PrepareMeanOrSumHelper(context, node, &static_cast<MeanOp*>(node->user_data)->data);
}

// The sums of four channels over `pixels` pixels `stride` bytes apart (p: the first pixel's first channel).
inline void SumFour(const int8_t* p, int pixels, int stride, int32_t s[4]) {
  s[0] = s[1] = s[2] = s[3] = 0;
  while (pixels > 0) {
    int n = pixels < kLanePixels ? pixels : kLanePixels;
    pixels -= n;
    int32_t a02 = 0, a13 = 0;  // channels 0 and 2, 1 and 3, in 16-bit lanes
    for (; n >= 2; n -= 2, p += 2 * stride) {
      const int32_t v0 = util::Load4(p), v1 = util::Load4(p + stride);
      a02 = dsp::sxtab16(a02, v0);
      a13 = dsp::sxtab16_ror8(a13, v0);
      a02 = dsp::sxtab16(a02, v1);
      a13 = dsp::sxtab16_ror8(a13, v1);
    }
    if (n) {
      const int32_t v = util::Load4(p);
      a02 = dsp::sxtab16(a02, v);
      a13 = dsp::sxtab16_ror8(a13, v);
      p += stride;
    }
    s[0] += static_cast<int16_t>(a02 & 0xffff);
    s[1] += static_cast<int16_t>(a13 & 0xffff);
    s[2] += a02 >> 16;
    s[3] += a13 >> 16;
  }
}

// One output from its channel's sum, as TFLM's QuantizedMeanOrSum computes it (reference/reduce.h), operation for
// operation; with the input's scale and zero point (TFLM's Mean), the sum divided in integers, rounded to zero.
inline int8_t Output(int32_t sum, float count, float scale, float bias, int32_t output_zero_point,
                     int32_t integer_count) {
  if (integer_count > 0) return static_cast<int8_t>(sum / integer_count);
  const float float_mean = static_cast<float>(sum) / count;
  float result = tflite::TfLiteMin(tflite::TfLiteRound(float_mean * scale + bias) + output_zero_point,
                                   static_cast<float>(127));
  result = tflite::TfLiteMax(result, static_cast<float>(-128));
  return static_cast<int8_t>(result);
}

TfLiteStatus EvalOurs(TfLiteContext* context, TfLiteNode* node, const MeanOp& op) {
  const TfLiteEvalTensor* input = tflite::micro::GetEvalInput(context, node, 0);
  TfLiteEvalTensor* output = tflite::micro::GetEvalOutput(context, node, 0);
  const tflite::OpDataReduce& d = op.data;
  const int batches = input->dims->data[0], channels = input->dims->data[3];
  const int pixels = input->dims->data[1] * input->dims->data[2];
  const int8_t* x = tflite::micro::GetTensorData<int8_t>(input);
  int8_t* y = tflite::micro::GetTensorData<int8_t>(output);
  if (pixels == 0) {  // TFLM: the outputs stay zero
    for (int i = 0; i < batches * channels; ++i) y[i] = 0;
    return kTfLiteOk;
  }
  // as TFLM computes them: the count as a size_t, the bias from the negated zero point
  const float count = static_cast<float>(static_cast<size_t>(pixels));
  const float scale = d.input_scale / d.output_scale;
  const float bias = -d.input_zp * scale;
  // TFLM's EvalIntegerMean: the integer path where the two tensors' zero points and scales are equal
  const int32_t integer_count =
      d.input_zp == d.output_zp && d.input_scale == d.output_scale ? static_cast<int32_t>(pixels) : 0;
  for (int b = 0; b < batches; ++b, x += pixels * channels, y += channels) {
    int c = 0;
    for (; c + 4 <= channels; c += 4) {
      int32_t s[4];
      SumFour(x + c, pixels, channels, s);
      for (int j = 0; j < 4; ++j) y[c + j] = Output(s[j], count, scale, bias, d.output_zp, integer_count);
    }
    for (; c < channels; ++c) {
      int32_t s = 0;
      for (int i = 0; i < pixels; ++i) s += x[i * channels + c];
      y[c] = Output(s, count, scale, bias, d.output_zp, integer_count);
    }
  }
  return kTfLiteOk;
}

}  // namespace

TfLiteRegistration Register_MEAN() {
  return util::Kernel<tflite::OpDataReduce, Library, Applies, Prepare, EvalOurs>::Registration();
}

TfLiteRegistration Register_MEAN_INT8() {
  return util::Kernel<tflite::OpDataReduce, nullptr, Applies, Prepare, EvalOurs>::Registration();
}

}  // namespace kernels
}  // namespace td
