// tinydeploy's int8 matrix product (td_kernel_matmul.h): a CONV_2D's output pixels and a FULLY_CONNECTED layer's
// batches against their weights, bit-exact with TFLM's reference kernels (ConvPerChannel, FullyConnected).
//
// Every output is the dot product of a row's K input values and a channel's K weights (contiguous in the model). A
// row is contiguous in the input (a pointwise convolution's pixel, a batch) or gathered under the filter (a general
// convolution's pixel, padded taps at the zero point: MatMul::row). A row (or a pair of rows) is widened once into
// 16-bit pairs on the stack with the input offset added (x + offset fits 16 bits), in the order SXTB16 splits a word
// of weights into (bytes 0/2, then 1/3), so the weights are used raw from the model, four per word, against it.
// Inner blocks, each one block of assembly:
//  - 2 rows x 2 channels (four accumulators): per four values, one LDM of both rows' widened pairs into r8-r11, then
//    per channel a weight word, 2 SXTB16 and 4 SMLAD: 15 instructions for 16 multiply-accumulates;
//  - 1 row x 4 channels (a fully connected layer's single batch, or a last odd row): one LDRD of the row's pairs,
//    then per channel a weight word, 2 SXTB16 and 2 SMLAD: 21 instructions for 16.
//  - K = 8 or 16 (a pointwise layer from 8 or 16 channels), 2 rows x 1 channel (SmallK): both rows' pairs by LDM, the
//    channel's weights widened once for both, its constants one record: 31 instructions for 16 MACs (K = 16: 48 for
//    32), requantization and stores included.
// A last odd channel and the last K mod 4 values run in C. Per block of up to 32 output channels, each channel's
// requantization constants are made once on the stack; the widened rows take 4 K bytes of stack, gathered rows 2 K.
// Nothing is kept in the arena beyond the library's own op data.
#include <string.h>

#include "td_dsp.h"
#include "td_kernel_matmul.h"
#include "td_kernel_util.h"

