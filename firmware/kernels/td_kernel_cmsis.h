// The pinned library's CMSIS-NN functions, called for the int8 CONV_2D / DEPTHWISE_CONV_2D nodes whose parameters
// are in flash (td_kernel_params.h) but whose shapes tinydeploy's own loops do not take (or run slower): the same
// arm_convolve_wrapper_s8 / arm_depthwise_conv_wrapper_s8 call, with the same arguments and scratch buffer, that the
// library's CMSIS-NN kernel makes, on tinydeploy's op data, so that such a node keeps nothing in the arena beyond
// what the library's kernel keeps without its multipliers and shifts.
#ifndef TINYDEPLOY_TD_KERNEL_CMSIS_H_
#define TINYDEPLOY_TD_KERNEL_CMSIS_H_

#include <stdint.h>

#include "tensorflow/lite/c/common.h"
#include "td_kernel_params.h"
#include "tensorflow/lite/micro/kernels/conv.h"

namespace td {
namespace kernels {

namespace cmsis {

// Prepare (after the op data is filled): the scratch buffer the function asks for, its index into *buffer.
TfLiteStatus PrepareConv(TfLiteContext* context, TfLiteNode* node, const tflite::OpDataConv& data, int* buffer);
TfLiteStatus PrepareDepthwiseConv(TfLiteContext* context, TfLiteNode* node, const tflite::OpDataConv& data,
                                  int* buffer);
TfLiteStatus EvalConv(TfLiteContext* context, TfLiteNode* node, const tflite::OpDataConv& data, int buffer);
TfLiteStatus EvalDepthwiseConv(TfLiteContext* context, TfLiteNode* node, const tflite::OpDataConv& data,
                               int buffer);

}  // namespace cmsis

// The registration of CONV_2D and DEPTHWISE_CONV_2D (td_kernel_conv.cpp, td_kernel_depthwise.cpp) takes a node its
// own loops take (kOwnLoopsTake), and every node whose parameters are in flash (the build writes them for every
// int8 node), which the CMSIS-NN function runs where its loops do not; the library's kernel runs the rest.
template <bool (*kOwnLoopsTake)(TfLiteContext*, TfLiteNode*)>
bool TakesConvNode(TfLiteContext* context, TfLiteNode* node) {
  return FindChannelParams(node) != nullptr || kOwnLoopsTake(context, node);
}

// Prepare for such a node: the op data (kPrepareParams: PrepareConv or PrepareDepthwiseConv), then who computes it
// (the own loops: with the channels outside the requantization's shortcut, ShortcutRange).
template <bool (*kOwnLoopsTake)(TfLiteContext*, TfLiteNode*),
          TfLiteStatus (*kPrepareParams)(TfLiteContext*, TfLiteNode*),
          TfLiteStatus (*kPrepareCmsis)(TfLiteContext*, TfLiteNode*, const tflite::OpDataConv&, int*), bool kDepthwise>
TfLiteStatus PrepareConvNode(TfLiteContext* context, TfLiteNode* node) {
  TF_LITE_ENSURE_STATUS(kPrepareParams(context, node));
  auto* d = static_cast<tflite::OpDataConv*>(node->user_data);
  if (kOwnLoopsTake(context, node)) {
    const ShortcutRange r = FindShortcutRange(context, node, *d, kDepthwise);
    d->output_multiplier = r.begin;
    d->output_shift = r.end;
    d->filter_buffer_index = kOwnLoops;
    return kTfLiteOk;
  }
  return kPrepareCmsis(context, node, *d, &d->filter_buffer_index);
}

}  // namespace kernels
}  // namespace td

#endif  // TINYDEPLOY_TD_KERNEL_CMSIS_H_
