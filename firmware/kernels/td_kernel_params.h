// Per-channel requantization parameters and op data in flash: the multipliers and shifts that TFLM's Prepare of a
// CONV_2D or DEPTHWISE_CONV_2D node computes from the model's constant scales and keeps in the arena (8 bytes a
// channel), and the rest of its op data (OpDataConv: 64 bytes of the arena's tail a node), which `tinydeploy build`
// computes instead and writes as const arrays (the generated model_params.cpp), one entry per node, found by the
// node's output tensor. A node tinydeploy's kernel runs points its op data's parameters at its entry, after checking
// every channel against TFLM's own QuantizeMultiplier; a node its own loops run uses the entry's op data itself,
// after checking it equals the struct Prepare computed (the CMSIS-NN function's nodes keep theirs in the arena: it
// holds the index of the scratch buffer TFLM hands out at start-up). A node without an entry (or run by the library's
// kernel) gets them in the arena as before.
#ifndef TINYDEPLOY_TD_KERNEL_PARAMS_H_
#define TINYDEPLOY_TD_KERNEL_PARAMS_H_

#include <stdint.h>

#include "tensorflow/lite/c/common.h"
#include "tensorflow/lite/micro/kernels/add.h"
#include "tensorflow/lite/micro/kernels/conv.h"

