#include "td_report.h"

#include <string.h>

namespace td {

uint32_t crc32_update(uint32_t crc, const char* data, size_t len) {
  crc = ~crc;
  for (size_t i = 0; i < len; ++i) {
    crc ^= static_cast<uint8_t>(data[i]);
    for (int k = 0; k < 8; ++k) {
      crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
  }
  return ~crc;
}

size_t format_uint(char* buf, uint32_t v) {
  char tmp[11];
  size_t n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + (v % 10));
    v /= 10;
  } while (v != 0);
  for (size_t i = 0; i < n; ++i) buf[i] = tmp[n - 1 - i];
  buf[n] = '\0';
  return n;
}

size_t format_int(char* buf, int32_t v) {
  if (v < 0) {
    buf[0] = '-';
    // Negate in unsigned arithmetic so that INT32_MIN is handled.
    return 1 + format_uint(buf + 1, 0u - static_cast<uint32_t>(v));
  }
  return format_uint(buf, static_cast<uint32_t>(v));
}

void Reporter::emit(const char* s, size_t n) {
  crc_ = crc32_update(crc_, s, n);
  write_(s, n, ctx_);
}

void Reporter::emit_str(const char* s) { emit(s, strlen(s)); }

void Reporter::emit_uint(uint32_t v) {
  char buf[12];
  emit(buf, format_uint(buf, v));
}

void Reporter::emit_int(int32_t v) {
  char buf[13];
  emit(buf, format_int(buf, v));
}

void Reporter::begin(const char* type) {
  crc_ = 0;
  open_ = true;
  char head[8] = "@TD";
  size_t n = 3 + format_uint(head + 3, TD_PROTOCOL_VERSION);
  emit(head, n);
  emit(" ", 1);
  emit_str(type);
}

static bool plain_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
         c == ':' || c == '/' || c == '+' || c == '-';
}

void Reporter::field_str(const char* key, const char* value) {
  emit(" ", 1);
  emit_str(key);
  emit("=", 1);
  static const char kHex[] = "0123456789ABCDEF";
  for (const char* p = value; *p; ++p) {
    if (plain_char(*p)) {
      emit(p, 1);
    } else {
      const uint8_t b = static_cast<uint8_t>(*p);
      const char esc[3] = {'%', kHex[b >> 4], kHex[b & 15]};
      emit(esc, 3);
    }
  }
}

void Reporter::field_int(const char* key, int32_t value) {
  emit(" ", 1);
  emit_str(key);
  emit("=", 1);
  emit_int(value);
}

void Reporter::field_uint(const char* key, uint32_t value) {
  emit(" ", 1);
  emit_str(key);
  emit("=", 1);
  emit_uint(value);
}

void Reporter::field_ints(const char* key, const int8_t* values, size_t n) {
  emit(" ", 1);
  emit_str(key);
  emit("=", 1);
  for (size_t i = 0; i < n; ++i) {
    if (i) emit(",", 1);
    emit_int(values[i]);
  }
}

void Reporter::field_uints(const char* key, const uint32_t* values, size_t n) {
  emit(" ", 1);
  emit_str(key);
  emit("=", 1);
  for (size_t i = 0; i < n; ++i) {
    if (i) emit(",", 1);
    emit_uint(values[i]);
  }
}

void Reporter::end() {
  if (!open_) return;
  open_ = false;
  static const char kHex[] = "0123456789abcdef";
  char tail[12];
  tail[0] = ' ';
  tail[1] = '*';
  const uint32_t crc = crc_;
  for (int i = 0; i < 8; ++i) tail[2 + i] = kHex[(crc >> (28 - 4 * i)) & 15];
  tail[10] = '\n';
  write_(tail, 11, ctx_);
}

void Reporter::line(const char* text) {
  write_(text, strlen(text), ctx_);
  write_("\n", 1, ctx_);
}

}  // namespace td
