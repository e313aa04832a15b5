// tinydeploy's int8 DEPTHWISE_CONV_2D, bit-exact with TFLM's reference kernel (DepthwiseConvPerChannel).
//
// Where its loops apply (int8, depth multiplier 1, at most kMaxTaps filter taps, maps of 2 pixels or more) they
// replace the library's CMSIS-NN kernel; elsewhere the library's CMSIS-NN function runs the node on this
// registration's op data (td_kernel_cmsis.h), chosen in Prepare. The per-channel multipliers and shifts come from flash
// (td_kernel_params.h); nothing beyond TFLM's OpDataConv is kept in the arena.
//
// How it computes, per group of 4 channels (one 32-bit word of each NHWC pixel) and band of output rows:
//  - FillPlanes copies the band's input rows into one plane per channel on the stack, as 16-bit values with the input
//    offset added (SXTAB16 widens and offsets two channels of a pixel in one instruction), padded with zeros: a padded
//    tap then adds w * 0, as the reference's skipped tap adds nothing, and every output runs the same taps;
//  - a channel's outputs are computed along its plane's rows with its weights in registers. A 3x3 filter at stride 1
//    or 2 takes two outputs at a time in assembly (RowS1Full etc.): per input row, the pairs (x0, x1), (x1, x2),
//    (x2, x3) (stride 2: (x0, x1), (x2, x3), (x4, x5)) make both outputs' three products with two SMLADs and two
//    16x16 multiply-accumulates: 18 MACs in 21 instructions; at stride 1, Block3x3S1 takes two rows at a time, 2 x 2
//    outputs from four input rows (36 MACs in 40 instructions, one load of the requantization's constants); other
//    filters, dilation and the rarer requantization forms run BandAny, one tap at a time;
//  - the accumulators hold twice the sum (the weights and bias are doubled), so that TFLM's requantization is
//    util::RequantFast's three instructions (exact by the bound MakeRequant checks per channel); a channel beyond
//    that bound, or whose multiplier is 1 or more, takes TFLM's own function or its left-shift form;
//  - a tall, narrow map with a 3x3 filter (a keyword net's 25x5) runs transposed where RowsCost says it takes fewer
//    instructions: the planes hold the input's columns (FillPlanes' line and column steps swapped), the filter is read
//    transposed, and the outputs are stored down the map's columns; the last output of an odd column runs in C (its
//    unstored partner would fall beyond the map).
//
// Small maps (a 3x3 filter at stride 1 or 2, 2 to 144 output pixels) run the window loops (Window3x3) where
// WindowCheaper estimates them cheaper than the planes: per group of 4 channels the input under the windows is copied
// into a buffer padded with zeros, each pixel's four channels widened to 16 bits with the input offset added (two
// words), and every output pixel of the four channels runs nine taps in assembly, 6 instructions a tap (the pixel's
// two words, their doubled weights, four 16x16 multiply-accumulates), 89 an output pixel with the requantization, 78.5
// where two pixels of a row run together at stride 1 (Window3x3Pairs): no planes, no per-channel set-up. Both the
// planes and the window loops clamp to int8's range; a narrower activation range is clamped after, four channels a
// word (ClampPixels). A single output pixel (a 1x1 map, or a 2x2 one at stride 2), and a map of 2 to 4 pixels where it
// is cheaper than the window loops (a 2x2 map), run Taps: each output pixel's taps inside the image alone (4 of a 3x3
// filter's 9 on a 2x2 map at stride 1), four channels a word, in assembly with the group's constants made once.
//
// In place: each group reads its whole input before it writes an output where the planes take the map in one band,
// the window loops run it, or Taps does; an output pixel's channel c is written over input channel c's bytes,
// which only that group reads. tinydeploy's memory plan then puts the output over the input (analyze/requant.py's
// depthwise_in_place; the study's MobileNetV2: 17 nodes, its head 1 KB lower), which TFLM's kernels cannot run.

#include <string.h>

#include "td_dsp.h"
#include "td_kernel_cmsis.h"
#include "td_kernel_params.h"
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
// The planes buffer: for each of a group's 4 channels, the filter's input rows of a band of output rows as 16-bit
// values (see FillPlanes). A node whose single output row's planes need more runs the library's kernel.
constexpr int kBufferValues = 1792;  // 3.5 KB of stack
// Each channel costs a fixed setup (its weights and constants, its planes' fill, a call per band) that the smallest
// output maps do not amortize: measured with bench/kernels.py, the MobileNet's 3x3 maps ran 0.72-0.76x the library
// kernel's speed and its 6x6 maps 1.7x, so a node with fewer output pixels than this runs the library's.
// (The tests build with -DTD_DW_MIN_OUTPUT_PIXELS=1 to run this kernel on every shape it covers.)
#ifndef TD_DW_MIN_OUTPUT_PIXELS
#define TD_DW_MIN_OUTPUT_PIXELS 16
#endif
constexpr int kMinOutputPixels = TD_DW_MIN_OUTPUT_PIXELS;

// The small maps' loops (Window3x3): a 3x3 filter at stride 1 or 2 whose output map has at most this many pixels (and
// at least 2: a single output pixel runs Taps) and whose group of four channels' window
// of the input, with its padding, fits kWindowPixels pixels (a 12x12 map and its border at stride 2: 25x25), two
// words a pixel in the buffer (5 KB of stack).
#ifndef TD_DW_WINDOW_MAX_PIXELS
#define TD_DW_WINDOW_MAX_PIXELS 144
#endif
constexpr int kWindowMaxPixels = TD_DW_WINDOW_MAX_PIXELS;
constexpr int kWindowPixels = 625;
// Which of the two a node the window loops can take runs: 2 the cheaper by WindowCheaper's estimate; the tests build
// with 0 (the planes) and 1 (the window) to run each on every shape it covers.
#ifndef TD_DW_WINDOW
#define TD_DW_WINDOW 2
#endif
// Whether Taps runs a small map of more than one output pixel: 2 where it is cheaper than the window loops (which can
// take the node), 1 wherever its list fits (the tests, to run it on every shape it covers), 0 never.
#ifndef TD_DW_TAPS
#define TD_DW_TAPS 2
#endif

using DwOp = util::KernelOp;
using util::Geometry;

// Whether the node's output map runs Window3x3: stride 1 or 2 both ways, no dilation, a 3x3 filter, one batch.
inline bool WindowTakes(int batches, int out_h, int out_w, int k_h, int k_w, int stride_h, int stride_w, int dil_h,
                        int dil_w) {
  const int rows = (out_h - 1) * stride_h + 3, cols = (out_w - 1) * stride_w + 3;
  return batches == 1 && k_h == 3 && k_w == 3 && dil_h == 1 && dil_w == 1 && stride_h == stride_w &&
         (stride_w == 1 || stride_w == 2) && out_h * out_w >= 2 && out_h * out_w <= kWindowMaxPixels &&
         rows * cols <= kWindowPixels;
}

// The window loops' instructions for a group of four channels on the map, as measured with bench/kernels.py on the
// MobileNets' and the keyword net's maps: about 25 an output pixel and channel (89 in the assembly for four channels,
// with the calls and the constants), the group's copy about 5 a pixel of the windows' extent (padding included) and
// its set-up about 150 (WindowCheaper, TapsCheaper).
inline int WindowGroupCount(const Geometry& m) {
  const int rows = (m.out_h - 1) * m.stride_h + 3, cols = (m.out_w - 1) * m.stride_w + 3;
  return 100 * m.out_h * m.out_w + 5 * rows * cols + 150;
}

// The pinned library's kernel (CMSIS-NN under ARDUINO), for the nodes this one does not take.
TfLiteRegistration Library() { return tflite::Register_DEPTHWISE_CONV_2D(); }

// Whether this kernel takes the node: the shapes it covers, rows that fit the row buffer, output maps large enough.
bool OwnLoopsTake(TfLiteContext* context, TfLiteNode* node) {
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
    const bool row_fits = 4 * ((k_h - 1) * params.dilation_height_factor + 1) * ((width + 4) & ~1) <= kBufferValues;
    const bool planes = row_fits && output->dims->data[1] * output->dims->data[2] >= kMinOutputPixels;
    const bool window = WindowTakes(input->dims->data[0], output->dims->data[1], output->dims->data[2], k_h, k_w,
                                    params.stride_height, params.stride_width, params.dilation_height_factor,
                                    params.dilation_width_factor);
    // a single output pixel by Taps, whose channels outside its form the planes run
    const bool one_pixel = output->dims->data[1] == 1 && output->dims->data[2] == 1 && row_fits;
    ok = params.depth_multiplier == 1 && filter->dims->data[3] == channels && output->dims->data[3] == channels &&
         k_h * k_w <= kMaxTaps && (planes || window || one_pixel);
  }
  if (input) mc->DeallocateTempTfLiteTensor(input);
  if (filter) mc->DeallocateTempTfLiteTensor(filter);
  if (output) mc->DeallocateTempTfLiteTensor(output);
  return ok;
}

// What one channel's loops need: its weights and bias (doubled for the 3x3 paths, whose accumulators hold twice the
// sum for util::RequantFast) and its requantization.
struct Channel {
  int32_t w[kMaxTaps];  // each tap's weight, row after row (BandAny)
  int32_t w3[5];        // a 3x3 filter doubled: (row r's taps 0, 1) at w3[r]; (tap 2 of row 0, of row 1); row 2's tap 2
  int32_t bias, bias2;  // the bias, and doubled for the 3x3 paths (only where the fast form's bound holds)
  int32_t mult, shift, add, right;  // TFLM's multiplier and shift; the fast form's constants (see MakeChannel)
  int mode;
  int32_t lo, hi, zp;               // the activation range and the output zero point
};

// kRight: a multiplier below 1, util::RequantFast; kLeft: 1 or more (TFLM shifts left and does not round):
// SMMLAR(acc2 << shift, m, zp); kSlow: TFLM's own function (where a bound does not allow the others).
enum Mode { kSlow = 0, kRight = 1, kLeft = 2 };

// A channel of a node the 3x3 loops run (k3): its doubled weights packed as Band3x3 reads them and its constants,
// the bound taken as |bias| + 255 * 128 * 9 (any int8 weights), without a pass over the weights; false where the fast
// form does not hold for that bound (MakeChannel then takes the exact bound and the other forms).
bool MakeChannel3x3(Channel& ch, const int8_t* filter, const int32_t* bias, const tflite::OpDataConv& d, int c,
                    int channels, bool transposed) {
  const int32_t b = bias ? bias[c] : 0, mult = d.per_channel_output_multiplier[c];
  const int32_t shift = d.per_channel_output_shift[c];
  const util::Requant q = util::MakeRequant(mult, shift, d.output_zero_point, (b < 0 ? -static_cast<int64_t>(b) : b)
                                                                                 + 255LL * 128 * 9);
  if (!q.fast) return false;
  int32_t v[9];  // the model's taps (ky, kx), doubled
  for (int k = 0; k < 9; ++k) v[k] = 2 * filter[k * channels + c];
  // tap (r, x) of the loops' filter: the model's (r, x), or (x, r) transposed
#define TD_DW_AT(r, x) (transposed ? v[3 * (x) + (r)] : v[3 * (r) + (x)])
  for (int r = 0; r < 3; ++r) ch.w3[r] = dsp::pack16(TD_DW_AT(r, 0), TD_DW_AT(r, 1));
  ch.w3[3] = dsp::pack16(TD_DW_AT(0, 2), TD_DW_AT(1, 2));
  ch.w3[4] = TD_DW_AT(2, 2);
#undef TD_DW_AT
  ch.bias = b;
  ch.bias2 = static_cast<int32_t>(2u * static_cast<uint32_t>(b));
  ch.mult = mult;
  ch.shift = shift;
  ch.zp = d.output_zero_point;
  ch.lo = d.output_activation_min;
  ch.hi = d.output_activation_max;
  ch.mode = kRight;
  ch.right = q.right;
  ch.add = q.add;
  return true;
}