namespace td {
namespace kernels {

// Who computes an int8 CONV_2D / DEPTHWISE_CONV_2D node under tinydeploy's registration, kept in its OpDataConv's
// filter_buffer_index (which TFLM reads only for int4 filters, never taken here), so the op data stays the library's
// size: kOwnLoops for tinydeploy's loops, else the CMSIS-NN function with the index of the scratch buffer it asked
// for (-1: none).
constexpr int kOwnLoops = -2;
inline bool OwnLoops(int filter_buffer_index) { return filter_buffer_index == kOwnLoops; }

// The channels of a node its own loops run that may fall outside util::MakeRequant's 32-bit shortcut: from the first
// whose multiplier, shift or bias is beyond the shortcut's bounds for the products one output sums (k_h k_w c_in, or
// k_h k_w) to one past the last (all of them where the output zero point is beyond its range); every channel outside
// [begin, end) takes the shortcut whatever the int8 inputs and weights, and begin == end where every channel does, so
// the loops test only the channels of the range at each inference. A model's few such channels (a dead filter's
// bias of 2^30, whose output saturates) sit anywhere among hundreds.
struct ShortcutRange {
  int32_t begin, end;
};
// Kept in the op data's per-tensor multiplier and shift, which TFLM computes and reads only for uint8 (its Prepare
// leaves them 0 for an int8 node, whose multipliers are per channel): the op data stays the library's size.
inline ShortcutRange OutsideShortcut(const tflite::OpDataConv& d) { return {d.output_multiplier, d.output_shift}; }

struct ChannelParams {
  int32_t output_tensor;  // the node's output tensor (subgraph 0); -1 ends the table
  int32_t channels;
  const int32_t* multiplier;
  const int32_t* shift;
  tflite::OpDataConv op;  // the op data of the node as tinydeploy's own loops run it
};

// The op data the build writes: TFLM's OpDataConv for an int8 per-channel node, its parameters the entry's arrays,
// its kernel tinydeploy's loops, with the channels outside the shortcut as the build found them (ShortcutRange). Read
// only: the kernels never write it.
constexpr tflite::OpDataConv OwnLoopsOpData(int pad_w, int pad_h, int pad_w_offset, int pad_h_offset, int32_t input_zp,
                                            int32_t filter_zp, int32_t output_zp, const int32_t* multiplier,
                                            const int32_t* shift, int32_t activation_min, int32_t activation_max,
                                            int32_t outside_begin, int32_t outside_end) {
  return {{pad_w, pad_h, pad_w_offset, pad_h_offset}, input_zp, filter_zp, output_zp, outside_begin,
          static_cast<int>(outside_end), const_cast<int32_t*>(multiplier), const_cast<int32_t*>(shift),
          activation_min, activation_max, kOwnLoops};
}

// The ShortcutRange of a CONV_2D or (depthwise) DEPTHWISE_CONV_2D node whose op data Prepare has filled: the output
// zero point in its range, and each channel's multiplier, shift and bias within the bounds for the products one
// output sums. The build finds the same (analyze/requant.py's shortcut_range) and writes it in the op data.
ShortcutRange FindShortcutRange(TfLiteContext* context, TfLiteNode* node, const tflite::OpDataConv& data,
                                bool depthwise);

// The generated table (model_params.cpp), ended by an entry whose output_tensor is -1.
extern const ChannelParams kChannelParams[];

// The entry of the node whose output is this tensor, or null.
const ChannelParams* FindChannelParams(const TfLiteNode* node);

// TFLM's op data for a CONV_2D / DEPTHWISE_CONV_2D node that tinydeploy's kernel runs (node->user_data: an
// OpDataConv), as the library's ConvPrepare / DepthwiseConvPrepare fills it, the per-channel parameters pointing at
// the node's flash entry; where the node has none, the library's Prepare itself (parameters in the arena). An entry
// that differs from TFLM's QuantizeMultiplier in any channel fails Prepare (the model and its model_params.cpp do
// not belong together).
TfLiteStatus PrepareConv(TfLiteContext* context, TfLiteNode* node);
TfLiteStatus PrepareDepthwiseConv(TfLiteContext* context, TfLiteNode* node);

// The node's op data in flash, once Prepare has computed `computed`: the entry's where the node's own loops run it
// and the two are equal (*in_flash), else none (the arena keeps a copy); an entry that differs fails Prepare.
TfLiteStatus FlashOpData(TfLiteNode* node, const tflite::OpDataConv& computed, const tflite::OpDataConv** in_flash);

// An int8 ADD node's whole arithmetic as two tables (analyze/add_tables.py): TFLM's result for inputs a and b is
// the activation range's clamp of (table1[a] + table2[b]) >> kAddFractionBits on every pair of int8 values, which
// the build checked on all 65,536 before writing them. Beside them, the op data they were computed from, AddPrepare's
// OpDataAdd for the node, which the node uses (in flash) once Prepare has computed the same.
constexpr int kAddFractionBits = 16;

struct AddTables {
  int32_t output_tensor;  // the node's output tensor (subgraph 0); -1 ends the table
  tflite::OpDataAdd op;
  const int32_t* table1;  // 256 entries each, indexed by the input value + 128
  const int32_t* table2;
};

// OpDataAdd as AddPrepare fills it for an int8 node of equal shapes (no broadcast, no float range).
constexpr tflite::OpDataAdd AddOpData(int32_t input1_offset, int32_t input2_offset, int32_t output_offset,
                                      int left_shift, int32_t input1_multiplier, int input1_shift,
                                      int32_t input2_multiplier, int input2_shift, int32_t output_multiplier,
                                      int output_shift, int32_t activation_min, int32_t activation_max) {
  return {false,          input1_shift,  input2_shift,  activation_min, activation_max,
          input1_multiplier, input2_multiplier, output_multiplier, output_shift, left_shift,
          input1_offset,  input2_offset, output_offset, 0.0f, 0.0f};
}

// The generated list (model_params.cpp), ended by an entry whose output_tensor is -1.
extern const AddTables kAddTables[];

// The node's tables, or null.
const AddTables* FindAddTables(const TfLiteNode* node);

// The node's op data in flash once AddPrepare has computed `computed`: its tables' entry where it equals it in every
// field the int8 path reads (*in_flash), none where the node has no tables; an entry that differs fails Prepare (the
// project belongs to another model).
TfLiteStatus AddOpDataInFlash(TfLiteNode* node, const tflite::OpDataAdd& computed,
                              const tflite::OpDataAdd** in_flash);

}  // namespace kernels
}  // namespace td

#endif  // TINYDEPLOY_TD_KERNEL_PARAMS_H_
