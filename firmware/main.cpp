// tinydeploy benchmark firmware for Arduino boards (Nano 33 BLE Sense): TFLite Micro runs the
// generated model; the host drives it over USB serial with the MLPerf Tiny runner's commands and
// tinydeploy's own (td-hello%, td-bench N W%). Prints nothing unasked: an unsolicited line would
// be taken by the runner as the reply to its next command.
#include <Arduino.h>

#include "model_config.h"
#include "td_device.h"
#include "td_tflm.h"

namespace {

void serial_write(const char* data, size_t len, void*) { Serial.write(reinterpret_cast<const uint8_t*>(data), len); }

// DWT cycle counter of the Cortex-M4 (CoreDebug->DEMCR.TRCENA, DWT->CTRL.CYCCNTENA).
volatile uint32_t* const kDemcr = reinterpret_cast<volatile uint32_t*>(0xE000EDFCu);
volatile uint32_t* const kDwtCtrl = reinterpret_cast<volatile uint32_t*>(0xE0001000u);
volatile uint32_t* const kDwtCyccnt = reinterpret_cast<volatile uint32_t*>(0xE0001004u);

void cycles_init() {
  *kDemcr |= (1u << 24);
  *kDwtCyccnt = 0;
  *kDwtCtrl |= 1u;
}
uint32_t cycles() { return *kDwtCyccnt; }
uint32_t micros32() { return static_cast<uint32_t>(micros()); }

alignas(16) int8_t g_input[TD_INPUT_BYTES];
td::CommandProcessor* g_processor = nullptr;

}  // namespace

void setup() {
  Serial.begin(TD_SERIAL_BAUD);  // native USB CDC: the baud rate is not the link's speed
  cycles_init();
  static td::Platform platform = {serial_write, nullptr, cycles, micros32, TD_CPU_HZ};
  static td::GoldenSet golden = {TD_GOLDEN_COUNT, td_golden_inputs, td_golden_outputs, TD_GOLDEN_TOLERANCE};
  static td::CommandProcessor processor(platform, td::tflm_backend(cycles), golden, g_input);
  g_processor = &processor;
}

void loop() {
  while (Serial.available() > 0) {
    g_processor->feed(static_cast<char>(Serial.read()));
  }
}
