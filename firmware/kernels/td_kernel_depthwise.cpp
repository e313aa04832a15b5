// tinydeploy's int8 DEPTHWISE_CONV_2D, bit-exact with TFLM's reference kernel (DepthwiseConvPerChannel).
//
// Where it applies (int8, depth multiplier 1, at most kMaxTaps filter taps) it replaces the library's CMSIS-NN
// kernel; elsewhere the node runs the library's own kernel, chosen in Prepare. The per-channel multipliers and
// shifts are the library's (DepthwiseConvPrepare); nothing else is kept in the arena: what the loops need per
// group of four channels (the weights widened to 16 bits, the biases with the input offset folded in) is made on
// the stack once per group and Eval.
//
// How it computes, per group of 4 channels (one 32-bit word of each NHWC pixel), per output pixel:
//  - every tap loads one word of input and one pair of words of weights, and does four 16x16 multiply-accumulates
//    (SXTB16 splits the input word into channels 0/2 and 1/3; SMLABB and SMLATT accumulate each channel);
//  - inside the image (no padded tap) the input offset is folded into the bias: sum w*(x + o) = sum w*x + o*sum w;
//    at the border each tap adds it (SADD16) and padded taps are skipped, exactly as the reference does;
//  - the accumulators hold twice the sum (the weights are doubled when widened), so that TFLM's requantization
//    MultiplyByQuantizedMultiplier (a rounding doubling high multiply, then a rounding right shift) is one SMMULR
//    and three instructions: SMMULR(2a, m) = floor((2am + 2^31) / 2^32) = floor((am + 2^30) / 2^31), which is TFLM's
//    SaturatingRoundingDoublingHighMul(a, m) for m > 0; and its rounding divide by 2^e (e >= 1) is
//    (x + 2^(e-1) - (x < 0)) >> e. That holds while 2a (times the left shift) fits in 32 bits, which a bound on the
//    accumulator (|bias| + 255 * sum |w|) decides per group; a group beyond it, or with a right shift of 0, is
//    requantized with TFLM's own function instead.
#include <string.h>

#include "td_dsp.h"
#include "td_kernel_util.h"
#include "td_kernels.h"
#include "tensorflow/lite/c/builtin_op_data.h"
#include "tensorflow/lite/kernels/internal/common.h"
#include "tensorflow/lite/kernels/kernel_util.h"
#include "tensorflow/lite/micro/kernels/conv.h"
#include "tensorflow/lite/micro/kernels/depthwise_conv.h"
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_context.h"

