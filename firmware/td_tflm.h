// The TFLite Micro backend of the device: the generated model, op resolver and arena, with a
// cycle-counting profiler for per-operator times. Built only inside the PlatformIO project
// (it needs the TFLM Arduino library); everything it plugs into is in td_device.h.
#ifndef TINYDEPLOY_TD_TFLM_H_
#define TINYDEPLOY_TD_TFLM_H_

#include "td_device.h"

namespace td {

// Creates the interpreter and allocates tensors. Returns the backend (never null); check
// backend.init_error() for "alloc" (arena too small), "schema" or "resolver".
Backend& tflm_backend(uint32_t (*cycles)());

}  // namespace td

#endif  // TINYDEPLOY_TD_TFLM_H_
