#include "td_builtin_data.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

namespace td {
namespace {

// A shared struct in the arena: this 4-byte header, then the struct's bytes (4-byte aligned, as every builtin data
// struct). The headers chain the structs newest first: `older` is the distance in words to the next older one (the
// persistent allocations of one model's parse lie within the arena, below 256 KB), 0 for none.
struct alignas(4) Shared {
  uint8_t op;
  uint8_t size;
  uint16_t older;
  const uint8_t* bytes() const { return reinterpret_cast<const uint8_t*>(this + 1); }
  const Shared* next() const {
    return older ? reinterpret_cast<const Shared*>(reinterpret_cast<const uint32_t*>(this) + older) : nullptr;
  }
};
static_assert(sizeof(Shared) == 4, "tflm_runtime.json's shared_builtin_data.header_bytes");
// 4-byte aligned: the structs after the headers are read by word (LDRD and LDM fault on unaligned addresses)
static_assert(alignof(Shared) == 4, "the structs after the headers stay word-aligned");

// The ops whose builtin data is shared: those whose kernels, the pinned library's and tinydeploy's, only read it (a
// search of the library's kernels for writes through builtin_data finds one, L2_POOL_2D's Prepare storing its padding
// in TfLitePoolParams::computed, which two nodes of different input sizes could not share).
constexpr tflite::BuiltinOperator kReadOnly[] = {
    tflite::BuiltinOperator_CONV_2D,         tflite::BuiltinOperator_DEPTHWISE_CONV_2D,
    tflite::BuiltinOperator_FULLY_CONNECTED, tflite::BuiltinOperator_AVERAGE_POOL_2D,
    tflite::BuiltinOperator_MAX_POOL_2D,     tflite::BuiltinOperator_ADD,
    tflite::BuiltinOperator_MUL,             tflite::BuiltinOperator_SOFTMAX,
    tflite::BuiltinOperator_RESHAPE,         tflite::BuiltinOperator_MEAN,
    tflite::BuiltinOperator_CONCATENATION,   tflite::BuiltinOperator_STRIDED_SLICE,
    tflite::BuiltinOperator_PACK,
};

bool Shares(tflite::BuiltinOperator op) {
  for (tflite::BuiltinOperator o : kReadOnly) {
    if (o == op) return true;
  }
  return false;
}

// The structs shared so far, newest first, and the parser GetOpDataParser chose last (the interpreter calls it next).
const Shared* g_shared = nullptr;
tflite::TfLiteBridgeBuiltinParseFunction g_parse = nullptr;
int32_t g_op = 0;

// Takes the parser's one allocation on the stack (the shared ops' structs are at most 40 bytes); anything larger, or a
// second one, goes to the interpreter's allocator as before.
class StackAllocator : public tflite::BuiltinDataAllocator {
 public:
  explicit StackAllocator(tflite::BuiltinDataAllocator* arena) : arena_(arena), size_(0), taken_(false) {}
  void* Allocate(size_t size, size_t alignment_hint) override {
    if (taken_ || size > sizeof(words_) || alignment_hint > alignof(uint32_t)) {
      return arena_->Allocate(size, alignment_hint);
    }
    taken_ = true;
    size_ = size;
    return words_;
  }
  void Deallocate(void* data) override {
    if (data == words_) {
      taken_ = false;
    } else {
      arena_->Deallocate(data);
    }
  }
  bool holds(const void* data) const { return taken_ && data == words_; }
  size_t size() const { return size_; }

 private:
  TF_LITE_REMOVE_VIRTUAL_DELETE
  tflite::BuiltinDataAllocator* arena_;
  uint32_t words_[16];
  size_t size_;
  bool taken_;
};

TfLiteStatus ParseShared(const tflite::Operator* op, tflite::ErrorReporter* error_reporter,
                         tflite::BuiltinDataAllocator* allocator, void** builtin_data) {
  StackAllocator local(allocator);
  const TfLiteStatus status = g_parse(op, error_reporter, &local, builtin_data);
  if (status != kTfLiteOk || !local.holds(*builtin_data)) return status;  // nothing parsed, or parsed into the arena
  const uint32_t size = static_cast<uint32_t>(local.size());
  for (const FlashBuiltin* f = kFlashBuiltinData; f->op >= 0; ++f) {
    if (f->op == g_op && f->size == size && memcmp(f->data, *builtin_data, size) == 0) {
      *builtin_data = const_cast<void*>(f->data);  // the ops shared only read their builtin data
      return kTfLiteOk;
    }
  }
  for (const Shared* s = g_shared; s != nullptr; s = s->next()) {
    if (s->op == g_op && s->size == size && memcmp(s->bytes(), *builtin_data, size) == 0) {
      *builtin_data = const_cast<uint8_t*>(s->bytes());
      return kTfLiteOk;
    }
  }
  void* p = allocator->Allocate(sizeof(Shared) + size, alignof(Shared));
  if (p == nullptr) {
    *builtin_data = nullptr;
    return kTfLiteError;
  }
  Shared* s = static_cast<Shared*>(p);
  const ptrdiff_t older = g_shared ? reinterpret_cast<const uint32_t*>(g_shared) - reinterpret_cast<uint32_t*>(s) : 0;
  s->op = static_cast<uint8_t>(g_op);
  s->size = static_cast<uint8_t>(size);
  s->older = older > 0 && older <= 0xffff ? static_cast<uint16_t>(older) : 0;  // else the older ones are not shared
  memcpy(s + 1, *builtin_data, size);
  g_shared = s;
  *builtin_data = s + 1;
  return kTfLiteOk;
}

}  // namespace

SharingOpResolver::SharingOpResolver(const tflite::MicroOpResolver& inner) : inner_(inner) { g_shared = nullptr; }

tflite::TfLiteBridgeBuiltinParseFunction SharingOpResolver::GetOpDataParser(tflite::BuiltinOperator op) const {
  const tflite::TfLiteBridgeBuiltinParseFunction parse = inner_.GetOpDataParser(op);
  if (parse == nullptr || !Shares(op) || static_cast<int>(op) > 0xff) return parse;
  g_parse = parse;
  g_op = static_cast<int32_t>(op);
  return ParseShared;
}

}  // namespace td