namespace td {
namespace kernels {
namespace {

constexpr int kMaxTaps = 64;  // 8x8; a larger filter runs the library's kernel
// Each group of four channels costs a fixed setup (its weights widened, its biases folded) that small output maps do
// not amortize: measured with bench/kernels.py, 6x6 and 3x3 maps ran at 0.56-0.93x the library kernel's speed and
// maps of 11x11, 25x5 and larger at 1.07-2x, so a node with fewer output pixels than this runs the library's kernel.
// (The tests build with -DTD_DW_MIN_OUTPUT_PIXELS=1 to run this kernel on every shape it covers.)
#ifndef TD_DW_MIN_OUTPUT_PIXELS
#define TD_DW_MIN_OUTPUT_PIXELS 64
#endif
constexpr int kMinOutputPixels = TD_DW_MIN_OUTPUT_PIXELS;

using DwOp = util::KernelOp;

// The pinned library's kernel (CMSIS-NN under ARDUINO), for the nodes this one does not take.
TfLiteRegistration Library() { return tflite::Register_DEPTHWISE_CONV_2D(); }

// Whether this kernel takes the node: the shapes it covers, and output maps large enough for it to be faster.
bool Applies(TfLiteContext* context, TfLiteNode* node) {
  const auto& params = *static_cast<const TfLiteDepthwiseConvParams*>(node->builtin_data);
  tflite::MicroContext* mc = tflite::GetMicroContext(context);
  TfLiteTensor* input = mc->AllocateTempInputTensor(node, tflite::kDepthwiseConvInputTensor);
  TfLiteTensor* filter = mc->AllocateTempInputTensor(node, tflite::kDepthwiseConvWeightsTensor);
  TfLiteTensor* output = mc->AllocateTempOutputTensor(node, tflite::kDepthwiseConvOutputTensor);
  bool ok = input != nullptr && filter != nullptr && output != nullptr && input->type == kTfLiteInt8 &&
            filter->type == kTfLiteInt8 && output->type == kTfLiteInt8 && input->dims->size == 4 &&
            filter->dims->size == 4 && output->dims->size == 4;
  if (ok) {
    const int channels = input->dims->data[3];
    ok = params.depth_multiplier == 1 && filter->dims->data[3] == channels && output->dims->data[3] == channels &&
         filter->dims->data[1] * filter->dims->data[2] <= kMaxTaps;
  }
  if (ok) ok = output->dims->data[1] * output->dims->data[2] >= kMinOutputPixels;
  if (input) mc->DeallocateTempTfLiteTensor(input);
  if (filter) mc->DeallocateTempTfLiteTensor(filter);
  if (output) mc->DeallocateTempTfLiteTensor(output);
  return ok;
}

// What the loops need for one group of up to 4 channels, made once per group and Eval.
struct Group {
  int32_t w[2 * kMaxTaps];  // tap k: w[2k] = 2 x weights of channels (0, 2), w[2k+1] = of (1, 3), int16 pairs
  int32_t bias2[4];         // 2 x bias
  int32_t inner2[4];        // 2 x (bias + input offset x sum of the channel's weights): pixels with no padded tap
  int32_t mult[4];
  int32_t shift[4];         // TFLM's shift: > 0 left, < 0 right
  int32_t add[4];           // fast path: 2^(right shift - 1) + (output zero point << right shift)
  int32_t right[4];
  bool fast;                // the SMMULR requantization is exact for every channel of the group
};

void MakeGroup(Group& g, const int8_t* filter, const int32_t* bias, const tflite::OpDataConv& d, int c0, int n,
               int channels, int taps, int32_t input_offset, int32_t out_zp) {
  g.fast = true;
  for (int j = 0; j < 4; ++j) {
    const int c = c0 + (j < n ? j : 0);
    int32_t sum = 0, abs_sum = 0;
    for (int k = 0; k < taps; ++k) {
      const int32_t w = j < n ? filter[k * channels + c] : 0;
      sum += w;
      abs_sum += w < 0 ? -w : w;
    }
    const int32_t b = (j < n && bias) ? bias[c] : 0;
    g.bias2[j] = 2 * b;
    g.inner2[j] = 2 * (b + input_offset * sum);
    g.mult[j] = d.per_channel_output_multiplier[c];
    g.shift[j] = d.per_channel_output_shift[c];
    // |accumulator| <= |bias| + |o| * sum |w| + 127 * sum |w|, with |o| <= 128
    const util::Requant q = util::MakeRequant(g.mult[j], g.shift[j], out_zp, (b < 0 ? -b : b) + 255LL * abs_sum);
    g.right[j] = q.right;
    g.add[j] = q.add;
    g.fast = g.fast && q.fast;
  }
  for (int k = 0; k < taps; ++k) {
    int32_t w4[4];
    for (int j = 0; j < 4; ++j) w4[j] = j < n ? 2 * filter[k * channels + c0 + j] : 0;
    g.w[2 * k] = static_cast<int32_t>((static_cast<uint32_t>(w4[2]) << 16) | (static_cast<uint32_t>(w4[0]) & 0xffff));
    g.w[2 * k + 1] =
        static_cast<int32_t>((static_cast<uint32_t>(w4[3]) << 16) | (static_cast<uint32_t>(w4[1]) & 0xffff));
  }
}

// TFLM's requantization of one accumulator (held doubled), zero point and activation range applied. Fast path:
// ((x + 2^(e-1) - (x < 0)) >> e) + zp == (x + 2^(e-1) + (zp << e) - (x < 0)) >> e, |x| < 2^29 and e <= 20.
template <bool kFast>
inline int32_t RequantizeAs(const Group& g, int j, int32_t acc2, int32_t out_zp, int32_t act_min, int32_t act_max) {
  int32_t v;
  if (kFast) {
    v = util::RequantFast(acc2, g.mult[j], g.add[j], g.right[j]);
  } else {
    v = tflite::MultiplyByQuantizedMultiplier(acc2 / 2, g.mult[j], g.shift[j]) + out_zp;
  }
  return v < act_min ? act_min : (v > act_max ? act_max : v);
}

inline int32_t Requantize(const Group& g, int j, int32_t acc2, int32_t out_zp, int32_t act_min, int32_t act_max) {
  return g.fast ? RequantizeAs<true>(g, j, acc2, out_zp, act_min, act_max)
                : RequantizeAs<false>(g, j, acc2, out_zp, act_min, act_max);
}

using util::Load4;

struct Geometry {
  int in_h, in_w, channels, k_h, k_w, out_h, out_w, stride_h, stride_w, dil_h, dil_w, pad_h, pad_w;
};

struct Acc4 {
  int32_t a0, a1, a2, a3;
};

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
// One tap of four channels in one block of assembly: the compiler may neither hoist its loads (GCC's scheduler
// would, then spill them) nor split it. It reads only the input and the group, which nothing writes meanwhile.
// W: the byte offset of the tap's weight pair from w. The input word is loaded by the caller's first instruction.
#define TD_TAP_MACS                                 \
  "ldrd %[wa], %[wb], [%[w], #%c[off]]\n\t"         \
  "sxtb16 %[x], %[v]\n\t"                           \
  "sxtb16 %[v], %[v], ror #8\n\t"                   \
  "smlabb %[a0], %[x], %[wa], %[a0]\n\t"            \
  "smlatt %[a2], %[x], %[wa], %[a2]\n\t"            \
  "smlabb %[a1], %[v], %[wb], %[a1]\n\t"            \
  "smlatt %[a3], %[v], %[wb], %[a3]"
#define TD_TAP_OUTPUTS                                                                                       \
  [a0] "+r"(a.a0), [a1] "+r"(a.a1), [a2] "+r"(a.a2), [a3] "+r"(a.a3), [v] "=&r"(v), [x] "=&r"(x), \
      [wa] "=&r"(wa), [wb] "=&r"(wb)

template <int W>
inline void TapAt(Acc4& a, const int8_t* p, const int32_t* w) {
  int32_t v, x, wa, wb;
  __asm__ volatile("ldr %[v], [%[p]]\n\t" TD_TAP_MACS : TD_TAP_OUTPUTS : [p] "r"(p), [w] "r"(w), [off] "n"(W));
}

// The same, the input word at p + o (a register offset: no address computed per tap).
template <int W>
inline void TapAtOffset(Acc4& a, const int8_t* p, int o, const int32_t* w) {
  int32_t v, x, wa, wb;
  __asm__ volatile("ldr %[v], [%[p], %[o]]\n\t" TD_TAP_MACS
                   : TD_TAP_OUTPUTS
                   : [p] "r"(p), [o] "r"(o), [w] "r"(w), [off] "n"(W));
}
#undef TD_TAP_MACS
#undef TD_TAP_OUTPUTS
#endif

// One tap of four channels: one input word, four 16x16 multiply-accumulates.
inline void Tap(Acc4& a, const int8_t* p, const int32_t* w) {
  const int32_t v = Load4(p);
  const int32_t v02 = dsp::sxtb16(v), v13 = dsp::sxtb16_ror8(v);
  a.a0 = dsp::smlabb(v02, w[0], a.a0);
  a.a2 = dsp::smlatt(v02, w[0], a.a2);
  a.a1 = dsp::smlabb(v13, w[1], a.a1);
  a.a3 = dsp::smlatt(v13, w[1], a.a3);
}

// The accumulators of one output pixel of 4 channels whose 3x3 taps are all inside the image.
inline Acc4 Inner3x3(const int8_t* in, int step, int row, const int32_t* w, Acc4 a) {
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
  const int8_t* p = in;
  const int step2 = 2 * step;
  TapAt<0>(a, p, w);
  TapAtOffset<8>(a, p, step, w);
  TapAtOffset<16>(a, p, step2, w);
  p += row;
  TapAt<24>(a, p, w);
  TapAtOffset<32>(a, p, step, w);
  TapAtOffset<40>(a, p, step2, w);
  p += row;
  TapAt<48>(a, p, w);
  TapAtOffset<56>(a, p, step, w);
  TapAtOffset<64>(a, p, step2, w);
#else
  for (int ky = 0; ky < 3; ++ky, in += row)
    for (int kx = 0; kx < 3; ++kx) Tap(a, in + kx * step, w + 2 * (3 * ky + kx));
#endif
  return a;
}

// The same for any filter size.
inline Acc4 InnerAny(const int8_t* in, int step, int row, int k_h, int k_w, const int32_t* w, Acc4 a) {
  for (int ky = 0; ky < k_h; ++ky, in += row) {
    const int8_t* p = in;
    for (int kx = 0; kx < k_w; ++kx, p += step, w += 2) Tap(a, p, w);
  }
  return a;
}

// A run of output pixels along a row, of a full group of 4 channels, whose taps are all inside the image.
struct Run {
  const int8_t* in;  // the first pixel's top-left tap
  int in_advance;    // bytes from one pixel's top-left tap to the next's (stride x channels)
  int8_t* out;
  int out_advance;   // channels
  int count;
  int step, row;     // bytes between taps along a row, and between rows of taps
  int k_h, k_w;
  int32_t out_zp, act_min, act_max;
};

// Not inlined into Eval: its own register allocation keeps the accumulators, pointers and strides in registers.
constexpr int kChunk = 32;  // pixels whose accumulators are kept (512 B of stack) before they are requantized

// The accumulators of up to kChunk pixels of a run, one pixel after another.
template <bool kThreeByThree>
__attribute__((noinline)) void RunAccumulators(const Run& r, const Group& g, const int8_t* in, int n, Acc4* acc) {
  const Acc4 init = {g.inner2[0], g.inner2[1], g.inner2[2], g.inner2[3]};
  for (int i = 0; i < n; ++i, in += r.in_advance) {
    acc[i] = kThreeByThree ? Inner3x3(in, r.step, r.row, g.w, init)
                           : InnerAny(in, r.step, r.row, r.k_h, r.k_w, g.w, init);
  }
}

// Requantizes channel j of n pixels' accumulators, its constants held in registers for the whole loop. kFull: the
// activation range is all of int8, so one SSAT clamps.
template <bool kFast, bool kFull>
__attribute__((noinline)) void RequantizeChannel(const Run& r, const Group& g, const Acc4* acc, int n, int j,
                                                 int8_t* out) {
  const int32_t* a = &acc[0].a0 + j;
  // copied into locals: the int8 stores below may alias anything, so the compiler would reload the group's fields
  const int32_t lo = r.act_min, hi = r.act_max, zp = r.out_zp, advance = r.out_advance;
  const int32_t mult = g.mult[j], add = g.add[j], right = g.right[j], shift = g.shift[j];
  for (int i = 0; i < n; ++i, a += 4, out += advance) {
    int32_t v;
    if (kFast) {
      v = util::RequantFast(*a, mult, add, right);
    } else {
      v = tflite::MultiplyByQuantizedMultiplier(*a / 2, mult, shift) + zp;
    }
    v = dsp::ssat8(v);
    if (!kFull) v = v < lo ? lo : (v > hi ? hi : v);
    *out = static_cast<int8_t>(v);
  }
}

template <bool kThreeByThree, bool kFast>
void InnerRun(const Run& r, const Group& g) {
  Acc4 acc[kChunk];
  for (int done = 0; done < r.count; done += kChunk) {
    const int n = r.count - done < kChunk ? r.count - done : kChunk;
    RunAccumulators<kThreeByThree>(r, g, r.in + done * r.in_advance, n, acc);
    int8_t* out = r.out + done * r.out_advance;
    const bool full = r.act_min <= -128 && r.act_max >= 127;
    for (int j = 0; j < 4; ++j) {
      full ? RequantizeChannel<kFast, true>(r, g, acc, n, j, out + j)
           : RequantizeChannel<kFast, false>(r, g, acc, n, j, out + j);
    }
  }
}

// The taps [lo, hi) along one axis that fall inside the image, for a window starting at `start`.
inline void ValidTaps(int start, int k, int dil, int size, int* lo, int* hi) {
  int l = 0;
  while (l < k && start + l * dil < 0) ++l;
  int h = k;
  while (h > l && start + (h - 1) * dil >= size) --h;
  *lo = l;
  *hi = h;
}

// One tap with the input offset added per lane (the border, where the offset cannot be folded into the bias).
inline void TapWithOffset(Acc4& a, int32_t v, const int32_t* w, int32_t offset2) {
  const int32_t v02 = dsp::sadd16(dsp::sxtb16(v), offset2), v13 = dsp::sadd16(dsp::sxtb16_ror8(v), offset2);
  a.a0 = dsp::smlabb(v02, w[0], a.a0);
  a.a2 = dsp::smlatt(v02, w[0], a.a2);
  a.a1 = dsp::smlabb(v13, w[1], a.a1);
  a.a3 = dsp::smlatt(v13, w[1], a.a3);
}

// Any output pixel of a group of n <= 4 channels: only the taps inside the image (a rectangle of the filter, found
// per axis), the input offset added per tap, as the reference does. Not inlined, like InnerRun.
__attribute__((noinline)) void BorderPixel(const Geometry& s, const Group& g, const int8_t* input, int c0, int n,
                                           int iy0, int ix0, int32_t offset2, int8_t* out, int32_t out_zp,
                                           int32_t act_min, int32_t act_max) {
  int ky0, ky1, kx0, kx1;
  ValidTaps(iy0, s.k_h, s.dil_h, s.in_h, &ky0, &ky1);
  ValidTaps(ix0, s.k_w, s.dil_w, s.in_w, &kx0, &kx1);
  Acc4 a = {g.bias2[0], g.bias2[1], g.bias2[2], g.bias2[3]};
  const int step = s.dil_w * s.channels, row = s.dil_h * s.in_w * s.channels;
  const int8_t* in = input + ((iy0 + ky0 * s.dil_h) * s.in_w + ix0 + kx0 * s.dil_w) * s.channels + c0;
  for (int ky = ky0; ky < ky1; ++ky, in += row) {
    const int32_t* w = g.w + 2 * (ky * s.k_w + kx0);
    const int8_t* p = in;
    for (int kx = kx0; kx < kx1; ++kx, p += step, w += 2) {
      int32_t v;
      if (n == 4) {
        v = Load4(p);
      } else {
        uint8_t b[4] = {0, 0, 0, 0};
        memcpy(b, p, n);
        memcpy(&v, b, 4);
      }
      TapWithOffset(a, v, w, offset2);
    }
  }
  const int32_t acc[4] = {a.a0, a.a1, a.a2, a.a3};
  for (int j = 0; j < n; ++j) out[j] = static_cast<int8_t>(Requantize(g, j, acc[j], out_zp, act_min, act_max));
}

// The output rows or columns whose taps all fall inside the image: [lo, hi).
void InnerRange(int in, int k, int stride, int dil, int pad, int out, int* lo, int* hi) {
  int l = 0;
  while (l < out && l * stride - pad < 0) ++l;
  int h = out;
  while (h > l && (h - 1) * stride - pad + (k - 1) * dil >= in) --h;
  *lo = l;
  *hi = h;
}

TfLiteStatus EvalOurs(TfLiteContext* context, TfLiteNode* node, const DwOp& op) {
  const auto& params = *static_cast<const TfLiteDepthwiseConvParams*>(node->builtin_data);
  const TfLiteEvalTensor* input = tflite::micro::GetEvalInput(context, node, tflite::kDepthwiseConvInputTensor);
  const TfLiteEvalTensor* filter = tflite::micro::GetEvalInput(context, node, tflite::kDepthwiseConvWeightsTensor);
  const TfLiteEvalTensor* bias = node->inputs->size == 3 && node->inputs->data[2] >= 0
                                     ? tflite::micro::GetEvalInput(context, node, tflite::kDepthwiseConvBiasTensor)
                                     : nullptr;
  TfLiteEvalTensor* output = tflite::micro::GetEvalOutput(context, node, tflite::kDepthwiseConvOutputTensor);
  const tflite::OpDataConv& d = op.data;
  const int batches = input->dims->data[0];
  Geometry s;
  s.in_h = input->dims->data[1];
  s.in_w = input->dims->data[2];
  s.channels = input->dims->data[3];
  s.k_h = filter->dims->data[1];
  s.k_w = filter->dims->data[2];
  s.out_h = output->dims->data[1];
  s.out_w = output->dims->data[2];
  s.stride_h = params.stride_height;
  s.stride_w = params.stride_width;
  s.dil_h = params.dilation_height_factor;
  s.dil_w = params.dilation_width_factor;
  s.pad_h = d.padding.height;
  s.pad_w = d.padding.width;
  const int taps = s.k_h * s.k_w;
  const int32_t input_offset = -d.input_zero_point;
  const int32_t offset2 = static_cast<int32_t>((static_cast<uint32_t>(input_offset) << 16) |
                                               (static_cast<uint32_t>(input_offset) & 0xffff));
  const int32_t out_zp = d.output_zero_point, act_min = d.output_activation_min, act_max = d.output_activation_max;
  const int8_t* in_data = tflite::micro::GetTensorData<int8_t>(input);
  const int8_t* w_data = tflite::micro::GetTensorData<int8_t>(filter);
  const int32_t* b_data = bias ? tflite::micro::GetTensorData<int32_t>(bias) : nullptr;
  int8_t* out_data = tflite::micro::GetTensorData<int8_t>(output);
  int y_lo, y_hi, x_lo, x_hi;
  InnerRange(s.in_h, s.k_h, s.stride_h, s.dil_h, s.pad_h, s.out_h, &y_lo, &y_hi);
  InnerRange(s.in_w, s.k_w, s.stride_w, s.dil_w, s.pad_w, s.out_w, &x_lo, &x_hi);
  Group g;
  for (int c0 = 0; c0 < s.channels; c0 += 4) {
    const int n = s.channels - c0 < 4 ? s.channels - c0 : 4;
    MakeGroup(g, w_data, b_data, d, c0, n, s.channels, taps, input_offset, out_zp);
    for (int b = 0; b < batches; ++b) {
      const int8_t* in_b = in_data + b * s.in_h * s.in_w * s.channels;
      int8_t* out_b = out_data + b * s.out_h * s.out_w * s.channels;
      for (int oy = 0; oy < s.out_h; ++oy) {
        const int iy0 = oy * s.stride_h - s.pad_h;
        const bool inner_row = n == 4 && oy >= y_lo && oy < y_hi;
        int ox = 0;
        while (ox < s.out_w) {
          if (inner_row && ox == x_lo && x_hi > x_lo) {  // the inner run of this row, in one call
            Run r;
            r.in = in_b + (iy0 * s.in_w + ox * s.stride_w - s.pad_w) * s.channels + c0;
            r.in_advance = s.stride_w * s.channels;
            r.out = out_b + (oy * s.out_w + ox) * s.channels + c0;
            r.out_advance = s.channels;
            r.count = x_hi - x_lo;
            r.step = s.dil_w * s.channels;
            r.row = s.dil_h * s.in_w * s.channels;
            r.k_h = s.k_h;
            r.k_w = s.k_w;
            r.out_zp = out_zp;
            r.act_min = act_min;
            r.act_max = act_max;
            const bool k3 = s.k_h == 3 && s.k_w == 3;
            if (g.fast) {
              k3 ? InnerRun<true, true>(r, g) : InnerRun<false, true>(r, g);
            } else {
              k3 ? InnerRun<true, false>(r, g) : InnerRun<false, false>(r, g);
            }
            ox = x_hi;
            continue;
          }
          int8_t* o = out_b + (oy * s.out_w + ox) * s.channels + c0;
          BorderPixel(s, g, in_b, c0, n, iy0, ox * s.stride_w - s.pad_w, offset2, o, out_zp, act_min, act_max);
          ++ox;
        }
      }
    }
  }
  return kTfLiteOk;
}

}  // namespace

TfLiteRegistration Register_DEPTHWISE_CONV_2D() {
  return util::Kernel<tflite::OpDataConv, Library, Applies, tflite::DepthwiseConvPrepare, EvalOurs>::Registration();
}

}  // namespace kernels
}  // namespace td
