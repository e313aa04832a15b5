// The generated model's metadata (model_config.h) as a td::ModelInfo, for every Backend: the TFLM
// one on the device and the stand-in that the host tests compile.
#ifndef TINYDEPLOY_TD_MODEL_INFO_H_
#define TINYDEPLOY_TD_MODEL_INFO_H_

#include "model_config.h"
#include "td_device.h"

namespace td {

inline ModelInfo model_info_from_config() {
  ModelInfo m;
  m.name = TD_MODEL_NAME;
  m.model_id = TD_MODEL_ID;
  m.sha256_prefix = TD_MODEL_SHA256_PREFIX;
  m.board = TD_BOARD;
  m.model_bytes = td_model_data_len;
  m.input_bytes = TD_INPUT_BYTES;
  m.output_bytes = TD_OUTPUT_BYTES;
  m.output_scale = TD_OUTPUT_SCALE;
  m.output_zero_point = TD_OUTPUT_ZERO_POINT;
  m.arena_bytes = TD_ARENA_BYTES;
  m.arena_needed_bytes = TD_ARENA_NEEDED_BYTES;
  return m;
}

}  // namespace td

#endif  // TINYDEPLOY_TD_MODEL_INFO_H_
