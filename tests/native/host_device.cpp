// The device side of tinydeploy's serial tests, compiled for the host: the firmware's own command
// processor, report writer and statistics (firmware/td_*.cpp) and a generated project's
// model_config.h and golden data, talking over stdin/stdout (a pseudo-terminal in the tests).
//
// What is NOT the device's code: SimBackend stands in for TFLM (no TFLM C++ sources here). It
// returns the golden outputs for the golden inputs and a deterministic function of the input
// otherwise, and reports fixed per-op "cycles". Faults (--fault) imitate what a USB serial link does;
// --shift K moves every golden output by K, so that the tolerance check has something to judge.
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "model_config.h"
#include "td_device.h"
#include "td_model_info.h"

namespace {

enum Fault { kNone, kSilent, kGarbage, kBadCrc, kVanish, kReset, kAllocFail };
Fault g_fault = kNone;
bool g_rebooting = false;  // after a simulated reset: output is dropped until the host sends again
size_t g_written = 0;
size_t g_records = 0;
size_t g_fault_after = 400;  // bytes (vanish, reset) or records (bad crc)
int g_shift = 0;             // added to the golden outputs (kept within int8)

void raw_write(const char* d, size_t n) {
  while (n > 0) {
    ssize_t w = write(1, d, n);
    if (w <= 0) _exit(0);
    d += w;
    n -= static_cast<size_t>(w);
  }
}

void sim_write(const char* data, size_t len, void*) {
  if (g_fault == kSilent || g_rebooting) return;
  for (size_t i = 0; i < len; ++i) {
    char c = data[i];
    if (g_fault == kBadCrc) {
      // in the Nth record, change the first digit of its fields: the CRC no longer matches
      static int spaces = -1;
      if (c == '@') spaces = (++g_records == g_fault_after) ? 0 : -1;
      if (spaces >= 0 && c == ' ') ++spaces;
      if (spaces >= 2 && c >= '0' && c <= '9') {
        c = c == '9' ? '8' : static_cast<char>(c + 1);
        spaces = -1;
      }
    }
    if ((g_fault == kVanish || g_fault == kReset) && g_written >= g_fault_after) {
      if (g_fault == kReset) {
        // what a reboot looks like from the host: the report stops mid-line, then boot noise
        raw_write("\n\xff\xfe boot\r\n", 10);
        g_fault = kNone;
        g_written = 0;
        // a rebooted firmware has forgotten the command; it answers the next one
        g_rebooting = true;
        return;
      }
      usleep(500000);  // let the host read what was sent (a pty drops unread data when its master closes)
      _exit(0);        // the port vanishes: the pty's other end closes
    }
    raw_write(&c, 1);
    ++g_written;
    if (g_fault == kGarbage && c == '\n') raw_write("\x13\x37garbage \xc3\x28 line\n\x01", 22);
  }
}

uint32_t sim_cycles() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint32_t>(ts.tv_sec * 64000000ull + ts.tv_nsec * 64ull / 1000ull);
}
uint32_t sim_micros() {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint32_t>(ts.tv_sec * 1000000ull + ts.tv_nsec / 1000ull);
}

class SimBackend : public td::Backend {
 public:
  SimBackend() : info_(td::model_info_from_config()) {
    memset(out_, 0, sizeof out_);
  }
  const td::ModelInfo& info() const override { return info_; }
  const char* init_error() const override { return g_fault == kAllocFail ? "alloc" : 0; }
  const char* log() const override {
    return g_fault == kAllocFail ? "Failed to resize buffer. Requested: 20000, available 1000, missing: 19000" : "";
  }
  uint32_t arena_used_bytes() const override { return TD_ARENA_NEEDED_BYTES; }
  bool set_input(const int8_t* d, size_t n) override {
    if (n != TD_INPUT_BYTES) return false;
    memcpy(in_, d, n);
    return true;
  }
  int8_t* input_tensor() override { return g_fault == kAllocFail ? nullptr : in_; }
  bool invoke() override {
    invoked_ = true;
    for (uint32_t g = 0; g < TD_GOLDEN_COUNT; ++g) {
      if (memcmp(in_, td_golden_inputs + g * TD_INPUT_BYTES, TD_INPUT_BYTES) == 0) {
        for (uint32_t i = 0; i < TD_OUTPUT_BYTES; ++i) {
          const int v = td_golden_outputs[g * TD_OUTPUT_BYTES + i] + g_shift;
          out_[i] = static_cast<int8_t>(v > 127 ? v - 2 * g_shift : v);  // stays |shift| away, in range
        }
        return true;
      }
    }
    uint32_t sum = 0;
    for (uint32_t i = 0; i < TD_INPUT_BYTES; ++i) sum += static_cast<uint8_t>(in_[i]);
    for (uint32_t i = 0; i < TD_OUTPUT_BYTES; ++i) out_[i] = -128;
    out_[sum % TD_OUTPUT_BYTES] = 127;
    return true;
  }
  const int8_t* output() const override { return g_fault == kAllocFail ? 0 : out_; }
  // Like TFLM's profiler: no events until the first Invoke().
  size_t op_count() const override { return invoked_ ? 3 : 0; }
  const char* op_tag(size_t i) const override {
    static const char* const kTags[] = {"CONV_2D", "FULLY_CONNECTED", "SOFTMAX"};
    return kTags[i];
  }
  uint32_t op_cycles(size_t i) const override { return static_cast<uint32_t>(1000 * (i + 1)); }

 private:
  td::ModelInfo info_;
  int8_t in_[TD_INPUT_BYTES];
  int8_t out_[TD_OUTPUT_BYTES];
  bool invoked_ = false;
};

int8_t g_input[TD_INPUT_BYTES];

}  // namespace

int main(int argc, char** argv) {
  signal(SIGPIPE, SIG_IGN);
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--fault") == 0 && i + 1 < argc) {
      const char* f = argv[++i];
      g_fault = strcmp(f, "silent") == 0     ? kSilent
                : strcmp(f, "garbage") == 0  ? kGarbage
                : strcmp(f, "badcrc") == 0   ? kBadCrc
                : strcmp(f, "vanish") == 0   ? kVanish
                : strcmp(f, "reset") == 0    ? kReset
                : strcmp(f, "alloc") == 0    ? kAllocFail
                                             : kNone;
    } else if (strcmp(argv[i], "--shift") == 0 && i + 1 < argc) {
      g_shift = atoi(argv[++i]);
    } else if (strcmp(argv[i], "--after") == 0 && i + 1 < argc) {
      g_fault_after = static_cast<size_t>(atol(argv[++i]));
    }
  }
  static SimBackend backend;
  td::Platform platform = {sim_write, 0, sim_cycles, sim_micros, TD_CPU_HZ, "host-stand-in", "cycles"};
  td::GoldenSet golden = {TD_GOLDEN_COUNT, td_golden_inputs, td_golden_outputs, TD_GOLDEN_TOLERANCE};
  td::CommandProcessor processor(platform, backend, golden, g_input);
  char buf[256];
  for (;;) {
    ssize_t n = read(0, buf, sizeof buf);
    if (n <= 0) return 0;
    g_rebooting = false;
    for (ssize_t i = 0; i < n; ++i) processor.feed(buf[i]);
  }
}
