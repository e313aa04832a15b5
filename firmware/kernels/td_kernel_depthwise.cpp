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
//  - the filter's rows of input for one output row are first copied, for the group's 4 channels, into a row buffer on
//    the stack padded with the input's zero point, so that every output pixel, at the border too, runs the same
//    unrolled taps with the input offset folded into the bias: sum w*(x + o) = sum w*x + o*sum w, and a padded tap
//    holds x = -o, which adds w*(-o) + o*w = 0, as the reference's skipped tap does;
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
// The padded row buffer: the filter's k_h rows of input, each as wide as the output row's taps reach, one word (the
// group's 4 channels) per column. A node whose rows need more runs the library's kernel.
constexpr int kBufferWords = 768;  // 3 KB of stack
// Each group of four channels costs a fixed setup (its weights widened, its sums and constants made) that the
// smallest output maps do not amortize: measured with bench/kernels.py, the MobileNet's 3x3 maps ran 0.77-0.81x the
// library kernel's speed and its 6x6 maps faster, so a node with fewer output pixels than this runs the library's.
// (The tests build with -DTD_DW_MIN_OUTPUT_PIXELS=1 to run this kernel on every shape it covers.)
#ifndef TD_DW_MIN_OUTPUT_PIXELS
#define TD_DW_MIN_OUTPUT_PIXELS 16
#endif
constexpr int kMinOutputPixels = TD_DW_MIN_OUTPUT_PIXELS;

using DwOp = util::KernelOp;

// The pinned library's kernel (CMSIS-NN under ARDUINO), for the nodes this one does not take.
TfLiteRegistration Library() { return tflite::Register_DEPTHWISE_CONV_2D(); }

// Whether this kernel takes the node: the shapes it covers, rows that fit the row buffer, output maps large enough.
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
    const int k_h = filter->dims->data[1], k_w = filter->dims->data[2];
    const int width = (output->dims->data[2] - 1) * params.stride_width + (k_w - 1) * params.dilation_width_factor + 1;
    ok = params.depth_multiplier == 1 && filter->dims->data[3] == channels && output->dims->data[3] == channels &&
         k_h * k_w <= kMaxTaps && ((k_h - 1) * params.dilation_height_factor + 1) * width <= kBufferWords &&
         output->dims->data[1] * output->dims->data[2] >= kMinOutputPixels;
  }
  if (input) mc->DeallocateTempTfLiteTensor(input);
  if (filter) mc->DeallocateTempTfLiteTensor(filter);
  if (output) mc->DeallocateTempTfLiteTensor(output);
  return ok;
}

// What the loops need for one group of up to 4 channels, made once per group and Eval.
struct Group {
  int32_t w[2 * kMaxTaps];  // tap k: w[2k] = 2 x weights of channels (0, 2), w[2k+1] = of (1, 3), int16 pairs
  int32_t inner2[4];        // 2 x (bias + input offset x sum of the channel's weights): every pixel (padded taps add 0)
  int32_t mult[4];
  int32_t shift[4];         // TFLM's shift: > 0 left, < 0 right
  int32_t add[4];           // kRight: 2^(right shift - 1) + (output zero point << right shift); kLeft: the zero point
  int32_t right[4];         // kRight: the right shift; kLeft: TFLM's (left) shift
  int mode[4];              // how each channel is requantized
};

// kRight: a multiplier below 1, util::RequantFast; kLeft: 1 or more (TFLM shifts left and does not round):
// SMMLAR(acc2 << shift, m, zp); kSlow: TFLM's own function (where a bound does not allow the others).
enum Mode { kSlow = 0, kRight = 1, kLeft = 2 };

