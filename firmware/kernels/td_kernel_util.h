// What tinydeploy's kernels share: a node's op data (the library's OpDataConv, filled by the library's own Prepare,
// and the library kernel's op data for the nodes handed to it), the hand-over to the library kernel, and TFLM's
// requantization on the fast path.
#ifndef TINYDEPLOY_TD_KERNEL_UTIL_H_
#define TINYDEPLOY_TD_KERNEL_UTIL_H_

#include <stdint.h>
#include <string.h>

#include "td_dsp.h"
#include "tensorflow/lite/c/common.h"
#include "tensorflow/lite/kernels/internal/common.h"
#include "tensorflow/lite/micro/kernels/conv.h"
#include "tensorflow/lite/micro/kernels/kernel_util.h"
#include "tensorflow/lite/micro/micro_log.h"

namespace td {
namespace kernels {
namespace util {

// A node's op data when this kernel runs it: exactly the library's (Data, filled by the library's own Prepare, or by
// ours where the library's is not public), no larger than the library kernel's own, so the arena is no larger.
template <typename Data>
struct KernelOpOf {
  Data data;
};
static_assert(sizeof(KernelOpOf<tflite::OpDataConv>) == sizeof(tflite::OpDataConv), "the op data is Data alone");
using KernelOp = KernelOpOf<tflite::OpDataConv>;

// A node the library kernel runs keeps that kernel's own op data in node->user_data, tagged in its lowest bit (op
// data is allocated aligned, so the bit is free), which is how Eval tells the two apart without a flag in the arena.
inline void* TagLibrary(void* p) { return reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(p) | 1u); }
inline bool IsLibrary(const void* p) { return (reinterpret_cast<uintptr_t>(p) & 1u) != 0; }
inline void* UntagLibrary(void* p) { return reinterpret_cast<void*>(reinterpret_cast<uintptr_t>(p) & ~uintptr_t{1}); }

// Nothing in Init: Prepare allocates what the node's kernel needs, once it knows which kernel that is.
inline void* InitNothing(TfLiteContext* context, const char* buffer, size_t length) {
  (void)context;
  (void)buffer;
  (void)length;
  return nullptr;
}

// A kernel's registration, the same for every kernel here: Prepare picks the node's kernel (this one where kApplies,
// with kOurPrepare filling the op data; else the library kernel kLibrary, with its own op data and Prepare), and Eval
// runs that choice (kEvalOurs, or the library's invoke). kInFlash, where a kernel has one, finds the op data Prepare
// computed as a const copy the build wrote (flash), which the node then uses instead of an arena copy.
template <typename Data, TfLiteRegistration (*kLibrary)(), bool (*kApplies)(TfLiteContext*, TfLiteNode*),
          TfLiteStatus (*kOurPrepare)(TfLiteContext*, TfLiteNode*),
          TfLiteStatus (*kEvalOurs)(TfLiteContext*, TfLiteNode*, const KernelOpOf<Data>&),
          TfLiteStatus (*kInFlash)(TfLiteNode*, const Data&, const Data**) = nullptr>
struct Kernel {
  using Op = KernelOpOf<Data>;

  // kLibrary null: a registration for models whose every node of the op this one takes (the build knows it), so
  // that the library's kernel is not linked.
  static TfLiteRegistration LibraryKernel() { return kLibrary != nullptr ? kLibrary() : TfLiteRegistration{}; }

  // The op data is computed on the stack, then placed: in flash where kInFlash finds it there, else in the arena.
  static TfLiteStatus PrepareOurs(TfLiteContext* context, TfLiteNode* node) {
    Op op;
    memset(&op, 0, sizeof(Op));
    node->user_data = &op;
    const TfLiteStatus s = kOurPrepare(context, node);
    node->user_data = nullptr;
    if (s != kTfLiteOk) return s;
    const Data* in_flash = nullptr;
    if (kInFlash != nullptr) TF_LITE_ENSURE_STATUS(kInFlash(node, op.data, &in_flash));
    if (in_flash != nullptr) {  // Op is Data and nothing else: the same address, the same layout
      node->user_data = const_cast<Data*>(in_flash);
      return kTfLiteOk;
    }
    void* p = context->AllocatePersistentBuffer(context, sizeof(Op));
    if (p == nullptr || IsLibrary(p)) return kTfLiteError;
    memcpy(p, &op, sizeof(Op));
    node->user_data = p;
    return kTfLiteOk;
  }

