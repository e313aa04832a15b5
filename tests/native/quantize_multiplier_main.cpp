// TFLM's QuantizeMultiplier (the pinned library's quantization_util.cpp, built for the host) on the real multipliers
// read from stdin, one per line as a C99 hex float ("%a", exact): prints "multiplier shift" per line. The reference
// that tinydeploy's build-time computation (host/tinydeploy/analyze/requant.py) is checked against.
#include <stdio.h>
#include <stdlib.h>

#include "tensorflow/lite/kernels/internal/quantization_util.h"

int main() {
  char line[128];
  while (fgets(line, sizeof line, stdin)) {
    const double x = strtod(line, nullptr);
    int32_t m = 0;
    int shift = 0;
    tflite::QuantizeMultiplier(x, &m, &shift);
    printf("%ld %d\n", static_cast<long>(m), shift);
  }
  return 0;
}
