// tinydeploy's int8 MAX_POOL_2D, bit-exact with TFLM's reference kernel (reference_integer_ops::MaxPool): every
// int8 node, any filter, stride and padding. The op data is TFLM's OpDataPooling (the library's PoolingPrepare fills
// it; the library's CMSIS-NN kernel keeps a larger one).
//
// The reference takes, per output and channel, the maximum over the filter's taps inside the input (padded taps are
// skipped, not zero), then clamps it to the activation range. Here four channels are one word: SSUB8 and SEL take
// the per-byte maximum of two words (td_dsp.h's max8x4), so a 2x2 window inside the input is four loads, three
// maxima and one store for four outputs; a window that the border cuts runs its valid taps only, as the reference
// does; the activation range, where it is not the full int8 range, is two more maxima of the same kind.
#include "td_dsp.h"
#include "td_kernel_util.h"
#include "td_kernels.h"
#include "tensorflow/lite/c/builtin_op_data.h"
#include "tensorflow/lite/kernels/kernel_util.h"
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/kernels/pooling.h"
#include "tensorflow/lite/micro/micro_context.h"

namespace td {
namespace kernels {
namespace {

using PoolOp = util::KernelOpOf<tflite::OpDataPooling>;

TfLiteRegistration Library() { return tflite::Register_MAX_POOL_2D(); }

bool Applies(TfLiteContext* context, TfLiteNode* node) {
  tflite::MicroContext* mc = tflite::GetMicroContext(context);
  TfLiteTensor* in = mc->AllocateTempInputTensor(node, tflite::kPoolingInputTensor);
  TfLiteTensor* out = mc->AllocateTempOutputTensor(node, tflite::kPoolingOutputTensor);
  const bool ok = in != nullptr && out != nullptr && in->type == kTfLiteInt8 && out->type == kTfLiteInt8 &&
                  in->dims->size == 4 && out->dims->size == 4 && in->dims->data[0] == out->dims->data[0] &&
                  in->dims->data[3] == out->dims->data[3];
  if (in) mc->DeallocateTempTfLiteTensor(in);
  if (out) mc->DeallocateTempTfLiteTensor(out);
  return ok;
}

TfLiteStatus EvalOurs(TfLiteContext* context, TfLiteNode* node, const PoolOp& op) {
  const auto& params = *static_cast<const TfLitePoolParams*>(node->builtin_data);
  const TfLiteEvalTensor* input = tflite::micro::GetEvalInput(context, node, tflite::kPoolingInputTensor);
  TfLiteEvalTensor* output = tflite::micro::GetEvalOutput(context, node, tflite::kPoolingOutputTensor);
  const tflite::OpDataPooling& d = op.data;
  const int batches = input->dims->data[0], in_h = input->dims->data[1], in_w = input->dims->data[2];
  const int channels = input->dims->data[3], out_h = output->dims->data[1], out_w = output->dims->data[2];
  const int fh = params.filter_height, fw = params.filter_width;
  const int8_t* x = tflite::micro::GetTensorData<int8_t>(input);
  int8_t* y = tflite::micro::GetTensorData<int8_t>(output);
  const int32_t lo = d.activation_min, hi = d.activation_max;
  const bool full = lo <= -128 && hi >= 127;
  const int32_t lo4 = util::Lanes(lo), hi4 = util::Lanes(hi);
  const int row = in_w * channels;  // bytes from one input row to the next
  const int groups = channels & ~3;
  for (int b = 0; b < batches; ++b) {
    const int8_t* xb = x + b * in_h * row;
    for (int oy = 0; oy < out_h; ++oy) {
      const int iy0 = oy * params.stride_height - d.padding.height;
      const int fy0 = iy0 < 0 ? -iy0 : 0, fy1 = fh < in_h - iy0 ? fh : in_h - iy0;
      for (int ox = 0; ox < out_w; ++ox, y += channels) {
        const int ix0 = ox * params.stride_width - d.padding.width;
        const int fx0 = ix0 < 0 ? -ix0 : 0, fx1 = fw < in_w - ix0 ? fw : in_w - ix0;
        const int ny = fy1 - fy0, nx = fx1 - fx0;
        const int8_t* p = xb + (iy0 + fy0) * row + (ix0 + fx0) * channels;  // the first valid tap
        if (ny == 2 && nx == 2) {  // the common 2x2 window, inside the input
          const int8_t *p01 = p + channels, *p10 = p + row, *p11 = p + row + channels;
          for (int c = 0; c < groups; c += 4) {
            int32_t m = dsp::max8x4(dsp::max8x4(util::Load4(p + c), util::Load4(p01 + c)),
                                    dsp::max8x4(util::Load4(p10 + c), util::Load4(p11 + c)));
            if (!full) m = util::Clamp4(m, lo4, hi4);
            util::Store4(y + c, m);
          }
        } else {
          for (int c = 0; c < groups; c += 4) {
            int32_t m = util::Lanes(-128);  // the reference starts at the lowest value: a window of no tap gives it
            for (int i = 0; i < ny; ++i) {
              const int8_t* q = p + i * row + c;
              for (int j = 0; j < nx; ++j, q += channels) m = dsp::max8x4(m, util::Load4(q));
            }
            if (!full) m = util::Clamp4(m, lo4, hi4);
            util::Store4(y + c, m);
          }
        }
        for (int c = groups; c < channels; ++c) {  // the last 1-3 channels, one at a time
          int32_t m = -128;
          for (int i = 0; i < ny; ++i) {
            for (int j = 0; j < nx; ++j) {
              const int32_t v = p[i * row + j * channels + c];
              m = v > m ? v : m;
            }
          }
          y[c] = static_cast<int8_t>(util::Clamp(m, lo, hi));
        }
      }
    }
  }
  return kTfLiteOk;
}

}  // namespace

TfLiteRegistration Register_MAX_POOL_2D() {
  return util::Kernel<tflite::OpDataPooling, Library, Applies, tflite::PoolingPrepare, EvalOurs>::Registration();
}

TfLiteRegistration Register_MAX_POOL_2D_INT8() {
  return util::Kernel<tflite::OpDataPooling, nullptr, Applies, tflite::PoolingPrepare, EvalOurs>::Registration();
}

}  // namespace kernels
}  // namespace td
