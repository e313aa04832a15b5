// The subset of the Arduino API that tinydeploy's firmware uses, for the emulated target (QEMU's
// mps2-an386 board, a Cortex-M4F): Serial on the CMSDK UART, micros()/millis() from a CMSDK timer.
// Not the Arduino core: just enough for main.cpp to compile unchanged.
#ifndef TINYDEPLOY_EMULATOR_ARDUINO_H_
#define TINYDEPLOY_EMULATOR_ARDUINO_H_

#include <stddef.h>
#include <stdint.h>
#include <string.h>

class UartSerial {
 public:
  void begin(unsigned long baud);
  size_t write(uint8_t byte);
  size_t write(const uint8_t* data, size_t len);
  size_t print(const char* text) { return write(reinterpret_cast<const uint8_t*>(text), strlen(text)); }
  int available();
  int read();
  explicit operator bool() const { return true; }
};

extern UartSerial Serial;

unsigned long micros();
unsigned long millis();

// The sketch's entry points, called by the board layer's main().
void setup();
void loop();

#endif  // TINYDEPLOY_EMULATOR_ARDUINO_H_