// k_w: the filter's width as the loops see it; transposed: they run the map with rows and columns swapped, so tap
// (ky, kx) of their filter is the model's (kx, ky). k3: the node runs the 3x3 loops (a channel of the fast form
// needs no per-tap weights then).
void MakeChannel(Channel& ch, const int8_t* filter, const int32_t* bias, const tflite::OpDataConv& d, int c,
                 int channels, int k_h, int k_w, bool transposed, bool k3) {
  if (k3 && MakeChannel3x3(ch, filter, bias, d, c, channels, transposed)) return;
  int32_t abs_sum = 0;
  const int taps = k_h * k_w;
  for (int k = 0; k < taps; ++k) {
    const int32_t w = filter[k * channels + c];
    ch.w[k] = w;
    abs_sum += w < 0 ? -w : w;
  }
  if (transposed) {  // tap (r, x) of the loops' filter is the model's (x, r): k_h of the model's taps a row
    int32_t t[kMaxTaps];
    for (int k = 0; k < taps; ++k) t[k] = ch.w[k];
    for (int r = 0; r < k_h; ++r) {
      for (int x = 0; x < k_w; ++x) ch.w[r * k_w + x] = t[x * k_h + r];
    }
  }
  if (taps == 9 && k_w == 3) {
    for (int r = 0; r < 3; ++r) ch.w3[r] = dsp::pack16(2 * ch.w[3 * r], 2 * ch.w[3 * r + 1]);
    ch.w3[3] = dsp::pack16(2 * ch.w[2], 2 * ch.w[5]);
    ch.w3[4] = 2 * ch.w[8];
  }
  const int32_t b = bias ? bias[c] : 0;
  ch.bias = b;
  ch.bias2 = static_cast<int32_t>(2u * static_cast<uint32_t>(b));  // used only where 2 x the bound fits
  ch.mult = d.per_channel_output_multiplier[c];
  ch.shift = d.per_channel_output_shift[c];
  ch.zp = d.output_zero_point;
  ch.lo = d.output_activation_min;
  ch.hi = d.output_activation_max;
  // |accumulator| <= |bias| + 255 * sum |w|: every input value plus the offset is in [-255, 255]
  const util::Requant q = util::MakeRequant(ch.mult, ch.shift, ch.zp, (b < 0 ? -b : b) + 255LL * abs_sum);
  ch.mode = q.fast ? kRight : (q.left_fast ? kLeft : kSlow);
  ch.right = q.fast ? q.right : ch.shift;
  ch.add = q.fast ? q.add : ch.zp;
}

// One output of channel ch from its doubled accumulator, in the activation range.
inline int32_t OutputFast(int32_t acc2, int32_t mult, int32_t add, int32_t right, int32_t lo, int32_t hi) {
  return util::Clamp(dsp::ssat8(util::RequantFast(acc2, mult, add, right)), lo, hi);
}

// acc: the plain accumulator (doubled only by the fast forms, whose bounds allow it), as the reference sums it.
inline int32_t OutputAny(const Channel& ch, int32_t acc) {
  int32_t v;
  if (ch.mode == kRight) {
    v = util::RequantFast(2 * acc, ch.mult, ch.add, ch.right);
  } else if (ch.mode == kLeft) {
    v = dsp::smmlar((2 * acc) << ch.right, ch.mult, ch.add);
  } else {
    v = tflite::MultiplyByQuantizedMultiplier(acc, ch.mult, ch.shift) + ch.zp;
  }
  return util::Clamp(v, ch.lo, ch.hi);
}

// Two 16-bit values as one word (a halfword-aligned LDR: the Cortex-M4 loads unaligned words).
inline int32_t Load2(const int16_t* p) {
  int32_t v;
  memcpy(&v, p, 4);
  return v;
}

// A band of output rows of one channel, read from its plane: the channel's input rows, the input offset added and
// widened to 16 bits, padded with zeros (a padded tap of the reference adds nothing; here it adds w * 0).
struct Band {
  const int16_t* plane;
  int pitch;      // values from one plane row to the next
  int rows;       // output rows
  int out_w;
  int8_t* out;    // the band's first output of the channel
  int out_step;   // bytes from one output of a row to the next (the channel count; transposed: a row of the map)
  int row_step;   // bytes from one row's first output to the next row's (transposed: the channel count)
  bool last;      // the band ends the output map (of the last batch): nothing of the channel follows its last row
  bool transposed;  // rows are the map's columns: the output after a row's last is not the next row's first
};

// 3x3 at stride 1, two outputs at a time: x01 = (x0, x1), x12, x23 of each input row give
//   out0 += x01 . (w0, w1) + x2 w2 (SMLAD, SMLABB), out1 += x12 . (w0, w1) + x3 w2 (SMLAD, SMLATB),
// 21 instructions for 18 multiply-accumulates, the channel's weights in registers for the whole band.
// At stride 2 the pairs are x01 and x23 for out0, x23 and x45 for out1. A last odd output is computed with a
// second one that is not stored (the plane has room for what it reads).
template <int kStride>
__attribute__((always_inline)) inline void Pair3x3(const int16_t* p, int pitch, const int32_t* w, int32_t& a0, int32_t& a1) {
  for (int r = 0; r < 3; ++r, p += pitch) {
    const int32_t w01 = w[r], w2 = r == 0 ? w[3] : (r == 1 ? w[3] >> 16 : w[4]);
    if (kStride == 1) {
      const int32_t x01 = Load2(p), x12 = Load2(p + 1), x23 = Load2(p + 2);
      a0 = dsp::smlad(x01, w01, a0);
      a0 = dsp::smlabb(x23, w2, a0);
      a1 = dsp::smlad(x12, w01, a1);
      a1 = dsp::smlatb(x23, w2, a1);
    } else {
      const int32_t x01 = Load2(p), x23 = Load2(p + 2), x45 = Load2(p + 4);
      a0 = dsp::smlad(x01, w01, a0);
      a0 = dsp::smlabb(x23, w2, a0);
      a1 = dsp::smlad(x23, w01, a1);
      a1 = dsp::smlabb(x45, w2, a1);
    }
  }
}

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
// One output row's pairs of a 3x3 channel in assembly, every register of the core in use: the input pointer (r0), the
// output pointer (r1), the doubled bias (r2, the accumulators' start), the plane's pitch in bytes (r3), the five
// weight words (r4-r8: rows 0-2's (w0, w1), then (w2 of row 0, w2 of row 1) and w2 of row 2), a pair counter (lr) and
// four scratch registers; the requantization's constants are read from the stack arguments. Per pair: 21 loads and
// multiply-accumulates (18 MACs, the first two starting from the bias), 2 row steps, 15 instructions of
// requantization and stores, 3 of loop: 41 instructions.
// It runs `rows` output rows of `pairs` pairs each, the input pointer moved by in_skip bytes and the output pointer
// back by out_back bytes after each row. int8's range only (lo and hi are not read: EvalOurs clamps a narrower one
// after, ClampPixels).
//   (p, out, bias2, pitch_bytes; stack: w, mult, add, right, step, pairs, lo, hi, rows, in_skip, out_back), pairs,
//   rows >= 1
#define TD_DW_ROW_S1(base, wa, half0, half1, in0, in1) \
  "ldr r9, [" base "]\n\t"                            \
  "smlad r10, r9, " wa ", " in0 "\n\t"                \
  "ldr r9, [" base ", #2]\n\t"                        \
  "smlad r11, r9, " wa ", " in1 "\n\t"                \
  "ldr r9, [" base ", #4]\n\t"                        \
  "smlab" half0 " r10, r9, " half1 ", r10\n\t"        \
  "smlat" half0 " r11, r9, " half1 ", r11\n\t"
#define TD_DW_ROW_S2(base, wa, half0, half1, in0, in1) \
  "ldr r9, [" base "]\n\t"                            \
  "smlad r10, r9, " wa ", " in0 "\n\t"                \
  "ldr r9, [" base ", #4]\n\t"                        \
  "smlab" half0 " r10, r9, " half1 ", r10\n\t"        \
  "smlad r11, r9, " wa ", " in1 "\n\t"                \
  "ldr r9, [" base ", #8]\n\t"                        \
  "smlab" half0 " r11, r9, " half1 ", r11\n\t"
#define TD_DW_ROW_FN(name, ROW, advance)                                                                     \
  __attribute__((naked, noinline)) void name(const int16_t*, int8_t*, int32_t, int32_t, const int32_t*, int32_t, \
                                             int32_t, int32_t, int32_t, int32_t, int32_t, int32_t, int32_t,      \
                                             int32_t, int32_t) {                                                \
    __asm__ volatile(                                                                                          \
        "push {r4-r11, lr}\n\t"                                                                                \
        "ldr r12, [sp, #36]\n\t"                                                                               \
        "ldm r12, {r4-r8}\n\t"                                                                                 \
        "0:\n\t"                                                                                               \
        "ldr lr, [sp, #56]\n\t"                                                                                \
        "1:\n\t"                                                                                               \
        ROW("r0", "r4", "b", "r7", "r2", "r2")                                                                 \
        "add r12, r0, r3\n\t" ROW("r12", "r5", "t", "r7", "r10", "r11")                                        \
        "add r12, r12, r3\n\t" ROW("r12", "r6", "b", "r8", "r10", "r11")                                       \
        "ldrd r9, r12, [sp, #40]\n\t"                                                                          \
        "smmlar r12, r10, r9, r12\n\t"                                                                         \
        "add r12, r12, r10, asr #31\n\t"                                                                       \
        "ldr r10, [sp, #44]\n\t"                                                                               \
        "smmlar r10, r11, r9, r10\n\t"                                                                         \
        "add r10, r10, r11, asr #31\n\t"                                                                       \
        "ldr r9, [sp, #48]\n\t"                                                                                \
        "asr r12, r12, r9\n\t"                                                                                 \
        "asr r10, r10, r9\n\t"                                                                                 \
        "ssat r12, #8, r12\n\t"                                                                                \
        "ssat r10, #8, r10\n\t"                                                                                \
        "ldr r9, [sp, #52]\n\t"                                                                                \
        "strb r12, [r1]\n\t"                                                                                   \
        "strb r10, [r1, r9]\n\t"                                                                               \
        "add r1, r1, r9, lsl #1\n\t"                                                                           \
        "adds r0, #" advance "\n\t"                                                                            \
        "subs lr, #1\n\t"                                                                                      \
        "bne 1b\n\t"                                                                                           \
        "ldr r9, [sp, #72]\n\t"                                                                                \
        "add r0, r0, r9\n\t"                                                                                   \
        "ldr r9, [sp, #76]\n\t"                                                                                \
        "sub r1, r1, r9\n\t"                                                                                   \
        "ldr r9, [sp, #68]\n\t"                                                                                \
        "subs r9, #1\n\t"                                                                                      \
        "str r9, [sp, #68]\n\t"                                                                                \
        "bne 0b\n\t"                                                                                           \
        "pop {r4-r11, pc}");                                                                                   \
  }
TD_DW_ROW_FN(RowS1Full, TD_DW_ROW_S1, "4")
TD_DW_ROW_FN(RowS2Full, TD_DW_ROW_S2, "8")
#undef TD_DW_ROW_FN
#undef TD_DW_ROW_S1
#undef TD_DW_ROW_S2
using RowFn = void (*)(const int16_t*, int8_t*, int32_t, int32_t, const int32_t*, int32_t, int32_t, int32_t, int32_t,
                       int32_t, int32_t, int32_t, int32_t, int32_t, int32_t);

