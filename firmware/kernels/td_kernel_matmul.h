// The int8 matrix product behind tinydeploy's pointwise CONV_2D (td_kernel_conv.cpp) and FULLY_CONNECTED
// (td_kernel_fully_connected.cpp), bit-exact with TFLM's reference kernels for both (td_kernel_matmul.cpp).
#ifndef TINYDEPLOY_TD_KERNEL_MATMUL_H_
#define TINYDEPLOY_TD_KERNEL_MATMUL_H_

#include <stdint.h>

#include "td_kernel_params.h"

namespace td {
namespace kernels {

// The longest dot product (K) the kernel takes: two rows of it are widened on the stack (4 K bytes, and 2 K for two
// gathered rows).
constexpr int kMatMulMaxK = 1024;

// out[r][o] = requantize(bias[o] + sum_i w[o][i] * (row_r[i] - input_zp)) for `rows` rows of k values (pixels of a
// convolution, batches of a fully connected layer) and `cols` output channels; the weights are contiguous (channel o
// at w + o * k), the output row-major.
struct MatMul;
// Row r's k raw values: a pointer into the input, or a gather into scratch (k bytes) that it returns.
using RowFn = const int8_t* (*)(const MatMul& m, int r, int8_t* scratch);

struct MatMul {
  const int8_t* in;
  const int8_t* w;
  const int32_t* bias;  // or nullptr
  int8_t* out;
  int32_t rows, k, cols;
  int32_t input_zp, output_zp, act_min, act_max;
  const int32_t* mult;  // TFLM's multipliers and shifts: per channel, or one for all (per_channel false)
  const int32_t* shift;
  bool per_channel;
  ShortcutRange outside;  // the channels that may fall outside util::MakeRequant's shortcut (PerChannelRow)
  RowFn row;        // nullptr: row r is the k values at in + r * k
  const void* ctx;  // what `row` needs
};

void Run(const MatMul& m);

// One row (a fully connected layer's batch of one) against per-tensor weights, four channels at a time in one
// assembly loop, the constants computed once: where FcRowTakes (a bias, K a multiple of 8, at most kMatMulMaxK, 4
// channels or more, the fast requantization exact for the largest of the cols biases). Run's figures, faster.
bool FcRowTakes(int32_t k, int32_t cols, int32_t mult, int32_t shift, int32_t output_zp, const int32_t* bias);
// The same loop for one row against per-channel weights (a 1x1 convolution on a single pixel: m.rows 1, the row the
// input itself, a bias), each channel's constants made in the loop by util::MakeRequant's 32-bit shortcut, a channel
// outside its bounds computed again by TFLM's arithmetic (looked for in m.outside's range alone): K a multiple of 8, at
// most kMatMulMaxK, 4 channels or more.
bool PerChannelRowTakes(const MatMul& m);
void FcRow(const MatMul& m);  // where FcRowTakes
void PerChannelRow(const MatMul& m);  // where PerChannelRowTakes

}  // namespace kernels
}  // namespace td

#endif  // TINYDEPLOY_TD_KERNEL_MATMUL_H_
