// tinydeploy benchmark firmware for Arduino boards (Nano 33 BLE Sense): TFLite Micro runs the
// generated model; the host drives it over USB serial with the MLPerf Tiny runner's commands and
// tinydeploy's own (td-hello%, td-bench N W%). Prints nothing unasked: an unsolicited line would
// be taken by the runner as the reply to its next command (TFLM's own log messages are captured by
// td_log.cpp). The same file builds for the emulated Cortex-M4 (firmware/emulator/).
#include <Arduino.h>

#include "model_config.h"
#include "td_board.h"
#include "td_device.h"
#include "td_tflm.h"

namespace {

void serial_write(const char* data, size_t len, void*) { Serial.write(reinterpret_cast<const uint8_t*>(data), len); }

uint32_t micros32() { return static_cast<uint32_t>(micros()); }

#if TD_INPUT_KEPT
int8_t* const g_input = nullptr;  // the model keeps its input tensor: the host's input is loaded into it
#else
alignas(16) int8_t g_input[TD_INPUT_BYTES];  // TFLM may reuse the input tensor's memory: a copy to set it from
#endif
td::CommandProcessor* g_processor = nullptr;

}  // namespace

void setup() {
  Serial.begin(TD_SERIAL_BAUD);  // native USB CDC: the baud rate is not the link's speed
  td::board_counter_init();
  static td::Platform platform = {serial_write,         nullptr,        td::board_counter, micros32, TD_CPU_HZ,
                                  td::board_target(), td::board_counter_unit()};
  static td::GoldenSet golden = {TD_GOLDEN_COUNT, td_golden_inputs, td_golden_outputs, TD_GOLDEN_TOLERANCE};
  static td::CommandProcessor processor(platform, td::tflm_backend(td::board_counter), golden, g_input);
  g_processor = &processor;
}

void loop() {
  while (Serial.available() > 0) {
    g_processor->feed(static_cast<char>(Serial.read()));
  }
}
