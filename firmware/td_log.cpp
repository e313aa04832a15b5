#include "td_log.h"

namespace td {
namespace {

char g_log[TD_LOG_BYTES + 1];
size_t g_len = 0;
bool g_break = false;  // a line break is pending: written as "; " before the next text

void append(const char* s) {
  for (; *s; ++s) {
    if (*s == '\r' || *s == '\n') {
      g_break = g_len > 0;
      continue;
    }
    if (g_break) {
      g_break = false;
      if (g_len + 2 <= TD_LOG_BYTES) {
        g_log[g_len++] = ';';
        g_log[g_len++] = ' ';
      }
    }
    if (g_len < TD_LOG_BYTES) g_log[g_len++] = *s;
  }
}

}  // namespace

const char* log_text() {
  g_log[g_len] = '\0';
  return g_log;
}

void log_clear() {
  g_len = 0;
  g_break = false;
}

}  // namespace td

extern "C" void __wrap_DebugLog(const char* s) { td::append(s); }
