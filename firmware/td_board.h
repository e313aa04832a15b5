// What the firmware needs from the board beyond the Arduino API: a free-running counter for timing
// inferences and operators, and the names that tell the host what that counter counts.
//
// Two implementations: td_board_arduino.cpp (the real board: the Cortex-M4's DWT cycle counter) and
// firmware/emulator/board_mps2.cpp (QEMU's mps2-an386, built with -DTD_EMULATOR: instructions, from a
// timer that QEMU's -icount mode ticks once per 40 instructions). main.cpp compiles unchanged for both.
#ifndef TINYDEPLOY_TD_BOARD_H_
#define TINYDEPLOY_TD_BOARD_H_

#include <stdint.h>

namespace td {

void board_counter_init();
// Free-running, wraps at 2^32: subtract two readings (unsigned) for an elapsed count.
uint32_t board_counter();
// What the counter counts: "cycles" (CPU clock cycles) or "instructions" (an emulator's).
const char* board_counter_unit();
// Where the firmware runs: the board id, or the emulated machine ("qemu-mps2-an386").
const char* board_target();

}  // namespace td

#endif  // TINYDEPLOY_TD_BOARD_H_
