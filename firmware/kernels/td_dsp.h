// The Cortex-M4's DSP instructions that tinydeploy's kernels use, as inline functions (GCC inline assembly on
// a core with the DSP extension, plain C with the same results elsewhere, so the kernels also compile for a host).
#ifndef TINYDEPLOY_TD_DSP_H_
#define TINYDEPLOY_TD_DSP_H_

#include <stdint.h>

namespace td {
namespace dsp {

// lo and hi as the bottom and top 16-bit halves of one word (the operand form of the dual 16-bit instructions).
static inline int32_t pack16(int32_t lo, int32_t hi) {
  return static_cast<int32_t>((static_cast<uint32_t>(hi) << 16) | (static_cast<uint32_t>(lo) & 0xffff));
}

#if defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP

// Bytes 0 and 2 of x, sign-extended into the two halves of the result.
static inline int32_t sxtb16(int32_t x) {
  int32_t r;
  __asm__("sxtb16 %0, %1" : "=r"(r) : "r"(x));
  return r;
}
// Bytes 1 and 3 of x, sign-extended into the two halves of the result.
static inline int32_t sxtb16_ror8(int32_t x) {
  int32_t r;
  __asm__("sxtb16 %0, %1, ror #8" : "=r"(r) : "r"(x));
  return r;
}
// acc + bottom(a) * bottom(b), and acc + top(a) * top(b) (16 x 16 -> 32 multiply-accumulates).
static inline int32_t smlabb(int32_t a, int32_t b, int32_t acc) {
  int32_t r;
  __asm__("smlabb %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
  return r;
}
static inline int32_t smlatt(int32_t a, int32_t b, int32_t acc) {
  int32_t r;
  __asm__("smlatt %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
  return r;
}
// Both halves added at once (16-bit lanes).
static inline int32_t sadd16(int32_t a, int32_t b) {
  int32_t r;
  __asm__("sadd16 %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
  return r;
}
// (a * b + 2^31) >> 32, the rounded high word of the 64-bit product.
static inline int32_t smmulr(int32_t a, int32_t b) {
  int32_t r;
  __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
  return r;
}
// acc + ((a * b + 2^31) >> 32): SMMULR with an addend, in one instruction.
static inline int32_t smmlar(int32_t a, int32_t b, int32_t acc) {
  int32_t r;
  __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
  return r;
}
// Two 16-bit lanes: a's halves plus bytes 0 and 2 of x sign-extended (SXTAB16), and plus bytes 1 and 3.
static inline int32_t sxtab16(int32_t a, int32_t x) {
  int32_t r;
  __asm__("sxtab16 %0, %1, %2" : "=r"(r) : "r"(a), "r"(x));
  return r;
}
static inline int32_t sxtab16_ror8(int32_t a, int32_t x) {
  int32_t r;
  __asm__("sxtab16 %0, %1, %2, ror #8" : "=r"(r) : "r"(a), "r"(x));
  return r;
}
// The bottom halves of a and b as one word (a's below), and the top halves (a's below).
static inline int32_t pack_bottoms(int32_t a, int32_t b) {
  int32_t r;
  __asm__("pkhbt %0, %1, %2, lsl #16" : "=r"(r) : "r"(a), "r"(b));
  return r;
}
static inline int32_t pack_tops(int32_t a, int32_t b) {
  int32_t r;
  __asm__("pkhtb %0, %2, %1, asr #16" : "=r"(r) : "r"(a), "r"(b));
  return r;
}
// acc + top(a) * bottom(b).
static inline int32_t smlatb(int32_t a, int32_t b, int32_t acc) {
  int32_t r;
  __asm__("smlatb %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
  return r;
}
// acc + bottom(a) * bottom(b) + top(a) * top(b): two 16x16 multiply-accumulates.
static inline int32_t smlad(int32_t a, int32_t b, int32_t acc) {
  int32_t r;
  __asm__("smlad %0, %1, %2, %3" : "=r"(r) : "r"(a), "r"(b), "r"(acc));
  return r;
}
// x clamped to [-128, 127].
static inline int32_t ssat8(int32_t x) {
  int32_t r;
  __asm__("ssat %0, #8, %1" : "=r"(r) : "r"(x));
  return r;
}

// Per byte, the larger of a's and b's signed values: SSUB8 sets each byte's GE flag where a >= b, SEL picks a there.
// One statement, so that nothing runs between the two.
static inline int32_t max8x4(int32_t a, int32_t b) {
  int32_t r;
  __asm__("ssub8 %0, %1, %2\n\tsel %0, %1, %2" : "=&r"(r) : "r"(a), "r"(b) : "cc");
  return r;
}

// Per byte, the smaller of a's and b's signed values (SSUB8 b - a: GE where b >= a, SEL picks a there).
static inline int32_t min8x4(int32_t a, int32_t b) {
  int32_t r;
  __asm__("ssub8 %0, %2, %1\n\tsel %0, %1, %2" : "=&r"(r) : "r"(a), "r"(b) : "cc");
  return r;
}

#else  // the same arithmetic in C

static inline int32_t lo16(int32_t x) { return static_cast<int16_t>(x & 0xffff); }
static inline int32_t hi16(int32_t x) { return static_cast<int16_t>((static_cast<uint32_t>(x) >> 16) & 0xffff); }
static inline int32_t sxtb16(int32_t x) {
  return pack16(static_cast<int8_t>(x & 0xff), static_cast<int8_t>((static_cast<uint32_t>(x) >> 16) & 0xff));
}
static inline int32_t sxtb16_ror8(int32_t x) {
  return sxtb16(static_cast<int32_t>((static_cast<uint32_t>(x) >> 8) | (static_cast<uint32_t>(x) << 24)));
}
static inline int32_t smlabb(int32_t a, int32_t b, int32_t acc) { return acc + lo16(a) * lo16(b); }
static inline int32_t smlatt(int32_t a, int32_t b, int32_t acc) { return acc + hi16(a) * hi16(b); }
static inline int32_t sadd16(int32_t a, int32_t b) { return pack16(lo16(a) + lo16(b), hi16(a) + hi16(b)); }
static inline int32_t smmulr(int32_t a, int32_t b) {
  return static_cast<int32_t>((static_cast<int64_t>(a) * b + (static_cast<int64_t>(1) << 31)) >> 32);
}
static inline int32_t ssat8(int32_t x) { return x < -128 ? -128 : (x > 127 ? 127 : x); }
static inline int32_t smmlar(int32_t a, int32_t b, int32_t acc) {
  return static_cast<int32_t>(static_cast<uint32_t>(acc) + static_cast<uint32_t>(smmulr(a, b)));
}
static inline int32_t smlad(int32_t a, int32_t b, int32_t acc) { return acc + lo16(a) * lo16(b) + hi16(a) * hi16(b); }
static inline int32_t smlatb(int32_t a, int32_t b, int32_t acc) { return acc + hi16(a) * lo16(b); }
static inline int32_t sxtab16(int32_t a, int32_t x) { return sadd16(a, sxtb16(x)); }
static inline int32_t sxtab16_ror8(int32_t a, int32_t x) { return sadd16(a, sxtb16_ror8(x)); }
static inline int32_t pack_bottoms(int32_t a, int32_t b) { return pack16(lo16(a), lo16(b)); }
static inline int32_t pack_tops(int32_t a, int32_t b) { return pack16(hi16(a), hi16(b)); }
static inline int32_t max8x4(int32_t a, int32_t b) {
  uint32_t r = 0;
  for (int i = 0; i < 32; i += 8) {
    const int8_t x = static_cast<int8_t>(static_cast<uint32_t>(a) >> i);
    const int8_t y = static_cast<int8_t>(static_cast<uint32_t>(b) >> i);
    r |= static_cast<uint32_t>(static_cast<uint8_t>(x >= y ? x : y)) << i;
  }
  return static_cast<int32_t>(r);
}
static inline int32_t min8x4(int32_t a, int32_t b) {
  uint32_t r = 0;
  for (int i = 0; i < 32; i += 8) {
    const int8_t x = static_cast<int8_t>(static_cast<uint32_t>(a) >> i);
    const int8_t y = static_cast<int8_t>(static_cast<uint32_t>(b) >> i);
    r |= static_cast<uint32_t>(static_cast<uint8_t>(x <= y ? x : y)) << i;
  }
  return static_cast<int32_t>(r);
}

#endif

}  // namespace dsp
}  // namespace td

#endif  // TINYDEPLOY_TD_DSP_H_