void MakeGroup(Group& g, const int8_t* filter, const int32_t* bias, const tflite::OpDataConv& d, int c0, int n,
               int channels, int taps, int32_t input_offset, int32_t out_zp) {
  for (int j = 0; j < 4; ++j) {
    const int c = c0 + (j < n ? j : 0);
    int32_t sum = 0, abs_sum = 0;
    for (int k = 0; k < taps; ++k) {
      const int32_t w = j < n ? filter[k * channels + c] : 0;
      sum += w;
      abs_sum += w < 0 ? -w : w;
    }
    const int32_t b = (j < n && bias) ? bias[c] : 0;
    g.inner2[j] = 2 * (b + input_offset * sum);
    g.mult[j] = d.per_channel_output_multiplier[c];
    g.shift[j] = d.per_channel_output_shift[c];
    // |accumulator| <= |bias| + |o| * sum |w| + 127 * sum |w|, with |o| <= 128
    const util::Requant q = util::MakeRequant(g.mult[j], g.shift[j], out_zp, (b < 0 ? -b : b) + 255LL * abs_sum);
    g.mode[j] = q.fast ? kRight : (q.left_fast ? kLeft : kSlow);
    g.right[j] = q.fast ? q.right : g.shift[j];
    g.add[j] = q.fast ? q.add : out_zp;
  }
  for (int k = 0; k < taps; ++k) {
    int32_t w4[4];
    for (int j = 0; j < 4; ++j) w4[j] = j < n ? 2 * filter[k * channels + c0 + j] : 0;
    g.w[2 * k] = static_cast<int32_t>((static_cast<uint32_t>(w4[2]) << 16) | (static_cast<uint32_t>(w4[0]) & 0xffff));
    g.w[2 * k + 1] =
        static_cast<int32_t>((static_cast<uint32_t>(w4[3]) << 16) | (static_cast<uint32_t>(w4[1]) & 0xffff));
  }
}

using util::Load4;

using util::Geometry;

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

