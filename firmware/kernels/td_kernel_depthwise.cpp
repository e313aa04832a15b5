// tinydeploy's int8 DEPTHWISE_CONV_2D, bit-exact with TFLM's reference kernel (DepthwiseConvPerChannel).
//
// Where its loops apply (int8, depth multiplier 1, at most kMaxTaps filter taps, maps of 2 pixels or more) they
// replace the library's CMSIS-NN kernel; elsewhere the library's CMSIS-NN function runs the node on this
// registration's op data (td_kernel_cmsis.h), chosen in Prepare. The per-channel multipliers and shifts come from flash
// (td_kernel_params.h); nothing beyond TFLM's OpDataConv is kept in the arena.
//
// How it computes, per group of 4 channels (one 32-bit word of each NHWC pixel):
//  - a 3x3 filter at stride 1 or 2 (one batch, two output pixels or more) runs the window loops, the map cut into tiles
//    of up to 18 x 29 outputs at stride 1 (9 x 15 at stride 2), a tall map transposed (its columns as rows: a keyword
//    net's 25x5 in one tile of 5 rows of 25). Per tile, WindowCopy copies the input under its windows into a buffer on
//    the stack, each channel's rows apart and each word holding two neighbouring pixels of one channel, widened to 16
//    bits with the input offset added (SXTAB16 on two pixels' bytes packed by PKHBT/PKHTB), padded with zeros (a
//    padded tap adds w * 0, as the reference's skipped tap adds nothing). A pixel pair of one channel is then one
//    SMLAD operand at a fixed offset: Window3x3PairsS1 / S2 run two outputs of a row at a time, 4 multiplies for a
//    filter row's 6 taps (SMLAD, SMLABT, SMLATB), 127 (139 at stride 2) instructions for 72 MACs with the
//    requantization of the pair's eight outputs; an odd width's last column runs Window3x3Column;
//  - the accumulators hold twice the sum (the weights and bias are doubled), so that TFLM's requantization is
//    util::RequantFast's three instructions (exact, for any int8 weights, where the multiplier is below 1 and the right
//    shift and the bias within the bound WindowGroup checks); a group with a channel beyond that runs the planes;
//  - the planes (the other filters, strides and dilations, more than one batch, the groups the window loops leave,
//    a last group of fewer than 4 channels): FillPlanes copies a band of output rows' input rows into one 16-bit plane
//    per channel, BandAny runs each output's taps one at a time with the requantization's exact form (TFLM's own
//    function, its left-shift form where the multiplier is 1 or more, or the fast one where its bound holds).
// A single output pixel (a 1x1 map, or a 2x2 one at stride 2), and a map of 2 to 4 pixels where it is cheaper than the
// window loops (a 2x2 map), run Taps: each output pixel's taps inside the image alone (4 of a 3x3 filter's 9 on a 2x2
// map at stride 1), four channels a word, in assembly with the group's constants made once. The window loops clamp to
// int8's range; a narrower activation range is clamped after, four channels a word (ClampPixels).
//
// In place: each group reads its whole input before it writes an output where the planes take the map in one band,
// the window loops run it in one tile (EvalOurs has the planes run an aliased node of more tiles), or Taps does; an
// output pixel's channel c is written over input channel c's bytes, which only that group reads. tinydeploy's memory
// plan then puts the output over the input (analyze/requant.py's depthwise_in_place; the study's MobileNetV2: 17
// nodes, its head 1 KB lower), which TFLM's kernels cannot run.

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

// Whether the window loops run the nodes they take (1; measured cheaper than the planes on every map of
// bench/kernels.py's models); the tests build with 0 to run the planes on every shape they cover.
#ifndef TD_DW_WINDOW
#define TD_DW_WINDOW 1
#endif
// Whether Taps runs a small map of more than one output pixel: 2 where it is cheaper than the window loops (which can
// take the node), 1 wherever its list fits (the tests, to run it on every shape it covers), 0 never.
#ifndef TD_DW_TAPS
#define TD_DW_TAPS 2
#endif

using DwOp = util::KernelOp;
using util::Geometry;

// Whether the node's output map runs the window loops: stride 1 or 2 both ways, no dilation, a 3x3 filter, one batch,
// two output pixels or more (a single one runs Taps).
inline bool WindowTakes(int batches, int out_h, int out_w, int k_h, int k_w, int stride_h, int stride_w, int dil_h,
                        int dil_w) {
  return batches == 1 && k_h == 3 && k_w == 3 && dil_h == 1 && dil_w == 1 && stride_h == stride_w &&
         (stride_w == 1 || stride_w == 2) && out_h * out_w >= 2;
}

