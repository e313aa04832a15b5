// tinydeploy's fast requantization (firmware/kernels/td_kernel_util.h, built for the host with td_dsp.h's C
// arithmetic) against TFLM's own MultiplyByQuantizedMultiplier (the pinned library's headers), on accumulators where
// rounding decides: every product that lands on a rounding tie (x = k * 2^e + 2^(e-1), either sign) and its
// neighbours, a dense range around zero (negative accumulators whose product is 0), and random accumulators, for
// multipliers across [2^30, 2^31), right shifts 1..30 and zero points -128..127. Prints the cases checked and the
// first mismatch; exits 1 on any mismatch.
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

int main() {
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