// Stride 1 two output rows at a time: a block of 2 x 2 outputs reads input rows 0-3 of its columns once, rows 1 and 2
// serving both output rows: 12 loads and 24 multiply-accumulates make its 36 MACs (two pairs of RowS1Full: 18 and
// 24), and the four outputs share one load of the requantization's constants (LDM) and one loop step. Registers: the
// block's first input value r0, the output r1, the row pointer r2, the plane's pitch in bytes r3, the five weight words
// r4-r8 (as RowS1Full's), the loaded pair r9, the accumulators r10, r11 (output row 0, columns 0 and 1), r12, lr (row
// 1); the requantization borrows r4-r8 (LDM from the run, then the weights again). Per block: the doubled bias (one
// LDRD), 36 loads and multiply-accumulates, 3 row steps, 2 to load the constants, 16 of requantization, 6 of stores,
// 1 to reload the weights, 4 of loop: 69 instructions (two pairs of RowS1Full: 82). int8's range only: EvalOurs
// clamps a narrower one after (ClampPixels).
struct BlockRun {
  const int16_t* p;   // 0: the first row pair's first block: its input row 0, column 0 in the plane
  int8_t* out;        // 4: its output (0, 0)
  int32_t pitch;      // 8: bytes from a plane row to the next
  int32_t pairs;      // 12: blocks a row pair (>= 1)
  int32_t row_pairs;  // 16: row pairs (>= 1), counted down
  int32_t in_skip;    // 20: bytes from a row pair's input pointer after its last block to the next row pair's
  int32_t out_skip;   // 24: the same for the output pointer
  int32_t bias2[2];   // 28: the doubled bias twice (one LDRD starts two accumulators)
  int32_t mult, add, right, step, row_step;  // 36: LDM'd a block (step, row_step: bytes to output (0, 1), (1, 0))
  int32_t w[5];       // 56: the channel's weight words (Channel::w3)
};
static_assert(sizeof(BlockRun) == 76, "the assembly's offsets into BlockRun");
#define TD_DW_BLOCK_OUT(A)         \
  "smmlar r9, " A ", r4, r5\n\t"   \
  "add " A ", r9, " A ", asr #31\n\t" \
  "asr " A ", " A ", r6\n\t"       \
  "ssat " A ", #8, " A "\n\t"
// [sp]: &run->mult (r2 = that + 20 after the constants' LDM), [sp, #4]: where the row pair's blocks end, [sp, #8]:
// the doubled bias twice
__attribute__((naked, noinline)) void Block3x3S1(BlockRun*) {
  __asm__ volatile(
      "push {r4-r11, lr}\n\t"
      "sub sp, #16\n\t"
      "ldrd r10, r12, [r0, #28]\n\t"
      "strd r10, r12, [sp, #8]\n\t"
      "add r2, r0, #36\n\t"
      "str r2, [sp]\n\t"
      "add r2, r0, #56\n\t"
      "ldm r2, {r4-r8}\n\t"
      "ldr r3, [r0, #8]\n\t"
      "ldr r1, [r0, #4]\n\t"
      "ldr r2, [r0, #12]\n\t"
      "ldr r0, [r0]\n\t"
      "0:\n\t"
      "add r2, r0, r2, lsl #2\n\t"
      "str r2, [sp, #4]\n\t"
      "1:\n\t"
      "ldrd r10, r12, [sp, #8]\n\t"
      // input row 0: output row 0, weight row 0
      "ldr r9, [r0, #2]\n\t"
      "smlad r11, r9, r4, r10\n\t"
      "ldr r9, [r0]\n\t"
      "smlad r10, r9, r4, r10\n\t"
      "ldr r9, [r0, #4]\n\t"
      "smlabb r10, r9, r7, r10\n\t"
      "smlatb r11, r9, r7, r11\n\t"
      // input row 1: output row 0 by weight row 1, output row 1 by weight row 0
      "add r2, r0, r3\n\t"
      "ldr r9, [r2, #2]\n\t"
      "smlad r11, r9, r5, r11\n\t"
      "smlad lr, r9, r4, r12\n\t"
      "ldr r9, [r2]\n\t"
      "smlad r10, r9, r5, r10\n\t"
      "smlad r12, r9, r4, r12\n\t"
      "ldr r9, [r2, #4]\n\t"
      "smlabt r10, r9, r7, r10\n\t"
      "smlatt r11, r9, r7, r11\n\t"
      "smlabb r12, r9, r7, r12\n\t"
      "smlatb lr, r9, r7, lr\n\t"
      // input row 2: output row 0 by weight row 2, output row 1 by weight row 1
      "add r2, r2, r3\n\t"
      "ldr r9, [r2]\n\t"
      "smlad r10, r9, r6, r10\n\t"
      "smlad r12, r9, r5, r12\n\t"
      "ldr r9, [r2, #2]\n\t"
      "smlad r11, r9, r6, r11\n\t"
      "smlad lr, r9, r5, lr\n\t"
      "ldr r9, [r2, #4]\n\t"
      "smlabb r10, r9, r8, r10\n\t"
      "smlatb r11, r9, r8, r11\n\t"
      "smlabt r12, r9, r7, r12\n\t"
      "smlatt lr, r9, r7, lr\n\t"
      // input row 3: output row 1 by weight row 2
      "add r2, r2, r3\n\t"
      "ldr r9, [r2]\n\t"
      "smlad r12, r9, r6, r12\n\t"
      "ldr r9, [r2, #2]\n\t"
      "smlad lr, r9, r6, lr\n\t"
      "ldr r9, [r2, #4]\n\t"
      "smlabb r12, r9, r8, r12\n\t"
      "smlatb lr, r9, r8, lr\n\t"
      // mult r4, add r5, right r6, step r7, row_step r8
      "ldr r2, [sp]\n\t"
      "ldm r2!, {r4-r8}\n\t"
      TD_DW_BLOCK_OUT("r10") TD_DW_BLOCK_OUT("r11") TD_DW_BLOCK_OUT("r12") TD_DW_BLOCK_OUT("lr")
      "add r9, r1, r8\n\t"
      "strb r12, [r9]\n\t"
      "strb lr, [r9, r7]\n\t"
      "strb r10, [r1]\n\t"
      "strb r11, [r1, r7]\n\t"
      "add r1, r1, r7, lsl #1\n\t"
      "ldm r2, {r4-r8}\n\t"
      "adds r0, #4\n\t"
      "ldr r9, [sp, #4]\n\t"
      "cmp r0, r9\n\t"
      "bne 1b\n\t"
      // the row pair's end
      "ldr r9, [sp]\n\t"
      "ldr r2, [r9, #-16]\n\t"
      "add r0, r0, r2\n\t"
      "ldr r2, [r9, #-12]\n\t"
      "add r1, r1, r2\n\t"
      "ldr r2, [r9, #-20]\n\t"
      "subs r2, #1\n\t"
      "str r2, [r9, #-20]\n\t"
      "beq 2f\n\t"
      "ldr r2, [r9, #-24]\n\t"
      "b 0b\n\t"
      "2:\n\t"
      "add sp, #16\n\t"
      "pop {r4-r11, pc}");
}
#undef TD_DW_BLOCK_OUT
#endif

// The outputs of a group's four channels of rows x cols pixels from out clamped to [lo, hi], where the activation
// range is narrower than int8's (a relu6 output whose zero point is not -128: quantization-aware training makes them,
// the study's MobileNets' [-14, 127]). The loops clamp to int8's range only (the planes' rows and blocks, the window
// loops); EvalOurs clamps each group's outputs after, once, a pixel's four channels as one word (util::Clamp4: SSUB8
// and SEL take the bytes' maximum with lo and minimum with hi), 8 instructions a pixel of four channels (the rows'
// variants with the clamp in their assembly, 476 B of code, and the blocks' test of it, 3 instructions a block, took
// 6.5-8 an output; the window loops' clamp in C about 10). A group of fewer channels (the last, where the channels are
// not a multiple of 4) runs BandAny then, which clamps each output itself.
__attribute__((noinline)) void ClampPixels(int8_t* out, int rows, int cols, int row_step, int col_step, int32_t lo,
                                           int32_t hi) {
  const int32_t lo4 = util::Lanes(lo), hi4 = util::Lanes(hi);
  for (int r = 0; r < rows; ++r) {
    int8_t* o = out + r * row_step;
    for (int i = 0; i < cols; ++i, o += col_step) util::Store4(o, util::Clamp4(util::Load4(o), lo4, hi4));
  }
}

// A band of a 3x3 channel at stride kStride; int8's range only (EvalOurs clamps a narrower one after: ClampPixels).
template <int kStride>
__attribute__((noinline)) void Band3x3(const Band& b, const Channel& ch) {
  const int pitch = b.pitch, step = b.out_step, pairs = b.out_w / 2, odd = b.out_w & 1;
  const int16_t* p = b.plane;
  int8_t* out = b.out;
  int rows = b.rows;
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
  const RowFn row = kStride == 1 ? RowS1Full : RowS2Full;  // int8's range: EvalOurs clamps a narrower one after
  if (kStride == 1) {
    // the row pairs' blocks, then an odd band's last row by RowS1 (no partner: a row's last odd output would store it
    // on the next row's first, which a block has already stored), each row's last odd output in C
    if (pairs > 0 && rows >= 2) {
      BlockRun r;
      r.p = p;
      r.out = out;
      r.pitch = 2 * pitch;
      r.pairs = pairs;
      r.row_pairs = rows / 2;
      r.in_skip = 4 * pitch - 4 * pairs;
      r.out_skip = 2 * b.row_step - 2 * pairs * step;
      r.bias2[0] = r.bias2[1] = ch.bias2;
      r.mult = ch.mult;
      r.add = ch.add;
      r.right = ch.right;
      r.step = step;
      r.row_step = b.row_step;
      memcpy(r.w, ch.w3, sizeof(r.w));
      Block3x3S1(&r);
    }
    if (pairs > 0 && (rows & 1)) {
      row(p + (rows - 1) * pitch, out + (rows - 1) * b.row_step, ch.bias2, 2 * pitch, ch.w3, ch.mult, ch.add,
          ch.right, step, pairs, ch.lo, ch.hi, 1, 0, 0);
    }
    for (int r = 0; odd && r < rows; ++r) {
      int32_t a0 = ch.bias2, a1 = ch.bias2;
      Pair3x3<1>(p + r * pitch + 2 * pairs, pitch, ch.w3, a0, a1);
      out[r * b.row_step + 2 * pairs * step] =
          static_cast<int8_t>(OutputFast(a0, ch.mult, ch.add, ch.right, ch.lo, ch.hi));
    }
    return;
  }
  if (b.transposed && odd) {
    // a row's last output would have its unstored partner beyond the map's last row: pairs in assembly, then each
    // row's last output in C
    if (pairs > 0) {
      row(p, out, ch.bias2, 2 * pitch, ch.w3, ch.mult, ch.add, ch.right, step, pairs, ch.lo, ch.hi, rows,
          2 * kStride * pitch - 4 * kStride * pairs, 2 * pairs * step - b.row_step);
    }
    for (int r = 0; r < rows; ++r) {
      int32_t a0 = ch.bias2, a1 = ch.bias2;
      Pair3x3<kStride>(p + r * kStride * pitch + pairs * 2 * kStride, pitch, ch.w3, a0, a1);
      out[r * b.row_step + pairs * 2 * step] =
          static_cast<int8_t>(OutputFast(a0, ch.mult, ch.add, ch.right, ch.lo, ch.hi));
    }
    return;
  }
  // An odd row's last output goes with a partner that the assembly stores too, on the next pixel of the channel: the
  // next row's first output, stored again when that row is computed; the map's very last row ends in C instead.
  const int alone = odd && b.last ? 1 : 0;
  if (rows - alone > 0 && pairs + odd > 0) {
    const int count = pairs + odd;
    row(p, out, ch.bias2, 2 * pitch, ch.w3, ch.mult, ch.add, ch.right, step, count, ch.lo, ch.hi, rows - alone,
        2 * kStride * pitch - 4 * kStride * count, 2 * count * step - b.row_step);
    p += (rows - alone) * kStride * pitch;
    out += (rows - alone) * b.row_step;
  }
  if (!alone) return;
  rows = 1;
  if (pairs > 0) {
    row(p, out, ch.bias2, 2 * pitch, ch.w3, ch.mult, ch.add, ch.right, step, pairs, ch.lo, ch.hi, 1, 0, 0);
  }
  p += pairs * 2 * kStride;
  out += pairs * 2 * step;
  int32_t a0 = ch.bias2, a1 = ch.bias2;
  Pair3x3<kStride>(p, pitch, ch.w3, a0, a1);
  *out = static_cast<int8_t>(OutputFast(a0, ch.mult, ch.add, ch.right, ch.lo, ch.hi));
#else
  for (int r = 0; r < rows; ++r) {
    const int16_t* q = p + r * kStride * pitch;
    out = b.out + r * b.row_step;
    for (int i = 0; i < pairs + odd; ++i, q += 2 * kStride) {
      int32_t a0 = ch.bias2, a1 = ch.bias2;
      Pair3x3<kStride>(q, pitch, ch.w3, a0, a1);
      out[0] = static_cast<int8_t>(OutputFast(a0, ch.mult, ch.add, ch.right, ch.lo, ch.hi));
      if (i < pairs) out[step] = static_cast<int8_t>(OutputFast(a1, ch.mult, ch.add, ch.right, ch.lo, ch.hi));
      out += (i < pairs ? 2 : 1) * step;
    }
  }
#endif
}

