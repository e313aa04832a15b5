#include "td_device.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "td_stats.h"

namespace td {

namespace {

bool starts_with(const char* s, const char* prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

// Parses up to `max` space-separated unsigned decimals after a command word into out[], leaving the
// others as they are. False on anything else: a sign, a letter, a number above 10^9, a fourth token.
bool parse_args(const char* p, uint32_t* out, int max) {
  for (int i = 0;; ++i) {
    while (*p == ' ') ++p;
    if (*p == '\0') return true;
    if (i == max || *p < '0' || *p > '9') return false;
    uint32_t v = 0;
    while (*p >= '0' && *p <= '9') {
      if (v >= 100000000u) return false;  // one more digit would pass 10^9
      v = v * 10 + static_cast<uint32_t>(*p - '0');
      ++p;
    }
    if (*p != ' ' && *p != '\0') return false;
    out[i] = v;
  }
}

// "N W" after a command: runs and warm-ups, both optional (a[] holds the defaults). False, with an
// e-[...] line in `why`, unless 1 <= N <= max_runs and 0 <= W <= TD_MAX_WARMUP.
bool parse_runs(const char* p, uint32_t* a, uint32_t max_runs, const char* command, char* why, size_t why_len) {
  if (parse_args(p, a, 2) && a[0] >= 1 && a[0] <= max_runs && a[1] <= TD_MAX_WARMUP) return true;
  snprintf(why, why_len, "e-[%s N W takes 1 <= N <= %lu and 0 <= W <= %lu]", command,
           static_cast<unsigned long>(max_runs), static_cast<unsigned long>(TD_MAX_WARMUP));
  return false;
}

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

CommandProcessor::CommandProcessor(const Platform& platform, Backend& backend, const GoldenSet& golden,
                                   int8_t* input_buffer)
    : platform_(platform),
      backend_(backend),
      golden_(golden),
      out_(platform.write, platform.write_ctx),
      input_(input_buffer ? input_buffer : backend.input_tensor()),
      input_is_tensor_(input_buffer == nullptr),
      expected_(0),
      loaded_(0),
      have_input_(false),
      cmd_len_(0),
      overflow_(false) {
  cmd_[0] = '\0';
}

void CommandProcessor::feed(char c) {
  if (c == '\r' || c == '\n' || c == '\0') return;
  if (c == '%') {
    cmd_[cmd_len_] = '\0';
    if (overflow_) {
      error("too-long", "command longer than TD_MAX_COMMAND");
      ready();
    } else {
      execute(cmd_);
    }
    cmd_len_ = 0;
    overflow_ = false;
    return;
  }
  if (cmd_len_ < TD_MAX_COMMAND) {
    cmd_[cmd_len_++] = c;
  } else {
    overflow_ = true;
  }
}

void CommandProcessor::ready() { out_.line("m-ready"); }

void CommandProcessor::error(const char* code, const char* detail) {
  out_.begin("error");
  out_.field_str("code", code);
  out_.field_str("detail", detail);
  out_.end();
}

void CommandProcessor::execute(const char* c) {
  if (strcmp(c, "name") == 0) {
    cmd_name();
  } else if (strcmp(c, "profile") == 0) {
    cmd_profile();
  } else if (starts_with(c, "db ")) {
    cmd_db(c + 3);
  } else if (starts_with(c, "infer") && (c[5] == ' ' || c[5] == '\0')) {
    uint32_t a[2] = {1, 0};  // runs, warm-ups
    char why[80];
    if (!parse_runs(c + 5, a, TD_MAX_INFER_RUNS, "infer", why, sizeof why)) {
      out_.line(why);  // an MLPerf-style e-[...] line
      ready();
      return;
    }
    cmd_infer(a[0], a[1]);
  } else if (strcmp(c, "results") == 0) {
    cmd_results();
  } else if (strcmp(c, "td-hello") == 0) {
    cmd_hello();
  } else if (strcmp(c, "td-infer") == 0) {
    cmd_td_infer();
  } else if (starts_with(c, "td-bench") && (c[8] == ' ' || c[8] == '\0')) {
    uint32_t a[2] = {20, 2};  // runs, warm-ups
    char why[80];
    if (!parse_runs(c + 8, a, TD_MAX_TIMED_RUNS, "td-bench", why, sizeof why)) {
      why[strlen(why) - 1] = '\0';
      error("args", why + 3);  // the text inside e-[...]
      bench_failed(1);
      return;
    }
    cmd_bench(a[0], a[1]);
  } else {
    platform_.write("e-[Unknown command: ", 20, platform_.write_ctx);
    platform_.write(c, strlen(c), platform_.write_ctx);
    platform_.write("]\n", 2, platform_.write_ctx);
    ready();
  }
}

// An error record for a backend that did not initialize, with what the runtime logged about it.
void CommandProcessor::init_failed_error() {
  const char* log = backend_.log();
  char detail[TD_DETAIL_BYTES];
  snprintf(detail, sizeof detail, "%s%s%s",
           strcmp(backend_.init_error(), "alloc") == 0 ? "AllocateTensors() failed" : "interpreter not ready",
           log[0] ? ": " : "", log);
  error(backend_.init_error(), detail);
}

// Ends a td-bench report that stopped early: `records` records were sent before this one.
void CommandProcessor::bench_failed(uint32_t records) {
  out_.begin("done");
  out_.field_uint("records", records + 1);
  out_.field_str("status", "error");
  out_.end();
  ready();
}

void CommandProcessor::cmd_name() {
  out_.line("m-name-dut-[tinydeploy]");
  ready();
}

void CommandProcessor::cmd_profile() {
  const ModelInfo& m = backend_.info();
  out_.line("m-profile-[tinydeploy-" TD_FIRMWARE_VERSION "]");
  char buf[80];
  snprintf(buf, sizeof buf, "m-model-[%s]", m.model_id);
  out_.line(buf);
  ready();
}

void CommandProcessor::cmd_db(const char* arg) {
  const ModelInfo& m = backend_.info();
  char buf[64];
  if (input_ == nullptr) {  // no input tensor to load into: the model did not initialize
    init_failed_error();
    ready();
    return;
  }
  if (starts_with(arg, "load")) {
    uint32_t n = 0;
    if (!parse_args(arg + 4, &n, 1) || n != m.input_bytes) {
      snprintf(buf, sizeof buf, "e-[db load needs %lu bytes]", static_cast<unsigned long>(m.input_bytes));
      out_.line(buf);
      ready();
      return;
    }
    expected_ = n;
    loaded_ = 0;
    have_input_ = false;
    snprintf(buf, sizeof buf, "m-[Expecting %lu bytes]", static_cast<unsigned long>(n));
    out_.line(buf);
    ready();
    return;
  }
  // "db HEX": append bytes.
  size_t len = strlen(arg);
  if (expected_ == 0 || len % 2 != 0) {
    out_.line(expected_ == 0 ? "e-[db load first]" : "e-[odd number of hex digits]");
    ready();
    return;
  }
  for (size_t i = 0; i + 1 < len; i += 2) {
    int hi = hex_value(arg[i]), lo = hex_value(arg[i + 1]);
    if (hi < 0 || lo < 0) {
      out_.line("e-[bad hex digit]");
      ready();
      return;
    }
    if (loaded_ < expected_) input_[loaded_++] = static_cast<int8_t>((hi << 4) | lo);
  }
  if (loaded_ >= expected_) {
    have_input_ = true;
    out_.line("m-load-done");
  } else {
    // The runner needs at least one line before m-ready.
    snprintf(buf, sizeof buf, "m-[Loaded %lu of %lu bytes]", static_cast<unsigned long>(loaded_),
             static_cast<unsigned long>(expected_));
    out_.line(buf);
  }
  ready();
}

bool CommandProcessor::run_once(const int8_t* input, uint32_t* cycles, uint32_t* us) {
  const ModelInfo& m = backend_.info();
  if (!backend_.set_input(input, m.input_bytes)) return false;  // before every invoke
  if (input_is_tensor_ && input != input_) have_input_ = false;  // the loaded input was just replaced
  const uint32_t c0 = platform_.cycles();
  const uint32_t t0 = platform_.micros();
  const bool ok = backend_.invoke();
  const uint32_t c1 = platform_.cycles();
  const uint32_t t1 = platform_.micros();
  if (cycles) *cycles = c1 - c0;
  if (us) *us = t1 - t0;
  return ok;
}

void CommandProcessor::results_line() {
  // Dequantized scores (non-negative for a softmax output), as the runner's accuracy mode wants.
  const ModelInfo& m = backend_.info();
  const int8_t* y = backend_.output();
  char buf[24];
  platform_.write("m-results-[", 11, platform_.write_ctx);
  for (uint32_t i = 0; i < m.output_bytes; ++i) {
    const float v = (static_cast<int32_t>(y[i]) - m.output_zero_point) * m.output_scale;
    // Fixed-point text without printf("%f"), which newlib-nano builds lack: 6 decimals.
    const int32_t micro = static_cast<int32_t>(v * 1000000.0f + (v >= 0 ? 0.5f : -0.5f));
    size_t n = 0;
    if (i) buf[n++] = ',';
    int32_t ip = micro / 1000000, fp = micro % 1000000;
    if (micro < 0) {
      buf[n++] = '-';
      ip = -ip;
      fp = -fp;
    }
    n += format_int(buf + n, ip);
    buf[n++] = '.';
    for (int32_t d = 100000; d > 0; d /= 10) buf[n++] = static_cast<char>('0' + (fp / d) % 10);
    platform_.write(buf, n, platform_.write_ctx);
  }
  platform_.write("]\n", 2, platform_.write_ctx);
}

void CommandProcessor::cmd_infer(uint32_t n, uint32_t warmup) {
  char buf[48];
  if (backend_.init_error()) {
    init_failed_error();
    ready();
    return;
  }
  const int8_t* input = have_input_ ? input_ : (golden_.count ? golden_.inputs : input_);
  snprintf(buf, sizeof buf, "m-warmup-start-%lu", static_cast<unsigned long>(warmup));
  out_.line(buf);
  for (uint32_t i = 0; i < warmup; ++i) run_once(input, 0, 0);
  out_.line("m-warmup-done");
  snprintf(buf, sizeof buf, "m-infer-start-%lu", static_cast<unsigned long>(n));
  out_.line(buf);
  const uint32_t t0 = platform_.micros();
  snprintf(buf, sizeof buf, "m-lap-us-%lu", static_cast<unsigned long>(t0));
  out_.line(buf);
  bool ok = true;
  for (uint32_t i = 0; i < n; ++i) ok = run_once(input, 0, 0) && ok;
  const uint32_t t1 = platform_.micros();
  snprintf(buf, sizeof buf, "m-lap-us-%lu", static_cast<unsigned long>(t1));
  out_.line(buf);
  out_.line("m-infer-done");
  if (!ok) error("invoke", backend_.log()[0] ? backend_.log() : "Invoke() failed");
  results_line();
  ready();
}

void CommandProcessor::cmd_results() {
  if (backend_.init_error()) {
    init_failed_error();
  } else {
    results_line();
  }
  ready();
}

void CommandProcessor::send_hello_record() {
  const ModelInfo& m = backend_.info();
  out_.begin("hello");
  out_.field_uint("proto", TD_PROTOCOL_VERSION);
  out_.field_str("fw", TD_FIRMWARE_VERSION);
  out_.field_str("board", m.board);
  out_.field_str("model", m.name);
  out_.field_str("sha", m.sha256_prefix);
  out_.field_uint("model_bytes", m.model_bytes);
  out_.field_uint("in", m.input_bytes);
  out_.field_uint("out", m.output_bytes);
  out_.field_uint("cpu_hz", platform_.cpu_hz);
  out_.field_str("target", platform_.target);
  out_.field_str("counter", platform_.counter_unit);
  out_.field_uint("golden", golden_.count);
  out_.end();
}

// One inference on the input loaded with db, answered with a checksummed record that carries the raw
// int8 outputs (the host compares them with its own interpreter's) and the counter's reading.
void CommandProcessor::cmd_td_infer() {
  if (backend_.init_error()) {
    init_failed_error();
  } else if (!have_input_) {
    error("no-input", "load an input first: db load N, then db HEX");
  } else {
    uint32_t cycles = 0;
    const bool ok = run_once(input_, &cycles, 0);
    if (!ok) {
      error("invoke", backend_.log()[0] ? backend_.log() : "Invoke() failed");
    } else {
      out_.begin("result");
      out_.field_uint("cycles", cycles);
      out_.field_ints("out", backend_.output(), backend_.info().output_bytes);
      out_.end();
    }
  }
  ready();
}

void CommandProcessor::cmd_hello() {
  send_hello_record();
  ready();
}

void CommandProcessor::cmd_bench(uint32_t runs, uint32_t warmup) {
  const ModelInfo& m = backend_.info();
  uint32_t records = 0;
  send_hello_record();
  ++records;
  out_.begin("arena");
  out_.field_uint("allocated", m.arena_bytes);
  out_.field_uint("used", backend_.init_error() ? 0 : backend_.arena_used_bytes());
  out_.field_uint("needed", m.arena_needed_bytes);
  out_.end();
  ++records;
  if (backend_.init_error()) {
    init_failed_error();
    bench_failed(records + 1);
    return;
  }
  const int8_t* input = golden_.count ? golden_.inputs : input_;
  for (uint32_t i = 0; i < warmup; ++i) run_once(input, 0, 0);

  static uint32_t cyc[TD_MAX_TIMED_RUNS];
  static uint32_t usec[TD_MAX_TIMED_RUNS];
  for (size_t k = 0; k < TD_MAX_OPS; ++k) op_sum_[k] = 0;
  // The profile belongs to the last invoke(): read its size after a timed run, not before the
  // first one (with no warm-up, the profiler has seen no invoke yet).
  size_t nops = 0;
  bool ok = true;
  for (uint32_t i = 0; i < runs; ++i) {
    ok = run_once(input, &cyc[i], &usec[i]) && ok;
    nops = backend_.op_count() < TD_MAX_OPS ? backend_.op_count() : TD_MAX_OPS;
    for (size_t k = 0; k < nops; ++k) op_sum_[k] += backend_.op_cycles(k);
    out_.begin("run");
    out_.field_uint("i", i);
    out_.field_uint("cycles", cyc[i]);
    out_.field_uint("us", usec[i]);
    out_.end();
    ++records;
  }
  for (size_t k = 0; k < nops; ++k) {
    out_.begin("op");
    out_.field_uint("i", static_cast<uint32_t>(k));
    out_.field_str("tag", backend_.op_tag(k));
    out_.field_uint("cycles", op_sum_[k] / runs);
    out_.end();
    ++records;
  }
  // Golden vectors: each input written again before its invoke, outputs compared with the host's.
  uint32_t passed = 0;
  for (uint32_t g = 0; g < golden_.count; ++g) {
    const int8_t* gin = golden_.inputs + static_cast<size_t>(g) * m.input_bytes;
    const int8_t* gout = golden_.outputs + static_cast<size_t>(g) * m.output_bytes;
    const bool ran = run_once(gin, 0, 0);
    const int32_t diff = ran ? max_abs_diff(backend_.output(), gout, m.output_bytes) : 255;
    const bool pass = ran && diff <= golden_.tolerance;
    passed += pass ? 1 : 0;
    out_.begin("golden");
    out_.field_uint("i", g);
    out_.field_uint("max_diff", static_cast<uint32_t>(diff));
    out_.field_uint("tol", static_cast<uint32_t>(golden_.tolerance));
    out_.field_str("pass", pass ? "1" : "0");
    out_.field_ints("out", backend_.output(), m.output_bytes);
    out_.end();
    ++records;
  }
  Summary sc = summarize(cyc, runs);
  Summary su = summarize(usec, runs);
  out_.begin("summary");
  out_.field_uint("runs", runs);
  out_.field_uint("warmup", warmup);
  out_.field_uint("cyc_med", sc.median);
  out_.field_uint("cyc_p90", sc.p90);
  out_.field_uint("cyc_min", sc.min);
  out_.field_uint("cyc_max", sc.max);
  out_.field_uint("us_med", su.median);
  out_.field_uint("us_p90", su.p90);
  out_.field_uint("us_min", su.min);
  out_.field_uint("us_max", su.max);
  out_.field_uint("golden_pass", passed);
  out_.field_uint("golden_total", golden_.count);
  out_.end();
  ++records;
  if (!ok) {
    error("invoke", backend_.log()[0] ? backend_.log() : "Invoke() failed");
    ++records;
  }
  out_.begin("done");
  out_.field_uint("records", records + 1);
  out_.field_str("status", ok ? "ok" : "invoke-failed");
  out_.end();
  ready();
}

}  // namespace td
