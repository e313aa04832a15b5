// Summary statistics of timed runs, computed on the device without dynamic memory.
#ifndef TINYDEPLOY_TD_STATS_H_
#define TINYDEPLOY_TD_STATS_H_

#include <stddef.h>
#include <stdint.h>

namespace td {

struct Summary {
  uint32_t n;
  uint32_t min;
  uint32_t max;
  uint32_t median;  // lower median
  uint32_t p90;     // nearest-rank 90th percentile
  uint32_t mean;
};

// Sorts `values` in place (insertion sort: n is small) and summarizes them. n may be 0.
Summary summarize(uint32_t* values, size_t n);

// Largest absolute difference between two int8 vectors.
int32_t max_abs_diff(const int8_t* a, const int8_t* b, size_t n);

}  // namespace td

#endif  // TINYDEPLOY_TD_STATS_H_
