// The device side of tinydeploy's benchmark, independent of TFLM and Arduino so that it compiles
// and runs on the host in the tests: a command processor that speaks the MLPerf Tiny runner's
// commands and tinydeploy's own, over a Backend (the model) and a Platform (clock, output).
#ifndef TINYDEPLOY_TD_DEVICE_H_
#define TINYDEPLOY_TD_DEVICE_H_

#include <stddef.h>
#include <stdint.h>

#include "td_report.h"

#define TD_FIRMWARE_VERSION "0.1.0"

#ifndef TD_MAX_TIMED_RUNS
#define TD_MAX_TIMED_RUNS 100  // td-bench N: 1..100 (the device keeps every run's count)
#endif
#ifndef TD_MAX_INFER_RUNS
#define TD_MAX_INFER_RUNS 1000000  // infer N (MLPerf Tiny performance mode): 1..10^6
#endif
#ifndef TD_MAX_WARMUP
#define TD_MAX_WARMUP 1000  // warm-up runs of either command: 0..1000
#endif
#ifndef TD_MAX_OPS
#define TD_MAX_OPS 128
#endif
#ifndef TD_DETAIL_BYTES
#define TD_DETAIL_BYTES 256  // an error record's detail, TFLM's log included
#endif
#ifndef TD_MAX_COMMAND
#define TD_MAX_COMMAND 96  // "db " + 62 hex digits fits
#endif

namespace td {

struct Platform {
  WriteFn write;
  void* write_ctx;
  uint32_t (*cycles)();  // free-running counter: CPU cycles (DWT->CYCCNT), or instructions when emulated
  uint32_t (*micros)();
  uint32_t cpu_hz;            // the board's clock
  const char* target;         // where it runs: the board id, or the emulated machine
  const char* counter_unit;   // what cycles() counts: "cycles" or "instructions"
};

struct ModelInfo {
  const char* name;        // model name (a C identifier)
  const char* model_id;    // MLPerf Tiny "m-model-[...]" id
  const char* sha256_prefix;  // first 16 hex digits of the deployed model's sha256
  const char* board;
  uint32_t model_bytes;
  uint32_t input_bytes;    // int8 elements of input 0
  uint32_t output_bytes;   // int8 elements of output 0
  float output_scale;
  int32_t output_zero_point;
  uint32_t arena_bytes;        // allocated
  uint32_t arena_needed_bytes; // what the host's analysis measured (32-bit corrected)
};

// Golden vectors: real inputs and the outputs of the TFLM host interpreter for them.
struct GoldenSet {
  uint32_t count;
  const int8_t* inputs;   // count * input_bytes
  const int8_t* outputs;  // count * output_bytes
  int32_t tolerance;      // largest accepted |device - host| per output element
};

class Backend {
 public:
  virtual ~Backend() {}
  virtual const ModelInfo& info() const = 0;
  // 0 when ready; otherwise a short reason (e.g. "alloc") that the report names.
  virtual const char* init_error() const = 0;
  // What the runtime logged during init or the last invoke() (TFLM's messages), "" if nothing.
  virtual const char* log() const = 0;
  virtual uint32_t arena_used_bytes() const = 0;
  // Copies n bytes into input 0 (nothing to copy when data is input_tensor() itself). Must be called
  // before every invoke(): unless the model keeps its input (TD_INPUT_KEPT), TFLM's planner may reuse
  // the input tensor's memory for later layers.
  virtual bool set_input(const int8_t* data, size_t n) = 0;
  // Input 0's own memory in the arena, or null when init failed (or the backend has none to lend).
  virtual int8_t* input_tensor() = 0;
  virtual bool invoke() = 0;
  // Output 0 of the last invoke(); null when init failed.
  virtual const int8_t* output() const = 0;
  // Per-operator profile of the last invoke().
  virtual size_t op_count() const = 0;
  virtual const char* op_tag(size_t i) const = 0;
  virtual uint32_t op_cycles(size_t i) const = 0;
};

class CommandProcessor {
 public:
  // input_buffer: where a host-loaded input is kept, input_bytes long; null to load it straight into the
  // backend's input tensor (a model that keeps its input, TD_INPUT_KEPT: no copy in RAM).
  CommandProcessor(const Platform& platform, Backend& backend, const GoldenSet& golden, int8_t* input_buffer);

  // Feed received bytes; commands end with '%'. '\r', '\n' and '\0' are ignored.
  void feed(char c);
  void execute(const char* command);

 private:
  void cmd_name();
  void cmd_profile();
  void cmd_db(const char* arg);
  void cmd_infer(uint32_t n, uint32_t warmup);
  void cmd_results();
  void cmd_hello();
  void cmd_td_infer();
  void cmd_bench(uint32_t runs, uint32_t warmup);
  void ready();
  void error(const char* code, const char* detail);
  void init_failed_error();
  void bench_failed(uint32_t records);
  void send_hello_record();
  bool run_once(const int8_t* input, uint32_t* cycles, uint32_t* us);
  void results_line();

  Platform platform_;
  Backend& backend_;
  GoldenSet golden_;
  Reporter out_;
  int8_t* input_;        // host-loaded input (db load / db HEX), input_bytes long; null if init failed
  bool input_is_tensor_;  // input_ is the backend's input tensor: running another input replaces it
  uint32_t expected_;    // bytes announced by "db load N"
  uint32_t loaded_;
  bool have_input_;
  char cmd_[TD_MAX_COMMAND + 1];
  size_t cmd_len_;
  bool overflow_;
  uint32_t op_sum_[TD_MAX_OPS];
};

}  // namespace td

#endif  // TINYDEPLOY_TD_DEVICE_H_
