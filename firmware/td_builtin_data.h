// One copy of each distinct builtin data struct in the arena. The interpreter parses every node's builtin options
// (TfLiteConvParams and the like, 8-40 bytes) into its own persistent allocation in the arena's tail, though most
// nodes of a model repeat a few: the study's 32x32 MobileNetV1 has five among its 28 convolutions. SharingOpResolver
// hands the interpreter each op's parser wrapped so that a node whose parsed struct equals an earlier node's (same op,
// same bytes) points at that copy, for the ops whose kernels only read their builtin data (td_builtin_data.cpp:
// kReadOnly), so sharing it changes nothing they compute; each distinct struct costs a 4-byte header more.
#ifndef TINYDEPLOY_TD_BUILTIN_DATA_H_
#define TINYDEPLOY_TD_BUILTIN_DATA_H_

#include "tensorflow/lite/micro/compatibility.h"
#include "tensorflow/lite/micro/micro_op_resolver.h"

namespace td {

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
