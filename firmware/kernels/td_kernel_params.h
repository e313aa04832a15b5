// Per-channel requantization parameters in flash: the multipliers and shifts that TFLM's Prepare of a CONV_2D or
// DEPTHWISE_CONV_2D node computes from the model's constant scales and keeps in the arena (8 bytes a channel), which
// `tinydeploy build` computes instead and writes as const arrays (the generated model_params.cpp), one entry per
// node, found by the node's output tensor. A node tinydeploy's kernel runs points its op data at its entry, after
// checking every channel against TFLM's own QuantizeMultiplier; a node without an entry (or run by the library's
// kernel) gets them in the arena as before.
#ifndef TINYDEPLOY_TD_KERNEL_PARAMS_H_
#define TINYDEPLOY_TD_KERNEL_PARAMS_H_

#include <stdint.h>

#include "tensorflow/lite/c/common.h"

namespace td {
namespace kernels {

struct ChannelParams {
  int32_t output_tensor;  // the node's output tensor (subgraph 0); -1 ends the table
  int32_t channels;
  const int32_t* multiplier;
  const int32_t* shift;
};

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

}  // namespace kernels
}  // namespace td

#endif  // TINYDEPLOY_TD_KERNEL_PARAMS_H_
