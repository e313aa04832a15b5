// tinydeploy's fast requantization (firmware/kernels/td_kernel_util.h, built for the host with td_dsp.h's C
// arithmetic) against TFLM's own MultiplyByQuantizedMultiplier (the pinned library's headers), on accumulators where
// rounding decides: every product that lands on a rounding tie (x = k * 2^e + 2^(e-1), either sign) and its
// neighbours, a dense range around zero (negative accumulators whose product is 0), and random accumulators, for
// multipliers across [2^30, 2^31), right shifts 1..30 and zero points -128..127; and MakeRequant's 32-bit shortcut
// against MakeRequantWide (the same constants, on random and edge inputs). Prints the cases checked and the first
// mismatch; exits 1 on any mismatch.
#include <stdint.h>
#include <stdio.h>

#include "td_kernel_util.h"
#include "tensorflow/lite/kernels/internal/common.h"

namespace {

uint32_t state = 12345;
uint32_t Next() {
  state = state * 1664525u + 1013904223u;
  return state;
}

long checked = 0;

bool Check(int32_t a, int32_t mult, int32_t shift, int32_t zp) {
  using td::kernels::util::MakeRequant;
  using td::kernels::util::Requant;
  using td::kernels::util::RequantFast;
  const int64_t bound = a < 0 ? -static_cast<int64_t>(a) : a;
  const Requant q = MakeRequant(mult, shift, zp, bound);
  if (!q.fast) return true;  // the kernels call TFLM's function there
  ++checked;
  const int32_t want = tflite::MultiplyByQuantizedMultiplier(a, mult, shift) + zp;
  const int32_t got = RequantFast(2 * a, q.mult, q.add, q.right);
  if (got != want) {
    printf("mismatch: a=%ld mult=%ld shift=%ld zp=%ld: got %ld, TFLM %ld\n", static_cast<long>(a),
           static_cast<long>(mult), static_cast<long>(shift), static_cast<long>(zp), static_cast<long>(got),
           static_cast<long>(want));
    return false;
  }
  return true;
}

}  // namespace

// MakeRequant (its 32-bit shortcut where it takes one) against MakeRequantWide: the same Requant, field by field.
bool SameAsWide(int32_t mult, int32_t shift, int32_t zp, int64_t bound) {
  using td::kernels::util::MakeRequant;
  using td::kernels::util::MakeRequantWide;
  using td::kernels::util::Requant;
  const Requant a = MakeRequant(mult, shift, zp, bound), b = MakeRequantWide(mult, shift, zp, bound);
  const bool same = a.fast == b.fast && a.left_fast == b.left_fast && a.mult == b.mult && a.shift == b.shift &&
                    (!a.fast || (a.add == b.add && a.right == b.right));
  if (!same) {
    printf("MakeRequant differs from MakeRequantWide: mult=%ld shift=%ld zp=%ld bound=%lld: fast %d/%d add %ld/%ld\n",
           static_cast<long>(mult), static_cast<long>(shift), static_cast<long>(zp), static_cast<long long>(bound),
           a.fast, b.fast, static_cast<long>(a.add), static_cast<long>(b.add));
  }
  return same;
}

int main() {
  long compared = 0;
  for (int trial = 0; trial < 200000; ++trial) {
    // multipliers of every size (and a few negative), shifts from -33 to 33, zero points beyond int8, bounds up to 2^34
    const int32_t m = static_cast<int32_t>(Next() % (1u << 31));
    const int32_t mult = trial % 97 == 0 ? -m : m;
    const int32_t shift = static_cast<int32_t>(Next() % 67) - 33;
    const int32_t zp = static_cast<int32_t>(Next() % 300) - 150;
    const int64_t bound = static_cast<int64_t>(Next() % (1u << 31)) >> (Next() % 31) << (Next() % 4);
    if (!SameAsWide(mult, shift, zp, bound)) return 1;
    ++compared;
  }
  for (int32_t e = 1; e <= 31; ++e) {  // the shortcut's edges: the largest shift, zero point and bound it takes
    for (int64_t bound : {int64_t{0}, (int64_t{1} << 29) - 1, int64_t{1} << 29, (int64_t{1} << 30) - 1}) {
      for (int32_t zp : {-129, -128, 127, 128, 129}) {
        if (!SameAsWide(INT32_MAX, -e, zp, bound) || !SameAsWide(1 << 30, -e, zp, bound)) return 1;
        compared += 2;
      }
    }
  }
  printf("%ld constants identical to MakeRequantWide's\n", compared);
  for (int trial = 0; trial < 400; ++trial) {
    const int32_t mult = static_cast<int32_t>((1u << 30) + (Next() % (1u << 30)));
    const int32_t e = 1 + static_cast<int32_t>(Next() % 30);
    const int32_t zp = static_cast<int32_t>(Next() % 256) - 128;
    // around zero
    for (int32_t a = -300; a <= 300; ++a) {
      if (!Check(a, mult, -e, zp)) return 1;
    }
    // products on a tie: x = k * 2^e + 2^(e-1), a near x * 2^31 / mult
    for (int j = 0; j < 200; ++j) {
      const int64_t k = static_cast<int64_t>(Next() % 2001) - 1000;
      const int64_t x = k * (static_cast<int64_t>(1) << e) + (static_cast<int64_t>(1) << (e - 1));
      const int64_t a0 = x * (static_cast<int64_t>(1) << 31) / mult;
      for (int64_t a = a0 - 3; a <= a0 + 3; ++a) {
        if (a > INT32_MIN / 4 && a < INT32_MAX / 4 && !Check(static_cast<int32_t>(a), mult, -e, zp)) return 1;
      }
    }
    // anywhere in the fast path's range (|a| < 2^30: 2a fits in 32 bits)
    for (int j = 0; j < 2000; ++j) {
      const int32_t a = static_cast<int32_t>(Next() % (1u << 31)) - (1 << 30);
      if (!Check(a, mult, -e, zp)) return 1;
    }
  }
  printf("%ld cases identical to TFLM's MultiplyByQuantizedMultiplier\n", checked);
  return checked > 1000000 ? 0 : 1;
}
