// Board layer for QEMU's mps2-an386 machine (Cortex-M4F), the emulated stand-in for the Nano 33 BLE:
// vector table and reset handler (FPU on, .data copied, .bss zeroed, static constructors run), the
// CMSDK UART as Serial, CMSDK TIMER0 as the clock, newlib's system calls, and td_board.h.
//
// Timing: QEMU runs with -icount shift=0, one instruction per virtual nanosecond, and TIMER0 ticks at
// the board's 25 MHz of virtual time, so one tick is exactly 40 instructions. board_counter() counts
// instructions (not cycles: QEMU models no pipeline, wait states or memory timing).
#include <errno.h>
#include <stdint.h>
#include <sys/stat.h>

#include "Arduino.h"
#include "model_config.h"
#include "td_board.h"

namespace {

struct Uart {
  volatile uint32_t data;
  volatile uint32_t state;  // bit 0: TX full, bit 1: RX full
  volatile uint32_t ctrl;   // bit 0: TX enable, bit 1: RX enable
  volatile uint32_t intstatus;
  volatile uint32_t bauddiv;
};
struct Timer {
  volatile uint32_t ctrl;  // bit 0: enable
  volatile uint32_t value; // counts down
  volatile uint32_t reload;
};
Uart* const kUart0 = reinterpret_cast<Uart*>(0x40004000u);
Timer* const kTimer0 = reinterpret_cast<Timer*>(0x40000000u);
volatile uint32_t* const kCpacr = reinterpret_cast<volatile uint32_t*>(0xE000ED88u);

const uint32_t kInstructionsPerTick = 40;  // 1 ns per instruction, 25 MHz timer
const uint32_t kTicksPerMicrosecond = 25;

inline uint32_t timer_ticks() { return 0xFFFFFFFFu - kTimer0->value; }

void timer_start() {
  kTimer0->ctrl = 0;
  kTimer0->reload = 0xFFFFFFFFu;  // wraps at 2^32 ticks, so unsigned differences stay exact
  kTimer0->value = 0xFFFFFFFFu;
  kTimer0->ctrl = 1;
}

void uart_putc(char c) {
  while (kUart0->state & 1u) {
  }
  kUart0->data = static_cast<uint8_t>(c);
}

void uart_puts(const char* s) {
  while (*s) uart_putc(*s++);
}

void uart_hex(uint32_t v) {
  static const char kHex[] = "0123456789abcdef";
  for (int i = 28; i >= 0; i -= 4) uart_putc(kHex[(v >> i) & 15u]);
}

}  // namespace

// ---- Arduino subset -------------------------------------------------------------------------------

UartSerial Serial;

void UartSerial::begin(unsigned long) {
  kUart0->bauddiv = 16;  // the smallest divider QEMU accepts; it does not model baud rates
  kUart0->ctrl = 3u;
}

size_t UartSerial::write(uint8_t byte) {
  uart_putc(static_cast<char>(byte));
  return 1;
}

size_t UartSerial::write(const uint8_t* data, size_t len) {
  for (size_t i = 0; i < len; ++i) uart_putc(static_cast<char>(data[i]));
  return len;
}

int UartSerial::available() { return (kUart0->state & 2u) ? 1 : 0; }

int UartSerial::read() { return (kUart0->state & 2u) ? static_cast<int>(kUart0->data & 0xFFu) : -1; }

unsigned long micros() { return timer_ticks() / kTicksPerMicrosecond; }
unsigned long millis() { return timer_ticks() / (kTicksPerMicrosecond * 1000u); }

// ---- td_board.h -----------------------------------------------------------------------------------

namespace td {
void board_counter_init() {}  // TIMER0 runs from reset
uint32_t board_counter() { return timer_ticks() * kInstructionsPerTick; }
const char* board_counter_unit() { return "instructions"; }
const char* board_target() { return "qemu-mps2-an386"; }
}  // namespace td

// ---- start-up -------------------------------------------------------------------------------------

extern "C" {

extern uint32_t __etext, __data_start__, __data_end__, __bss_start__, __bss_end__, __StackTop;
void __libc_init_array(void);
void Reset_Handler(void);
void Fault_Handler(void);
void Default_Handler(void);

// A fault is reported as one MLPerf-style error line (the host's bench turns it into an error), then
// the core stops.
void Fault_Handler(void) {
  uint32_t cfsr = *reinterpret_cast<volatile uint32_t*>(0xE000ED28u);
  uart_puts("\ne-[hard fault, CFSR 0x");
  uart_hex(cfsr);
  uart_puts("]\n");
  for (;;) {
  }
}

void Default_Handler(void) {
  uart_puts("\ne-[unexpected interrupt]\n");
  for (;;) {
  }
}

__attribute__((section(".isr_vector"), used)) void (*const g_vectors[16])(void) = {
    reinterpret_cast<void (*)(void)>(&__StackTop),
    Reset_Handler,
    Default_Handler,  // NMI
    Fault_Handler,    // HardFault
    Fault_Handler,    // MemManage
    Fault_Handler,    // BusFault
    Fault_Handler,    // UsageFault
    0, 0, 0, 0,
    Default_Handler,  // SVCall
    Default_Handler,  // DebugMon
    0,
    Default_Handler,  // PendSV
    Default_Handler,  // SysTick
};

void Reset_Handler(void) {
  *kCpacr |= (0xFu << 20);  // CP10, CP11 full access: the FPU, before any float instruction
  __asm volatile("dsb\n\tisb" ::: "memory");
  uint32_t* src = &__etext;
  for (uint32_t* dst = &__data_start__; dst < &__data_end__;) *dst++ = *src++;
  for (uint32_t* dst = &__bss_start__; dst < &__bss_end__;) *dst++ = 0;
  timer_start();
  td::board_counter_init();
  __libc_init_array();  // static constructors
  setup();
  for (;;) loop();
}

// newlib-nano system calls: output goes to the UART, the heap grows up to the stack's reserve.
extern char end;  // from the linker script: first free byte after .bss
void* __dso_handle = 0;
void _init(void) {}
void _fini(void) {}

void* _sbrk(ptrdiff_t incr) {
  static char* heap = &end;
  extern char __HeapLimit;
  if (heap + incr > &__HeapLimit) {
    errno = ENOMEM;
    return reinterpret_cast<void*>(-1);
  }
  char* prev = heap;
  heap += incr;
  return prev;
}
int _write(int, const char* buf, int n) {
  for (int i = 0; i < n; ++i) uart_putc(buf[i]);
  return n;
}
int _read(int, char*, int) { return 0; }
int _close(int) { return -1; }
int _lseek(int, int, int) { return 0; }
int _fstat(int, struct stat* st) {
  st->st_mode = S_IFCHR;
  return 0;
}
int _isatty(int) { return 1; }
int _getpid(void) { return 1; }
int _kill(int, int) {
  errno = EINVAL;
  return -1;
}
void _exit(int) {
  for (;;) {
  }
}

}  // extern "C"