// Any filter, stride, dilation and requantization form: one tap at a time.
__attribute__((noinline)) void BandAny(const Band& b, const Channel& ch, const Geometry& s) {
  for (int r = 0; r < b.rows; ++r) {
    int8_t* out = b.out + r * b.row_step;
    for (int ox = 0; ox < b.out_w; ++ox, out += b.out_step) {
      const int16_t* p = b.plane + r * s.stride_h * b.pitch + ox * s.stride_w;
      int32_t acc = ch.bias;
      const int32_t* w = ch.w;
      for (int ky = 0; ky < s.k_h; ++ky, p += s.dil_h * b.pitch) {
        for (int kx = 0; kx < s.k_w; ++kx) acc += p[kx * s.dil_w] * *w++;
      }
      *out = static_cast<int8_t>(OutputAny(ch, acc));
    }
  }
}

// The group's n channels (c0 .. c0 + n - 1) of input rows iy0 .. iy0 + rows - 1 into n planes `plane_size` values
// apart, `pitch` values a row: value b of a row is input column b - pad_w plus the input offset; outside the image 0
// (the columns beside the image are zeroed once for the node and never written). s is the map as the loops see it;
// line_step and col_step are the bytes from one of its input rows, and columns, to the next in the tensor (swapped
// where the loops run the map transposed).
// Four channels at a time come from one word per pixel: SXTAB16 widens and offsets two of them in one instruction,
// and two pixels' halves are packed (PKHBT/PKHTB) into one word store per plane.
__attribute__((noinline)) void FillPlanes(const Geometry& s, const int8_t* in, int line_step, int col_step, int c0,
                                          int n, int iy0, int rows, int pitch, int32_t offset, int16_t* planes,
                                          int plane_size) {
  const int32_t offset2 = dsp::pack16(offset, offset);
  const int lo = s.pad_w < pitch ? s.pad_w : pitch;
  const int hi = s.pad_w + s.in_w < pitch ? s.pad_w + s.in_w : pitch;
  for (int i = 0; i < rows; ++i) {
    const int iy = iy0 + i;
    int16_t* row[4];
    for (int j = 0; j < n; ++j) row[j] = planes + j * plane_size + i * pitch;
    if (iy < 0 || iy >= s.in_h) {  // a padded row (the columns beside the image are zero already)
      for (int j = 0; j < n; ++j) memset(row[j] + lo, 0, (hi - lo) * sizeof(int16_t));
      continue;
    }
    const int8_t* src = in + iy * line_step + (lo - s.pad_w) * col_step + c0;
    int b = lo;
    if (n == 4) {
      if (b & 1) {  // to an even column: the pairs below are word-aligned
        for (int j = 0; j < 4; ++j) row[j][b] = static_cast<int16_t>(src[j] + offset);
        ++b;
        src += col_step;
      }
      const int pairs = (hi - b) / 2;
      int32_t* d0 = reinterpret_cast<int32_t*>(row[0] + b);
      int32_t* d2 = reinterpret_cast<int32_t*>(row[2] + b);
      const int c = col_step;
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
      // two pixels a step: 2 loads, 4 SXTAB16, 4 PKH, 4 stores (planes 1 and 3 at plane_size from 0 and 2), 3 of loop
      if (pairs > 0) {
        int k = pairs;
        int32_t v0, v1, t0, t1, x;
        __asm__ volatile(
            "1:\n\t"
            "ldr %[v1], [%[src], %[c]]\n\t"
            "ldr %[v0], [%[src]]\n\t"
            "add %[src], %[src], %[c], lsl #1\n\t"
            "sxtab16 %[t0], %[off], %[v0]\n\t"
            "sxtab16 %[v0], %[off], %[v0], ror #8\n\t"
            "sxtab16 %[t1], %[off], %[v1]\n\t"
            "sxtab16 %[v1], %[off], %[v1], ror #8\n\t"
            "pkhbt %[x], %[v0], %[v1], lsl #16\n\t"
            "pkhtb %[v0], %[v1], %[v0], asr #16\n\t"
            "str %[x], [%[d0], %[ps]]\n\t"
            "str %[v0], [%[d2], %[ps]]\n\t"
            "pkhbt %[x], %[t0], %[t1], lsl #16\n\t"
            "pkhtb %[t0], %[t1], %[t0], asr #16\n\t"
            "str %[x], [%[d0]], #4\n\t"
            "str %[t0], [%[d2]], #4\n\t"
            "subs %[k], #1\n\t"
            "bne 1b"
            : [src] "+r"(src), [d0] "+r"(d0), [d2] "+r"(d2), [k] "+r"(k), [v0] "=&r"(v0), [v1] "=&r"(v1),
              [t0] "=&r"(t0), [t1] "=&r"(t1), [x] "=&r"(x)
            : [c] "r"(c), [off] "r"(offset2), [ps] "r"(2 * plane_size)
            : "cc", "memory");
      }
#else
      int32_t* d1 = reinterpret_cast<int32_t*>(row[1] + b);
      int32_t* d3 = reinterpret_cast<int32_t*>(row[3] + b);
      for (int k = pairs; k > 0; --k, src += 2 * c) {
        const int32_t v0 = util::Load4(src), v1 = util::Load4(src + c);
        const int32_t e0 = dsp::sxtab16(offset2, v0), o0 = dsp::sxtab16_ror8(offset2, v0);
        const int32_t e1 = dsp::sxtab16(offset2, v1), o1 = dsp::sxtab16_ror8(offset2, v1);
        *d0++ = dsp::pack_bottoms(e0, e1);
        *d2++ = dsp::pack_tops(e0, e1);
        *d1++ = dsp::pack_bottoms(o0, o1);
        *d3++ = dsp::pack_tops(o0, o1);
      }
#endif
      b += (hi - b) & ~1;
    }
    for (; b < hi; ++b, src += col_step) {
      for (int j = 0; j < n; ++j) row[j][b] = static_cast<int16_t>(src[j] + offset);
    }
  }
}

// The input rows that output rows oy .. oy + n - 1 read.
inline int SpanRows(const Geometry& s, int n) { return (n - 1) * s.stride_h + (s.k_h - 1) * s.dil_h + 1; }

// Values per plane row: the taps' reach, and what the last odd output's unstored partner reads, made even (word
// alignment of every row).
inline int Pitch(const Geometry& s) {
  const int width = (s.out_w - 1) * s.stride_w + (s.k_w - 1) * s.dil_w + 1;
  return (width + 3 + 1) & ~1;
}

// The map with rows and columns swapped (input, filter, output, strides, dilation, padding).
Geometry Transposed(const Geometry& s) {
  Geometry t = s;
  t.in_h = s.in_w, t.in_w = s.in_h, t.k_h = s.k_w, t.k_w = s.k_h, t.out_h = s.out_w, t.out_w = s.out_h;
  t.stride_h = s.stride_w, t.stride_w = s.stride_h, t.dil_h = s.dil_w, t.dil_w = s.dil_h;
  t.pad_h = s.pad_w, t.pad_w = s.pad_h;
  return t;
}

// Instructions of a channel's 3x3 rows and their fill (about 6 a plane row and channel), `rows` rows of `width`
// outputs: at stride 1 Block3x3S1's 72 a block of 2 x 2 and about 14 a row pair, an odd row's pairs by RowS1Full (41
// a pair, 9 a row), a row's last odd output in C (about 48); at stride 2 RowS2Full's 41 a pair and 9 a row, a row's
// last odd output in C where the map runs transposed.
inline int RowsCost(int rows, int width, int span_rows, bool transposed, int stride) {
  if (stride == 1) {
    return rows / 2 * (width / 2 * 72 + 14) + (rows & 1) * (width / 2 * 41 + 9) + (width & 1) * 48 * rows +
           6 * span_rows;
  }
  const int pairs = transposed ? width / 2 : (width + 1) / 2;
  return rows * (pairs * 41 + 9 + (transposed && (width & 1) ? 48 : 0)) + 6 * span_rows;
}

// ---- The small maps' loops (Window3x3) ----
// Per group of four channels, the input under the output map's windows is copied into a buffer with the padding
// around it, two words a pixel: the group's four channels widened to 16 bits with the input offset added (SXTAB16:
// channels 0 and 2, then 1 and 3), the padding 0 (a padded tap adds w * 0, as the reference's skipped tap adds
// nothing); then every output pixel runs the same nine taps at fixed offsets in assembly: per tap the pixel's two
// words (LDRD), their doubled weights (two words on the stack, widened once for the group) and four 16x16
// multiply-accumulates. No fill of planes and no per-channel set-up: the small maps' kernel, where the planes'
// set-up costs more than their products.
struct WindowRun {
  const int8_t* in;        // 0: the window of the first output pixel (its top-left pixel) in the buffer
  const int32_t* w;        // 4: 18 words: tap t (row-major): (2 w_c0, 2 w_c2) at 2t, (2 w_c1, 2 w_c3) at 2t + 1
  const int32_t* consts;   // 8: the channels' doubled biases (4 words, then the same again), then per channel mult,
                           // add, right
  int8_t* out;             // 12: the first output pixel's channel c0
  int32_t pitch;           // 16: bytes from a row of the buffer to the next
  int32_t out_w;           // 20
  int32_t rows;            // 24: output rows left (counted down by the function)
  int32_t row_skip;        // 28: bytes from the window after a row's last to the next row's first
  int32_t out_step;        // 32: bytes from an output pixel to the next (the channel count)
  int32_t in_step;         // 36: bytes from a window to the next (8 x stride)
};
static_assert(sizeof(WindowRun) == 40, "the assembly's offsets into WindowRun");

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
// tap: the pixel at [base + xo] against the weights at [r1 + wo]: accumulators c0 r4, c1 r5, c2 r6, c3 r7
#define TD_WIN_TAP(base, xo, wo)        \
  "ldrd r8, r9, [" base ", #" xo "]\n\t" \
  "ldrd r11, r12, [r1, #" wo "]\n\t"    \
  "smlabb r4, r8, r11, r4\n\t"          \
  "smlatt r6, r8, r11, r6\n\t"          \
  "smlabb r5, r9, r12, r5\n\t"          \
  "smlatt r7, r9, r12, r7\n\t"
