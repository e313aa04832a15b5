// One copy of each distinct builtin data struct in the arena. The interpreter parses every node's builtin options
// (TfLiteConvParams and the like, 8-40 bytes) into its own persistent allocation in the arena's tail, though most
// nodes of a model repeat a few: the study's 32x32 MobileNetV1 has five among its 28 convolutions. SharingOpResolver
// hands the interpreter each op's parser wrapped so that a node whose parsed struct equals an earlier node's (same op,
// same bytes) points at that copy, for the ops whose kernels only read their builtin data (td_builtin_data.cpp:
// kReadOnly), so sharing it changes nothing they compute; each distinct struct costs a 4-byte header more, and one the
// build wrote into flash (kFlashBuiltinData) costs the arena nothing.
#ifndef TINYDEPLOY_TD_BUILTIN_DATA_H_
#define TINYDEPLOY_TD_BUILTIN_DATA_H_

#include <stdint.h>

#include "tensorflow/lite/c/builtin_op_data.h"
#include "tensorflow/lite/micro/compatibility.h"
#include "tensorflow/lite/micro/micro_op_resolver.h"

namespace td {

// The model's distinct builtin data structs that `tinydeploy build` parsed as the pinned library's parsers do
// (model_params.cpp, const: in flash). A node whose parsed struct equals one of these byte for byte points at it, and
// the arena holds none of its bytes; a struct the build did not write (another op, or one it parsed otherwise) falls
// back to the shared copy in the arena, so a wrong entry costs bytes, never a result. Ends with op -1.
struct FlashBuiltin {
  int32_t op;  // tflite::BuiltinOperator
  const void* data;
  uint32_t size;
};
extern const FlashBuiltin kFlashBuiltinData[];

// The structs as flatbuffer_conversions.cpp's ParseConv2D, ParseDepthwiseConv2D and ParsePool fill them, from the
// schema's values (padding SAME 0, VALID 1; the fused activation's schema value, which ConvertActivation maps to the
// same number for NONE, RELU, RELU_N1_TO_1, RELU6, TANH and SIGN_BIT).
constexpr TfLitePadding SchemaPadding(int p) {
  return p == 0 ? kTfLitePaddingSame : (p == 1 ? kTfLitePaddingValid : kTfLitePaddingUnknown);
}
constexpr TfLiteFusedActivation SchemaActivation(int a) {
  return a >= 0 && a <= 5 ? static_cast<TfLiteFusedActivation>(a) : kTfLiteActNone;
}
constexpr TfLiteConvParams ConvParams(int padding, int stride_w, int stride_h, int activation, int dil_w, int dil_h) {
  TfLiteConvParams p{};
  p.padding = SchemaPadding(padding);
  p.stride_width = stride_w;
  p.stride_height = stride_h;
  p.activation = SchemaActivation(activation);
  p.dilation_width_factor = dil_w;
  p.dilation_height_factor = dil_h;
  return p;
}
constexpr TfLiteDepthwiseConvParams DepthwiseConvParams(int padding, int stride_w, int stride_h, int depth_multiplier,
                                                        int activation, int dil_w, int dil_h) {
  TfLiteDepthwiseConvParams p{};
  p.padding = SchemaPadding(padding);
  p.stride_width = stride_w;
  p.stride_height = stride_h;
  p.depth_multiplier = depth_multiplier;
  p.activation = SchemaActivation(activation);
  p.dilation_width_factor = dil_w;
  p.dilation_height_factor = dil_h;
  return p;
}
constexpr TfLitePoolParams PoolParams(int padding, int stride_w, int stride_h, int filter_w, int filter_h,
                                      int activation) {
  TfLitePoolParams p{};
  p.padding = SchemaPadding(padding);
  p.stride_width = stride_w;
  p.stride_height = stride_h;
  p.filter_width = filter_w;
  p.filter_height = filter_h;
  p.activation = SchemaActivation(activation);
  return p;
}

// Forwards every lookup to `inner`; the parsers it returns share equal builtin data. One at a time: constructing one
// forgets the structs the last one shared (they were in the last interpreter's arena). The interpreter must call a
// parser right after asking for it, as MicroInterpreter's PrepareNodeAndRegistrationDataFromFlatbuffer does.
class SharingOpResolver : public tflite::MicroOpResolver {
 public:
  explicit SharingOpResolver(const tflite::MicroOpResolver& inner);
  const TfLiteRegistration* FindOp(tflite::BuiltinOperator op) const override { return inner_.FindOp(op); }
  const TfLiteRegistration* FindOp(const char* op) const override { return inner_.FindOp(op); }
  tflite::TfLiteBridgeBuiltinParseFunction GetOpDataParser(tflite::BuiltinOperator op) const override;

 private:
  TF_LITE_REMOVE_VIRTUAL_DELETE
  const tflite::MicroOpResolver& inner_;
};

}  // namespace td

#endif  // TINYDEPLOY_TD_BUILTIN_DATA_H_
