// td_board.h on the real Cortex-M4 board: the DWT cycle counter (CoreDebug->DEMCR.TRCENA,
// DWT->CTRL.CYCCNTENA). The emulated build (-DTD_EMULATOR) uses firmware/emulator/board_mps2.cpp,
// since QEMU's DWT CYCCNT reads 0.
#ifndef TD_EMULATOR

#include "model_config.h"
#include "td_board.h"

namespace td {
namespace {
volatile uint32_t* const kDemcr = reinterpret_cast<volatile uint32_t*>(0xE000EDFCu);
volatile uint32_t* const kDwtCtrl = reinterpret_cast<volatile uint32_t*>(0xE0001000u);
volatile uint32_t* const kDwtCyccnt = reinterpret_cast<volatile uint32_t*>(0xE0001004u);
}  // namespace

void board_counter_init() {
  *kDemcr |= (1u << 24);
  *kDwtCyccnt = 0;
  *kDwtCtrl |= 1u;
}
uint32_t board_counter() { return *kDwtCyccnt; }
const char* board_counter_unit() { return "cycles"; }
const char* board_target() { return TD_BOARD; }

}  // namespace td

#endif  // TD_EMULATOR