// accumulator A (doubled) requantized into A with the next channel's mult, add, right from r8 (advanced)
#define TD_WIN_OUT(A)                   \
  "ldm r8!, {r9, r11, r12}\n\t"         \
  "smmlar r11, " A ", r9, r11\n\t"      \
  "add r11, r11, " A ", asr #31\n\t"    \
  "asr " A ", r11, r12\n\t"             \
  "ssat " A ", #8, " A "\n\t"
// registers: the window r0, the weights r1, in_step r2, the buffer's pitch r3, out_step r10, the output lr; stack:
// [sp] the channels' mult, add, right (consts + 16), [sp, #4] where the output row ends, [sp, #8] the run, [sp, #12]
// the doubled biases. Per output pixel of four channels: 89 instructions (36 multiply-accumulates). The int8 range
// only: WindowGroup clamps a narrower activation range after.
__attribute__((naked, noinline)) void Window3x3(WindowRun*) {
  __asm__ volatile(
      "push {r4-r11, lr}\n\t"
      "sub sp, #16\n\t"
      "str r0, [sp, #8]\n\t"
      "ldr r8, [r0, #8]\n\t"
      "str r8, [sp, #12]\n\t"
      "adds r8, #32\n\t"
      "str r8, [sp, #0]\n\t"
      "ldrd r10, r2, [r0, #32]\n\t"
      "ldr r1, [r0, #4]\n\t"
      "ldr r3, [r0, #16]\n\t"
      "ldr lr, [r0, #12]\n\t"
      "ldr r0, [r0, #0]\n\t"
      "0:\n\t"
      "ldr r8, [sp, #8]\n\t"
      "ldr r9, [r8, #20]\n\t"
      "mla r9, r9, r10, lr\n\t"
      "str r9, [sp, #4]\n\t"
      "1:\n\t"
      "ldr r8, [sp, #12]\n\t"
      "ldm r8, {r4-r7}\n\t"
      TD_WIN_TAP("r0", "0", "0") TD_WIN_TAP("r0", "8", "8") TD_WIN_TAP("r0", "16", "16")
      "add r0, r0, r3\n\t"
      TD_WIN_TAP("r0", "0", "24") TD_WIN_TAP("r0", "8", "32") TD_WIN_TAP("r0", "16", "40")
      "add r0, r0, r3\n\t"
      TD_WIN_TAP("r0", "0", "48") TD_WIN_TAP("r0", "8", "56") TD_WIN_TAP("r0", "16", "64")
      "sub r0, r0, r3, lsl #1\n\t"
      "ldr r8, [sp, #0]\n\t"
      TD_WIN_OUT("r4") TD_WIN_OUT("r5") TD_WIN_OUT("r6") TD_WIN_OUT("r7")
      "bfi r4, r5, #8, #8\n\t"
      "bfi r4, r6, #16, #8\n\t"
      "bfi r4, r7, #24, #8\n\t"
      "str r4, [lr]\n\t"
      "add lr, lr, r10\n\t"
      "add r0, r0, r2\n\t"
      "ldr r9, [sp, #4]\n\t"
      "cmp lr, r9\n\t"
      "bne 1b\n\t"
      "ldr r8, [sp, #8]\n\t"
      "ldr r9, [r8, #28]\n\t"
      "add r0, r0, r9\n\t"
      "ldr r9, [r8, #24]\n\t"
      "subs r9, #1\n\t"
      "str r9, [r8, #24]\n\t"
      "bne 0b\n\t"
      "add sp, #16\n\t"
      "pop {r4-r11, pc}");
}
#undef TD_WIN_OUT
#undef TD_WIN_TAP
#else
// The same loops in C (a core without the DSP extension).
void Window3x3(WindowRun* r) {
  const int8_t* row = r->in;
  for (; r->rows > 0; --r->rows, row += r->row_skip + r->in_step * r->out_w) {
    const int8_t* x = row;
    for (int i = 0; i < r->out_w; ++i, x += r->in_step, r->out += r->out_step) {
      int32_t a[4] = {r->consts[0], r->consts[1], r->consts[2], r->consts[3]};
      for (int t = 0; t < 9; ++t) {
        const int8_t* px = x + (t / 3) * r->pitch + 8 * (t % 3);
        const int32_t e = util::Load4(px), o = util::Load4(px + 4);
        a[0] = dsp::smlabb(e, r->w[2 * t], a[0]);
        a[2] = dsp::smlatt(e, r->w[2 * t], a[2]);
        a[1] = dsp::smlabb(o, r->w[2 * t + 1], a[1]);
        a[3] = dsp::smlatt(o, r->w[2 * t + 1], a[3]);
      }
      for (int j = 0; j < 4; ++j) {
        const int32_t* q = r->consts + 8 + 3 * j;
        r->out[j] = static_cast<int8_t>(dsp::ssat8(util::RequantFast(a[j], q[0], q[1], q[2])));
      }
    }
  }
}
#endif

// Stride 1 across, two output pixels at a time (Window3x3Pairs): the pair's windows share their middle two columns,
// so per filter row four pixels' words and three weight pairs are loaded for 24 multiply-accumulates (one pixel:
// three and three for 12); the second pixel's four accumulators are r5-r8. Per pair of output pixels of four
// channels: 157 instructions (72 multiply-accumulates), 78.5 a pixel against Window3x3's 89. A row's pairs only: an
// odd row's last column is left to Window3x3 (WindowGroup).
struct PairRun {
  const int8_t* in;        // 0: the window of the first output pixel in the buffer
  const int32_t* w;        // 4: the weights, as WindowRun's
  const int32_t* bias2;    // 8: the four doubled biases twice (8 words)
  const int32_t* q;        // 12: per channel mult, add, right (12 words)
  int8_t* out;             // 16: the first output pixel's channel c0
  int32_t out_step;        // 20: bytes from an output pixel to the next (the channel count)
  int32_t pitch;           // 24: bytes from a row of the buffer to the next
  int32_t back;            // 28: bytes from a pair's window's third row to the next pair's window (16 - 2 pitch)
  int32_t pairs;           // 32: pairs a row, >= 1
  int32_t rows;            // 36: output rows, >= 1
  int32_t row_skip;        // 40: bytes from the window after a row's last pair to the next row's first window
  int32_t out_row_skip;    // 44: bytes from the output after a row's last pair to the next row's first
};
static_assert(sizeof(PairRun) == 48, "the assembly's offsets into PairRun");

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
// pixel A's (r1-r4: c0, c1, c2, c3) or B's (r5-r8) taps from the words in r9, r10 and the weights in r11, r12
#define TD_WP_MAC(C0, C1, C2, C3)      \
  "smlabb " C0 ", r9, r11, " C0 "\n\t" \
  "smlatt " C2 ", r9, r11, " C2 "\n\t" \
  "smlabb " C1 ", r10, r12, " C1 "\n\t" \
  "smlatt " C3 ", r10, r12, " C3 "\n\t"
#define TD_WP_A TD_WP_MAC("r1", "r2", "r3", "r4")
#define TD_WP_B TD_WP_MAC("r5", "r6", "r7", "r8")
// filter row at weight offset W0 (W1 = W0 + 8, W2 = W0 + 16): columns 0-2 for A, 1-3 for B
#define TD_WP_ROW(W0, W1, W2)                                                                          \
  "ldrd r11, r12, [lr, #" W0 "]\n\t" "ldrd r9, r10, [r0, #0]\n\t" TD_WP_A "ldrd r9, r10, [r0, #8]\n\t" \
  TD_WP_B "ldrd r11, r12, [lr, #" W1 "]\n\t" TD_WP_A "ldrd r9, r10, [r0, #16]\n\t"                    \
  TD_WP_B "ldrd r11, r12, [lr, #" W2 "]\n\t" TD_WP_A "ldrd r9, r10, [r0, #24]\n\t" TD_WP_B
// accumulator A (doubled) requantized into A with the next channel's mult, add, right from r9 (advanced)
#define TD_WP_OUT(A)                    \
  "ldm r9!, {r10, r11, r12}\n\t"        \
  "smmlar r11, " A ", r10, r11\n\t"     \
  "add r11, r11, " A ", asr #31\n\t"    \
  "asr " A ", r11, r12\n\t"             \
  "ssat " A ", #8, " A "\n\t"
// registers: the pair's window r0, the weights lr; the stack holds a copy of the run (the same offsets; rows counted
// down there) and, at [sp, #48], where the row's pairs end. The int8 range only, as Window3x3.
__attribute__((naked, noinline)) void Window3x3Pairs(const PairRun*) {
  __asm__ volatile(
      "push {r4-r11, lr}\n\t"
      "sub sp, #52\n\t"
      "ldm r0!, {r1-r8}\n\t"
      "stm sp, {r1-r8}\n\t"
      "ldm r0, {r1-r4}\n\t"
      "add r5, sp, #32\n\t"
      "stm r5, {r1-r4}\n\t"
      "ldr lr, [sp, #4]\n\t"
      "ldr r0, [sp, #0]\n\t"
      "0:\n\t"
      "ldr r10, [sp, #32]\n\t"
      "add r10, r0, r10, lsl #4\n\t"
      "str r10, [sp, #48]\n\t"
      "1:\n\t"
      "ldr r9, [sp, #8]\n\t"
      "ldm r9, {r1-r8}\n\t"
      TD_WP_ROW("0", "8", "16")
      "ldr r9, [sp, #24]\n\t"
      "add r0, r0, r9\n\t"
      TD_WP_ROW("24", "32", "40")
      "ldr r9, [sp, #24]\n\t"
      "add r0, r0, r9\n\t"
      TD_WP_ROW("48", "56", "64")
      "ldr r9, [sp, #28]\n\t"
      "add r0, r0, r9\n\t"
      "ldr r9, [sp, #12]\n\t"
      TD_WP_OUT("r1") TD_WP_OUT("r2") TD_WP_OUT("r3") TD_WP_OUT("r4")
      "sub r9, r9, #48\n\t"
      TD_WP_OUT("r5") TD_WP_OUT("r6") TD_WP_OUT("r7") TD_WP_OUT("r8")
      "bfi r1, r2, #8, #8\n\t"
      "bfi r1, r3, #16, #8\n\t"
      "bfi r1, r4, #24, #8\n\t"
      "bfi r5, r6, #8, #8\n\t"
      "bfi r5, r7, #16, #8\n\t"
      "bfi r5, r8, #24, #8\n\t"
      "ldrd r9, r10, [sp, #16]\n\t"
      "str r1, [r9]\n\t"
      "str r5, [r9, r10]\n\t"
      "add r9, r9, r10, lsl #1\n\t"
      "str r9, [sp, #16]\n\t"
      "ldr r9, [sp, #48]\n\t"
      "cmp r0, r9\n\t"
      "bne 1b\n\t"
      "ldrd r10, r11, [sp, #40]\n\t"
      "add r0, r0, r10\n\t"
      "ldr r10, [sp, #16]\n\t"
      "add r10, r10, r11\n\t"
      "str r10, [sp, #16]\n\t"
      "ldr r10, [sp, #36]\n\t"
      "subs r10, #1\n\t"
      "str r10, [sp, #36]\n\t"
      "bne 0b\n\t"
      "add sp, #52\n\t"
      "pop {r4-r11, pc}");
}
#undef TD_WP_OUT
#undef TD_WP_ROW
#undef TD_WP_B
#undef TD_WP_A
#undef TD_WP_MAC
constexpr bool kWindowPairs = true;
#else
void Window3x3Pairs(const PairRun*) {}  // not called: Window3x3 takes every pixel on a core without the DSP extension
constexpr bool kWindowPairs = false;
#endif

