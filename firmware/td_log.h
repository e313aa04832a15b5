// TFLM's log messages (MicroPrintf -> DebugLog), kept off the serial port.
//
// On Arduino, the TFLM library's DebugLog prints through Serial: a message such as "Failed to resize
// buffer" at boot would reach the host unasked and be taken as the reply to its next command. The
// project links with -Wl,--wrap=DebugLog, so TFLM's calls land in __wrap_DebugLog below, which keeps
// the first TD_LOG_BYTES characters; the firmware sends them in an error record's detail.
#ifndef TINYDEPLOY_TD_LOG_H_
#define TINYDEPLOY_TD_LOG_H_

#include <stddef.h>

#ifndef TD_LOG_BYTES
#define TD_LOG_BYTES 192
#endif

extern "C" void __wrap_DebugLog(const char* s);

namespace td {

// What was logged since the last log_clear(), line breaks folded to "; " (empty if nothing).
const char* log_text();
void log_clear();

}  // namespace td

#endif  // TINYDEPLOY_TD_LOG_H_
