// tinydeploy's int8 matrix product (td_kernel_matmul.h): the pointwise CONV_2D's pixels and a FULLY_CONNECTED
// layer's batches against their weights, bit-exact with TFLM's reference kernels (ConvPerChannel, FullyConnected).
//
// Every output is the dot product of a row's K input values and a channel's K weights, both contiguous. The products
// run on the raw int8 values, four at a time: one word of each operand, SXTB16 splits it into bytes 0/2 and 1/3 as
// 16-bit pairs, and SMLAD multiplies and adds a pair. The input offset is folded into the bias,
// sum w * (x + o) = sum w * x + o * sum w (no padding here), so the input is never widened or copied and nothing is
// kept in the arena beyond the library's own op data.
//
// Inner blocks, each one block of assembly that keeps everything in registers (14 of them), twice per loop iteration:
//  - 2 channels x 2 rows (four accumulators): per four input values, 2 weight words and 2 input words, 8 SXTB16 and
//    8 SMLAD for 16 multiply-accumulates (20 instructions);
//  - 4 channels x 1 row (a fully connected layer's single batch): one input word split once, then per channel a
//    weight word, 2 SXTB16 and 2 SMLAD (23 instructions for 16).
// An odd last channel or row runs a 1 x 2 dot product in C; the last K mod 4 values are added in C. The
// requantization is TFLM's (td_kernel_util.h), on the fast path where the accumulator's bound allows it.
#include <string.h>

#include "td_dsp.h"
#include "td_kernel_util.h"
#include "td_kernel_matmul.h"

