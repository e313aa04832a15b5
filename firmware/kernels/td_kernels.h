// tinydeploy's own int8 kernels, registered through the generated op resolver (model_ops.h) in place of the
// library's for the ops where they are faster. Each is bit-exact with TFLM's reference kernel and hands the
// shapes it does not cover to the pinned library's CMSIS-NN code (chosen per node, in Prepare): for CONV_2D and
// DEPTHWISE_CONV_2D its CMSIS-NN function on this registration's op data (parameters in flash), for the others the
// library's kernel.
#ifndef TINYDEPLOY_TD_KERNELS_H_
#define TINYDEPLOY_TD_KERNELS_H_

#include "tensorflow/lite/c/common.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"

namespace td {
namespace kernels {

// DEPTHWISE_CONV_2D, int8: depth multiplier 1, up to 64 filter taps, any stride, padding and dilation whose rows
// of input fit its row buffer, 16 output pixels or more (td_kernel_depthwise.cpp).
TfLiteRegistration Register_DEPTHWISE_CONV_2D();
// The same for a model whose every DEPTHWISE_CONV_2D node is int8 with its parameters in flash (model_params.cpp):
// this registration takes each of them, and the library's kernel is not linked.
TfLiteRegistration Register_DEPTHWISE_CONV_2D_INT8();

// CONV_2D, int8: every filter whose values under it fit the matrix product (td_kernel_matmul.h: kMatMulMaxK), a 1x1
// at stride 1 on the pixels themselves; and a first layer, a 3x3 filter over one input channel, by its own kernel
// (what it is faster at; at most 4 channels and 80 values under the filter with -DTD_CONV_ALL_SHAPES=1).
TfLiteRegistration Register_CONV_2D();
TfLiteRegistration Register_CONV_2D_INT8();  // as Register_DEPTHWISE_CONV_2D_INT8

// FULLY_CONNECTED, int8 with int32 bias, per-tensor weights (zero point 0), any batch: its own matrix product for
// 16 outputs and inputs or more, the pinned CMSIS-NN's function for the rest.
TfLiteRegistration Register_FULLY_CONNECTED();
// The same for a model whose every FULLY_CONNECTED node is such a node: the library's kernel is not linked.
TfLiteRegistration Register_FULLY_CONNECTED_INT8();

// ADD, int8, two inputs of the output's shape (no broadcast): its own tables from 256 elements, the pinned CMSIS-NN's
// function below.
TfLiteRegistration Register_ADD();
// The same for a model whose every ADD node is such a node: the library's kernel is not linked.
TfLiteRegistration Register_ADD_INT8();

// MEAN, int8, over a 4-D tensor's pixels (axes 1 and 2): its own sums (td_kernel_mean.cpp); other nodes run the
// library's kernel.
TfLiteRegistration Register_MEAN();
// The same for a model whose every MEAN node is such a node: the library's kernel is not linked.
TfLiteRegistration Register_MEAN_INT8();

// MAX_POOL_2D, int8, any filter, stride and padding (td_kernel_pool.cpp).
TfLiteRegistration Register_MAX_POOL_2D();
// The same for a model whose every MAX_POOL_2D node is int8: the library's kernel is not linked.
TfLiteRegistration Register_MAX_POOL_2D_INT8();

// SOFTMAX, int8 in and out: the pinned CMSIS-NN's function on 16 bytes of op data (td_kernel_softmax.cpp).
TfLiteRegistration Register_SOFTMAX();
// The same for a model whose every SOFTMAX node is int8: the library's kernel is not linked.
TfLiteRegistration Register_SOFTMAX_INT8();

// The library's op resolver (kLibraryOps ops), which also takes kOwnOps registrations for builtin ops whose Add
// method takes none (AddMean): FindOp and GetOpDataParser answer for those from here, the library's resolver for every
// other op. As many slots as the library's resolver would hold for the same ops: no byte more RAM.
template <unsigned int kLibraryOps, unsigned int kOwnOps>
class OpResolver : public tflite::MicroMutableOpResolver<kLibraryOps> {
  using Base = tflite::MicroMutableOpResolver<kLibraryOps>;

 public:
  using Base::FindOp;

  TfLiteStatus AddOwn(tflite::BuiltinOperator op, const TfLiteRegistration& registration,
                      tflite::TfLiteBridgeBuiltinParseFunction parser) {
    if (own_count_ >= kOwnOps || Base::FindOp(op) != nullptr || FindOwn(op) >= 0) return kTfLiteError;
    own_[own_count_] = registration;
    own_[own_count_].builtin_code = op;
    own_parsers_[own_count_++] = parser;
    return kTfLiteOk;
  }

  const TfLiteRegistration* FindOp(tflite::BuiltinOperator op) const override {
    const int i = FindOwn(op);
    return i >= 0 ? &own_[i] : Base::FindOp(op);
  }

  tflite::TfLiteBridgeBuiltinParseFunction GetOpDataParser(tflite::BuiltinOperator op) const override {
    const int i = FindOwn(op);
    return i >= 0 ? own_parsers_[i] : Base::GetOpDataParser(op);
  }

 private:
  int FindOwn(tflite::BuiltinOperator op) const {
    for (unsigned int i = 0; i < own_count_; ++i) {
      if (own_[i].builtin_code == static_cast<int32_t>(op)) return static_cast<int>(i);
    }
    return -1;
  }
  TfLiteRegistration own_[kOwnOps];
  tflite::TfLiteBridgeBuiltinParseFunction own_parsers_[kOwnOps];
  unsigned int own_count_ = 0;
};

}  // namespace kernels
}  // namespace td

#endif  // TINYDEPLOY_TD_KERNELS_H_
