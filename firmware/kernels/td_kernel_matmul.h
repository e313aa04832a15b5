// The int8 matrix product behind tinydeploy's pointwise CONV_2D (td_kernel_conv.cpp) and FULLY_CONNECTED
// (td_kernel_fully_connected.cpp), bit-exact with TFLM's reference kernels for both (td_kernel_matmul.cpp).
#ifndef TINYDEPLOY_TD_KERNEL_MATMUL_H_
#define TINYDEPLOY_TD_KERNEL_MATMUL_H_

#include <stdint.h>

namespace td {
namespace kernels {

// The longest dot product (K) the kernel takes: two rows of it are widened on the stack (4 K bytes).
constexpr int kMatMulMaxK = 1024;

// out[r][o] = requantize(bias[o] + sum_i w[o][i] * (in[r][i] - input_zp)) for `rows` rows of k values (pixels of a
// pointwise convolution, batches of a fully connected layer) and `cols` output channels; rows and weights are
// contiguous (row r at in + r * k, channel o at w + o * k), the output row-major.
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
};

void Run(const MatMul& m);

}  // namespace kernels
}  // namespace td

#endif  // TINYDEPLOY_TD_KERNEL_MATMUL_H_