namespace td {
namespace kernels {
namespace {

using util::Load4;

constexpr int32_t kOnes = 0x00010001;  // SMLAD against this adds both 16-bit halves

// a[0..3] += the dot products of (channel 0, pixel 0), (0, 1), (1, 0), (1, 1) over k values; channel 1's weights and
// pixel 1's inputs are `stride` bytes after channel 0's and pixel 0's.
void Dot22(const int8_t* x, const int8_t* w, int32_t k, int32_t stride, int32_t a[4]) {
  int32_t a00 = a[0], a01 = a[1], a10 = a[2], a11 = a[3];
  const int8_t* const x_end = x + (k & ~3);
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
  // Four input values of both pixels against four weights of both channels. The pointers advance by 4 in the first
  // loads; the second pixel and channel are then at [p, s] with s = stride - 4.
#define TD_PW_STEP                               \
  "ldr %[wa], [%[w]], #4\n\t"                    \
  "ldr %[wb], [%[w], %[s]]\n\t"                  \
  "sxtb16 %[wa1], %[wa], ror #8\n\t"             \
  "sxtb16 %[wa], %[wa]\n\t"                      \
  "sxtb16 %[wb1], %[wb], ror #8\n\t"             \
  "sxtb16 %[wb], %[wb]\n\t"                      \
  "ldr %[v], [%[x]], #4\n\t"                     \
  "sxtb16 %[v1], %[v], ror #8\n\t"               \
  "sxtb16 %[v], %[v]\n\t"                        \
  "smlad %[a00], %[v], %[wa], %[a00]\n\t"        \
  "smlad %[a00], %[v1], %[wa1], %[a00]\n\t"      \
  "smlad %[a10], %[v], %[wb], %[a10]\n\t"        \
  "smlad %[a10], %[v1], %[wb1], %[a10]\n\t"      \
  "ldr %[v], [%[x], %[s]]\n\t"                   \
  "sxtb16 %[v1], %[v], ror #8\n\t"               \
  "sxtb16 %[v], %[v]\n\t"                        \
  "smlad %[a01], %[v], %[wa], %[a01]\n\t"        \
  "smlad %[a01], %[v1], %[wa1], %[a01]\n\t"      \
  "smlad %[a11], %[v], %[wb], %[a11]\n\t"        \
  "smlad %[a11], %[v1], %[wb1], %[a11]\n\t"
#define TD_PW_OPERANDS                                                                                         \
  [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11), [x] "+r"(x), [w] "+r"(w), [wa] "=&r"(wa), \
      [wa1] "=&r"(wa1), [wb] "=&r"(wb), [wb1] "=&r"(wb1), [v] "=&r"(v), [v1] "=&r"(v1)
  const int32_t s = stride - 4;
  int32_t wa, wa1, wb, wb1, v, v1;
  const int8_t* const x_end8 = x + (k & ~7);
  if (x < x_end8) {
    __asm__ volatile("1:\n\t" TD_PW_STEP TD_PW_STEP
                     "cmp %[x], %[end]\n\t"
                     "blo 1b"
                     : TD_PW_OPERANDS
                     : [s] "r"(s), [end] "r"(x_end8)
                     : "cc", "memory");
  }
  if (x < x_end) __asm__ volatile(TD_PW_STEP : TD_PW_OPERANDS : [s] "r"(s) : "memory");
#undef TD_PW_STEP
#undef TD_PW_OPERANDS
#else
  for (; x < x_end; x += 4, w += 4) {
    const int32_t va = Load4(x), vb = Load4(x + stride), wa = Load4(w), wb = Load4(w + stride);
    const int32_t va0 = dsp::sxtb16(va), va1 = dsp::sxtb16_ror8(va), vb0 = dsp::sxtb16(vb),
                  vb1 = dsp::sxtb16_ror8(vb), wa0 = dsp::sxtb16(wa), wa1 = dsp::sxtb16_ror8(wa),
                  wb0 = dsp::sxtb16(wb), wb1 = dsp::sxtb16_ror8(wb);
    a00 = dsp::smlad(va1, wa1, dsp::smlad(va0, wa0, a00));
    a01 = dsp::smlad(vb1, wa1, dsp::smlad(vb0, wa0, a01));
    a10 = dsp::smlad(va1, wb1, dsp::smlad(va0, wb0, a10));
    a11 = dsp::smlad(vb1, wb1, dsp::smlad(vb0, wb0, a11));
  }
#endif
  for (int i = 0; i < (k & 3); ++i) {
    const int32_t xa = x[i], xb = x[i + stride], wa = w[i], wb = w[i + stride];
    a00 += xa * wa;
    a01 += xb * wa;
    a10 += xa * wb;
    a11 += xb * wb;
  }
  a[0] = a00;
  a[1] = a01;
  a[2] = a10;
  a[3] = a11;
}

// a[0..3] += the dot products of one row with 4 channels over k values; channel j's weights are j * k bytes on.
void Dot14(const int8_t* x, const int8_t* w, int32_t k, int32_t a[4]) {
  int32_t a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
  const int8_t* const x_end = x + (k & ~3);
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
  // After the first weight load advances w by 4, channel j is at [w, s_j] with s_j = j * k - 4.
#define TD_MV_CHANNEL(A, S)                    \
  "ldr %[t], [%[w], %[" S "]]\n\t"              \
  "sxtb16 %[t1], %[t], ror #8\n\t"             \
  "sxtb16 %[t], %[t]\n\t"                      \
  "smlad %[" A "], %[v], %[t], %[" A "]\n\t"      \
  "smlad %[" A "], %[v1], %[t1], %[" A "]\n\t"
#define TD_MV_STEP                              \
  "ldr %[v], [%[x]], #4\n\t"                   \
  "sxtb16 %[v1], %[v], ror #8\n\t"             \
  "sxtb16 %[v], %[v]\n\t"                      \
  "ldr %[t], [%[w]], #4\n\t"                   \
  "sxtb16 %[t1], %[t], ror #8\n\t"             \
  "sxtb16 %[t], %[t]\n\t"                      \
  "smlad %[a0], %[v], %[t], %[a0]\n\t"         \
  "smlad %[a0], %[v1], %[t1], %[a0]\n\t"       \
  TD_MV_CHANNEL("a1", "s1") TD_MV_CHANNEL("a2", "s2") TD_MV_CHANNEL("a3", "s3")
#define TD_MV_OPERANDS                                                                                        \
  [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [x] "+r"(x), [w] "+r"(w), [v] "=&r"(v), \
      [v1] "=&r"(v1), [t] "=&r"(t), [t1] "=&r"(t1)
  const int32_t s1 = k - 4, s2 = 2 * k - 4, s3 = 3 * k - 4;
  int32_t v, v1, t, t1;
  const int8_t* const x_end8 = x + (k & ~7);
  if (x < x_end8) {
    __asm__ volatile("1:\n\t" TD_MV_STEP TD_MV_STEP
                     "cmp %[x], %[end]\n\t"
                     "blo 1b"
                     : TD_MV_OPERANDS
                     : [s1] "r"(s1), [s2] "r"(s2), [s3] "r"(s3), [end] "r"(x_end8)
                     : "cc", "memory");
  }
  if (x < x_end) {
    __asm__ volatile(TD_MV_STEP : TD_MV_OPERANDS : [s1] "r"(s1), [s2] "r"(s2), [s3] "r"(s3) : "memory");
  }
#undef TD_MV_CHANNEL
#undef TD_MV_STEP
#undef TD_MV_OPERANDS
#else
  for (; x < x_end; x += 4, w += 4) {
    const int32_t v = Load4(x), v0 = dsp::sxtb16(v), v1 = dsp::sxtb16_ror8(v);
    int32_t* acc[4] = {&a0, &a1, &a2, &a3};
    for (int j = 0; j < 4; ++j) {
      const int32_t t = Load4(w + j * k);
      *acc[j] = dsp::smlad(v1, dsp::sxtb16_ror8(t), dsp::smlad(v0, dsp::sxtb16(t), *acc[j]));
    }
  }
#endif
  for (int i = 0; i < (k & 3); ++i) {
    a0 += x[i] * w[i];
    a1 += x[i] * w[i + k];
    a2 += x[i] * w[i + 2 * k];
    a3 += x[i] * w[i + 3 * k];
  }
  a[0] = a0;
  a[1] = a1;
  a[2] = a2;
  a[3] = a3;
}

// a0 += u . v0, a1 += u . v1 over k values: an odd last channel (u its weights, v0/v1 two pixels) or pixel (u the
// pixel, v0/v1 two channels' weights).
void Dot12(const int8_t* u, const int8_t* v0, const int8_t* v1, int32_t k, int32_t& a0, int32_t& a1) {
  int i = 0;
  for (; i + 4 <= k; i += 4) {
    const int32_t x = Load4(u + i), y = Load4(v0 + i), z = Load4(v1 + i);
    const int32_t x0 = dsp::sxtb16(x), x1 = dsp::sxtb16_ror8(x);
    a0 = dsp::smlad(x1, dsp::sxtb16_ror8(y), dsp::smlad(x0, dsp::sxtb16(y), a0));
    a1 = dsp::smlad(x1, dsp::sxtb16_ror8(z), dsp::smlad(x0, dsp::sxtb16(z), a1));
  }
  for (; i < k; ++i) {
    a0 += u[i] * v0[i];
    a1 += u[i] * v1[i];
  }
}

// The sum of k weights, four at a time.
int32_t Sum(const int8_t* w, int32_t k) {
  int32_t s = 0;
  int i = 0;
  for (; i + 4 <= k; i += 4) {
    const int32_t v = Load4(w + i);
    s = dsp::smlad(dsp::sxtb16_ror8(v), kOnes, dsp::smlad(dsp::sxtb16(v), kOnes, s));
  }
  for (; i < k; ++i) s += w[i];
  return s;
}

// What one output channel needs: its bias with the input offset folded in, and its requantization.
struct Channel {
  int32_t bias;
  util::Requant q;
};

Channel MakeChannel(const MatMul& m, int o) {
  Channel c;
  const int32_t b = m.bias ? m.bias[o] : 0;
  const int j = m.per_channel ? o : 0;
  c.bias = b - m.input_zp * Sum(m.w + o * m.k, m.k);
  // |accumulator| <= |bias| + 255 * sum |w| <= |bias| + 255 * 128 * k (|x + offset| <= 255, |w| <= 128)
  c.q = util::MakeRequant(m.mult[j], m.shift[j], m.output_zp, (b < 0 ? -static_cast<int64_t>(b) : b) + 255LL * 128 * m.k);
  return c;
}

template <bool kFull, bool kFast>
inline int8_t Out(const Channel& c, int32_t acc, int32_t out_zp, int32_t lo, int32_t hi) {
  const int32_t v = kFast ? util::RequantFast(2 * acc, c.q.mult, c.q.add, c.q.right)
                          : util::Requantize(c.q, 2 * acc, out_zp);
  return static_cast<int8_t>(kFull ? dsp::ssat8(v) : util::Clamp(v, lo, hi));
}

template <bool kFull, bool kFast>
struct Outputs {
  const MatMul& m;
  int8_t operator()(const Channel& c, int32_t acc) const {
    return Out<kFull, kFast>(c, acc, m.output_zp, m.act_min, m.act_max);
  }
};

// Output channels o and o + 1 (two: both; else o alone) of every row.
template <bool kFull, bool kFast>
__attribute__((noinline)) void Pair(const MatMul& m, const Channel& c0, const Channel& c1, int o, bool two) {
  const Outputs<kFull, kFast> out_of{m};
  const int32_t k = m.k;
  const int8_t* w0 = m.w + o * k;
  int r = 0;
  for (; r + 2 <= m.rows; r += 2) {
    const int8_t* x = m.in + r * k;
    int8_t* out = m.out + r * m.cols + o;
    if (two) {
      int32_t a[4] = {c0.bias, c0.bias, c1.bias, c1.bias};
      Dot22(x, w0, k, k, a);
      out[0] = out_of(c0, a[0]);
      out[m.cols] = out_of(c0, a[1]);
      out[1] = out_of(c1, a[2]);
      out[m.cols + 1] = out_of(c1, a[3]);
    } else {
      int32_t a0 = c0.bias, a1 = c0.bias;
      Dot12(w0, x, x + k, k, a0, a1);
      out[0] = out_of(c0, a0);
      out[m.cols] = out_of(c0, a1);
    }
  }
  if (r < m.rows) {  // the odd last row
    const int8_t* x = m.in + r * k;
    int8_t* out = m.out + r * m.cols + o;
    int32_t a0 = c0.bias, a1 = c1.bias;
    Dot12(x, w0, two ? w0 + k : w0, k, a0, a1);
    out[0] = out_of(c0, a0);
    if (two) out[1] = out_of(c1, a1);
  }
}

// Output channels o .. o + 3 of a single row.
template <bool kFull, bool kFast>
__attribute__((noinline)) void Quad(const MatMul& m, const Channel* c, int o) {
  const Outputs<kFull, kFast> out_of{m};
  int32_t a[4] = {c[0].bias, c[1].bias, c[2].bias, c[3].bias};
  Dot14(m.in, m.w + o * m.k, m.k, a);
  for (int j = 0; j < 4; ++j) m.out[o + j] = out_of(c[j], a[j]);
}

}  // namespace

void Run(const MatMul& m) {
  const bool full = m.act_min <= -128 && m.act_max >= 127;
  int o = 0;
  if (m.rows == 1) {
    using QuadFn = void (*)(const MatMul&, const Channel*, int);
    static const QuadFn kQuads[4] = {Quad<false, false>, Quad<false, true>, Quad<true, false>, Quad<true, true>};
    for (; o + 4 <= m.cols; o += 4) {
      Channel c[4];
      bool fast = true;
      for (int j = 0; j < 4; ++j) {
        c[j] = MakeChannel(m, o + j);
        fast = fast && c[j].q.fast;
      }
      kQuads[full * 2 + fast](m, c, o);
    }
  }
  using PairFn = void (*)(const MatMul&, const Channel&, const Channel&, int, bool);
  static const PairFn kPairs[4] = {Pair<false, false>, Pair<false, true>, Pair<true, false>, Pair<true, true>};
  for (; o < m.cols; o += 2) {
    const bool two = o + 1 < m.cols;
    const Channel c0 = MakeChannel(m, o);
    const Channel c1 = two ? MakeChannel(m, o + 1) : c0;
    kPairs[full * 2 + (c0.q.fast && c1.q.fast)](m, c0, c1, o, two);
  }
}


}  // namespace kernels
}  // namespace td
