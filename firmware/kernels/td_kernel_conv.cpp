// tinydeploy's int8 CONV_2D, bit-exact with TFLM's reference kernel (ConvPerChannel): the registration, and the
// kernel for few input channels (a network's first layers, where it is faster). Every other convolution whose values
// under the filter fit td_kernel_matmul.cpp (kMatMulMaxK) runs there as a matrix product (a pointwise one on the pixels
// themselves, a general one on each pixel's values gathered under the filter); the rest run the pinned library's
// CMSIS-NN function on this registration's op data (td_kernel_cmsis.h), chosen in Prepare. Every node's per-channel
// multipliers and shifts come from flash (td_kernel_params.h).
//
// With 1 to 4 input channels the library's kernel spends most of its time on bookkeeping around very short dot
// products. Here each output pixel's K = kh x kw x cin input values are gathered once, with the input offset added
// (a padded tap is 0), as int16 pairs; each output channel is then K/2 SMLAD against its weights, widened (and
// doubled, for the requantization's SMMULR: td_kernel_util.h) once per Eval into a stack block of up to 32 output
// channels. The common case (3x3 over one channel, full range, fast requantization) runs DotFive's assembly on each
// pixel's five pairs, the pixels inside the image in one call a row (FiveRun). Nothing is kept in the arena beyond
// TFLM's OpDataConv.
#include <string.h>

#include "td_dsp.h"
#include "td_kernel_cmsis.h"
#include "td_kernel_params.h"
#include "td_kernel_util.h"
#include "td_kernels.h"
#include "td_kernel_matmul.h"
#include "tensorflow/lite/c/builtin_op_data.h"
#include "tensorflow/lite/micro/kernels/conv.h"
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_context.h"