// A node's window buffer: the windows' extent, padding included, two words a pixel; the padding (zeros) written once
// for the node, the image's pixels of each group of channels copied into it by WindowGroup.
struct WindowBuffer {
  alignas(8) int32_t words[2 * kWindowPixels];
  int rows, cols;  // the extent
  int y0, y1, x0, x1;  // the image's pixels in it: rows y0 .. y1 - 1, columns x0 .. x1 - 1

  void Init(const Geometry& s) {
    rows = (s.out_h - 1) * s.stride_h + 3;
    cols = (s.out_w - 1) * s.stride_w + 3;
    y0 = s.pad_h < rows ? s.pad_h : rows;
    y1 = s.pad_h + s.in_h < rows ? s.pad_h + s.in_h : rows;
    x0 = s.pad_w < cols ? s.pad_w : cols;
    x1 = s.pad_w + s.in_w < cols ? s.pad_w + s.in_w : cols;
    memset(words, 0, 2 * rows * cols * sizeof(int32_t));
  }
};

// The image's part of a group's window: `rows` rows of n pixels of the group's four channels, `step` bytes apart from
// src, into the window buffer from dst: two words a pixel, channels 0 and 2 then 1 and 3 widened to 16 bits with the
// input offset (off2, twice) added. In assembly, the rows' loop included: two pixels a step, 11 instructions (2 loads
// and a pointer step, 4 SXTAB16, 2 STRD, 2 of loop), an odd last pixel 6, a row 6 more. The copy's loop in C took 9 a
// pixel (bench/hotspots.py on the MobileNet at 96x96: 133,002 instructions an inference); with the two-pixel step in
// assembly and the rows in C, the rows took 17 to 29 a row more (bench/hotspots.py on the keyword net, whose rows
// are five pixels: 26,112 + 19,200 instructions of its 101,581 outside the window loops).
struct CopyRun {
  const int8_t* src;  // 0: the first row's first pixel, channel c0
  int32_t* dst;       // 4: its place in the buffer
  int32_t step;       // 8: bytes from a pixel to the next in the tensor (the channel count)
  int32_t off2;       // 12: -input zero point, twice
  int32_t pairs;      // 16: n / 2
  int32_t odd;        // 20: n % 2
  int32_t rows;       // 24: >= 1
  int32_t src_skip;   // 28: bytes from after a row's last pixel to the next row's first, in the tensor
  int32_t dst_skip;   // 32: the same in the buffer
};
static_assert(sizeof(CopyRun) == 36, "the assembly's offsets into CopyRun");

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
// registers: src r1, dst r2, step r3, off2 r4, pairs r5, odd r6, rows r7, src_skip r8, dst_skip r9, the pairs left
// r10, the loaded pixels r11 and r12, the widened halves r0 and lr
__attribute__((naked, noinline)) void WindowCopy(const CopyRun*) {
  __asm__ volatile(
      "push {r4-r11, lr}\n\t"
      "ldm r0, {r1-r9}\n\t"
      "0:\n\t"
      "movs r10, r5\n\t"
      "beq 2f\n\t"
      "1:\n\t"
      "ldr r11, [r1]\n\t"
      "ldr r12, [r1, r3]\n\t"
      "add r1, r1, r3, lsl #1\n\t"
      "sxtab16 r0, r4, r11\n\t"
      "sxtab16 lr, r4, r11, ror #8\n\t"
      "strd r0, lr, [r2], #8\n\t"
      "sxtab16 r0, r4, r12\n\t"
      "sxtab16 lr, r4, r12, ror #8\n\t"
      "strd r0, lr, [r2], #8\n\t"
      "subs r10, #1\n\t"
      "bne 1b\n\t"
      "2:\n\t"
      "cbz r6, 3f\n\t"
      "ldr r11, [r1]\n\t"
      "add r1, r3\n\t"
      "sxtab16 r0, r4, r11\n\t"
      "sxtab16 lr, r4, r11, ror #8\n\t"
      "strd r0, lr, [r2], #8\n\t"
      "3:\n\t"
      "add r1, r8\n\t"
      "add r2, r9\n\t"
      "subs r7, #1\n\t"
      "bne 0b\n\t"
      "pop {r4-r11, pc}");
}
#else
// The same loops in C (a core without the DSP extension).
void WindowCopy(const CopyRun* r) {
  const int8_t* src = r->src;
  int32_t* dst = r->dst;
  const int n = 2 * r->pairs + r->odd;
  for (int y = 0; y < r->rows; ++y, src += r->src_skip, dst += r->dst_skip / 4) {
    for (int i = 0; i < n; ++i, src += r->step, dst += 2) {
      const int32_t v = util::Load4(src);
      dst[0] = dsp::sxtab16(r->off2, v);
      dst[1] = dsp::sxtab16_ror8(r->off2, v);
    }
  }
}
#endif

// A group's doubled weights as Window3x3 reads them: tap t's four channels (a word `step` bytes after tap t - 1's, from
// f) widened to 16 bits, doubled, at w[2t] (channels 0 and 2) and w[2t + 1] (1 and 3). In assembly a filter row of
// three taps a turn, 22 instructions (the loop in C took 11 a tap): a cost of every group of four channels, which the
// smallest maps (a 2x2 map's group runs four output pixels) pay in full.
inline void WindowWeights(const int8_t* f, int step, int32_t* w) {
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define TD_WIN_W(V)                        \
  "sxtb16 %[a], %[" V "]\n\t"             \
  "sxtb16 %[b], %[" V "], ror #8\n\t"     \
  "sadd16 %[a], %[a], %[a]\n\t"           \
  "sadd16 %[b], %[b], %[b]\n\t"           \
  "strd %[a], %[b], [%[w]], #8\n\t"
  int k = 3;
  int32_t v0, v1, v2, a, b;
  __asm__ volatile(
      "1:\n\t"
      "ldr %[v0], [%[f]]\n\t"
      "ldr %[v1], [%[f], %[step]]\n\t"
      "add %[f], %[f], %[step], lsl #1\n\t"
      "ldr %[v2], [%[f]]\n\t"
      "add %[f], %[f], %[step]\n\t" TD_WIN_W("v0") TD_WIN_W("v1") TD_WIN_W("v2")
      "subs %[k], #1\n\t"
      "bne 1b"
      : [f] "+r"(f), [w] "+r"(w), [k] "+r"(k), [v0] "=&r"(v0), [v1] "=&r"(v1), [v2] "=&r"(v2), [a] "=&r"(a),
        [b] "=&r"(b)
      : [step] "r"(step)
      : "cc", "memory");
#undef TD_WIN_W
#else
  for (int t = 0; t < 9; ++t, f += step) {
    const int32_t v = util::Load4(f), e = dsp::sxtb16(v), o = dsp::sxtb16_ror8(v);
    w[2 * t] = dsp::sadd16(e, e);
    w[2 * t + 1] = dsp::sadd16(o, o);
  }
#endif
}

// The group of channels c0 .. c0 + 3 by the window loops, or false where a channel's requantization is not
// util::RequantFast's for any weights (a multiplier of 1 or more, a right shift beyond 22, a bias beyond 2^27), the
// group then left to the planes. The bound |acc| <= |bias| + 255 * 128 * 9 < 2^28, whatever the weights, makes
// util::MakeRequant's fast form exact in those ranges (|add| + x_max + 1 < 2^30 + 2^28 + 2 < 2^31).
bool WindowGroup(const Geometry& s, WindowBuffer& wb, const int8_t* in, const int8_t* filter, const int32_t* bias,
                 int8_t* out, const tflite::OpDataConv& d, int c0) {
  int32_t consts[20];
  for (int j = 0; j < 4; ++j) {
    const int c = c0 + j;
    const int32_t b = bias ? bias[c] : 0, mult = d.per_channel_output_multiplier[c];
    const int32_t right = -d.per_channel_output_shift[c];
    if (mult < 0 || right < 1 || right > 22 || b > (1 << 27) || b < -(1 << 27)) return false;
    consts[j] = consts[4 + j] = 2 * b;
    consts[8 + 3 * j] = mult;
    consts[9 + 3 * j] = util::ShortcutAdd(right, d.output_zero_point);
    consts[10 + 3 * j] = right;
  }
  alignas(8) int32_t w[18];
  WindowWeights(filter + c0, s.channels, w);
  const int n = wb.x1 - wb.x0, step = s.channels;
  if (n > 0 && wb.y1 > wb.y0) {
    CopyRun cr;
    cr.src = in + ((wb.y0 - s.pad_h) * s.in_w + (wb.x0 - s.pad_w)) * step + c0;
    cr.dst = wb.words + 2 * (wb.y0 * wb.cols + wb.x0);
    cr.step = step;
    cr.off2 = dsp::pack16(-d.input_zero_point, -d.input_zero_point);
    cr.pairs = n / 2;
    cr.odd = n % 2;
    cr.rows = wb.y1 - wb.y0;
    cr.src_skip = (s.in_w - n) * step;
    cr.dst_skip = 8 * (wb.cols - n);
    WindowCopy(&cr);
  }
  // stride 1 across: each row's pairs by Window3x3Pairs, an odd row's last column (one output a row) by Window3x3
  const int pairs = kWindowPairs && s.stride_w == 1 ? s.out_w / 2 : 0, done = 2 * pairs;
  if (pairs > 0) {
    PairRun p;
    p.in = reinterpret_cast<const int8_t*>(wb.words);
    p.w = w;
    p.bias2 = consts;
    p.q = consts + 8;
    p.out = out + c0;
    p.out_step = s.channels;
    p.pitch = 8 * wb.cols;
    p.back = 16 - 2 * p.pitch;
    p.pairs = pairs;
    p.rows = s.out_h;
    p.row_skip = 8 * wb.cols * s.stride_h - 16 * pairs;
    p.out_row_skip = (s.out_w - done) * s.channels;
    Window3x3Pairs(&p);
  }
  if (done < s.out_w) {
    WindowRun r;
    r.in = reinterpret_cast<const int8_t*>(wb.words) + 8 * s.stride_w * done;
    r.w = w;
    r.consts = consts;
    r.out = out + c0 + done * s.channels;
    r.pitch = 8 * wb.cols;
    r.out_w = s.out_w - done;
    r.rows = s.out_h;
    r.row_skip = 8 * wb.cols * s.stride_h - 8 * s.stride_w * r.out_w;
    // one output a row after the pairs: from one row's to the next's, as the rows are one run of outputs
    r.out_step = done > 0 ? s.out_w * s.channels : s.channels;
    r.in_step = 8 * s.stride_w;
    Window3x3(&r);
  }
  return true;  // int8's range: EvalOurs clamps a narrower one after (ClampPixels)
}

// The smallest maps by their taps inside the image (Taps): a list made once for the node gives each output pixel's
// taps that fall in the image (4 of a 3x3 filter's 9 for a pixel of a 2x2 map, 1 on a 1x1 map), as byte offsets of its
// input pixel and its weights; per group of four channels every output pixel runs its taps in assembly, four
// channels a word (the input widened with its offset added, the weights widened: 13 instructions a tap), each
// channel requantized by util::RequantFast with the group's constants (6 instructions), the four outputs packed into
// one word. No planes, no window copy, no padded taps: the window loops' group set-up and five padded taps a pixel of a
// 2x2 map cost more. Outputs go to a buffer and then to the output, clamped to the activation range, once the group
// has read all its input (the node may run in place). The groups of the build's range of channels that may fall
// outside util::MakeRequant's shortcut, and a last group of fewer than four channels, run the planes.
// output pixels (a 2x2 map); a larger map runs the planes or the window loops. Measured with 9 (TapsGroups' stack
// made larger): the MobileNet 96x96's 3x3 map at stride 1 83,594 -> 75,766 instructions, but its 6x6 -> 3x3 map at
// stride 2, which the window loops keep, 45,684 -> 49,014 for its tap list (built to count its taps), 0.1 % of the
// class in all: left at 4.
constexpr int kTapPixels = 4;
constexpr int kTapWords = 160;   // the list: a word a pixel (its number of taps), two a tap