// The window loops' instructions for a group of four channels on the map (TapsCheaper), as measured with
// bench/kernels.py on the MobileNets' and the keyword net's maps: about 66 an output pixel (127 a pair of them at
// stride 1, 139 at stride 2, with the requantization), the copy about 8 a pixel of the windows' extent (padding
// included) and the group's set-up (its constants and weights, the calls) about 460 (bench/hotspots.py before a
// one-tile map's runs were made once a node; about 330 since, which makes the same choices on those models' maps).
inline int WindowGroupCount(const Geometry& m) {
  const int rows = (m.out_h - 1) * m.stride_h + 3, cols = (m.out_w - 1) * m.stride_w + 3;
  return 66 * m.out_h * m.out_w + 8 * rows * cols + 460;
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
    // the window loops, whose groups outside their form (and a last one of fewer than four channels) the planes run
    const bool window = row_fits && WindowTakes(input->dims->data[0], output->dims->data[1], output->dims->data[2],
                                                k_h, k_w, params.stride_height, params.stride_width,
                                                params.dilation_height_factor, params.dilation_width_factor);
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

// What one channel's loops need (the planes, BandAny): its weights and bias and its requantization.
struct Channel {
  int32_t w[kMaxTaps];  // each tap's weight, row after row
  int32_t bias;
  int32_t mult, shift, add, right;  // TFLM's multiplier and shift; the fast form's constants (see MakeChannel)
  int mode;
  int32_t lo, hi, zp;               // the activation range and the output zero point
};

// kRight: a multiplier below 1, util::RequantFast; kLeft: 1 or more (TFLM shifts left and does not round):
// SMMLAR(acc2 << shift, m, zp); kSlow: TFLM's own function (where a bound does not allow the others).
enum Mode { kSlow = 0, kRight = 1, kLeft = 2 };

// A channel of a node the planes run: its taps' weights, row after row, its bias and its requantization's form.
void MakeChannel(Channel& ch, const int8_t* filter, const int32_t* bias, const tflite::OpDataConv& d, int c,
                 int channels, int taps) {
  int32_t abs_sum = 0;
  for (int k = 0; k < taps; ++k) {
    const int32_t w = filter[k * channels + c];
    ch.w[k] = w;
    abs_sum += w < 0 ? -w : w;
  }
  const int32_t b = bias ? bias[c] : 0;
  ch.bias = b;
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

// A band of output rows of one channel, read from its plane: the channel's input rows, the input offset added and
// widened to 16 bits, padded with zeros (a padded tap of the reference adds nothing; here it adds w * 0).
struct Band {
  const int16_t* plane;
  int pitch;      // values from one plane row to the next
  int rows;       // output rows
  int out_w;
  int8_t* out;    // the band's first output of the channel
  int out_step;   // bytes from one output of a row to the next (the channel count)
  int row_step;   // bytes from one row's first output to the next row's
};

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
// (the columns beside the image are zeroed once for the node and never written).
// Four channels at a time come from one word per pixel: SXTAB16 widens and offsets two of them in one instruction,
// and two pixels' halves are packed (PKHBT/PKHTB) into one word store per plane.
__attribute__((noinline)) void FillPlanes(const Geometry& s, const int8_t* in, int c0, int n, int iy0, int rows,
                                          int pitch, int32_t offset, int16_t* planes, int plane_size) {
  const int line_step = s.in_w * s.channels, col_step = s.channels;  // bytes from an input row, a column to the next
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

// Values per plane row: the taps' reach and 3 more, made even (word alignment of every row). The 3 were read by the
// 3x3 rows' unstored partner of a last odd output, which the planes no longer run; OwnLoopsTake's row_fits and
// analyze/requant.py's _one_band count the same pitch, so the nodes the planes take and run in place stay as they were.
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

// ---- The window loops (the map in tiles) ----
// The output map is cut into tiles (as many rows and columns as kTileRows and kTileCols allow); per tile and group of
// four channels, the input under the tile's windows is copied into a buffer, each channel's rows apart and each
// word holding two neighbouring pixels of one channel, widened to 16 bits with the input offset added: buffer column
// x (from the tile's first input column, padding included) is the bottom half of channel c's word x / 2 in its row
// (row y: bytes 256 y + 64 c + 4 (x / 2)). A pixel pair of one channel is then one SMLAD operand, and the three taps
// of a filter row take two multiplies for an output at an even column: SMLAD of (x_j, x_j+1) by (w0, w1) and the
// bottom of (x_j+2, x_j+3) by w2, the top of (w1, w2); a pair of outputs at stride 1 (columns j, j + 1) four
// multiplies for six taps (x_j+1 w0 by SMLATB, (x_j+2, x_j+3) by (w1, w2)), at stride 2 (j, j + 2) four as well. Every
// offset is fixed (a row's channels 64 B apart, its rows 256 B), so the loops in assembly load each operand pair by
// one LDRD with an immediate offset: 6 instructions for a filter row of a channel and an output pair at stride 1 (7
// at stride 2), 72 (84) of the pair's 127 (139) with the requantization of its eight outputs (a channel's constants
// loaded once for its two). The padding is 0 in the buffer (a padded tap adds w * 0, as the reference's skipped tap
// adds nothing): written once for the node where the map is one tile, for each tile and group otherwise (ZeroPadding).
// Input rows of a tile's buffer: 5 KB of stack (the tests build with fewer, to run maps of several tiles of rows
// within the firmware's 600 outputs).
#ifndef TD_DW_TILE_ROWS
#define TD_DW_TILE_ROWS 20
#endif
constexpr int kTileRows = TD_DW_TILE_ROWS;
constexpr int kTileCols = 32;                   // input columns a channel's row holds (16 words)
constexpr int kTileRowBytes = 4 * 2 * kTileCols;  // 256: four channels' rows

// The most output rows (columns) of a tile at the stride: its windows' input rows within kTileRows; its columns' up
// to the word after the last one a window reads (an odd last output at stride 1 reads column out_w + 2, whose word's
// top is not used) within kTileCols.
inline int TileMost(int stride, bool cols) { return (cols ? kTileCols - 4 : kTileRows - 3) / stride + 1; }

// The size of the tiles along one side: as many as needed, of equal size (even at stride 1 across, where outputs
// pair up, if that fits).
inline int TileSide(int out, int stride, bool cols) {
  const int most = TileMost(stride, cols), tiles = (out + most - 1) / most;
  int side = (out + tiles - 1) / tiles;
  if (cols && stride == 1 && (side & 1) && side < most && side < out) ++side;
  return side;
}

// A tile of the output map and the part of the input under its windows (rows and columns of the buffer from the
// tile's first input row and column, padding included): the image's pixels are rows ya .. yb - 1, columns xa .. xb - 1.
struct Tile {
  int oy, ox, rows, cols;  // the outputs
  int iy, ix;              // the input row and column of the buffer's first
  int er, ec;              // the rows and columns under the windows
  int ya, yb, xa, xb;

  Tile(const Geometry& s, int oy_, int ox_, int rows_, int cols_) : oy(oy_), ox(ox_), rows(rows_), cols(cols_) {
    iy = oy * s.stride_h - s.pad_h;
    ix = ox * s.stride_w - s.pad_w;
    er = (rows - 1) * s.stride_h + 3;
    ec = (cols - 1) * s.stride_w + 3;
    ya = iy < 0 ? -iy : 0;
    yb = s.in_h - iy < er ? s.in_h - iy : er;
    xa = ix < 0 ? -ix : 0;
    xb = s.in_w - ix < ec ? s.in_w - ix : ec;
    if (yb < ya) yb = ya;
    if (xb < xa) xb = xa;
  }
};

// The padding under a tile's windows set to 0 in the buffer: the rows above and below the image, and in the image's
// rows each channel's words left and right of it (the words of WindowCopy's lead and tail pixels it writes whole).
// (The few words a row are stored one by one: GCC would call memset for each.)
__attribute__((optimize("no-tree-loop-distribute-patterns"))) void ZeroPadding(int8_t* buf, const Tile& t) {
  if (t.ya > 0) memset(buf, 0, t.ya * kTileRowBytes);
  if (t.yb < t.er) memset(buf + t.yb * kTileRowBytes, 0, (t.er - t.yb) * kTileRowBytes);
  const int left = t.xa / 2, right = (t.xb + 1) / 2, end = (t.ec + 1) / 2;
  if (left == 0 && right >= end) return;
  for (int32_t* row = reinterpret_cast<int32_t*>(buf + t.ya * kTileRowBytes);
       row < reinterpret_cast<int32_t*>(buf + t.yb * kTileRowBytes); row += 16) {
    for (int k = 0; k < left; ++k) row[k] = 0;
    for (int k = right; k < end; ++k) row[k] = 0;
  }
}

// The run of a group's output pairs (Window3x3PairsS1, Window3x3PairsS2): `rows` rows of `pairs` pairs.
struct PairRun {
  const int8_t* in;      // 0: the first pair's windows in the buffer (their first column's word, row 0, channel 0)
  const int32_t* w;      // 4: 24 words: per filter row r and channel c, (2 w_r0, 2 w_r1), (2 w_r1, 2 w_r2) at 8r + 2c
  const int32_t* bias2;  // 8: the four doubled biases twice (8 words)
  const int32_t* q;      // 12: per channel mult, add, right (12 words)
  int8_t* out;           // 16: the first pair's first output, channel c0
  int32_t out_step;      // 20: bytes from an output pixel to the next (the channel count)
  int32_t pairs;         // 24: pairs a row, >= 1
  int32_t rows;          // 28: >= 1
  int32_t in_skip;       // 32: bytes from the windows after a row's last pair to the next row's first
  int32_t out_skip;      // 36: bytes from the output after a row's last pair to the next row's first
};
static_assert(sizeof(PairRun) == 40, "the assembly's offsets into PairRun");

// A column of single outputs (an odd tile width's last column, Window3x3Column): one output a row.
struct ColumnRun {
  const int8_t* in;      // 0: the first output's window in the buffer
  const int32_t* w;      // 4: as PairRun's
  const int32_t* bias2;  // 8: the four doubled biases
  const int32_t* q;      // 12: as PairRun's
  int8_t* out;           // 16: the first output, channel c0
  int32_t rows;          // 20: >= 1
  int32_t in_step;       // 24: bytes from a window to the next (256 x stride)
  int32_t out_step;      // 28: bytes from an output to the next (a row of the output)
};
static_assert(sizeof(ColumnRun) == 32, "the assembly's offsets into ColumnRun");

// The image's part of a tile for a group (WindowCopy): `rows` rows from src; per row a lead pixel (an odd first
// column: the top halves of its word, the bottom ones padding), `pairs` pixel pairs, a tail pixel (the bottom halves).
struct CopyRun {
  const int8_t* src;  // 0: the first row's first pixel, channel c0
  int8_t* dst;        // 4: its row's word in the buffer (channel 0)
  int32_t step;       // 8: bytes from a pixel to the next in the tensor (the channel count)
  int32_t off2;       // 12: -input zero point, twice
  int32_t lead;       // 16: 0 or 1
  int32_t pairs;      // 20
  int32_t tail;       // 24: 0 or 1
  int32_t rows;       // 28: >= 1
  int32_t src_skip;   // 32: bytes from after a row's last pixel to the next row's first, in the tensor
};
static_assert(sizeof(CopyRun) == 36, "the assembly's offsets into CopyRun");

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#define TD_STR(x) #x
#define TD_XSTR(x) TD_STR(x)
// filter row R, channel C of an output pair at stride 1: the pair's words (x_j, x_j+1), (x_j+2, x_j+3) in r9, r10,
// the weights (w0, w1), (w1, w2) in r11, r12; accumulators A (column j) and B (j + 1)
#define TD_WT_S1(R, C, A, B)                                              \
  "ldrd r9, r10, [r0, #" TD_XSTR(256 * R + 64 * C) "]\n\t"                \
  "ldrd r11, r12, [lr, #" TD_XSTR(32 * R + 8 * C) "]\n\t"                 \
  "smlad " A ", r9, r11, " A "\n\t"                                       \
  "smlabt " A ", r10, r12, " A "\n\t"                                     \
  "smlatb " B ", r9, r11, " B "\n\t"                                      \
  "smlad " B ", r10, r12, " B "\n\t"
// the same at stride 2: B at column j + 2 takes (x_j+2, x_j+3) by (w0, w1) and x_j+4 (the next word's bottom) by w2
#define TD_WT_S2(R, C, A, B)                                              \
  "ldrd r9, r10, [r0, #" TD_XSTR(256 * R + 64 * C) "]\n\t"                \
  "ldrd r11, r12, [lr, #" TD_XSTR(32 * R + 8 * C) "]\n\t"                 \
  "smlad " A ", r9, r11, " A "\n\t"                                       \
  "smlabt " A ", r10, r12, " A "\n\t"                                     \
  "ldr r9, [r0, #" TD_XSTR(256 * R + 64 * C + 8) "]\n\t"                  \
  "smlad " B ", r10, r11, " B "\n\t"                                      \
  "smlabt " B ", r9, r12, " B "\n\t"
// one output at an even column: (x_j, x_j+1) by (w0, w1), x_j+2 by w2
#define TD_WT_ONE(R, C, A)                                                \
  "ldrd r9, r10, [r0, #" TD_XSTR(256 * R + 64 * C) "]\n\t"                \
  "ldrd r11, r12, [lr, #" TD_XSTR(32 * R + 8 * C) "]\n\t"                 \
  "smlad " A ", r9, r11, " A "\n\t"                                       \
  "smlabt " A ", r10, r12, " A "\n\t"
#define TD_WT_ROWS(M)                                                                                        \
  M(0, 0, "r1", "r5") M(0, 1, "r2", "r6") M(0, 2, "r3", "r7") M(0, 3, "r4", "r8") M(1, 0, "r1", "r5")       \
  M(1, 1, "r2", "r6") M(1, 2, "r3", "r7") M(1, 3, "r4", "r8") M(2, 0, "r1", "r5") M(2, 1, "r2", "r6")       \
  M(2, 2, "r3", "r7") M(2, 3, "r4", "r8")
#define TD_WT_ONE_ROWS                                                                                       \
  TD_WT_ONE(0, 0, "r1") TD_WT_ONE(0, 1, "r2") TD_WT_ONE(0, 2, "r3") TD_WT_ONE(0, 3, "r4") TD_WT_ONE(1, 0, "r1") \
  TD_WT_ONE(1, 1, "r2") TD_WT_ONE(1, 2, "r3") TD_WT_ONE(1, 3, "r4") TD_WT_ONE(2, 0, "r1") TD_WT_ONE(2, 1, "r2") \
  TD_WT_ONE(2, 2, "r3") TD_WT_ONE(2, 3, "r4")
// accumulators A and B of one channel (doubled) requantized with its mult, add, right from r9 (advanced); lr free
#define TD_WT_OUT2(A, B)                \
  "ldm r9!, {r10, r11, r12}\n\t"        \
  "smmlar lr, " A ", r10, r11\n\t"      \
  "add lr, lr, " A ", asr #31\n\t"      \
  "asr " A ", lr, r12\n\t"              \
  "ssat " A ", #8, " A "\n\t"           \
  "smmlar lr, " B ", r10, r11\n\t"      \
  "add lr, lr, " B ", asr #31\n\t"      \
  "asr " B ", lr, r12\n\t"              \
  "ssat " B ", #8, " B "\n\t"
// accumulator A (doubled) requantized into A with the next channel's mult, add, right from r9 (advanced)
#define TD_WT_OUT(A)                    \
  "ldm r9!, {r10, r11, r12}\n\t"        \
  "smmlar r11, " A ", r10, r11\n\t"     \
  "add r11, r11, " A ", asr #31\n\t"    \
  "asr " A ", r11, r12\n\t"             \
  "ssat " A ", #8, " A "\n\t"
// registers: the pair's windows r0, the weights lr, accumulators r1-r4 (the first output's c0-c3) and r5-r8; the
// stack holds a copy of the run (the same offsets; rows and out advanced there) and, at [sp, #40], where the row's
// pairs end. The int8 range only: EvalOurs clamps a narrower one after.
#define TD_WT_PAIRS(NAME, MAC, BYTES)                   \
  __attribute__((naked, noinline)) void NAME(const PairRun*) { \
    __asm__ volatile(                                   \
        "push {r4-r11, lr}\n\t"                         \
        "sub sp, #44\n\t"                               \
        "ldm r0, {r1-r10}\n\t"                          \
        "stm sp, {r1-r10}\n\t"                          \
        "mov lr, r2\n\t"                                \
        "mov r0, r1\n\t"                                \
        "0:\n\t"                                        \
        "ldr r10, [sp, #24]\n\t"                        \
        "mov r9, #" BYTES "\n\t"                        \
        "mla r10, r10, r9, r0\n\t"                      \
        "str r10, [sp, #40]\n\t"                        \
        "1:\n\t"                                        \
        "ldr r9, [sp, #8]\n\t"                          \
        "ldm r9, {r1-r8}\n\t"                           \
        TD_WT_ROWS(MAC)                                 \
        "adds r0, #" BYTES "\n\t"                       \
        "ldr r9, [sp, #12]\n\t"                         \
        TD_WT_OUT2("r1", "r5") TD_WT_OUT2("r2", "r6") TD_WT_OUT2("r3", "r7") TD_WT_OUT2("r4", "r8") \
        "ldr lr, [sp, #4]\n\t"                         \
        "bfi r1, r2, #8, #8\n\t"                        \
        "bfi r1, r3, #16, #8\n\t"                       \
        "bfi r1, r4, #24, #8\n\t"                       \
        "bfi r5, r6, #8, #8\n\t"                        \
        "bfi r5, r7, #16, #8\n\t"                       \
        "bfi r5, r8, #24, #8\n\t"                       \
        "ldrd r9, r10, [sp, #16]\n\t"                   \
        "str r1, [r9]\n\t"                              \
        "str r5, [r9, r10]\n\t"                         \
        "add r9, r9, r10, lsl #1\n\t"                   \
        "str r9, [sp, #16]\n\t"                         \
        "ldr r9, [sp, #40]\n\t"                         \
        "cmp r0, r9\n\t"                                \
        "bne 1b\n\t"                                    \
        "ldrd r10, r11, [sp, #32]\n\t"                  \
        "add r0, r0, r10\n\t"                           \
        "ldr r10, [sp, #16]\n\t"                        \
        "add r10, r10, r11\n\t"                         \
        "str r10, [sp, #16]\n\t"                        \
        "ldr r10, [sp, #28]\n\t"                        \
        "subs r10, #1\n\t"                              \
        "str r10, [sp, #28]\n\t"                        \
        "bne 0b\n\t"                                    \
        "add sp, #44\n\t"                               \
        "pop {r4-r11, pc}");                            \
  }
TD_WT_PAIRS(Window3x3PairsS1, TD_WT_S1, "4")
TD_WT_PAIRS(Window3x3PairsS2, TD_WT_S2, "8")

// registers: the window r0, the weights lr, accumulators r1-r4, the output r5, rows r6, in_step r7, out_step r8; the
// stack holds the doubled biases' and the constants' addresses
__attribute__((naked, noinline)) void Window3x3Column(const ColumnRun*) {
  __asm__ volatile(
      "push {r4-r11, lr}\n\t"
      "ldrd r1, r2, [r0, #8]\n\t"
      "push {r1, r2}\n\t"
      "ldr lr, [r0, #4]\n\t"
      "ldrd r5, r6, [r0, #16]\n\t"
      "ldrd r7, r8, [r0, #24]\n\t"
      "ldr r0, [r0]\n\t"
      "0:\n\t"
      "ldr r9, [sp]\n\t"
      "ldm r9, {r1-r4}\n\t"
      TD_WT_ONE_ROWS
      "ldr r9, [sp, #4]\n\t"
      TD_WT_OUT("r1") TD_WT_OUT("r2") TD_WT_OUT("r3") TD_WT_OUT("r4")
      "bfi r1, r2, #8, #8\n\t"
      "bfi r1, r3, #16, #8\n\t"
      "bfi r1, r4, #24, #8\n\t"
      "str r1, [r5]\n\t"
      "add r5, r8\n\t"
      "add r0, r7\n\t"
      "subs r6, #1\n\t"
      "bne 0b\n\t"
      "add sp, #8\n\t"
      "pop {r4-r11, pc}");
}
#undef TD_WT_PAIRS
#undef TD_WT_OUT2
#undef TD_WT_OUT
#undef TD_WT_ONE_ROWS
#undef TD_WT_ROWS
#undef TD_WT_ONE
#undef TD_WT_S2
#undef TD_WT_S1
#undef TD_XSTR
#undef TD_STR

// registers: src r1, the row's word r2, step r3, off2 r4, pairs r6; on the stack lead [sp], tail [sp, #4], rows
// [sp, #8], src_skip [sp, #12]; the word r10, the steps left r0, the pixels and their halves r5, r7-r9, r11, r12, lr.
// Two pixel pairs a step: 25 instructions (4 loads, 4 packs of two pixels' bytes, 8 SXTAB16, 4 STRD: a channel's two
// words); an odd pair 16, a lead or tail pixel 13.
__attribute__((naked, noinline)) void WindowCopy(const CopyRun*) {
  __asm__ volatile(
      "push {r4-r11, lr}\n\t"
      "ldm r0, {r1-r9}\n\t"
      "push {r5, r7, r8, r9}\n\t"
      "0:\n\t"
      "mov r10, r2\n\t"
      "ldr r5, [sp]\n\t"
      "cbz r5, 1f\n\t"
      "ldr r11, [r1]\n\t"
      "add r1, r3\n\t"
      "sxtab16 r12, r4, r11\n\t"
      "sxtab16 r11, r4, r11, ror #8\n\t"
      "lsl lr, r12, #16\n\t"
      "str lr, [r10]\n\t"
      "lsl lr, r11, #16\n\t"
      "str lr, [r10, #64]\n\t"
      "bfc r12, #0, #16\n\t"
      "str r12, [r10, #128]\n\t"
      "bfc r11, #0, #16\n\t"
      "str r11, [r10, #192]\n\t"
      "adds r10, #4\n\t"
      "1:\n\t"
      "lsrs r0, r6, #1\n\t"
      "beq 2f\n\t"
      "5:\n\t"
      "ldr r5, [r1]\n\t"
      "ldr r7, [r1, r3]\n\t"
      "add r1, r1, r3, lsl #1\n\t"
      "ldr r8, [r1]\n\t"
      "ldr r9, [r1, r3]\n\t"
      "add r1, r1, r3, lsl #1\n\t"
      "pkhbt r11, r5, r7, lsl #16\n\t"
      "pkhtb r7, r7, r5, asr #16\n\t"
      "pkhbt r12, r8, r9, lsl #16\n\t"
      "pkhtb r9, r9, r8, asr #16\n\t"
      "sxtab16 r5, r4, r11\n\t"
      "sxtab16 r8, r4, r12\n\t"
      "strd r5, r8, [r10]\n\t"
      "sxtab16 r5, r4, r11, ror #8\n\t"
      "sxtab16 r8, r4, r12, ror #8\n\t"
      "strd r5, r8, [r10, #64]\n\t"
      "sxtab16 r5, r4, r7\n\t"
      "sxtab16 r8, r4, r9\n\t"
      "strd r5, r8, [r10, #128]\n\t"
      "sxtab16 r5, r4, r7, ror #8\n\t"
      "sxtab16 r8, r4, r9, ror #8\n\t"
      "strd r5, r8, [r10, #192]\n\t"
      "adds r10, #8\n\t"
      "subs r0, #1\n\t"
      "bne 5b\n\t"
      "2:\n\t"
      "tst r6, #1\n\t"
      "beq 3f\n\t"
      "ldr r11, [r1]\n\t"
      "ldr r12, [r1, r3]\n\t"
      "add r1, r1, r3, lsl #1\n\t"
      "pkhbt lr, r11, r12, lsl #16\n\t"
      "pkhtb r12, r12, r11, asr #16\n\t"
      "sxtab16 r11, r4, lr\n\t"
      "sxtab16 lr, r4, lr, ror #8\n\t"
      "str r11, [r10]\n\t"
      "str lr, [r10, #64]\n\t"
      "sxtab16 r11, r4, r12\n\t"
      "sxtab16 r12, r4, r12, ror #8\n\t"
      "str r11, [r10, #128]\n\t"
      "str r12, [r10, #192]\n\t"
      "adds r10, #4\n\t"
      "3:\n\t"
      "ldr r7, [sp, #4]\n\t"
      "cbz r7, 4f\n\t"
      "ldr r11, [r1]\n\t"
      "add r1, r3\n\t"
      "sxtab16 r12, r4, r11\n\t"
      "sxtab16 r11, r4, r11, ror #8\n\t"
      "uxth lr, r12\n\t"
      "str lr, [r10]\n\t"
      "uxth lr, r11\n\t"
      "str lr, [r10, #64]\n\t"
      "lsrs r12, r12, #16\n\t"
      "str r12, [r10, #128]\n\t"
      "lsrs r11, r11, #16\n\t"
      "str r11, [r10, #192]\n\t"
      "4:\n\t"
      "ldr r9, [sp, #12]\n\t"
      "add r1, r9\n\t"
      "add r2, #256\n\t"
      "ldr r8, [sp, #8]\n\t"
      "subs r8, #1\n\t"
      "str r8, [sp, #8]\n\t"
      "bne 0b\n\t"
      "add sp, #16\n\t"
      "pop {r4-r11, pc}");
}
#else
// The same loops in C (a core without the DSP extension), on the buffer's 16-bit values.
inline int32_t TileValue(const int8_t* buf, int row, int c, int col) {
  return reinterpret_cast<const int16_t*>(buf + row * kTileRowBytes + 64 * c)[col];
}
inline int32_t TileWeight(const int32_t* w, int r, int c, int t) {  // tap t of filter row r, channel c (doubled)
  const int16_t* h = reinterpret_cast<const int16_t*>(w + 8 * r + 2 * c);
  return t == 0 ? h[0] : t == 1 ? h[1] : h[3];
}
// one output of channels c0..c3 at the window whose first value is column `col` of the buffer from `buf`
inline int32_t TileOutputs(const int8_t* buf, int col, const int32_t* w, const int32_t* bias2, const int32_t* q) {
  int32_t word = 0;
  for (int c = 0; c < 4; ++c) {
    int32_t a = bias2[c];
    for (int r = 0; r < 3; ++r) {
      for (int t = 0; t < 3; ++t) a += TileValue(buf, r, c, col + t) * TileWeight(w, r, c, t);
    }
    const int32_t o = dsp::ssat8(util::RequantFast(a, q[3 * c], q[3 * c + 1], q[3 * c + 2]));
    word |= (o & 0xff) << (8 * c);
  }
  return word;
}
template <int kStride>
void Window3x3Pairs(const PairRun* r) {
  const int8_t* row = r->in;
  int8_t* out = r->out;
  for (int y = 0; y < r->rows; ++y, row += r->in_skip + 4 * kStride * r->pairs, out += r->out_skip) {
    const int8_t* x = row;
    for (int i = 0; i < r->pairs; ++i, x += 4 * kStride, out += 2 * r->out_step) {
      util::Store4(out, TileOutputs(x, 0, r->w, r->bias2, r->q));
      util::Store4(out + r->out_step, TileOutputs(x, kStride, r->w, r->bias2, r->q));
    }
  }
}
void Window3x3PairsS1(const PairRun* r) { Window3x3Pairs<1>(r); }
void Window3x3PairsS2(const PairRun* r) { Window3x3Pairs<2>(r); }
void Window3x3Column(const ColumnRun* r) {
  const int8_t* x = r->in;
  int8_t* out = r->out;
  for (int y = 0; y < r->rows; ++y, x += r->in_step, out += r->out_step) {
    util::Store4(out, TileOutputs(x, 0, r->w, r->bias2, r->q));
  }
}
void WindowCopy(const CopyRun* r) {
  const int8_t* src = r->src;
  for (int y = 0; y < r->rows; ++y, src += r->src_skip) {
    int16_t* row = reinterpret_cast<int16_t*>(r->dst + y * kTileRowBytes);
    const int lead = r->lead, n = lead + 2 * r->pairs + r->tail;
    if (lead) {
      for (int c = 0; c < 4; ++c) row[32 * c] = 0;  // the lead's word's bottom: padding
    }
    for (int i = 0; i < n; ++i, src += r->step) {
      const int col = i + lead;  // the lead pixel's column is odd, the word's bottom (padding) already 0
      for (int c = 0; c < 4; ++c) row[32 * c + col] = static_cast<int16_t>(src[c] + static_cast<int16_t>(r->off2));
    }
    if (r->tail) {
      for (int c = 0; c < 4; ++c) row[32 * c + n + lead] = 0;  // the tail's word's top: padding
    }
  }
}
#endif

// A group's doubled weights as the window loops read them: per filter row r (three words `step` bytes apart, each
// tap's four channels, from f + r row_step) and channel c, (2 w_r0, 2 w_r1) and (2 w_r1, 2 w_r2) at w[8r + 2c],
// w[8r + 2c + 1]. (A map run transposed reads the filter's columns as rows.)
inline void WindowWeights(const int8_t* f, int step, int row_step, int32_t* w) {
  for (int r = 0; r < 3; ++r, f += row_step, w += 8) {
    const int32_t t0 = util::Load4(f), t1 = util::Load4(f + step), t2 = util::Load4(f + 2 * step);
    int32_t e0 = dsp::sxtb16(t0), e1 = dsp::sxtb16(t1), e2 = dsp::sxtb16(t2);  // channels 0 and 2
    int32_t o0 = dsp::sxtb16_ror8(t0), o1 = dsp::sxtb16_ror8(t1), o2 = dsp::sxtb16_ror8(t2);  // 1 and 3
    e0 = dsp::sadd16(e0, e0), e1 = dsp::sadd16(e1, e1), e2 = dsp::sadd16(e2, e2);
    o0 = dsp::sadd16(o0, o0), o1 = dsp::sadd16(o1, o1), o2 = dsp::sadd16(o2, o2);
    w[0] = dsp::pack_bottoms(e0, e1), w[1] = dsp::pack_bottoms(e1, e2);
    w[2] = dsp::pack_bottoms(o0, o1), w[3] = dsp::pack_bottoms(o1, o2);
    w[4] = dsp::pack_tops(e0, e1), w[5] = dsp::pack_tops(e1, e2);
    w[6] = dsp::pack_tops(o0, o1), w[7] = dsp::pack_tops(o1, o2);
  }
}

// Bytes in the tensors from one of the loops' input rows to the next (line) and from a pixel of the row to the next
// (col), the same in the output, from a tap of a filter row to the next (tap) and from a filter row to the next
// (tap_row): a map run transposed has its rows and columns swapped.
struct Steps {
  int line, col, out_row, out_col, tap, tap_row;
};

// A tile's runs for a group, their input and output at the tensors' channel 0 (RunTile adds the group's first
// channel), and the group's weights and constants they read: made once for a node whose map is one tile, per tile
// otherwise. A run with nothing to do has a count of 0.
struct TileRuns {
  alignas(8) int32_t w[24];  // WindowWeights
  int32_t consts[20];        // the four doubled biases twice, then per channel mult, add, right
  void (*pairs_fn)(const PairRun*);
  CopyRun copy;              // its off2 set once for the node (EvalOurs)
  PairRun pairs;
  ColumnRun column;
};

void MakeTileRuns(const Geometry& s, const Steps& st, const Tile& t, int8_t* buf, const int8_t* in, int8_t* out,
                  TileRuns& r) {
  const int n = t.xb - t.xa;
  CopyRun& cr = r.copy;
  cr.src = in + (t.iy + t.ya) * st.line + (t.ix + t.xa) * st.col;
  cr.dst = buf + t.ya * kTileRowBytes + 4 * (t.xa / 2);
  cr.step = st.col;
  cr.lead = t.xa & 1;
  cr.pairs = (n - cr.lead) / 2;
  cr.tail = (n - cr.lead) & 1;
  cr.rows = n > 0 ? t.yb - t.ya : 0;
  cr.src_skip = st.line - n * st.col;
  int8_t* o = out + t.oy * st.out_row + t.ox * st.out_col;
  const int pairs = t.cols / 2, done = 2 * pairs, sw = s.stride_w;
  r.pairs_fn = sw == 1 ? Window3x3PairsS1 : Window3x3PairsS2;
  PairRun& p = r.pairs;
  p.in = buf;
  p.w = r.w;
  p.bias2 = r.consts;
  p.q = r.consts + 8;
  p.out = o;
  p.out_step = st.out_col;
  p.pairs = pairs;
  p.rows = t.rows;
  p.in_skip = kTileRowBytes * s.stride_h - 4 * sw * pairs;
  p.out_skip = st.out_row - done * st.out_col;
  ColumnRun& c = r.column;  // an odd width's last column, whose window starts at an even column of the buffer
  c.in = buf + 4 * (done * sw / 2);
  c.w = r.w;
  c.bias2 = r.consts;
  c.q = r.consts + 8;
  c.out = o + done * st.out_col;
  c.rows = done < t.cols ? t.rows : 0;
  c.in_step = kTileRowBytes * s.stride_h;
  c.out_step = st.out_row;
}

// The tile's runs for the group of channels from c0: the image's part copied into the buffer, then the output pairs
// and the last column.
void RunTile(TileRuns& r, int c0) {
  if (r.copy.rows > 0) {
    r.copy.src += c0;
    WindowCopy(&r.copy);
    r.copy.src -= c0;
  }
  if (r.pairs.pairs > 0) {
    r.pairs.out += c0;
    r.pairs_fn(&r.pairs);
    r.pairs.out -= c0;
  }
  if (r.column.rows > 0) {
    r.column.out += c0;
    Window3x3Column(&r.column);
    r.column.out -= c0;
  }
}

// The group of channels c0 .. c0 + 3 by the window loops, tile by tile (`tile_h` x `tile_w` outputs, the last ones
// smaller); or false where a channel's requantization is not util::RequantFast's for any weights (a multiplier of 1 or
// more, a right shift beyond 22, a bias beyond 2^27), the group then left to the planes. The bound |acc| <= |bias| +
// 255 * 128 * 9 < 2^28, whatever the weights, makes util::MakeRequant's fast form exact in those ranges (|add| +
// x_max + 1 < 2^30 + 2^28 + 2 < 2^31). Where the map is one tile, `r` holds its runs (and the buffer its padding) for
// every group; otherwise each tile's are made here, its padding written.
bool WindowGroup(const Geometry& s, const Steps& st, int tile_h, int tile_w, TileRuns& r, int8_t* buf,
                 const int8_t* in, const int8_t* filter, const int32_t* bias, int8_t* out, const tflite::OpDataConv& d,
                 int c0) {
  for (int j = 0; j < 4; ++j) {
    const int c = c0 + j, right = -d.per_channel_output_shift[c];
    const int32_t b = bias ? bias[c] : 0, mult = d.per_channel_output_multiplier[c];
    if (mult < 0 || right < 1 || right > 22 || b > (1 << 27) || b < -(1 << 27)) return false;
    r.consts[j] = r.consts[4 + j] = 2 * b;
    r.consts[8 + 3 * j] = mult;
    r.consts[9 + 3 * j] = util::ShortcutAdd(right, d.output_zero_point);
    r.consts[10 + 3 * j] = right;
  }
  WindowWeights(filter + c0, st.tap, st.tap_row, r.w);
  if (tile_h == s.out_h && tile_w == s.out_w) {
    RunTile(r, c0);
    return true;
  }
  for (int oy = 0; oy < s.out_h; oy += tile_h) {
    for (int ox = 0; ox < s.out_w; ox += tile_w) {
      const Tile t(s, oy, ox, s.out_h - oy < tile_h ? s.out_h - oy : tile_h,
                   s.out_w - ox < tile_w ? s.out_w - ox : tile_w);
      ZeroPadding(buf, t);
      MakeTileRuns(s, st, t, buf, in, out, r);
      RunTile(r, c0);
    }
  }
  return true;
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
  // the map's whole groups by the window loops where they are cheaper (one batch: WindowTakes), tile by tile, a tall
  // map transposed (longer rows, fewer tiles: a keyword net's 25x5 in one tile of 5 rows of 25); in place only where
  // one tile is the map (a group then reads all its input before it writes)
  const bool wt = m.out_h > m.out_w;
  const Geometry ws = wt ? Transposed(m) : m;
  const int tile_h = TileSide(ws.out_h, ws.stride_h, false), tile_w = TileSide(ws.out_w, ws.stride_w, true);
  const bool one_tile = tile_h == ws.out_h && tile_w == ws.out_w;
  const bool window = tapped == 0 && window_takes &&
                      TD_DW_WINDOW == 1 && (in_data != out_data || one_tile);
  const int c = m.channels;
  const Steps wst = wt ? Steps{c, m.in_w * c, c, m.out_w * c, 3 * c, c}
                       : Steps{m.in_w * c, c, m.out_w * c, c, c, 3 * c};
  alignas(8) int8_t tiles[kTileRows * kTileRowBytes];
  TileRuns runs;
  runs.copy.off2 = dsp::pack16(-d.input_zero_point, -d.input_zero_point);  // the node's, for every tile
  if (window && one_tile) {  // its padding and runs for every group
    const Tile t(ws, 0, 0, ws.out_h, ws.out_w);
    ZeroPadding(tiles, t);
    MakeTileRuns(ws, wst, t, tiles, in_data, out_data, runs);
  }
  // the planes: the other nodes and groups, in bands of output rows (as many as four planes of their input rows fit
  // in the buffer: OwnLoopsTake checked one)
  const int pitch = Pitch(m);
  int rows_per_band = m.out_h;
  while (rows_per_band > 1 && 4 * SpanRows(m, rows_per_band) * pitch > kBufferValues) --rows_per_band;
  // A node planned in place (its output over its input, tinydeploy's plan where analyze/requant.py's
  // depthwise_in_place holds) is right only where each group reads its whole input before it writes: the planes in
  // one band (the window loops in one tile, above). The build plans no other; this refuses one that would compute
  // wrong outputs.
  if (in_data == out_data && rows_per_band < m.out_h) return kTfLiteError;
  const int plane_size = SpanRows(m, rows_per_band) * pitch;
  alignas(4) int16_t buf[kBufferValues];
  bool zeroed = false;  // the planes' padding, written once for the node where a group runs them
  const bool full = d.output_activation_min <= -128 && d.output_activation_max >= 127;
  Channel ch[4];
  for (int c0 = 0; c0 < m.channels; c0 += 4) {
    const int n = m.channels - c0 < 4 ? m.channels - c0 : 4;
    const int tapped_groups = tapped != 0 ? TapsGroupsFrom(c0, m.channels, OutsideShortcut(d)) : 0;
    if (tapped_groups > 0) {  // a run TapsNode did above
      c0 += 4 * (tapped_groups - 1);
      continue;
    }
    const bool windowed =
        window && n == 4 &&
        WindowGroup(ws, wst, tile_h, tile_w, runs, tiles, in_data, w_data, b_data, out_data, d, c0);
    if (!windowed) {
      if (!zeroed) memset(buf, 0, 4 * plane_size * sizeof(int16_t));
      zeroed = true;
      for (int j = 0; j < n; ++j) MakeChannel(ch[j], w_data, b_data, d, c0 + j, m.channels, m.k_h * m.k_w);
      for (int bt = 0; bt < batches; ++bt) {
        const int8_t* in_b = in_data + bt * m.in_h * m.in_w * m.channels;
        int8_t* out_b = out_data + bt * m.out_h * m.out_w * m.channels;
        for (int oy = 0; oy < m.out_h; oy += rows_per_band) {
          const int rows = m.out_h - oy < rows_per_band ? m.out_h - oy : rows_per_band;
          FillPlanes(m, in_b, c0, n, oy * m.stride_h - m.pad_h, SpanRows(m, rows), pitch, -d.input_zero_point, buf,
                     plane_size);
          for (int j = 0; j < n; ++j) {
            Band b;
            b.plane = buf + j * plane_size;
            b.pitch = pitch;
            b.rows = rows;
            b.out_w = m.out_w;
            b.out = out_b + oy * m.out_w * m.channels + c0 + j;
            b.out_step = m.channels;
            b.row_step = m.out_w * m.channels;
            BandAny(b, ch[j], m);
          }
        }
      }
    }
    // the window loops clamp to int8's range; a narrower one is clamped after, the group's every output (BandAny clamps
    // each output itself)
    if (!full && windowed) {
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