// A run of output pixels along a row of the padded row buffer, for a group of 4 channels.
struct Run {
  const int8_t* in;  // the first pixel's top-left tap
  int in_advance;    // bytes from one pixel's top-left tap to the next's (stride x channels)
  int8_t* out;
  int out_advance;   // channels
  int count;         // pixels per output row
  int rows;          // output rows
  int row_advance;   // bytes from one output row's first top-left tap to the next's
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
template <int kMode, bool kFull>
__attribute__((noinline)) void RequantizeChannel(const Run& r, const Group& g, const Acc4* acc, int n, int j,
                                                 int8_t* out) {
  const int32_t* a = &acc[0].a0 + j;
  // copied into locals: the int8 stores below may alias anything, so the compiler would reload the group's fields
  const int32_t lo = r.act_min, hi = r.act_max, zp = r.out_zp, advance = r.out_advance;
  const int32_t mult = g.mult[j], add = g.add[j], right = g.right[j], shift = g.shift[j];
  for (int i = 0; i < n; ++i, a += 4, out += advance) {
    int32_t v;
    if (kMode == kRight) {
      v = util::RequantFast(*a, mult, add, right);
    } else if (kMode == kLeft) {
      v = dsp::smmlar(*a << right, mult, add);
    } else {
      v = tflite::MultiplyByQuantizedMultiplier(*a / 2, mult, shift) + zp;
    }
    v = dsp::ssat8(v);
    if (!kFull) v = v < lo ? lo : (v > hi ? hi : v);
    *out = static_cast<int8_t>(v);
  }
}

// Requantizes channels [0, channels) of n pixels' accumulators into out (pixel after pixel, out_advance apart).
void Flush(const Run& r, const Group& g, const Acc4* acc, int n, int channels, int8_t* out) {
  using Fn = void (*)(const Run&, const Group&, const Acc4*, int, int, int8_t*);
  static const Fn kFns[6] = {RequantizeChannel<kSlow, false>, RequantizeChannel<kRight, false>,
                             RequantizeChannel<kLeft, false>, RequantizeChannel<kSlow, true>,
                             RequantizeChannel<kRight, true>, RequantizeChannel<kLeft, true>};
  const bool full = r.act_min <= -128 && r.act_max >= 127;
  for (int j = 0; j < channels; ++j) kFns[full * 3 + g.mode[j]](r, g, acc, n, j, out + j);
}

// r.rows output rows of r.count pixels (r.row_advance bytes apart in the buffer; consecutive in the output), their
// accumulators gathered kChunk pixels at a time (across rows where the rows are short) and then requantized.
template <bool kThreeByThree>
void InnerRun(const Run& r, const Group& g, int channels) {
  Acc4 acc[kChunk];
  int filled = 0;
  int8_t* out = r.out;
  for (int i = 0; i < r.rows; ++i) {
    const int8_t* in = r.in + i * r.row_advance;
    for (int done = 0; done < r.count;) {
      const int n = r.count - done < kChunk - filled ? r.count - done : kChunk - filled;
      RunAccumulators<kThreeByThree>(r, g, in + done * r.in_advance, n, acc + filled);
      filled += n;
      done += n;
      if (filled == kChunk) {
        Flush(r, g, acc, filled, channels, out);
        out += filled * r.out_advance;
        filled = 0;
      }
    }
  }
  if (filled) Flush(r, g, acc, filled, channels, out);
}

// The group's 4 channels of input rows iy0 .. iy0 + rows - 1 into buf (`width` words each): column b is input column
// b - pad_w; a row or column outside the image holds the zero point in every byte.
void FillRows(const Geometry& s, const int8_t* in, int c0, int n, int iy0, int rows, int width, int32_t zp4,
              int32_t* buf) {
  for (int i = 0; i < rows; ++i, buf += width) {
    const int iy = iy0 + i;
    if (iy < 0 || iy >= s.in_h) {
      for (int b = 0; b < width; ++b) buf[b] = zp4;
      continue;
    }
    const int lo = s.pad_w < width ? s.pad_w : width;
    const int hi = s.pad_w + s.in_w < width ? s.pad_w + s.in_w : width;
    for (int b = 0; b < lo; ++b) buf[b] = zp4;
    const int8_t* src = in + (iy * s.in_w + lo - s.pad_w) * s.channels + c0;
    if (n == 4) {
      for (int b = lo; b < hi; ++b, src += s.channels) buf[b] = Load4(src);
    } else {  // a last group of fewer channels: no read past them
      for (int b = lo; b < hi; ++b, src += s.channels) {
        int32_t v = zp4;
        memcpy(&v, src, n);
        buf[b] = v;
      }
    }
    for (int b = hi; b < width; ++b) buf[b] = zp4;
  }
}

// The input rows that output rows oy .. oy + n - 1 read.
inline int SpanRows(const Geometry& s, int n) { return (n - 1) * s.stride_h + (s.k_h - 1) * s.dil_h + 1; }

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
  const Geometry s = util::GeometryOf(*input, *filter, *output, params.stride_height, params.stride_width,
                                      params.dilation_height_factor, params.dilation_width_factor, d.padding);
  const int taps = s.k_h * s.k_w;
  const int32_t input_offset = -d.input_zero_point;
  const int32_t out_zp = d.output_zero_point, act_min = d.output_activation_min, act_max = d.output_activation_max;
  const int8_t* in_data = tflite::micro::GetTensorData<int8_t>(input);
  const int8_t* w_data = tflite::micro::GetTensorData<int8_t>(filter);
  const int32_t* b_data = bias ? tflite::micro::GetTensorData<int32_t>(bias) : nullptr;
  int8_t* out_data = tflite::micro::GetTensorData<int8_t>(output);
  const int width = (s.out_w - 1) * s.stride_w + (s.k_w - 1) * s.dil_w + 1;
  const int32_t zp4 = static_cast<int32_t>(0x01010101u * static_cast<uint8_t>(d.input_zero_point));
  int32_t buf[kBufferWords];
  const bool k3 = s.k_h == 3 && s.k_w == 3;
  // output rows per fill of the buffer: enough to make a chunk of accumulators of short rows, as the buffer allows
  int rows_per_fill = s.out_w >= kChunk ? 1 : kChunk / s.out_w;
  while (rows_per_fill > 1 && SpanRows(s, rows_per_fill) * width > kBufferWords) --rows_per_fill;
  Group g;
  for (int c0 = 0; c0 < s.channels; c0 += 4) {
    const int n = s.channels - c0 < 4 ? s.channels - c0 : 4;
    MakeGroup(g, w_data, b_data, d, c0, n, s.channels, taps, input_offset, out_zp);
    for (int b = 0; b < batches; ++b) {
      const int8_t* in_b = in_data + b * s.in_h * s.in_w * s.channels;
      int8_t* out_b = out_data + b * s.out_h * s.out_w * s.channels;
      for (int oy = 0; oy < s.out_h; oy += rows_per_fill) {
        const int rows = s.out_h - oy < rows_per_fill ? s.out_h - oy : rows_per_fill;
        FillRows(s, in_b, c0, n, oy * s.stride_h - s.pad_h, SpanRows(s, rows), width, zp4, buf);
        Run r;
        r.in = reinterpret_cast<const int8_t*>(buf);
        r.in_advance = 4 * s.stride_w;
        r.row_advance = 4 * s.stride_h * width;
        r.rows = rows;
        r.out = out_b + oy * s.out_w * s.channels + c0;
        r.out_advance = s.channels;
        r.count = s.out_w;
        r.step = 4 * s.dil_w;
        r.row = 4 * s.dil_h * width;
        r.k_h = s.k_h;
        r.k_w = s.k_w;
        r.out_zp = out_zp;
        r.act_min = act_min;
        r.act_max = act_max;
        k3 ? InnerRun<true>(r, g, n) : InnerRun<false>(r, g, n);
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
