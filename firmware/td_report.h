// tinydeploy report protocol, version 1: line-oriented records with a CRC-32 each.
//
//   @TD1 <type> key=value key=value ... *<crc32 as 8 lowercase hex digits>\n
//
// The CRC-32 (IEEE 802.3, as zlib.crc32) covers every byte before " *". Values are integers,
// comma-separated integer lists, or strings percent-encoded outside [A-Za-z0-9._:/+-].
// See docs/protocol.md. No dynamic memory; the sink is a plain function pointer so that the same
// code writes to Arduino's Serial on the device and to a file descriptor on the host.
#ifndef TINYDEPLOY_TD_REPORT_H_
#define TINYDEPLOY_TD_REPORT_H_

#include <stddef.h>
#include <stdint.h>

#ifndef TD_PROTOCOL_VERSION
#define TD_PROTOCOL_VERSION 1
#endif

namespace td {

typedef void (*WriteFn)(const char* data, size_t len, void* ctx);

uint32_t crc32_update(uint32_t crc, const char* data, size_t len);

class Reporter {
 public:
  Reporter(WriteFn write, void* ctx) : write_(write), ctx_(ctx), crc_(0), open_(false) {}

  void begin(const char* type);
  void field_int(const char* key, int32_t value);
  void field_uint(const char* key, uint32_t value);
  void field_str(const char* key, const char* value);
  void field_ints(const char* key, const int8_t* values, size_t n);
  void field_uints(const char* key, const uint32_t* values, size_t n);
  void end();

  // A plain line (the MLPerf Tiny runner's m-... replies): no checksum, ends with '\n'.
  void line(const char* text);

 private:
  void emit(const char* s, size_t n);  // writes and updates the CRC
  void emit_str(const char* s);
  void emit_uint(uint32_t v);
  void emit_int(int32_t v);
  WriteFn write_;
  void* ctx_;
  uint32_t crc_;
  bool open_;
};

// Formats v in decimal into buf (at least 12 bytes); returns the length.
size_t format_int(char* buf, int32_t v);
size_t format_uint(char* buf, uint32_t v);

}  // namespace td

#endif  // TINYDEPLOY_TD_REPORT_H_