namespace td {
namespace kernels {
namespace {

constexpr int kBlock = 32;  // output channels whose constants are made at a time (896 B of stack)
// The largest copy of a layer's last pair of channels (2 k weights and 4 zeros) Run makes for TwoRows' assembly.
constexpr int kPaddedPair = 132;

// The constants of up to kBlock output channels.
struct Block {
  int32_t bias[kBlock];
  int32_t add[kBlock];    // a multiplier below 1: the fast requantization's addend (util::Requant::add); else zp
  int32_t right[kBlock];  // below 1: the right shift; else 0
  int32_t left[kBlock];   // kAny: the accumulator's left shift: 1 (its doubling) below 1, else TFLM's shift + 1
  int32_t mask[kBlock];   // kAny: -1 where the rounding's sign term is added (below 1), else 0
  int32_t mult[kBlock];
  int32_t shift[kBlock];
  int mode;  // how the block's channels are requantized (Mode): the fast form every one of them allows
};

// kRight: every multiplier below 1 (a right shift): util::RequantFast; kAny: some of 1 or more (TFLM shifts left
// and does not round), the others below 1: SMMLAR(acc << left, m, add), the sign term where masked in, and the right
// shift (two instructions more than kRight); kSlow: TFLM's own function.
enum Mode { kSlow = 0, kRight = 1, kAny = 2 };

// The largest |accumulator| of n channels of k values: |bias + sum w (x + offset)| <= |bias| + 255 * 128 * k
// (|x + offset| <= 255, |w| <= 128), with the largest of their biases (none: 0).
int64_t AccumulatorBound(int32_t k, const int32_t* bias, int n) {
  int64_t most = 0;
  for (int j = 0; bias && j < n; ++j) {
    const int64_t v = bias[j];
    most = v < 0 ? (-v > most ? -v : most) : (v > most ? v : most);
  }
  return most + 255LL * 128 * k;
}

// A per-channel block whose every channel takes util::MakeRequant's 32-bit shortcut (the common case), made in one
// pass with only what kRight reads (bias, mult, add, right), where MakeRequant and all seven arrays took about 45
// instructions a channel; on a 1x1 map (112 MACs a channel in the study's MobileNetV2) that set-up is a large share
// of the layer. The shortcut's bound test, |bias| + 255 * 128 * k < kShortcutBound (util::ShortcutBias). False where a
// channel does not take it (the block then made by MakeBlock's loop, which repeats this one's work). Out of line, the
// zero point tested and ShortcutAdd's factor made once a block, the bias bound one unsigned comparison: about 23
// instructions a channel (inlined into Run, where it spilled, about 52).
__attribute__((noinline)) bool MakeBlockRight(const MatMul& m, int o0, int n, Block& b) {
  const int32_t zp = m.output_zp;
  if (!m.per_channel || !util::ShortcutZeroPoint(zp)) return false;
  const util::ShortcutBias bias_fits(m.k);  // k <= kMatMulMaxK: the products stay below 2^25
  const int32_t odd = util::ShortcutOdd(zp);
  const int32_t* mults = m.mult + o0;
  const int32_t* shifts = m.shift + o0;
  const int32_t* biases = m.bias ? m.bias + o0 : nullptr;
  for (int j = 0; j < n; ++j) {
    const int32_t mult = *mults++, shift = *shifts++, bias = biases ? *biases++ : 0;
    if (!util::ShortcutChannel(mult, shift) || !bias_fits.Holds(bias)) return false;
    b.bias[j] = bias;
    b.mult[j] = mult;
    b.right[j] = -shift;
    b.add[j] = util::ShortcutAddOdd(odd, -shift);
  }
  b.mode = kRight;
  return true;
}

void MakeBlock(const MatMul& m, int o0, int n, Block& b) {
  if (MakeBlockRight(m, o0, n, b)) return;
  const int64_t products = AccumulatorBound(m.k, nullptr, 0);
  if (!m.per_channel) {  // one multiplier for all (a fully connected layer): the same constants, only the biases differ
    const util::Requant r = util::MakeRequant(m.mult[0], m.shift[0], m.output_zp,
                                              AccumulatorBound(m.k, m.bias ? m.bias + o0 : nullptr, n));
    const int32_t add = r.fast ? r.add : m.output_zp, rs = r.fast ? r.right : 0, left = r.fast ? 1 : r.shift + 1,
                  mask = r.fast ? -1 : 0;
    for (int j = 0; j < n; ++j) {
      b.bias[j] = m.bias ? m.bias[o0 + j] : 0;
      b.mult[j] = r.mult;
      b.shift[j] = r.shift;
      b.add[j] = add;
      b.right[j] = rs;
      b.left[j] = left;
      b.mask[j] = mask;
    }
    b.mode = r.fast ? kRight : (r.left_fast ? kAny : kSlow);
    return;
  }
  bool right = true, any = true;
  for (int j = 0; j < n; ++j) {
    const int o = o0 + j;
    const int32_t bias = m.bias ? m.bias[o] : 0;
    const util::Requant r = util::MakeRequant(m.mult[o], m.shift[o], m.output_zp,
                                              (bias < 0 ? -static_cast<int64_t>(bias) : bias) + products);
    b.bias[j] = bias;
    b.mult[j] = r.mult;
    b.shift[j] = r.shift;
    right = right && r.fast;
    any = any && (r.fast || r.left_fast);
    b.add[j] = r.fast ? r.add : m.output_zp;
    b.right[j] = r.fast ? r.right : 0;
    b.left[j] = r.fast ? 1 : r.shift + 1;
    b.mask[j] = r.fast ? -1 : 0;
  }
  b.mode = right ? kRight : (any ? kAny : kSlow);
}

// The widened pairs of rows: for every four values x0..x3 of a row, (x0 + o) | (x2 + o) << 16 and (x1 + o) |
// (x3 + o) << 16; with two rows, row A's two words then row B's.
void Widen(const int8_t* x, int32_t groups, int32_t offset, int32_t* dst, int stride) {
  const int32_t o2 = dsp::pack16(offset, offset);
  for (int g = 0; g < groups; ++g, x += 4, dst += stride) {
    const int32_t v = util::Load4(x);
    dst[0] = dsp::sxtab16(o2, v);
    dst[1] = dsp::sxtab16_ror8(o2, v);
  }
}

// The group after the last whole one, for the assembly: the row's last n (1-3) values with the offset, zeros after.
void WidenTail(const int8_t* x, int n, int32_t offset, int32_t* dst) {
  int32_t v[4] = {0, 0, 0, 0};
  for (int i = 0; i < n; ++i) v[i] = x[i] + offset;
  dst[0] = dsp::pack16(v[0], v[2]);
  dst[1] = dsp::pack16(v[1], v[3]);
}

// The last k mod 4 values of a dot product, with the offset.
inline int32_t Tail(const int8_t* x, const int8_t* w, int n, int32_t offset) {
  int32_t a = 0;
  for (int i = 0; i < n; ++i) a += (x[i] + offset) * w[i];
  return a;
}

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
// One step of two rows by two channels over four values: rows A and B's pairs loaded into r8-r11 (LDM, p advanced),
// channel 0's weight word at w (w advanced by 4), channel 1's at w + s; 15 instructions for 16 MACs. The operands are
// register names or inline-assembly operand references, so that Dot22 and PairsFull run the same instructions.
#define TD_MM_STEP_OF(p, w, s, a00, a01, a10, a11, t, t1) \
  "ldmia " p "!, {r8, r9, r10, r11}\n\t"                \
  "ldr " t ", [" w "], #4\n\t"                          \
  "sxtb16 " t1 ", " t ", ror #8\n\t"                    \
  "sxtb16 " t ", " t "\n\t"                             \
  "smlad " a00 ", r8, " t ", " a00 "\n\t"               \
  "smlad " a00 ", r9, " t1 ", " a00 "\n\t"              \
  "smlad " a01 ", r10, " t ", " a01 "\n\t"              \
  "smlad " a01 ", r11, " t1 ", " a01 "\n\t"             \
  "ldr " t ", [" w ", " s "]\n\t"                       \
  "sxtb16 " t1 ", " t ", ror #8\n\t"                    \
  "sxtb16 " t ", " t "\n\t"                             \
  "smlad " a10 ", r8, " t ", " a10 "\n\t"               \
  "smlad " a10 ", r9, " t1 ", " a10 "\n\t"              \
  "smlad " a11 ", r10, " t ", " a11 "\n\t"              \
  "smlad " a11 ", r11, " t1 ", " a11 "\n\t"
#endif

// a[0..3] += rows A and B of xw (two-row pairs) against channels 0 and 1 (channel 1 `k` bytes after channel 0), over
// `groups` groups of four values: a = {A0, B0, A1, B1}.
__attribute__((noinline)) void Dot22(const int32_t* xw, const int8_t* w, int32_t groups, int32_t k, int32_t a[4]) {
  int32_t a00 = a[0], a01 = a[1], a10 = a[2], a11 = a[3];
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
  // channel 1 is at [w, s] once the first load has advanced w by 4; the step loads the pairs into r8..r11, declared
  // here as outputs pinned to them so that the compiler keeps nothing else there
#define TD_MM_STEP TD_MM_STEP_OF("%[p]", "%[w]", "%[s]", "%[a00]", "%[a01]", "%[a10]", "%[a11]", "%[t]", "%[t1]")
  register int32_t xa __asm__("r8");
  register int32_t xa1 __asm__("r9");
  register int32_t xb __asm__("r10");
  register int32_t xb1 __asm__("r11");
  int32_t t, t1;
  const int32_t s = k - 4;
  const int32_t* p = xw;
  const int32_t* const end2 = xw + 4 * (groups & ~1);
  if (p < end2) {
    __asm__ volatile("1:\n\t" TD_MM_STEP TD_MM_STEP
                     "cmp %[p], %[end]\n\t"
                     "blo 1b"
                     : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11), [p] "+r"(p), [w] "+r"(w),
                       [t] "=&r"(t), [t1] "=&r"(t1), [xa] "=&r"(xa), [xa1] "=&r"(xa1), [xb] "=&r"(xb),
                       [xb1] "=&r"(xb1)
                     : [s] "r"(s), [end] "r"(end2)
                     : "cc", "memory");
  }
  if (groups & 1) {
    __asm__ volatile(TD_MM_STEP
                     : [a00] "+r"(a00), [a01] "+r"(a01), [a10] "+r"(a10), [a11] "+r"(a11), [p] "+r"(p), [w] "+r"(w),
                       [t] "=&r"(t), [t1] "=&r"(t1), [xa] "=&r"(xa), [xa1] "=&r"(xa1), [xb] "=&r"(xb),
                       [xb1] "=&r"(xb1)
                     : [s] "r"(s)
                     : "memory");
  }
#undef TD_MM_STEP
#else
  for (int g = 0; g < groups; ++g, xw += 4, w += 4) {
    const int32_t u = util::Load4(w), v = util::Load4(w + k);
    const int32_t u0 = dsp::sxtb16(u), u1 = dsp::sxtb16_ror8(u), v0 = dsp::sxtb16(v), v1 = dsp::sxtb16_ror8(v);
    a00 = dsp::smlad(xw[1], u1, dsp::smlad(xw[0], u0, a00));
    a01 = dsp::smlad(xw[3], u1, dsp::smlad(xw[2], u0, a01));
    a10 = dsp::smlad(xw[1], v1, dsp::smlad(xw[0], v0, a10));
    a11 = dsp::smlad(xw[3], v1, dsp::smlad(xw[2], v0, a11));
  }
#endif
  a[0] = a00;
  a[1] = a01;
  a[2] = a10;
  a[3] = a11;
}

// a[0..3] += one row of xw (one-row pairs) against 4 channels (channel j at w + j * k), over `groups` groups.
__attribute__((noinline)) void Dot14(const int32_t* xw, const int8_t* w, int32_t groups, int32_t k, int32_t a[4]) {
  int32_t a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3];
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
  // once the first weight load has advanced w by 4, channel j is at [w, s_j] with s_j = j * k - 4
#define TD_MV_CHANNEL(A, S)                         \
  "ldr %[t], [%[w], %[" S "]]\n\t"                  \
  "sxtb16 %[t1], %[t], ror #8\n\t"                  \
  "sxtb16 %[t], %[t]\n\t"                           \
  "smlad %[" A "], %[x0], %[t], %[" A "]\n\t"       \
  "smlad %[" A "], %[x1], %[t1], %[" A "]\n\t"
#define TD_MV_STEP                                  \
  "ldrd %[x0], %[x1], [%[p]], #8\n\t"               \
  "ldr %[t], [%[w]], #4\n\t"                        \
  "sxtb16 %[t1], %[t], ror #8\n\t"                  \
  "sxtb16 %[t], %[t]\n\t"                           \
  "smlad %[a0], %[x0], %[t], %[a0]\n\t"             \
  "smlad %[a0], %[x1], %[t1], %[a0]\n\t"            \
  TD_MV_CHANNEL("a1", "s1") TD_MV_CHANNEL("a2", "s2") TD_MV_CHANNEL("a3", "s3")
#define TD_MV_OPERANDS                                                                                  \
  [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [p] "+r"(p), [w] "+r"(w), [x0] "=&r"(x0), \
      [x1] "=&r"(x1), [t] "=&r"(t), [t1] "=&r"(t1)
  const int32_t s1 = k - 4, s2 = 2 * k - 4, s3 = 3 * k - 4;
  int32_t x0, x1, t, t1;
  const int32_t* p = xw;
  const int32_t* const end2 = xw + 2 * (groups & ~1);
  if (p < end2) {
    __asm__ volatile("1:\n\t" TD_MV_STEP TD_MV_STEP
                     "cmp %[p], %[end]\n\t"
                     "blo 1b"
                     : TD_MV_OPERANDS
                     : [s1] "r"(s1), [s2] "r"(s2), [s3] "r"(s3), [end] "r"(end2)
                     : "cc", "memory");
  }
  if (groups & 1) {
    __asm__ volatile(TD_MV_STEP : TD_MV_OPERANDS : [s1] "r"(s1), [s2] "r"(s2), [s3] "r"(s3) : "memory");
  }
#undef TD_MV_CHANNEL
#undef TD_MV_STEP
#undef TD_MV_OPERANDS
#else
  for (int g = 0; g < groups; ++g, xw += 2, w += 4) {
    int32_t* acc[4] = {&a0, &a1, &a2, &a3};
    for (int j = 0; j < 4; ++j) {
      const int32_t u = util::Load4(w + j * k);
      *acc[j] = dsp::smlad(xw[1], dsp::sxtb16_ror8(u), dsp::smlad(xw[0], dsp::sxtb16(u), *acc[j]));
    }
  }
#endif
  a[0] = a0;
  a[1] = a1;
  a[2] = a2;
  a[3] = a3;
}

// One row of xw (pairs `stride` words apart) against one channel, over `groups` groups (in C: the leftovers).
int32_t Dot11(const int32_t* xw, int stride, const int8_t* w, int32_t groups) {
  int32_t a = 0;
  for (int g = 0; g < groups; ++g, xw += stride, w += 4) {
    const int32_t u = util::Load4(w);
    a = dsp::smlad(xw[1], dsp::sxtb16_ror8(u), dsp::smlad(xw[0], dsp::sxtb16(u), a));
  }
  return a;
}

template <bool kFull, int kMode>
__attribute__((always_inline)) inline int8_t Out(const MatMul& m, const Block& b, int j, int32_t acc) {
  const int32_t v = kMode == kRight  ? util::RequantFast(2 * acc, b.mult[j], b.add[j], b.right[j])
                    : kMode == kAny  ? (dsp::smmlar(acc << b.left[j], b.mult[j], b.add[j]) + ((acc >> 31) & b.mask[j])) >> b.right[j]
                                     : tflite::MultiplyByQuantizedMultiplier(acc, b.mult[j], b.shift[j]) + m.output_zp;
  return static_cast<int8_t>(kFull ? dsp::ssat8(v) : util::Clamp(v, m.act_min, m.act_max));
}

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
// Rows A and B against `pairs` pairs of channels, requantized (util::RequantFast, every multiplier below 1, the full
// int8 range) and stored, in one naked assembly function: Dot22's step with every register of the core in use during
// the dot products (p r0, w r1, channel 1's offset r2, the end of the double steps r3, the accumulators r4-r7, the
// pairs r8-r11, r12 and lr), the pointers to the weights, the outputs and the block on the stack between pairs. Per
// pair of channels (four outputs): 15 instructions per 16 MACs, about 60 of set-up, requantization and stores
// (TwoRows spends about 100 around a call of Dot22).
// With k not a multiple of 4 the rows carry one more group (WidenTail: the last values, zeros after them) and the
// step reads each channel's last word whole: its bytes past the channel are the next channel's weights, times 0.
//   (xw, w, out_a, the block's bias of the first pair's channel, its other arrays kBlock words apart as in Block;
//   stack: steps (groups of four values, the tail's included), k, cols, pairs >= 1); out_b = out_a + cols
static_assert(sizeof(int32_t) * kBlock == 128, "the assembly's offsets into Block assume 32 channels a block");
#define TD_PF_STEP TD_MM_STEP_OF("r0", "r1", "r2", "r4", "r5", "r6", "r7", "r12", "lr")
// acc (doubled) requantized with channel constants at [r12 + off]: mult in r8, add r9, right r10; result in dst
#define TD_PF_OUT(acc, dst)                 \
  "lsl " acc ", " acc ", #1\n\t"            \
  "smmlar " dst ", " acc ", r8, r9\n\t"     \
  "add " dst ", " dst ", " acc ", asr #31\n\t" \
  "asr " dst ", " dst ", r10\n\t"           \
  "ssat " dst ", #8, " dst "\n\t"
__attribute__((naked, noinline)) void PairsFull(const int32_t*, const int8_t*, int8_t*, const int32_t*, int32_t,
                                                int32_t, int32_t, int32_t) {
  __asm__ volatile(
      "push {r4-r11, lr}\n\t"
      "sub sp, #16\n\t"
      "str r0, [sp, #0]\n\t"            // xw
      "str r2, [sp, #4]\n\t"            // out_a + j
      "str r3, [sp, #8]\n\t"            // the block, at channel j
      "str r1, [sp, #12]\n\t"           // channel j's weights
      "ldr r2, [sp, #56]\n\t"           // k
      "subs r2, #4\n\t"                 // channel 1's offset once w has advanced by 4
      "ldr r3, [sp, #52]\n\t"           // groups
      "bic r3, r3, #1\n\t"
      "add r3, r0, r3, lsl #4\n\t"      // the end of the double steps: 16 bytes a group
      "1:\n\t"
      "ldr r12, [sp, #8]\n\t"
      "ldrd r4, r6, [r12]\n\t"          // the biases of channels j and j + 1
      "mov r5, r4\n\t"
      "mov r7, r6\n\t"
      "ldr r0, [sp, #0]\n\t"
      "ldr r1, [sp, #12]\n\t"
      "cmp r0, r3\n\t"
      "bhs 3f\n\t"
      "2:\n\t" TD_PF_STEP TD_PF_STEP
      "cmp r0, r3\n\t"
      "blo 2b\n\t"
      "3:\n\t"
      "ldr r12, [sp, #52]\n\t"
      "tst r12, #1\n\t"
      "beq 4f\n\t" TD_PF_STEP
      "4:\n\t"
      "ldr r1, [sp, #12]\n\t"           // the next pair's weights: 2k further
      "add r1, r1, r2, lsl #1\n\t"
      "adds r1, #8\n\t"
      "str r1, [sp, #12]\n\t"
      "ldr r12, [sp, #8]\n\t"
      "ldr r8, [r12, #640]\n\t"         // channel j: mult, add, right
      "ldr r9, [r12, #128]\n\t"
      "ldr r10, [r12, #256]\n\t" TD_PF_OUT("r4", "r11") TD_PF_OUT("r5", "lr")
      "ldr r0, [sp, #4]\n\t"
      "ldr r8, [sp, #60]\n\t"           // cols
      "strb r11, [r0]\n\t"
      "strb lr, [r0, r8]\n\t"
      "ldr r8, [r12, #644]\n\t"         // channel j + 1
      "ldr r9, [r12, #132]\n\t"
      "ldr r10, [r12, #260]\n\t" TD_PF_OUT("r6", "r11") TD_PF_OUT("r7", "lr")
      "ldr r8, [sp, #60]\n\t"
      "strb r11, [r0, #1]\n\t"
      "add r8, r8, r0\n\t"
      "strb lr, [r8, #1]\n\t"
      "adds r0, #2\n\t"
      "str r0, [sp, #4]\n\t"
      "adds r12, #8\n\t"
      "str r12, [sp, #8]\n\t"
      "ldr r8, [sp, #64]\n\t"           // pairs left
      "subs r8, #1\n\t"
      "str r8, [sp, #64]\n\t"
      "bne 1b\n\t"
      "add sp, #16\n\t"
      "pop {r4-r11, pc}");
}
#undef TD_PF_STEP
#undef TD_PF_OUT
#undef TD_MM_STEP_OF
#endif

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
// Pointwise layers from 8 or 16 channels (K = 8, 16), where PairsFull's set-up and requantization around each pair of
// channels cost more than its dot products: two rows (pixels) against one channel at a time, both rows' widened
// values loaded by LDM (doubled once a row, so that the sums are util::RequantFast's doubled accumulators), the
// channel's weights widened once for both rows, its constants (doubled bias, multiplier, addend, right shift) one
// 16-byte record loaded by LDR and LDM. K = 8: 31 instructions a channel for 16 MACs; K = 16: 48 for 32.
// Every multiplier of the block below 1, the full int8 range, the weights word-aligned (LDRD).
//   (w: the block's first channel's weights; consts: its records; out_a: row A's output at that channel; mid: the
//   widened rows, row A's K / 2 words before mid, row B's from mid; stack: cols (row B's outputs are cols after row
//   A's), w_end (the block's weights' end))
struct Consts {
  int32_t mult, add, right, bias2;
};

// One channel's 8 weights from r0 (advanced) widened: (w0, w2) r8, (w1, w3) r9, (w4, w6) r10, (w5, w7) r11
#define TD_SK_WEIGHTS                 \
  "ldrd r8, r10, [r0], #8\n\t"        \
  "sxtb16 r9, r8, ror #8\n\t"         \
  "sxtb16 r8, r8\n\t"                 \
  "sxtb16 r11, r10, ror #8\n\t"       \
  "sxtb16 r10, r10\n\t"
#define TD_SK_DOT(acc, from)                 \
  "smlad " acc ", r4, r8, " from "\n\t"      \
  "smlad " acc ", r5, r9, " acc "\n\t"       \
  "smlad " acc ", r6, r10, " acc "\n\t"      \
  "smlad " acc ", r7, r11, " acc "\n\t"
// both sums requantized (lr: row A's, r12: row B's) and stored; the next channel's record; the loop
#define TD_SK_OUT                            \
  "ldm r1, {r8, r9, r10}\n\t"              \
  "adds r1, #16\n\t"                         \
  "smmlar r4, lr, r8, r9\n\t"                \
  "add r4, r4, lr, asr #31\n\t"              \
  "asr r4, r4, r10\n\t"                      \
  "ssat r4, #8, r4\n\t"                      \
  "smmlar r5, r12, r8, r9\n\t"               \
  "add r5, r5, r12, asr #31\n\t"             \
  "asr r5, r5, r10\n\t"                      \
  "ssat r5, #8, r5\n\t"                      \
  "ldrd r6, r7, [sp, #36]\n\t"               \
  "strb r5, [r2, r6]\n\t"                    \
  "strb r4, [r2], #1\n\t"                    \
  "cmp r0, r7\n\t"                           \
  "bne 1b\n\t"

__attribute__((naked, noinline)) void SmallK8(const int8_t*, const Consts*, int8_t*, const int32_t*, int32_t,
                                              const int8_t*) {
  __asm__ volatile(
      "push {r4-r11, lr}\n\t"
      "1:\n\t" TD_SK_WEIGHTS
      "ldr r12, [r1, #12]\n\t"
      "ldmdb r3, {r4-r7}\n\t" TD_SK_DOT("lr", "r12")
      "ldm r3, {r4-r7}\n\t" TD_SK_DOT("r12", "r12") TD_SK_OUT
      "pop {r4-r11, pc}");
}

__attribute__((naked, noinline)) void SmallK16(const int8_t*, const Consts*, int8_t*, const int32_t*, int32_t,
                                               const int8_t*) {
  __asm__ volatile(
      "push {r4-r11, lr}\n\t"
      "1:\n\t"
      "ldr r12, [r1, #12]\n\t" TD_SK_WEIGHTS
      "sub r4, r3, #32\n\t"
      "ldm r4, {r4-r7}\n\t" TD_SK_DOT("lr", "r12")
      "ldm r3, {r4-r7}\n\t" TD_SK_DOT("r12", "r12") TD_SK_WEIGHTS
      "ldmdb r3, {r4-r7}\n\t" TD_SK_DOT("lr", "lr")
      "add r4, r3, #16\n\t"
      "ldm r4, {r4-r7}\n\t" TD_SK_DOT("r12", "r12") TD_SK_OUT
      "pop {r4-r11, pc}");
}
#undef TD_SK_WEIGHTS
#undef TD_SK_DOT
#undef TD_SK_OUT

// A row's kGroups groups of four values widened as Widen does (two words a group), each doubled.
template <int kGroups>
__attribute__((always_inline)) inline void WidenDoubled(const int8_t* x, int32_t o2, int32_t* dst) {
  for (int g = 0; g < kGroups; ++g) {
    const int32_t v = util::Load4(x + 4 * g), e = dsp::sxtab16(o2, v), o = dsp::sxtab16_ror8(o2, v);
    dst[2 * g] = dsp::sadd16(e, e);
    dst[2 * g + 1] = dsp::sadd16(o, o);
  }
}

// Whether SmallK runs the block: K 8 or 16, the fast requantization for every channel, the full range (v == 3),
// the weights word-aligned.
inline bool SmallKTakes(const MatMul& m, int v) {
  return (m.k == 8 || m.k == 16) && v == 3 && (reinterpret_cast<uintptr_t>(m.w) & 3) == 0;
}

// The block's channels o0 .. o0 + n - 1 against every pair of rows (K = 4 kGroups); a last odd row is left to the
// caller.
template <int kGroups>
__attribute__((noinline)) void SmallK(const MatMul& m, const Block& b, int o0, int n) {
  constexpr int kK = 4 * kGroups;
  Consts c[kBlock];
  for (int j = 0; j < n; ++j) c[j] = {b.mult[j], b.add[j], b.right[j], 2 * b.bias[j]};
  alignas(8) int32_t xw[2 * 2 * kGroups];  // row A's 2 kGroups words, then row B's
  int32_t* const mid = xw + 2 * kGroups;
  const int8_t* const w = m.w + o0 * kK;
  const int8_t* const w_end = w + n * kK;
  const int32_t o2 = dsp::pack16(-m.input_zp, -m.input_zp);
  int8_t scratch[2 * kK];
  const auto fn = kGroups == 2 ? SmallK8 : SmallK16;
  int8_t* out = m.out + o0;
  const int32_t cols = m.cols;
  const int pairs = m.rows >> 1;
  if (m.row == nullptr) {  // contiguous rows (a pointwise layer's pixels): two of them are 2 K bytes
    const int8_t* x = m.in;
    for (int i = 0; i < pairs; ++i, x += 2 * kK, out += 2 * cols) {
      WidenDoubled<kGroups>(x, o2, xw);
      WidenDoubled<kGroups>(x + kK, o2, mid);
      fn(w, c, out, mid, cols, w_end);
    }
    return;
  }
  for (int i = 0; i < pairs; ++i, out += 2 * cols) {
    WidenDoubled<kGroups>(m.row(m, 2 * i, scratch), o2, xw);
    WidenDoubled<kGroups>(m.row(m, 2 * i + 1, scratch + kK), o2, mid);
    fn(w, c, out, mid, cols, w_end);
  }
}
#endif

// Rows r and r + 1 (raw: ra, rb) against the block's n channels (from o0); xw holds both widened (two-row pairs).
template <bool kFull, int kMode>
__attribute__((noinline)) void TwoRows(const MatMul& m, const Block& b, int o0, int n, int r, const int8_t* ra,
                                       const int8_t* rb, const int32_t* xw, const int8_t* last_pair) {
  (void)last_pair;  // read by the assembly's path only
  const int32_t k = m.k, groups = k >> 2, rest = k & 3;
  const int8_t* xa = ra + 4 * groups;
  const int8_t* xb = rb + 4 * groups;
  int8_t* out_a = m.out + r * m.cols + o0;
  int8_t* out_b = out_a + m.cols;
  int j = 0;
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
  // with a tail group the last pair's second channel may not be the layer's last (its last word would be read past
  // the weights): that pair runs below
  const int fast = kFull && kMode == kRight ? (rest == 0 || o0 + (n & ~1) < m.cols ? n / 2 : n / 2 - 1) : 0;
  if (fast > 0) {
    PairsFull(xw, m.w + o0 * k, out_a, b.bias, groups + (rest ? 1 : 0), k, m.cols, fast);
    j = 2 * fast;
  }
  // That last pair (a first layer's 27 values, a pointwise layer from 5 or 13 channels) in the assembly too, from
  // Run's copy of its weights with zeros after them (LastPair): PairsFull walks the block from the pair's channel (its
  // constants' offsets are from there).
  if (kFull && kMode == kRight && last_pair != nullptr && j + 2 == n) {
    PairsFull(xw, last_pair, out_a + j, b.bias + j, groups + 1, k, m.cols, 1);
    j += 2;
  }
#endif
  for (; j + 2 <= n; j += 2) {
    const int8_t* w = m.w + (o0 + j) * k;
    int32_t a[4] = {b.bias[j], b.bias[j], b.bias[j + 1], b.bias[j + 1]};
    Dot22(xw, w, groups, k, a);
    if (rest) {
      const int8_t* wt = w + 4 * groups;
      a[0] += Tail(xa, wt, rest, -m.input_zp);
      a[1] += Tail(xb, wt, rest, -m.input_zp);
      a[2] += Tail(xa, wt + k, rest, -m.input_zp);
      a[3] += Tail(xb, wt + k, rest, -m.input_zp);
    }
    // all four before any store: an int8 store may alias the block's constants, which would be loaded again
    const int8_t v0 = Out<kFull, kMode>(m, b, j, a[0]), v1 = Out<kFull, kMode>(m, b, j, a[1]);
    const int8_t v2 = Out<kFull, kMode>(m, b, j + 1, a[2]), v3 = Out<kFull, kMode>(m, b, j + 1, a[3]);
    out_a[j] = v0;
    out_b[j] = v1;
    out_a[j + 1] = v2;
    out_b[j + 1] = v3;
  }
  if (j < n) {  // the block's odd last channel
    const int8_t* w = m.w + (o0 + j) * k;
    const int32_t aa = b.bias[j] + Dot11(xw, 4, w, groups) + Tail(xa, w + 4 * groups, rest, -m.input_zp);
    const int32_t ab = b.bias[j] + Dot11(xw + 2, 4, w, groups) + Tail(xb, w + 4 * groups, rest, -m.input_zp);
    out_a[j] = Out<kFull, kMode>(m, b, j, aa);
    out_b[j] = Out<kFull, kMode>(m, b, j, ab);
  }
}

// Row r (raw: ra) against the block's n channels; xw holds it widened (one-row pairs).
template <bool kFull, int kMode>
__attribute__((noinline)) void OneRow(const MatMul& m, const Block& b, int o0, int n, int r, const int8_t* ra,
                                      const int32_t* xw) {
  const int32_t k = m.k, groups = k >> 2, rest = k & 3;
  const int8_t* xt = ra + 4 * groups;
  int8_t* out = m.out + r * m.cols + o0;
  int j = 0;
  for (; j + 4 <= n; j += 4) {
    const int8_t* w = m.w + (o0 + j) * k;
    int32_t a[4] = {b.bias[j], b.bias[j + 1], b.bias[j + 2], b.bias[j + 3]};
    Dot14(xw, w, groups, k, a);
    int8_t v[4];
    for (int i = 0; i < 4; ++i) {
      if (rest) a[i] += Tail(xt, w + i * k + 4 * groups, rest, -m.input_zp);
      v[i] = Out<kFull, kMode>(m, b, j + i, a[i]);
    }
    memcpy(out + j, v, 4);  // one store after the four (see TwoRows)
  }
  for (; j < n; ++j) {
    const int8_t* w = m.w + (o0 + j) * k;
    const int32_t a = b.bias[j] + Dot11(xw, 2, w, groups) + Tail(xt, w + 4 * groups, rest, -m.input_zp);
    out[j] = Out<kFull, kMode>(m, b, j, a);
  }
}

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
// One row against blocks of four channels in one naked function, for FcRow (FcBlocks: a fully connected layer's
// per-tensor requantization) and PerChannelRow (FcBlocksPerChannel: a 1x1 convolution on a single pixel, each
// channel's own multiplier and shift, its constants made in the block by util::MakeRequant's shortcut: add = (2 zp +
// 1) << (right - 1), right - 1 = ~shift; the shift right by right - 1, then by 1 in SSAT's own shift; a channel outside
// the shortcut's bounds gets a value PerChannelRow then computes again). K a multiple of 8. Registers: the BlocksRun
// r12 throughout, the channels 0 and 2's weights r1 and r3 (each advanced by its loads; 1 and 3 at K - 4 bytes past
// them, r2), the row r0 to its end lr, the accumulators r4-r7 (the bias loaded into them), scratch r8-r11: no stack.
// Four steps a turn of the loop (21 instructions for 16 MACs), entered where the row's steps leave 2 over (K = 8 mod
// 16) at its third step (the run's entry), so no tail; TFLM's requantization of the doubled sums (util::RequantFast),
// the four outputs packed in one word, clamped to the activation range per byte (SSUB8 and SEL) where it is narrower
// than int8's, and stored with one STR. Per block of 4 channels and K inputs: 21 K / 4 + K / 8 + 40 instructions
// (FcBlocks), + 58 (FcBlocksPerChannel).
struct BlocksRun {
  const int32_t* xw;    // 0: the row widened (one-row pairs)
  const int32_t* end;   // 4: its end
  int32_t entry;        // 8: K = 8 mod 16 (nonzero) or not; the loop's entry once the function starts
  const int32_t* bias;  // 12: the block's first channel's bias, advanced by the function
  int8_t* out;          // 16: its output, advanced
  const int8_t* out_end;  // 20: where the blocks' outputs end
  // 24-32: FcBlocks: the layer's multiplier, addend and right shift; FcBlocksPerChannel: the block's first channel's
  // multiplier (its address, advanced), the bytes from a channel's multiplier to its shift less 4, 2 zp + 1
  int32_t q[3];
  int32_t lo4, hi4;     // 36, 40: the activation range, a byte a lane
  int32_t three_k;      // 44: from channel 0's weights' end to the next block's first
  int32_t k4;           // 48: K - 4
  const int8_t* w;      // 52: the first block's weights
  int32_t clamp;        // 56: the activation range is narrower than int8's
};
static_assert(sizeof(BlocksRun) == 60, "the assembly's offsets into BlocksRun");

// One step of four inputs against four channels: channel 0's weight word at r1 (advanced), 1 at r1 + r2, 2 at r3
// (advanced), 3 at r3 + r2
#define TD_FC_STEP                             \
  "ldrd r8, r9, [r0], #8\n\t"                   \
  "ldr r10, [r1], #4\n\t"                       \
  "sxtb16 r11, r10, ror #8\n\t"                 \
  "sxtb16 r10, r10\n\t"                         \
  "smlad r4, r8, r10, r4\n\t"                   \
  "smlad r4, r9, r11, r4\n\t"                   \
  "ldr r10, [r1, r2]\n\t"                       \
  "sxtb16 r11, r10, ror #8\n\t"                 \
  "sxtb16 r10, r10\n\t"                         \
  "smlad r5, r8, r10, r5\n\t"                   \
  "smlad r5, r9, r11, r5\n\t"                   \
  "ldr r10, [r3], #4\n\t"                       \
  "sxtb16 r11, r10, ror #8\n\t"                 \
  "sxtb16 r10, r10\n\t"                         \
  "smlad r6, r8, r10, r6\n\t"                   \
  "smlad r6, r9, r11, r6\n\t"                   \
  "ldr r10, [r3, r2]\n\t"                       \
  "sxtb16 r11, r10, ror #8\n\t"                 \
  "sxtb16 r10, r10\n\t"                         \
  "smlad r7, r8, r10, r7\n\t"                   \
  "smlad r7, r9, r11, r7\n\t"
// accumulator A requantized into A with the layer's multiplier r8, addend r9 and right shift r10: 2a, SMMLAR with the
// addend, the sign term, the right shift, the int8 saturation
#define TD_FC_OUT(A)                           \
  "add " A ", " A ", " A "\n\t"                  \
  "smmlar r11, " A ", r8, r9\n\t"               \
  "add r11, r11, " A ", asr #31\n\t"            \
  "asr " A ", r11, r10\n\t"                     \
  "ssat " A ", #8, " A "\n\t"
// the same with the channel's own: its multiplier at r0 (advanced), its shift at r0 + r2; 2 zp + 1 in r11
#define TD_FC_PC_OUT(A)                        \
  "ldr r8, [r0], #4\n\t"                        \
  "ldr r10, [r0, r2]\n\t"                       \
  "mvn r10, r10\n\t"                            \
  "lsl r9, r11, r10\n\t"                        \
  "add " A ", " A ", " A "\n\t"                  \
  "smmlar r9, " A ", r8, r9\n\t"                \
  "add r9, r9, " A ", asr #31\n\t"              \
  "asr " A ", r9, r10\n\t"                      \
  "ssat " A ", #8, " A ", asr #1\n\t"
// the function: the blocks' loop, OUT requantizing r4-r7 (r2 K - 4 again after it), the store
#define TD_FC_BLOCKS(OUT)                      \
  "push {r4-r11, lr}\n\t"                       \
  "mov r12, r0\n\t"                             \
  "ldr r1, [r12, #52]\n\t"                      \
  "ldr r2, [r12, #48]\n\t"                      \
  "add r3, r1, r2, lsl #1\n\t"                  \
  "add r3, r3, #8\n\t"                          \
  "ldr lr, [r12, #4]\n\t"                       \
  "ldr r4, [r12, #8]\n\t"                       \
  "adr.w r9, 1f\n\t"                            \
  "cbz r4, 5f\n\t"                              \
  "adr.w r9, 3f\n\t"                            \
  "5:\n\t"                                      \
  "orr r9, r9, #1\n\t"                          \
  "str r9, [r12, #8]\n\t"                       \
  "0:\n\t"                                      \
  "ldr r9, [r12, #12]\n\t"                      \
  "ldm r9!, {r4-r7}\n\t"                        \
  "str r9, [r12, #12]\n\t"                      \
  "ldr r0, [r12]\n\t"                           \
  "ldr pc, [r12, #8]\n\t"                       \
  "1:\n\t" TD_FC_STEP TD_FC_STEP                 \
  "3:\n\t" TD_FC_STEP TD_FC_STEP                 \
  "cmp r0, lr\n\t"                              \
  "blo 1b\n\t" OUT                              \
  "bfi r4, r5, #8, #8\n\t"                      \
  "bfi r4, r6, #16, #8\n\t"                     \
  "bfi r4, r7, #24, #8\n\t"                     \
  "ldr r5, [r12, #56]\n\t"                      \
  "cbz r5, 4f\n\t"                              \
  "ldrd r8, r9, [r12, #36]\n\t"                 \
  "ssub8 r10, r4, r8\n\t"                       \
  "sel r4, r4, r8\n\t"                          \
  "ssub8 r10, r9, r4\n\t"                       \
  "sel r4, r4, r9\n\t"                          \
  "4:\n\t"                                      \
  "ldrd r10, r11, [r12, #16]\n\t"               \
  "str r4, [r10], #4\n\t"                       \
  "str r10, [r12, #16]\n\t"                     \
  "ldr r9, [r12, #44]\n\t"                      \
  "add r1, r1, r9\n\t"                          \
  "add r3, r3, r9\n\t"                          \
  "cmp r10, r11\n\t"                            \
  "bne 0b\n\t"                                  \
  "pop {r4-r11, pc}"

// The entry's label (5:) is local to each function: the two bodies are separate asm statements.
__attribute__((naked, noinline)) void FcBlocks(BlocksRun*) {
  __asm__ volatile(TD_FC_BLOCKS("ldrd r8, r9, [r12, #24]\n\t"
                                "ldr r10, [r12, #32]\n\t" TD_FC_OUT("r4") TD_FC_OUT("r5") TD_FC_OUT("r6")
                                TD_FC_OUT("r7")));
}

__attribute__((naked, noinline)) void FcBlocksPerChannel(BlocksRun*) {
  __asm__ volatile(TD_FC_BLOCKS("ldr r0, [r12, #24]\n\t"
                                "ldrd r2, r11, [r12, #28]\n\t" TD_FC_PC_OUT("r4") TD_FC_PC_OUT("r5") TD_FC_PC_OUT("r6")
                                TD_FC_PC_OUT("r7")
                                "str r0, [r12, #24]\n\t"
                                "ldr r2, [r12, #48]\n\t"));
}
#undef TD_FC_BLOCKS
#undef TD_FC_PC_OUT
#undef TD_FC_OUT
#undef TD_FC_STEP
#endif

}  // namespace

bool FcRowTakes(int32_t k, int32_t cols, int32_t mult, int32_t shift, int32_t output_zp, const int32_t* bias) {
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
  return bias != nullptr && k % 8 == 0 && k <= kMatMulMaxK && cols >= 4 &&
         util::MakeRequant(mult, shift, output_zp, AccumulatorBound(k, bias, cols)).fast;
#else
  (void)k, (void)cols, (void)mult, (void)shift, (void)output_zp, (void)bias;
  return false;
#endif
}

bool PerChannelRowTakes(const MatMul& m) {
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
  return m.rows == 1 && m.row == nullptr && m.per_channel && m.bias != nullptr && m.k % 8 == 0 && m.k <= kMatMulMaxK &&
         m.cols >= 4;
#else
  (void)m;
  return false;
#endif
}

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
// The row widened into xw (kMatMulMaxK / 2 words) and what both functions' blocks read of the layer: the row's end,
// where the loop is entered (groups & 2: the steps leave 2 over a turn's 4), every block of four channels, the
// activation range a byte a lane and whether it is narrower than int8's; the requantization (q) left to the caller.
BlocksRun RowRun(const MatMul& m, int32_t* xw) {
  const int32_t groups = m.k >> 2;
  Widen(m.in, groups, -m.input_zp, xw, 2);
  return {xw, xw + 2 * groups, groups & 2, m.bias, m.out, m.out + 4 * (m.cols >> 2), {0, 0, 0}, util::Lanes(m.act_min),
          util::Lanes(m.act_max), 3 * m.k, m.k - 4, m.w, m.act_min > -128 || m.act_max < 127};
}
#endif

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
// PerChannelRow's channel j computed again on its own, one the shortcut does not take: its dot product against the
// widened row, then TFLM's arithmetic. Out of line, so that the loop over the channels keeps its pointers in registers
// (an int8 store may alias them).
__attribute__((noinline)) void RowChannel(const MatMul& m, const int32_t* xw, int j) {
  const int32_t a = m.bias[j] + Dot11(xw, 2, m.w + j * m.k, m.k >> 2);
  const int32_t v = tflite::MultiplyByQuantizedMultiplier(a, m.mult[j], m.shift[j]) + m.output_zp;
  m.out[j] = static_cast<int8_t>(util::Clamp(dsp::ssat8(v), m.act_min, m.act_max));
}
#endif

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
// The first channel from j on (below n) that the shortcut does not take, or n: a loop of loads and compares alone.
int NextOutside(const int32_t* mults, const int32_t* shifts, const int32_t* biases, const util::ShortcutBias& bias_fits,
                int j, int n) {
  for (; j < n; ++j) {
    if (!bias_fits.Holds(biases[j]) || !util::ShortcutChannel(mults[j], shifts[j])) return j;
  }
  return n;
}
#endif

void PerChannelRow(const MatMul& m) {
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
  int32_t xw[kMatMulMaxK / 2];
  BlocksRun run = RowRun(m, xw);
  run.q[0] = static_cast<int32_t>(reinterpret_cast<intptr_t>(m.mult));
  run.q[1] = static_cast<int32_t>(reinterpret_cast<intptr_t>(m.shift) - reinterpret_cast<intptr_t>(m.mult)) - 4;
  run.q[2] = util::ShortcutOdd(m.output_zp);
  const int32_t entry = run.entry;  // (the function writes its loop's entry there)
  FcBlocksPerChannel(&run);
  if (m.cols & 3) {  // the last one to three channels: one more block, the last four (the first ones again, the same)
    const int c = m.cols - 4;
    run.entry = entry;
    run.bias = m.bias + c;
    run.out = m.out + c;
    run.out_end = m.out + m.cols;
    run.q[0] = static_cast<int32_t>(reinterpret_cast<intptr_t>(m.mult + c));
    run.w = m.w + c * m.k;
    FcBlocksPerChannel(&run);
  }
  // Each channel the shortcut does not take (its multiplier, shift or bias out of its bound, or the zero point) again
  // by TFLM's own arithmetic, over what the blocks wrote for it: looked for in the range Prepare found them in alone
  // (none where it found none).
  const util::ShortcutBias bias_fits(m.k, m.output_zp);
  const int end = m.outside.end < m.cols ? m.outside.end : m.cols;
  for (int j = NextOutside(m.mult, m.shift, m.bias, bias_fits, m.outside.begin, end); j < end;
       j = NextOutside(m.mult, m.shift, m.bias, bias_fits, j + 1, end)) {
    RowChannel(m, xw, j);
  }
#else
  Run(m);
#endif
}

void FcRow(const MatMul& m) {
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
  int32_t xw[kMatMulMaxK / 2];
  BlocksRun run = RowRun(m, xw);
  const int32_t groups = m.k >> 2;
  // the fast form's constants (which do not depend on the bound; FcRowTakes checked the bound with the biases)
  const util::Requant q = util::MakeRequant(m.mult[0], m.shift[0], m.output_zp, AccumulatorBound(m.k, nullptr, 0));
  run.q[0] = m.mult[0];
  run.q[1] = q.add;
  run.q[2] = q.right;
  FcBlocks(&run);
  for (int j = 4 * (m.cols >> 2); j < m.cols; ++j) {  // the last one to three channels
    const int32_t a = m.bias[j] + Dot11(xw, 2, m.w + j * m.k, groups);
    m.out[j] = static_cast<int8_t>(
        util::Clamp(dsp::ssat8(util::RequantFast(2 * a, q.mult, q.add, q.right)), m.act_min, m.act_max));
  }
#else
  Run(m);
#endif
}

const int8_t* ContiguousRow(const MatMul& m, int r, int8_t* scratch) {
  (void)scratch;
  return m.in + r * m.k;
}

void Run(const MatMul& m) {
  const bool full = m.act_min <= -128 && m.act_max >= 127;
  const int32_t groups = m.k >> 2;
  const RowFn row = m.row ? m.row : ContiguousRow;
  int32_t xw[kMatMulMaxK];  // two rows' pairs: 2 words per four values per row
  int8_t scratch[2 * kMatMulMaxK];  // two gathered rows
  Block b;
  using TwoFn = void (*)(const MatMul&, const Block&, int, int, int, const int8_t*, const int8_t*, const int32_t*,
                         const int8_t*);
  alignas(4) int8_t last_pair[kPaddedPair];
  using OneFn = void (*)(const MatMul&, const Block&, int, int, int, const int8_t*, const int32_t*);
  // the common case (a multiplier below 1, no activation) has its own copy without the clamp; the others clamp
  static const TwoFn kTwo[4] = {TwoRows<false, kSlow>, TwoRows<false, kRight>, TwoRows<false, kAny>,
                                TwoRows<true, kRight>};
  static const OneFn kOne[4] = {OneRow<false, kSlow>, OneRow<false, kRight>, OneRow<false, kAny>,
                                OneRow<true, kRight>};
  const int8_t* single = nullptr;  // the one row, when there is one
  for (int o0 = 0; o0 < m.cols; o0 += kBlock) {
    const int n = m.cols - o0 < kBlock ? m.cols - o0 : kBlock;
    MakeBlock(m, o0, n, b);
    const int v = full && b.mode == kRight ? 3 : b.mode;
    // the layer's last pair of channels where k leaves a tail group, for PairsFull: its weights and 4 zeros after
    // them (its last word would read past the layer's weights), copied once a block
    const int8_t* pair = nullptr;
    if (v == 3 && (m.k & 3) != 0 && n >= 2 && (n & 1) == 0 && o0 + n >= m.cols && 2 * m.k + 4 <= kPaddedPair) {
      memcpy(last_pair, m.w + (o0 + n - 2) * m.k, 2 * m.k);
      memset(last_pair + 2 * m.k, 0, 4);
      pair = last_pair;
    }
    if (m.rows == 1) {  // one row (a fully connected layer's batch): gathered and widened once for all blocks
      if (o0 == 0) {
        single = row(m, 0, scratch);
        Widen(single, groups, -m.input_zp, xw, 2);
      }
      kOne[v](m, b, o0, n, 0, single, xw);
      continue;
    }
    int r = 0;
#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
    if (SmallKTakes(m, v)) {
      (m.k == 8 ? SmallK<2> : SmallK<4>)(m, b, o0, n);
      r = m.rows & ~1;
    }
#endif
    for (; r + 2 <= m.rows; r += 2) {
      const int8_t* ra = row(m, r, scratch);
      const int8_t* rb = row(m, r + 1, scratch + kMatMulMaxK);
      Widen(ra, groups, -m.input_zp, xw, 4);
      Widen(rb, groups, -m.input_zp, xw + 2, 4);
      if ((m.k & 3) && v == 3) {  // the tail group only PairsFull (full range, below 1) reads
        WidenTail(ra + 4 * groups, m.k & 3, -m.input_zp, xw + 4 * groups);
        WidenTail(rb + 4 * groups, m.k & 3, -m.input_zp, xw + 4 * groups + 2);
      }
      kTwo[v](m, b, o0, n, r, ra, rb, xw, pair);
    }
    if (r < m.rows) {
      const int8_t* ra = row(m, r, scratch);
      Widen(ra, groups, -m.input_zp, xw, 2);
      kOne[v](m, b, o0, n, r, ra, xw);
    }
  }
}

}  // namespace kernels
}  // namespace td