namespace td {
namespace kernels {
namespace {

constexpr int kMaxInputChannels = 4;
constexpr int kMaxK = 80;        // values under the filter (5x5x3 = 75)
constexpr int kMaxPairs = kMaxK / 2;
constexpr int kBlock = 32;       // output channels whose weights are widened at a time (5 KB of stack at most)

// Where this kernel is faster than the library's (bench/kernels.py): a 3x3 filter over one input channel, 2.62x fewer
// instructions on the bundled Fashion-MNIST CNN's first layer. Over 3 input channels with 8 filters (0.93x) and a 10x4
// filter over one channel (0.83x) it measured slower, so those nodes run the library's kernel. (The tests build with
// -DTD_CONV_ALL_SHAPES=1 to run this kernel on every shape it covers.)
#ifndef TD_CONV_ALL_SHAPES
#define TD_CONV_ALL_SHAPES 0
#endif

using ConvOp = util::KernelOp;

TfLiteRegistration Library() { return tflite::Register_CONV_2D(); }

// A first layer this kernel is faster at (see TD_CONV_ALL_SHAPES): filter dims (cout, kh, kw, cin).
bool FirstLayerTakes(const int* filter) {
  const int cin = filter[3];
  const bool covered = cin <= kMaxInputChannels && filter[1] * filter[2] * cin <= kMaxK;
  return covered && (TD_CONV_ALL_SHAPES || (cin == 1 && filter[1] == 3 && filter[2] == 3));
}

// A 1x1 filter at stride 1 (no padding: the output is the input's size): the pixels times the filters.
bool IsPointwise(const int* filter, const TfLiteConvParams& params) {
  return filter[1] == 1 && filter[2] == 1 && params.stride_height == 1 && params.stride_width == 1;
}

// What a general convolution's rows are gathered from.
struct Gather {
  util::Geometry s;
  const int8_t* in;
  int8_t zp;  // a padded tap: the input's zero point, which the offset turns into 0
};

// Output pixel r's values under the filter, in the filter's (ky, kx, c) order, into dst.
const int8_t* GatherRow(const MatMul& m, int r, int8_t* dst) {
  const Gather& gather = *static_cast<const Gather*>(m.ctx);
  const util::Geometry& g = gather.s;
  const int pixels = g.out_h * g.out_w, b = r / pixels, oy = (r % pixels) / g.out_w, ox = r % g.out_w;
  const int8_t* in = gather.in + b * g.in_h * g.in_w * g.channels;
  const int iy0 = oy * g.stride_h - g.pad_h, ix0 = ox * g.stride_w - g.pad_w;
  const int span = g.k_w * g.channels;
  const bool row_inside = g.dil_w == 1 && ix0 >= 0 && ix0 + g.k_w <= g.in_w;
  if (row_inside && span == 9 && g.k_h == 3 && g.dil_h == 1 && iy0 >= 0 && iy0 + 3 <= g.in_h) {
    // 3x3 over three channels inside the image (a color image's first layer): three copies of nine bytes, each two
    // word moves and a byte
    const int8_t* src = in + (iy0 * g.in_w + ix0) * g.channels;
    const int pitch = g.in_w * g.channels;
    memcpy(dst, src, 9);
    memcpy(dst + 9, src + pitch, 9);
    memcpy(dst + 18, src + 2 * pitch, 9);
    return dst;
  }
  int8_t* d = dst;
  for (int ky = 0; ky < g.k_h; ++ky, d += span) {
    const int iy = iy0 + ky * g.dil_h;
    if (iy < 0 || iy >= g.in_h) {
      memset(d, gather.zp, span);
    } else if (row_inside) {  // the filter's row is inside the image: one copy (a short one without memcpy's call)
      const int8_t* src = in + (iy * g.in_w + ix0) * g.channels;
      if (span <= 16) {
        util::CopySmall(d, src, span);
      } else {
        memcpy(d, src, span);
      }
    } else {
      for (int kx = 0; kx < g.k_w; ++kx) {
        const int ix = ix0 + kx * g.dil_w;
        if (ix < 0 || ix >= g.in_w) {
          memset(d + kx * g.channels, gather.zp, g.channels);
        } else {
          memcpy(d + kx * g.channels, in + (iy * g.in_w + ix) * g.channels, g.channels);
        }
      }
    }
  }
  return dst;
}

// A pointwise or general convolution as a matrix product (td_kernel_matmul.cpp): the output pixels' values under the
// filter (the pixels themselves for a pointwise one) times the filters.
TfLiteStatus EvalMatMul(TfLiteContext* context, TfLiteNode* node, const tflite::OpDataConv& d, bool pointwise) {
  const auto& params = *static_cast<const TfLiteConvParams*>(node->builtin_data);
  const TfLiteEvalTensor* input = tflite::micro::GetEvalInput(context, node, tflite::kConvInputTensor);
  const TfLiteEvalTensor* filter = tflite::micro::GetEvalInput(context, node, tflite::kConvWeightsTensor);
  const TfLiteEvalTensor* bias = node->inputs->size == 3 && node->inputs->data[2] >= 0
                                     ? tflite::micro::GetEvalInput(context, node, tflite::kConvBiasTensor)
                                     : nullptr;
  TfLiteEvalTensor* output = tflite::micro::GetEvalOutput(context, node, tflite::kConvOutputTensor);
  const int* fd = filter->dims->data;
  Gather gather;
  gather.s = util::GeometryOf(*input, *filter, *output, params.stride_height, params.stride_width,
                              params.dilation_height_factor, params.dilation_width_factor, d.padding);
  gather.in = tflite::micro::GetTensorData<int8_t>(input);
  gather.zp = static_cast<int8_t>(d.input_zero_point);
  const util::Geometry& g = gather.s;
  MatMul m;
  m.in = gather.in;
  m.w = tflite::micro::GetTensorData<int8_t>(filter);
  m.bias = bias ? tflite::micro::GetTensorData<int32_t>(bias) : nullptr;
  m.out = tflite::micro::GetTensorData<int8_t>(output);
  m.rows = output->dims->data[0] * g.out_h * g.out_w;
  m.k = g.k_h * g.k_w * g.channels;
  m.cols = fd[0];
  m.input_zp = d.input_zero_point;
  m.output_zp = d.output_zero_point;
  m.act_min = d.output_activation_min;
  m.act_max = d.output_activation_max;
  m.mult = d.per_channel_output_multiplier;
  m.shift = d.per_channel_output_shift;
  m.per_channel = true;
  m.row = pointwise ? nullptr : GatherRow;
  m.ctx = &gather;
  m.outside = OutsideShortcut(d);
  if (PerChannelRowTakes(m)) {  // a single pixel (a 1x1 map after global pooling): a fully connected layer's loop
    PerChannelRow(m);
  } else {
    Run(m);
  }
  return kTfLiteOk;
}

// Whether this file's loops take the node (else the CMSIS-NN function runs it): int8, and the matrix product's K or a
// first layer.
bool OwnLoopsTake(TfLiteContext* context, TfLiteNode* node) {
  tflite::MicroContext* mc = tflite::GetMicroContext(context);
  TfLiteTensor* input = mc->AllocateTempInputTensor(node, tflite::kConvInputTensor);
  TfLiteTensor* filter = mc->AllocateTempInputTensor(node, tflite::kConvWeightsTensor);
  TfLiteTensor* output = mc->AllocateTempOutputTensor(node, tflite::kConvOutputTensor);
  bool ok = input != nullptr && filter != nullptr && output != nullptr && input->type == kTfLiteInt8 &&
            filter->type == kTfLiteInt8 && output->type == kTfLiteInt8 && input->dims->size == 4 &&
            filter->dims->size == 4 && output->dims->size == 4;
  if (ok) {
    const int* fd = filter->dims->data;
    // every convolution whose values under the filter fit the matrix product, or a first layer
    ok = fd[3] == input->dims->data[3] && (fd[1] * fd[2] * fd[3] <= kMatMulMaxK || FirstLayerTakes(fd));
  }
  if (input) mc->DeallocateTempTfLiteTensor(input);
  if (filter) mc->DeallocateTempTfLiteTensor(filter);
  if (output) mc->DeallocateTempTfLiteTensor(output);
  return ok;
}

// One output pixel's gathered input values, (x + input offset) as int16 pairs in the filter's (ky, kx, c) order,
// 0 for a tap outside the image and for the odd pair's upper half.
void Gather(const int8_t* in, int in_h, int in_w, int cin, int k_h, int k_w, int iy0, int ix0, int dil_h, int dil_w,
            int32_t offset, int32_t* col) {
  if (cin == 1 && k_h == 3 && k_w == 3 && dil_h == 1 && dil_w == 1 && iy0 >= 0 && ix0 >= 0 && iy0 + 3 <= in_h &&
      ix0 + 3 <= in_w) {  // the common first layer, inside the image: nine loads, no test
    const int8_t* p = in + iy0 * in_w + ix0;
    const int8_t* q = p + in_w;
    const int8_t* r = q + in_w;
    col[0] = dsp::pack16(p[0] + offset, p[1] + offset);
    col[1] = dsp::pack16(p[2] + offset, q[0] + offset);
    col[2] = dsp::pack16(q[1] + offset, q[2] + offset);
    col[3] = dsp::pack16(r[0] + offset, r[1] + offset);
    col[4] = dsp::pack16(r[2] + offset, 0);
    return;
  }
  int16_t v[kMaxK + 1];
  int k = 0;
  for (int ky = 0; ky < k_h; ++ky) {
    const int iy = iy0 + ky * dil_h;
    for (int kx = 0; kx < k_w; ++kx) {
      const int ix = ix0 + kx * dil_w;
      const bool inside = iy >= 0 && iy < in_h && ix >= 0 && ix < in_w;
      const int8_t* p = in + (iy * in_w + ix) * cin;
      for (int c = 0; c < cin; ++c, ++k) v[k] = static_cast<int16_t>(inside ? p[c] + offset : 0);
    }
  }
  v[k] = 0;
  for (int i = 0; 2 * i < k; ++i) col[i] = dsp::pack16(v[2 * i], v[2 * i + 1]);
}

// Gather's common case without its tests, for a pixel whose 3x3 window and one more column lie inside the image
// (each row is read as one word): per row one LDR and two SXTAB16 (values 0 and 2, 1 and 3, offset added), then the
// pairs (p0, p1), (p2, q0), (q1, q2), (r0, r1), (r2, 0) by halfword packing.
inline void GatherFive(const int8_t* p, int in_w, int32_t offset2, int32_t* col) {
  const int32_t wp = util::Load4(p), wq = util::Load4(p + in_w), wr = util::Load4(p + 2 * in_w);
  const int32_t ep = dsp::sxtab16(offset2, wp), op = dsp::sxtab16_ror8(offset2, wp);
  const int32_t eq = dsp::sxtab16(offset2, wq), oq = dsp::sxtab16_ror8(offset2, wq);
  const int32_t er = dsp::sxtab16(offset2, wr), odd_r = dsp::sxtab16_ror8(offset2, wr);
  col[0] = dsp::pack_bottoms(ep, op);
  col[1] = dsp::pack_bottoms(static_cast<int32_t>(static_cast<uint32_t>(ep) >> 16), eq);
  col[2] = static_cast<int32_t>((static_cast<uint32_t>(oq) & 0xffffu) | (static_cast<uint32_t>(eq) & 0xffff0000u));
  col[3] = dsp::pack_bottoms(er, odd_r);
  col[4] = static_cast<int32_t>(static_cast<uint32_t>(er) >> 16);
}

// The clamp to the activation range, one SSAT when that range is all of int8.
template <bool kFull>
inline int8_t Out(int32_t v, int32_t lo, int32_t hi) {
  v = dsp::ssat8(v);
  return static_cast<int8_t>(kFull ? v : util::Clamp(v, lo, hi));
}

// The requantization of one output channel: the fast path when every channel of the block has it (kFast).
template <bool kFast>
inline int32_t Requant(const util::Requant& q, int32_t acc2, int32_t out_zp) {
  return kFast ? util::RequantFast(acc2, q.mult, q.add, q.right) : util::Requantize(q, acc2, out_zp);
}

// The output channels of one pixel: K/2 SMLAD each, then TFLM's requantization. kFive: exactly 5 pairs (3x3, one
// input channel), held in registers across the channels.
template <bool kFive, bool kFull, bool kFast>
__attribute__((noinline)) void Dot(const int32_t* col, int pairs, const int32_t* w, const int32_t* bias2,
                                   const util::Requant* q, int n, int8_t* out, int32_t out_zp, int32_t act_min,
                                   int32_t act_max) {
  if (kFive) {
    const int32_t c0 = col[0], c1 = col[1], c2 = col[2], c3 = col[3], c4 = col[4];
    for (int o = 0; o < n; ++o, w += 5) {
      int32_t acc = dsp::smlad(c0, w[0], bias2[o]);
      acc = dsp::smlad(c1, w[1], acc);
      acc = dsp::smlad(c2, w[2], acc);
      acc = dsp::smlad(c3, w[3], acc);
      acc = dsp::smlad(c4, w[4], acc);
      out[o] = Out<kFull>(Requant<kFast>(q[o], acc, out_zp), act_min, act_max);
    }
    return;
  }
  for (int o = 0; o < n; ++o, w += pairs) {
    int32_t acc = bias2[o];
    for (int i = 0; i < pairs; ++i) acc = dsp::smlad(col[i], w[i], acc);
    out[o] = Out<kFull>(Requant<kFast>(q[o], acc, out_zp), act_min, act_max);
  }
}

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
// The common first layer's common case (five pairs: 3x3 over one channel; the full int8 range; every channel's
// requantization fast) in assembly, the pixel's five pairs in registers and each channel's constants in nine
// consecutive words (kPacked: the five doubled weight pairs, the doubled bias, mult, add, right): per channel one LDM
// of the weights and bias, five SMLAD, one LDM of the constants, four instructions of requantization, the store and
// two of loop: 14 instructions for 9 multiply-accumulates.
//   (col, packed, out, n >= 1)
constexpr int kPacked = 9;
__attribute__((naked, noinline)) void DotFive(const int32_t*, const int32_t*, int8_t*, int) {
  __asm__ volatile(
      "push {r4-r11, lr}\n\t"
      "ldm r0, {r4-r8}\n\t"
      "1:\n\t"
      "ldmia r1!, {r0, r9, r10, r11, r12, lr}\n\t"
      "smlad lr, r4, r0, lr\n\t"
      "smlad lr, r5, r9, lr\n\t"
      "smlad lr, r6, r10, lr\n\t"
      "smlad lr, r7, r11, lr\n\t"
      "smlad lr, r8, r12, lr\n\t"
      "ldmia r1!, {r0, r9, r10}\n\t"
      "smmlar r9, lr, r0, r9\n\t"
      "add r9, r9, lr, asr #31\n\t"
      "asr r9, r9, r10\n\t"
      "ssat r9, #8, r9\n\t"
      "strb r9, [r2], #1\n\t"
      "subs r3, #1\n\t"
      "bne 1b\n\t"
      "pop {r4-r11, pc}");
}

// `count` pixels of one output row, `stride` input columns apart, whose windows GatherFive reads (the image's
// inside), each against the n packed channels.
__attribute__((noinline)) void FiveRun(const int8_t* p, int in_w, int stride, int32_t offset2, int8_t* out,
                                       int out_step, const int32_t* packed, int n, int count) {
  int32_t col[5];
  for (int i = 0; i < count; ++i, p += stride, out += out_step) {
    GatherFive(p, in_w, offset2, col);
    DotFive(col, packed, out, n);
  }
}
#endif

TfLiteStatus EvalOurs(TfLiteContext* context, TfLiteNode* node, const ConvOp& op) {
  if (!OwnLoops(op.data.filter_buffer_index)) {
    return cmsis::EvalConv(context, node, op.data, op.data.filter_buffer_index);
  }
  const auto& params = *static_cast<const TfLiteConvParams*>(node->builtin_data);
  const TfLiteEvalTensor* input = tflite::micro::GetEvalInput(context, node, tflite::kConvInputTensor);
  const TfLiteEvalTensor* filter = tflite::micro::GetEvalInput(context, node, tflite::kConvWeightsTensor);
  if (!FirstLayerTakes(filter->dims->data)) return EvalMatMul(context, node, op.data, IsPointwise(filter->dims->data, params));
  const TfLiteEvalTensor* bias = node->inputs->size == 3 && node->inputs->data[2] >= 0
                                     ? tflite::micro::GetEvalInput(context, node, tflite::kConvBiasTensor)
                                     : nullptr;
  TfLiteEvalTensor* output = tflite::micro::GetEvalOutput(context, node, tflite::kConvOutputTensor);
  const tflite::OpDataConv& d = op.data;
  const int batches = input->dims->data[0], in_h = input->dims->data[1], in_w = input->dims->data[2],
            cin = input->dims->data[3];
  const int cout = filter->dims->data[0], k_h = filter->dims->data[1], k_w = filter->dims->data[2];
  const int out_h = output->dims->data[1], out_w = output->dims->data[2];
  const int k = k_h * k_w * cin, pairs = (k + 1) / 2;
  const int32_t offset = -d.input_zero_point, out_zp = d.output_zero_point;
  const int8_t* in_data = tflite::micro::GetTensorData<int8_t>(input);
  const int8_t* w_data = tflite::micro::GetTensorData<int8_t>(filter);
  const int32_t* b_data = bias ? tflite::micro::GetTensorData<int32_t>(bias) : nullptr;
  int8_t* out_data = tflite::micro::GetTensorData<int8_t>(output);
  int32_t wbuf[kBlock * kMaxPairs];
  int32_t bias2[kBlock];
  util::Requant q[kBlock];
  int32_t col[kMaxPairs];
  for (int o0 = 0; o0 < cout; o0 += kBlock) {
    const int n = cout - o0 < kBlock ? cout - o0 : kBlock;
    for (int o = 0; o < n; ++o) {
      const int8_t* wo = w_data + (o0 + o) * k;
      int64_t abs_sum = 0;
      for (int i = 0; i < pairs; ++i) {
        const int32_t lo = wo[2 * i], hi = 2 * i + 1 < k ? wo[2 * i + 1] : 0;
        wbuf[o * pairs + i] = dsp::pack16(2 * lo, 2 * hi);
        abs_sum += (lo < 0 ? -lo : lo) + (hi < 0 ? -hi : hi);
      }
      const int32_t b = b_data ? b_data[o0 + o] : 0;
      bias2[o] = 2 * b;
      // |accumulator| <= |bias| + sum |w| x 255 (|x + offset| <= 255)
      q[o] = util::MakeRequant(d.per_channel_output_multiplier[o0 + o], d.per_channel_output_shift[o0 + o], out_zp,
                               (b < 0 ? -static_cast<int64_t>(b) : b) + 255 * abs_sum);
    }
    bool all_fast = true;
    for (int o = 0; o < n; ++o) all_fast = all_fast && q[o].fast;
    const int32_t lo = d.output_activation_min, hi = d.output_activation_max;
    const bool full = lo <= -128 && hi >= 127;
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
    // DotFive's layout, in place (from the last channel: each moves to a higher index)
    const bool five = pairs == 5 && full && all_fast;
    static_assert(kBlock * kPacked <= kBlock * kMaxPairs, "the packed channels fit the weights' buffer");
    for (int o = five ? n - 1 : -1; o >= 0; --o) {
      int32_t* dst = wbuf + o * kPacked;
      memmove(dst, wbuf + o * pairs, 5 * sizeof(int32_t));
      dst[5] = bias2[o];
      dst[6] = q[o].mult;
      dst[7] = q[o].add;
      dst[8] = q[o].right;
    }
    const bool inside_five = cin == 1 && k_h == 3 && k_w == 3 && params.dilation_height_factor == 1 &&
                             params.dilation_width_factor == 1;
    const int32_t offset2 = dsp::pack16(offset, offset);
#endif
    for (int bt = 0; bt < batches; ++bt) {
      const int8_t* in_b = in_data + bt * in_h * in_w * cin;
      for (int oy = 0; oy < out_h; ++oy) {
        const int iy0 = oy * params.stride_height - d.padding.height;
        int8_t* out_row = out_data + (bt * out_h + oy) * out_w * cout + o0;
        // the columns whose window (and one more column) lie inside the image: one run of FiveRun
        int run_lo = out_w, run_hi = out_w;
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
        if (five && inside_five && iy0 >= 0 && iy0 + 3 <= in_h && in_w >= 4) {
          const int sw = params.stride_width, pw = d.padding.width;
          run_lo = (pw + sw - 1) / sw;
          run_hi = (in_w - 4 + pw) / sw + 1;
          if (run_hi > out_w) run_hi = out_w;
          if (run_hi <= run_lo) run_lo = run_hi = out_w;
        }
#endif
        for (int ox = 0; ox < out_w; ++ox) {
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
          if (ox == run_lo) {
            const int ix0 = ox * params.stride_width - d.padding.width;
            FiveRun(in_b + iy0 * in_w + ix0, in_w, params.stride_width, offset2, out_row + ox * cout, cout, wbuf, n,
                    run_hi - run_lo);
            ox = run_hi - 1;
            continue;
          }
#endif
          const int ix0 = ox * params.stride_width - d.padding.width;
          Gather(in_b, in_h, in_w, cin, k_h, k_w, iy0, ix0, params.dilation_height_factor,
                 params.dilation_width_factor, offset, col);
          int8_t* out = out_row + ox * cout;
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
          if (five) {
            DotFive(col, wbuf, out, n);
            continue;
          }
#endif
          using DotFn = void (*)(const int32_t*, int, const int32_t*, const int32_t*, const util::Requant*, int,
                                 int8_t*, int32_t, int32_t, int32_t);
          static const DotFn kDots[8] = {Dot<false, false, false>, Dot<false, false, true>, Dot<false, true, false>,
                                         Dot<false, true, true>,   Dot<true, false, false>, Dot<true, false, true>,
                                         Dot<true, true, false>,   Dot<true, true, true>};
          kDots[(pairs == 5) * 4 + full * 2 + all_fast](col, pairs, wbuf, bias2, q, n, out, out_zp, lo, hi);
        }
      }
    }
  }
  return kTfLiteOk;
}

template <TfLiteRegistration (*kLibrary)()>
TfLiteRegistration Registration() {
  return util::Kernel<tflite::OpDataConv, kLibrary, TakesConvNode<OwnLoopsTake>,
                      PrepareConvNode<OwnLoopsTake, PrepareConv, cmsis::PrepareConv, false>, EvalOurs, FlashOpData>::Registration();
}

}  // namespace

TfLiteRegistration Register_CONV_2D() { return Registration<Library>(); }
TfLiteRegistration Register_CONV_2D_INT8() { return Registration<nullptr>(); }

}  // namespace kernels
}  // namespace td