  static TfLiteStatus Prepare(TfLiteContext* context, TfLiteNode* node) {
    if (kApplies(context, node)) return PrepareOurs(context, node);
    if (kLibrary == nullptr) {
      MicroPrintf("tinydeploy: a node this firmware has no kernel for (the project was generated for another model; "
                  "rebuild it)");
      return kTfLiteError;
    }
    const TfLiteRegistration lib = LibraryKernel();
    void* data = lib.init(context, nullptr, 0);
    if (IsLibrary(data)) return kTfLiteError;  // not aligned: the tag would be lost
    node->user_data = data;
    const TfLiteStatus s = lib.prepare(context, node);
    node->user_data = TagLibrary(data);
    return s;
  }

  static TfLiteStatus Eval(TfLiteContext* context, TfLiteNode* node) {
    void* const tagged = node->user_data;
    if (!IsLibrary(tagged)) return kEvalOurs(context, node, *static_cast<const Op*>(tagged));
    const TfLiteRegistration lib = LibraryKernel();
    node->user_data = UntagLibrary(tagged);  // the library kernel's invoke with its own op data
    const TfLiteStatus s = lib.invoke(context, node);
    node->user_data = tagged;
    return s;
  }

  static TfLiteRegistration Registration() { return tflite::micro::RegisterOp(InitNothing, Prepare, Eval); }
};

// A convolution's shape (NHWC input and output, the filter's height and width), strides, dilation and padding, from
// the node's tensors, its stride and dilation parameters and the padding the library's Prepare computed.
struct Geometry {
  int in_h, in_w, channels, k_h, k_w, out_h, out_w, stride_h, stride_w, dil_h, dil_w, pad_h, pad_w;
};

inline Geometry GeometryOf(const TfLiteEvalTensor& input, const TfLiteEvalTensor& filter,
                           const TfLiteEvalTensor& output, int stride_h, int stride_w, int dil_h, int dil_w,
                           const TfLitePaddingValues& padding) {
  Geometry s;
  s.in_h = input.dims->data[1];
  s.in_w = input.dims->data[2];
  s.channels = input.dims->data[3];
  s.k_h = filter.dims->data[1];
  s.k_w = filter.dims->data[2];
  s.out_h = output.dims->data[1];
  s.out_w = output.dims->data[2];
  s.stride_h = stride_h;
  s.stride_w = stride_w;
  s.dil_h = dil_h;
  s.dil_w = dil_w;
  s.pad_h = padding.height;
  s.pad_w = padding.width;
  return s;
}

// TFLM's requantization (MultiplyByQuantizedMultiplier: a rounding doubling high multiply, then a rounding divide by
// 2^e) of an accumulator held doubled (acc2 = 2a), with the output zero point, for one channel, in three
// instructions (SMMLAR, an add of the sign, a shift):
//   SMMULR(2a, m) = floor((2am + 2^31) / 2^32) = floor((am + 2^30) / 2^31) = SaturatingRoundingDoublingHighMul(a, m)
//   for m > 0 and 2a in 32 bits; RoundingDivideByPOT(x, e) = (x + 2^(e-1) - (x < 0)) >> e for e >= 1; adding the zero
//   point as zp << e before the shift is exact while it does not overflow; SMMLAR adds that constant to SMMULR's
//   result in the same instruction. The sign taken is the accumulator's (acc2 >> 31 is -1 where it is negative), not
//   x's: with m > 0 they differ only where a < 0 and x = 0, and there (2^(e-1) - 1 + (zp << e)) >> e and
//   (2^(e-1) + (zp << e)) >> e are both zp. (tests/native/requant_main.cpp checks this against TFLM's functions.)
struct Requant {
  int32_t mult, shift;  // TFLM's, from the library's Prepare
  int32_t add, right;   // fast path: 2^(right - 1) + (zp << right), and the right shift
  bool fast;
  // A multiplier of 1 or more (shift >= 0): TFLM multiplies x << shift and shifts nothing after, so the result is
  // SMMLAR(acc2 << shift, m, zp) while acc2 << shift fits in 32 bits.
  bool left_fast;
};

// bound: the largest |accumulator| the channel can reach (not doubled). In 64-bit arithmetic (about 100 instructions
// on a Cortex-M4, one copy for every kernel); MakeRequant below gives the same in a few where it can.
__attribute__((noinline)) inline Requant MakeRequantWide(int32_t mult, int32_t shift, int32_t out_zp, int64_t bound) {
  Requant q;
  q.mult = mult;
  q.shift = shift;
  q.right = shift > 0 ? 0 : -shift;
  // exact while acc2 = 2a fits in 32 bits and the sum x + add (x = SMMULR(acc2, m), |x| <= 2 |a| m / 2^32 + 1) does
  // not overflow: then any right shift up to 30 is fast (multipliers down to 2^-31)
  const int64_t add = q.right >= 1 && q.right <= 30
                          ? (static_cast<int64_t>(1) << (q.right - 1)) + static_cast<int64_t>(out_zp) * (1LL << q.right)
                          : 0;
  const int64_t x_max = mult >= 0 ? ((2 * bound * static_cast<int64_t>(mult)) >> 32) + 1 : 0;
  q.fast = mult >= 0 && shift <= -1 && q.right <= 30 && 2 * bound < (static_cast<int64_t>(1) << 31) &&
           (add < 0 ? -add : add) + x_max + 1 < (static_cast<int64_t>(1) << 31);
  q.add = q.fast ? static_cast<int32_t>(add) : 0;
  q.left_fast = mult >= 0 && shift >= 0 && shift <= 20 && (2 * bound << shift) < (static_cast<int64_t>(1) << 31);
  return q;
}

// MakeRequantWide's result, the common case in 32-bit arithmetic: the kernels make a channel's constants once an
// inference, and on a 1x1 map (a pointwise layer after global pooling) that set-up cost as much as the dot products.
// A multiplier >= 0, a right shift of 1 to 23, |zp| <= 128 and 0 <= bound < 2^29 give |add| <= 2^22 + 2^30 (in 32
// bits) and x_max <= bound + 1 (m < 2^31), so Wide's conditions hold: the fast form, add as it computes it.
// (tests/native/requant_main.cpp checks the two agree.)
constexpr int32_t kShortcutBound = 1 << 29;
constexpr int32_t kShortcutRight = 23;
constexpr int32_t kShortcutMaxProducts = 1 << 14;  // 255 * 128 * 2^14 < kShortcutBound
// Its conditions in parts, for loops over a layer's channels that test the zero point once.
inline bool ShortcutZeroPoint(int32_t out_zp) { return out_zp >= -128 && out_zp <= 128; }
inline bool ShortcutChannel(int32_t mult, int32_t shift) {
  return mult >= 0 && static_cast<uint32_t>(-1 - shift) < static_cast<uint32_t>(kShortcutRight);
}
inline bool ShortcutTakes(int32_t mult, int32_t shift, int32_t out_zp) {
  return ShortcutChannel(mult, shift) && ShortcutZeroPoint(out_zp);
}
// The bound |bias| + 255 * 128 * products < kShortcutBound of a channel summing `products` int8 products (any weights
// and inputs: |w| <= 128, |x - zp| <= 255), as |bias| < room, tested in one unsigned comparison: bias + room - 1 <
// 2 room - 1. Made once for a loop over a layer's channels (products <= kShortcutMaxProducts: room > 0).
// With the layer's output zero point, the zero point's part of the shortcut folded in: outside its range no bias holds.
struct ShortcutBias {
  explicit ShortcutBias(int32_t products)
      : low(static_cast<uint32_t>(kShortcutBound - 255 * 128 * products - 1)),
        span(2 * static_cast<uint32_t>(kShortcutBound - 255 * 128 * products) - 1) {}
  ShortcutBias(int32_t products, int32_t out_zp) : ShortcutBias(products) {
    if (!ShortcutZeroPoint(out_zp)) span = 0;
  }
  bool Holds(int32_t bias) const { return static_cast<uint32_t>(bias) + low < span; }
  uint32_t low, span;
};
// 2^(right - 1) + zp 2^right, as (2 zp + 1) 2^(right - 1): one shift of a per-layer factor (ShortcutOdd), which
// loops over a layer's channels make once
inline int32_t ShortcutOdd(int32_t out_zp) { return 2 * out_zp + 1; }
inline int32_t ShortcutAddOdd(int32_t odd, int32_t right) { return odd * (1 << (right - 1)); }
inline int32_t ShortcutAdd(int32_t right, int32_t out_zp) { return ShortcutAddOdd(ShortcutOdd(out_zp), right); }

inline Requant MakeRequant(int32_t mult, int32_t shift, int32_t out_zp, int64_t bound) {
  if (!ShortcutTakes(mult, shift, out_zp) || bound < 0 || bound >= kShortcutBound) {
    return MakeRequantWide(mult, shift, out_zp, bound);
  }
  Requant q;
  q.mult = mult;
  q.shift = shift;
  q.right = -shift;
  q.add = ShortcutAdd(q.right, out_zp);
  q.fast = true;
  q.left_fast = false;
  return q;
}


inline int32_t RequantFast(int32_t acc2, int32_t mult, int32_t add, int32_t right) {
  return (dsp::smmlar(acc2, mult, add) + (acc2 >> 31)) >> right;
}

// Either path, zero point included, not yet clamped.
inline int32_t Requantize(const Requant& q, int32_t acc2, int32_t out_zp) {
  return q.fast ? RequantFast(acc2, q.mult, q.add, q.right)
                : tflite::MultiplyByQuantizedMultiplier(acc2 / 2, q.mult, q.shift) + out_zp;
}

inline int32_t Clamp(int32_t v, int32_t lo, int32_t hi) { return v < lo ? lo : (v > hi ? hi : v); }

// An int8 value in each byte of a word: an activation bound for Clamp4.
inline int32_t Lanes(int32_t v) { return static_cast<int32_t>(0x01010101u * static_cast<uint8_t>(v)); }

// Four int8 values in one word, each clamped to [lo, hi] (lo4, hi4: Lanes of them): SSUB8 and SEL twice.
inline int32_t Clamp4(int32_t v, int32_t lo4, int32_t hi4) { return dsp::min8x4(dsp::max8x4(v, lo4), hi4); }

// Four int8 values as one word: one LDR (the Cortex-M4 loads unaligned words).
inline int32_t Load4(const int8_t* p) {
  int32_t v;
  memcpy(&v, p, 4);
  return v;
}

// Four bytes stored as one word (an unaligned STR).
inline void Store4(int8_t* p, int32_t v) { memcpy(p, &v, 4); }

// A short copy (a filter row's few pixels) in word moves and a tail, without a call of memcpy.
inline void CopySmall(int8_t* d, const int8_t* s, int n) {
  for (; n >= 4; n -= 4, d += 4, s += 4) Store4(d, Load4(s));
  if (n & 2) {
    d[0] = s[0];
    d[1] = s[1];
    d += 2;
    s += 2;
  }
  if (n & 1) d[0] = s[0];
}

}  // namespace util
}  // namespace kernels
}  // namespace td

#endif  // TINYDEPLOY_TD_KERNEL_UTIL_H_