// The tap list of the map (one batch): per output pixel its number of taps inside the image, then for each one the
// byte offsets of its input pixel (channel 0) and of its weights; its words, or 0 where the map has more than
// kTapPixels pixels or the list more than kTapWords words.
__attribute__((noinline, optimize("Os"))) int TapList(const Geometry& m, int32_t* list) {
  if (m.out_h * m.out_w > kTapPixels) return 0;
  int w = 0;
  for (int oy = 0; oy < m.out_h; ++oy) {
    for (int ox = 0; ox < m.out_w; ++ox) {
      int32_t* count = &list[w++];
      *count = 0;
      for (int ky = 0; ky < m.k_h; ++ky) {
        const int iy = oy * m.stride_h - m.pad_h + ky * m.dil_h;
        for (int kx = 0; kx < m.k_w; ++kx) {
          const int ix = ox * m.stride_w - m.pad_w + kx * m.dil_w;
          if (iy < 0 || iy >= m.in_h || ix < 0 || ix >= m.in_w) continue;
          if (w + 2 > kTapWords) return 0;
          list[w++] = (iy * m.in_w + ix) * m.channels;
          list[w++] = (ky * m.k_w + kx) * m.channels;
          ++*count;
        }
      }
    }
  }
  return w;
}

// Whether Taps takes fewer instructions than the window loops for the map, whose list has `words` words, per group of
// four channels: Taps about 75 a group, 36 a pixel and 18 a tap (measured with bench/kernels.py on the study
// MobileNets' 1x1 and 2x2 maps at stride 1 and 2, the calls and the list included); the window loops as
// WindowGroupCount counts them.
inline bool TapsCheaper(const Geometry& m, int words) {
  const int pixels = m.out_h * m.out_w, taps = (words - pixels) / 2;
  return 36 * pixels + 18 * taps + 75 < WindowGroupCount(m);
}

struct TapRun {
  const int32_t* taps;    // 0: the list (TapList)
  const int8_t* in;       // 4: the input at the group's first channel (advanced a group at a time)
  const int8_t* filter;   // 8: the filter at the group's first channel (advanced)
  int32_t off2;           // 12: -input zero point, twice
  const int32_t* bias;    // 16: the group's biases (advanced by bias_step; kNoBias and 0 where the node has none)
  int32_t bias_step;      // 20
  const int32_t* mult;    // 24: the group's multipliers (advanced)
  const int32_t* shift;   // 28: the group's shifts (advanced)
  int32_t odd;            // 32: util::ShortcutOdd of the output zero point
  int8_t* out;            // 36: the output at the group's first channel (advanced)
  int32_t out_step;       // 40: bytes from an output pixel to the next (the channels)
  int32_t lo4, hi4;       // 44, 48: the activation range, util::Lanes
  int32_t pixels;         // 52: 1 .. kTapPixels
  int32_t groups;         // 56: >= 1
};
static_assert(sizeof(TapRun) == 60, "the assembly's offsets into TapRun");

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
// a channel's constants from its bias (r1 + J), multiplier (r2), shift (r3) and the zero point's odd factor (r12):
// 2 bias, mult, add = odd << (right - 1), right = -shift, stored at lr (advanced)
#define TD_TAP_CONST(J)                 \
  "ldr r4, [r1, #" J "]\n\t"            \
  "ldr r5, [r2], #4\n\t"                \
  "ldr r6, [r3], #4\n\t"                \
  "lsl r4, r4, #1\n\t"                  \
  "mvn r8, r6\n\t"                      \
  "rsb r7, r6, #0\n\t"                  \
  "lsl r6, r12, r8\n\t"                 \
  "stm lr!, {r4-r7}\n\t"
// channel A's sum requantized with its constants (2 bias, mult, add, right) from lr (advanced)
#define TD_TAP_OUT(A)                   \
  "ldm lr!, {r8, r9, r10, r11}\n\t"     \
  "add " A ", r8, " A ", lsl #1\n\t"    \
  "smmlar r10, " A ", r9, r10\n\t"      \
  "add r10, r10, " A ", asr #31\n\t"    \
  "asr " A ", r10, r11\n\t"             \
  "ssat " A ", #8, " A "\n\t"
// Per group: its constants onto the stack (32 instructions), then each output pixel: the accumulators cleared, its
// taps (13 instructions each), its four channels requantized (24) and packed into one word on the stack; then the
// group's words, clamped to the activation range (SSUB8 and SEL twice), to the output. Registers in the pixels'
// loop: the list r0, the input r1, the filter r2, the taps left r3, the accumulators r4-r7 (channels 0-3), the
// loaded and widened words r8-r11, off2 r12, the constants lr. The stack: the run, the pixels left, where the next
// pixel's word goes, the groups left, the constants (16 words), the pixels' words (kTapPixels), 96 bytes.
static_assert(80 + 4 * kTapPixels <= 96, "TapsGroups' stack holds kTapPixels words from sp + 80");
__attribute__((naked, noinline)) void TapsGroups(TapRun*) {
  __asm__ volatile(
      "push {r4-r11, lr}\n\t"
      "sub sp, #96\n\t"
      "str r0, [sp]\n\t"
      "ldr r1, [r0, #56]\n\t"
      "str r1, [sp, #12]\n\t"
      "0:\n\t"
      "ldr r0, [sp]\n\t"
      "ldrd r1, r9, [r0, #16]\n\t"
      "ldrd r2, r3, [r0, #24]\n\t"
      "ldr r12, [r0, #32]\n\t"
      "add lr, sp, #16\n\t"
      TD_TAP_CONST("0") TD_TAP_CONST("4") TD_TAP_CONST("8") TD_TAP_CONST("12")
      "add r1, r1, r9\n\t"
      "str r1, [r0, #16]\n\t"
      "strd r2, r3, [r0, #24]\n\t"
      "ldr r12, [r0, #12]\n\t"
      "ldrd r1, r2, [r0, #4]\n\t"
      "ldr r3, [r0, #52]\n\t"
      "add r8, sp, #80\n\t"
      "strd r3, r8, [sp, #4]\n\t"
      "ldr r0, [r0]\n\t"
      "1:\n\t"
      "movs r4, #0\n\t"
      "movs r5, #0\n\t"
      "movs r6, #0\n\t"
      "movs r7, #0\n\t"
      "ldr r3, [r0], #4\n\t"
      "cbz r3, 3f\n\t"
      "2:\n\t"
      "ldrd r8, r9, [r0], #8\n\t"
      "ldr r8, [r1, r8]\n\t"
      "ldr r9, [r2, r9]\n\t"
      "sxtab16 r10, r12, r8, ror #8\n\t"
      "sxtab16 r8, r12, r8\n\t"
      "sxtb16 r11, r9, ror #8\n\t"
      "sxtb16 r9, r9\n\t"
      "smlabb r4, r8, r9, r4\n\t"
      "smlatt r6, r8, r9, r6\n\t"
      "smlabb r5, r10, r11, r5\n\t"
      "smlatt r7, r10, r11, r7\n\t"
      "subs r3, #1\n\t"
      "bne 2b\n\t"
      "3:\n\t"
      "add lr, sp, #16\n\t"
      TD_TAP_OUT("r4") TD_TAP_OUT("r5") TD_TAP_OUT("r6") TD_TAP_OUT("r7")
      "bfi r4, r5, #8, #8\n\t"
      "bfi r4, r6, #16, #8\n\t"
      "bfi r4, r7, #24, #8\n\t"
      "ldrd r8, r9, [sp, #4]\n\t"
      "str r4, [r9], #4\n\t"
      "subs r8, #1\n\t"
      "strd r8, r9, [sp, #4]\n\t"
      "bne 1b\n\t"
      "ldr r0, [sp]\n\t"
      "ldr r1, [r0, #36]\n\t"
      "ldrd r2, r3, [r0, #40]\n\t"
      "ldrd r4, r5, [r0, #48]\n\t"
      "adds r7, r1, #4\n\t"
      "str r7, [r0, #36]\n\t"
      "add r6, sp, #80\n\t"
      "4:\n\t"
      "ldr r7, [r6], #4\n\t"
      "ssub8 r8, r7, r3\n\t"
      "sel r7, r7, r3\n\t"
      "ssub8 r8, r7, r4\n\t"
      "sel r7, r4, r7\n\t"
      "str r7, [r1]\n\t"
      "add r1, r1, r2\n\t"
      "subs r5, #1\n\t"
      "bne 4b\n\t"
      "ldrd r1, r2, [r0, #4]\n\t"
      "adds r1, #4\n\t"
      "adds r2, #4\n\t"
      "strd r1, r2, [r0, #4]\n\t"
      "ldr r1, [sp, #12]\n\t"
      "subs r1, #1\n\t"
      "str r1, [sp, #12]\n\t"
      "bne 0b\n\t"
      "add sp, #96\n\t"
      "pop {r4-r11, pc}");
}
#undef TD_TAP_OUT
#undef TD_TAP_CONST
#else
// The same loops in C (a core without the DSP extension).
void TapsGroups(TapRun* r) {
  for (int g = 0; g < r->groups; ++g) {
    const int32_t* t = r->taps;
    int32_t res[kTapPixels];  // stored once the group has read all its input (in place)
    for (int p = 0; p < r->pixels; ++p) {
      int32_t acc[4] = {0, 0, 0, 0};
      for (int n = *t++; n > 0; --n, t += 2) {
        for (int j = 0; j < 4; ++j) acc[j] += r->filter[t[1] + j] * (r->in[t[0] + j] + static_cast<int16_t>(r->off2));
      }
      uint32_t v = 0;
      for (int j = 0; j < 4; ++j) {
        const int32_t right = -r->shift[j];
        const int32_t o = dsp::ssat8(util::RequantFast(2 * (acc[j] + r->bias[j]), r->mult[j],
                                                       util::ShortcutAddOdd(r->odd, right), right));
        v |= static_cast<uint32_t>(o & 0xff) << (8 * j);
      }
      res[p] = util::Clamp4(static_cast<int32_t>(v), r->lo4, r->hi4);
    }
    for (int p = 0; p < r->pixels; ++p) util::Store4(r->out + p * r->out_step, res[p]);
    r->in += 4;
    r->filter += 4;
    r->out += 4;
    r->bias += r->bias_step / 4;
    r->mult += 4;
    r->shift += 4;
  }
}
#endif

// How many groups of four channels from c0 on Taps runs in a row on a node it runs: the whole groups outside the
// build's range of channels that may fall outside util::MakeRequant's shortcut (TapsGroups makes its constants by the
// shortcut), up to the range's beginning or from its end to the last; 0 where the group at c0 is not one (the planes
// run it).
inline int TapsGroupsFrom(int c0, int channels, ShortcutRange outside) {
  const int end = c0 + 4 <= outside.begin ? (outside.begin < channels ? outside.begin : channels)
                                          : (c0 >= outside.end ? channels : c0);
  return (end - c0) / 4;
}

