#include "td_tflm.h"

#include <string.h>

#include "model_config.h"
#include "model_ops.h"
#include "td_builtin_data.h"
#include "td_log.h"
#include "td_model_info.h"
#include "tensorflow/lite/micro/compatibility.h"
#include "tensorflow/lite/micro/micro_interpreter.h"
#include "tensorflow/lite/micro/micro_mutable_op_resolver.h"
#include "tensorflow/lite/micro/micro_profiler_interface.h"
#include "tensorflow/lite/schema/schema_generated.h"

// The resolver the interpreter asks: with TD_SHARE_BUILTIN_DATA one that shares equal builtin data, else the model's.
#if TD_SHARE_BUILTIN_DATA
#define TD_PARSERS parsers_
#else
#define TD_PARSERS resolver_
#endif

namespace td {
namespace {

// Times each operator with the board's counter (cycles on the board, instructions when emulated).
// Derives from the interface, not from tflite::MicroProfiler: that class's private operator delete
// (TF_LITE_REMOVE_VIRTUAL_DELETE under ARDUINO) deletes a subclass's destructor, and it holds
// 1024-event arrays (about 20 KB of RAM) that this profiler does not need.
class CycleProfiler : public tflite::MicroProfilerInterface {
 public:
  explicit CycleProfiler(uint32_t (*cycles)()) : cycles_(cycles), n_(0) {}
  uint32_t BeginEvent(const char* tag) override {
    const uint32_t h = n_;
    if (h < TD_MAX_OPS) {
      tags_[h] = tag;
      start_[h] = cycles_();
      spent_[h] = 0;
    }
    ++n_;
    return h;
  }
  void EndEvent(uint32_t h) override {
    if (h < TD_MAX_OPS) spent_[h] = cycles_() - start_[h];
  }
  void Reset() { n_ = 0; }
  size_t count() const { return n_ < TD_MAX_OPS ? n_ : TD_MAX_OPS; }
  const char* tag(size_t i) const { return tags_[i]; }
  uint32_t spent(size_t i) const { return spent_[i]; }

 private:
  TF_LITE_REMOVE_VIRTUAL_DELETE
  uint32_t (*cycles_)();
  uint32_t n_;
  const char* tags_[TD_MAX_OPS];
  uint32_t start_[TD_MAX_OPS];
  uint32_t spent_[TD_MAX_OPS];
};

alignas(16) uint8_t g_arena[TD_ARENA_BYTES];

class TflmBackend : public Backend {
 public:
  explicit TflmBackend(uint32_t (*cycles)())
      : profiler_(cycles),
        model_(tflite::GetModel(td_model_data)),
        interpreter_(model_, TD_PARSERS, g_arena, TD_ARENA_BYTES, nullptr, &profiler_),
        info_(model_info_from_config()),
        error_(0) {}

  void init() {
    log_clear();
    if (model_->version() != TFLITE_SCHEMA_VERSION) {
      error_ = "schema";
      return;
    }
    if (td_register_ops(resolver_) != kTfLiteOk) {
      error_ = "resolver";
      return;
    }
    if (interpreter_.AllocateTensors() != kTfLiteOk) {
      error_ = "alloc";
      return;
    }
    const TfLiteTensor* in = interpreter_.input(0);
    const TfLiteTensor* out = interpreter_.output(0);
    if (in == nullptr || out == nullptr || in->type != kTfLiteInt8 || out->type != kTfLiteInt8 ||
        in->bytes != TD_INPUT_BYTES || out->bytes != TD_OUTPUT_BYTES) {
      error_ = "io-mismatch";
    }
  }

  const ModelInfo& info() const override { return info_; }
  const char* init_error() const override { return error_; }
  const char* log() const override { return log_text(); }
  uint32_t arena_used_bytes() const override {
    return error_ ? 0 : static_cast<uint32_t>(interpreter_.arena_used_bytes());
  }

  bool set_input(const int8_t* data, size_t n) override {
    if (error_ || n != TD_INPUT_BYTES) return false;
    int8_t* in = interpreter_.input(0)->data.int8;
    if (data != in) memcpy(in, data, n);
    return true;
  }

  int8_t* input_tensor() override { return error_ ? nullptr : interpreter_.input(0)->data.int8; }

  bool invoke() override {
    if (error_) return false;
    profiler_.Reset();
    log_clear();
    return interpreter_.Invoke() == kTfLiteOk;
  }

  // Null until AllocateTensors() has succeeded.
  const int8_t* output() const override {
    return error_ ? nullptr : const_cast<tflite::MicroInterpreter&>(interpreter_).output(0)->data.int8;
  }
  size_t op_count() const override { return error_ ? 0 : profiler_.count(); }
  const char* op_tag(size_t i) const override { return profiler_.tag(i); }
  uint32_t op_cycles(size_t i) const override { return profiler_.spent(i); }

 private:
  CycleProfiler profiler_;
  const tflite::Model* model_;
  TdOpResolver resolver_;
#if TD_SHARE_BUILTIN_DATA
  SharingOpResolver parsers_{resolver_};  // one copy of each distinct builtin data struct (td_builtin_data.h)
#endif
  tflite::MicroInterpreter interpreter_;
  ModelInfo info_;
  const char* error_;
};

}  // namespace

Backend& tflm_backend(uint32_t (*cycles)()) {
  static TflmBackend backend(cycles);
  static bool initialized = false;
  if (!initialized) {
    initialized = true;
    backend.init();
  }
  return backend;
}

}  // namespace td
