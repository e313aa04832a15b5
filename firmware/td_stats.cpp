#include "td_stats.h"

namespace td {

Summary summarize(uint32_t* v, size_t n) {
  Summary s = {0, 0, 0, 0, 0, 0};
  if (n == 0) return s;
  for (size_t i = 1; i < n; ++i) {
    const uint32_t x = v[i];
    size_t j = i;
    while (j > 0 && v[j - 1] > x) {
      v[j] = v[j - 1];
      --j;
    }
    v[j] = x;
  }
  uint64_t sum = 0;
  for (size_t i = 0; i < n; ++i) sum += v[i];
  s.n = static_cast<uint32_t>(n);
  s.min = v[0];
  s.max = v[n - 1];
  s.median = v[(n - 1) / 2];
  size_t rank = (90 * n + 99) / 100;  // ceil(0.9 n), nearest-rank method
  s.p90 = v[rank == 0 ? 0 : rank - 1];
  s.mean = static_cast<uint32_t>(sum / n);
  return s;
}

int32_t max_abs_diff(const int8_t* a, const int8_t* b, size_t n) {
  int32_t worst = 0;
  for (size_t i = 0; i < n; ++i) {
    int32_t d = static_cast<int32_t>(a[i]) - static_cast<int32_t>(b[i]);
    if (d < 0) d = -d;
    if (d > worst) worst = d;
  }
  return worst;
}

}  // namespace td