// Taps on the node where it runs it: a single output pixel (its list fits: at most kMaxTaps taps), a small map where
// it is cheaper than the window loops (which take the node); the groups TapsGroupsFrom counts by TapsGroups, a run of
// consecutive ones a call, each batch (each batch's pixels run the same taps). 0 where Taps does not run the node, 1
// where it ran every channel, 2 where the planes are to run the groups it did not take.
__attribute__((noinline, optimize("Os"))) int TapsNode(const Geometry& m, int batches, bool window_takes,
                                                       const int8_t* in, const int8_t* filter, const int32_t* bias,
                                                       int8_t* out, const tflite::OpDataConv& d) {
  static const int32_t kNoBias[4] = {0, 0, 0, 0};
  int32_t list[kTapWords];
  const bool one_pixel = m.out_h == 1 && m.out_w == 1;
  const int words = one_pixel || TD_DW_TAPS == 1 || (TD_DW_TAPS == 2 && window_takes) ? TapList(m, list) : 0;
  if (words == 0 || !(one_pixel || TD_DW_TAPS == 1 || TapsCheaper(m, words))) return 0;
  const ShortcutRange outside = OutsideShortcut(d);
  const int pixels = m.out_h * m.out_w, channels = m.channels;
  TapRun r;  // the node's constants; each run's pointers (which TapsGroups advances) and groups below
  r.taps = list;
  r.off2 = dsp::pack16(-d.input_zero_point, -d.input_zero_point);
  r.bias_step = bias ? 16 : 0;
  r.odd = util::ShortcutOdd(d.output_zero_point);
  r.out_step = channels;
  r.lo4 = util::Lanes(d.output_activation_min);
  r.hi4 = util::Lanes(d.output_activation_max);
  r.pixels = pixels;
  int done = 1;
  for (int c0 = 0; c0 < channels;) {
    const int groups = TapsGroupsFrom(c0, channels, outside);
    if (groups == 0) {
      done = 2;
      c0 += 4;
      continue;
    }
    for (int b = 0; b < batches; ++b) {
      r.in = in + b * m.in_h * m.in_w * channels + c0;
      r.filter = filter + c0;
      r.bias = bias ? bias + c0 : kNoBias;
      r.mult = d.per_channel_output_multiplier + c0;
      r.shift = d.per_channel_output_shift + c0;
      r.out = out + b * pixels * channels + c0;
      r.groups = groups;
      TapsGroups(&r);
    }
    c0 += 4 * groups;
  }
  return done;
}

// Whether the window loops take fewer instructions than the planes, per channel, as measured with bench/kernels.py on
// the MobileNets' and the keyword net's maps: the window a quarter of WindowGroupCount; the planes' rows (RowsCost),
// their fill (about 10 + 2 a value, a row of the windows' extent) and a channel's set-up (about 650: its constants,
// its calls a band, its share of the fill's rows; measured on the MobileNet's 12x12 map with Block3x3S1: the planes
// 3,912 a channel, the window 3,713). Window3x3Pairs' 78.5 a pixel at stride 1 would make the window's 22 a pixel
// there: no node of bench/kernels.py's models changed side with that (tried), so the count keeps 25 and its 64 B
// less code.
inline bool WindowCheaper(const Geometry& m, bool transposed) {
  const int rows = (m.out_h - 1) * m.stride_h + 3, cols = (m.out_w - 1) * m.stride_w + 3;
  const int window = WindowGroupCount(m) / 4;
  const Geometry t = Transposed(m);
  const int planes = (transposed ? RowsCost(t.out_h, t.out_w, t.in_h, true, t.stride_w)
                                  : RowsCost(m.out_h, m.out_w, m.in_h, false, m.stride_w))
                     + 650 + rows * (10 + 2 * cols);
  return window < planes;
}

TfLiteStatus EvalOurs(TfLiteContext* context, TfLiteNode* node, const DwOp& op) {
  if (!OwnLoops(op.data.filter_buffer_index)) {
    return cmsis::EvalDepthwiseConv(context, node, op.data, op.data.filter_buffer_index);
  }
  const auto& params = *static_cast<const TfLiteDepthwiseConvParams*>(node->builtin_data);
  const TfLiteEvalTensor* input = tflite::micro::GetEvalInput(context, node, tflite::kDepthwiseConvInputTensor);
  const TfLiteEvalTensor* filter = tflite::micro::GetEvalInput(context, node, tflite::kDepthwiseConvWeightsTensor);
  const TfLiteEvalTensor* bias = node->inputs->size == 3 && node->inputs->data[2] >= 0
                                     ? tflite::micro::GetEvalInput(context, node, tflite::kDepthwiseConvBiasTensor)
                                     : nullptr;
  TfLiteEvalTensor* output = tflite::micro::GetEvalOutput(context, node, tflite::kDepthwiseConvOutputTensor);
  const tflite::OpDataConv& d = op.data;
  const int batches = input->dims->data[0];
  const Geometry m = util::GeometryOf(*input, *filter, *output, params.stride_height, params.stride_width,
                                      params.dilation_height_factor, params.dilation_width_factor, d.padding);
  const int8_t* in_data = tflite::micro::GetTensorData<int8_t>(input);
  const int8_t* w_data = tflite::micro::GetTensorData<int8_t>(filter);
  const int32_t* b_data = bias ? tflite::micro::GetTensorData<int32_t>(bias) : nullptr;
  int8_t* out_data = tflite::micro::GetTensorData<int8_t>(output);
  const bool window_takes = WindowTakes(batches, m.out_h, m.out_w, m.k_h, m.k_w, m.stride_h, m.stride_w, m.dil_h,
                                        m.dil_w);
  const int tapped = TapsNode(m, batches, window_takes, in_data, w_data, b_data, out_data, d);
  if (tapped == 1) return kTfLiteOk;
  const bool k3 = m.k_h == 3 && m.k_w == 3 && m.dil_h == 1 && m.dil_w == 1 && m.stride_h == m.stride_w &&
                  (m.stride_w == 1 || m.stride_w == 2);
  // A tall, narrow map (a keyword net's 25x5) runs transposed, along its columns, where that takes fewer
  // instructions: longer rows waste no half pair on an odd width and spread each row's costs over more outputs.
  const Geometry mt = Transposed(m);
  const bool transposed = k3 && m.out_h > m.out_w && 4 * SpanRows(mt, 1) * Pitch(mt) <= kBufferValues &&
                          RowsCost(m.out_w, m.out_h, m.in_w, true, m.stride_h) <
                              RowsCost(m.out_h, m.out_w, m.in_h, false, m.stride_w);
  const Geometry s = transposed ? mt : m;  // the map as the loops see it
  // a small map's whole groups by the window loops where they are cheaper (one batch: WindowTakes)
  const bool window = tapped == 0 && window_takes &&
                      (TD_DW_WINDOW == 1 || (TD_DW_WINDOW == 2 && WindowCheaper(m, transposed)));
  // bytes from one of the loops' input rows (columns) to the next in the tensor; from one output row to the next
  const int line_step = transposed ? m.channels : m.in_w * m.channels;
  const int col_step = transposed ? m.in_w * m.channels : m.channels;
  const int out_row_step = transposed ? m.channels : m.out_w * m.channels;
  const int out_col_step = transposed ? m.out_w * m.channels : m.channels;
  const int pitch = Pitch(s);
  // output rows per band: as many as four planes of their input rows fit in the buffer (Applies checked one)
  int rows_per_band = s.out_h;
  while (rows_per_band > 1 && 4 * SpanRows(s, rows_per_band) * pitch > kBufferValues) --rows_per_band;
  // stride 1: an even band, whose rows all run in Block3x3S1's row pairs
  if (s.stride_w == 1 && rows_per_band > 1 && rows_per_band < s.out_h) rows_per_band &= ~1;
  // A node planned in place (its output over its input, tinydeploy's plan where analyze/requant.py's
  // depthwise_in_place holds) is right only where each group reads its whole input before it writes: one band (the
  // window loops copy a group's whole window first). The build plans no other; this refuses one that would compute
  // wrong outputs.
  if (in_data == out_data && rows_per_band < s.out_h) return kTfLiteError;
  const int plane_size = SpanRows(s, rows_per_band) * pitch;
  alignas(4) int16_t buf[kBufferValues];
  bool zeroed = false;  // the planes' padding, written once for the node where a group runs them
  const bool full = d.output_activation_min <= -128 && d.output_activation_max >= 127;
  using BandFn = void (*)(const Band&, const Channel&);
  const BandFn fast = !k3 ? nullptr : s.stride_w == 1 ? Band3x3<1> : Band3x3<2>;
  WindowBuffer wb;  // its padding written once for the node (where the window loops run it)
  if (window) wb.Init(m);
  Channel ch[4];
  for (int c0 = 0; c0 < s.channels; c0 += 4) {
    const int n = s.channels - c0 < 4 ? s.channels - c0 : 4;
    const int tapped_groups = tapped != 0 ? TapsGroupsFrom(c0, s.channels, OutsideShortcut(d)) : 0;
    if (tapped_groups > 0) {  // a run TapsNode did above
      c0 += 4 * (tapped_groups - 1);
      continue;
    }
    const bool windowed = window && n == 4 && WindowGroup(m, wb, in_data, w_data, b_data, out_data, d, c0);
    if (!windowed) {
      if (!zeroed) memset(buf, 0, 4 * plane_size * sizeof(int16_t));
      zeroed = true;
      // the 3x3 loops clamp to int8's range, a narrower one after for a whole group of four (ClampPixels): a last group
      // of fewer channels with a narrower range runs BandAny (its channels made with their taps' weights)
      const bool fast_group = full || n == 4;
      for (int j = 0; j < n; ++j) {
        MakeChannel(ch[j], w_data, b_data, d, c0 + j, s.channels, s.k_h, s.k_w, transposed, k3 && fast_group);
      }
      for (int bt = 0; bt < batches; ++bt) {
        const int8_t* in_b = in_data + bt * s.in_h * s.in_w * s.channels;
        int8_t* out_b = out_data + bt * s.out_h * s.out_w * s.channels;
        for (int oy = 0; oy < s.out_h; oy += rows_per_band) {
          const int rows = s.out_h - oy < rows_per_band ? s.out_h - oy : rows_per_band;
          FillPlanes(s, in_b, line_step, col_step, c0, n, oy * s.stride_h - s.pad_h, SpanRows(s, rows), pitch,
                     -d.input_zero_point, buf, plane_size);
          for (int j = 0; j < n; ++j) {
            Band b;
            b.plane = buf + j * plane_size;
            b.pitch = pitch;
            b.rows = rows;
            b.out_w = s.out_w;
            b.out = out_b + oy * out_row_step + c0 + j;
            b.out_step = out_col_step;
            b.row_step = out_row_step;
            b.last = bt == batches - 1 && oy + rows == s.out_h;
            b.transposed = transposed;
            if (fast && fast_group && ch[j].mode == kRight) {
              fast(b, ch[j]);
            } else {
              BandAny(b, ch[j], s);
            }
          }
        }
      }
    }
    // both loops clamp to int8's range; a narrower one is clamped after, the group's every output (a last group of
    // fewer channels ran BandAny, which clamps each output itself)
    if (!full && n == 4) {
      ClampPixels(out_data + c0, batches * m.out_h, m.out_w, m.out_w * m.channels, m.channels, d.output_activation_min,
                  d.output_activation_max);
    }
  }
  return kTfLiteOk;
}

template <TfLiteRegistration (*kLibrary)()>
TfLiteRegistration Registration() {
  return util::Kernel<tflite::OpDataConv, kLibrary, TakesConvNode<OwnLoopsTake>,
                      PrepareConvNode<OwnLoopsTake, PrepareDepthwiseConv, cmsis::PrepareDepthwiseConv, true>,
                      EvalOurs, FlashOpData>::Registration();
}

}  // namespace

TfLiteRegistration Register_DEPTHWISE_CONV_2D() { return Registration<Library>(); }
TfLiteRegistration Register_DEPTHWISE_CONV_2D_INT8() { return Registration<nullptr>(); }

}  // namespace kernels
}  // namespace td
