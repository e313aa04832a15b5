"""The scratch buffers the pinned library's CMSIS-NN kernels ask the arena for, which the TFLM host interpreter (its
reference kernels ask for none) cannot show: each node's request as the pinned CMSIS-NN computes it for the
Cortex-M4 (ARM_MATH_DSP, no MVE), from its ``*_get_buffer_size`` functions:

  CONV_2D            arm_convolve_wrapper_s8: a 1x1 filter, stride and dilation 1 (so no padding): none
                     (arm_convolve_1x1_s8_fast); otherwise an im2col of two columns of int16:
                     2 * input channels * filter height * width * 2 bytes (arm_convolve_s8, arm_convolve_1_x_n_s8)
  DEPTHWISE_CONV_2D  arm_depthwise_conv_wrapper_s8: depth multiplier 1, one batch, dilation 1:
                     input channels * filter height * width * 2 bytes (arm_depthwise_conv_s8_opt); otherwise none
  FULLY_CONNECTED    none (arm_fully_connected_s8 with DSP)

TFLM places a node's scratch buffer in the arena's head for that node's lifetime, so the head can grow by at most
the largest request: analyze's arena figure adds that; for a model with an offline plan, lifetimes.head_with_scratch
places each request where TFLM does.
"""

from __future__ import annotations

from ..tflite_model import Operator, TFLiteModel


def node_scratch_bytes(model: TFLiteModel, op: Operator) -> int:
    if op.opname not in ("CONV_2D", "DEPTHWISE_CONV_2D") or len(op.inputs) < 2:
        return 0
    x, w = model.tensors[op.inputs[0]], model.tensors[op.inputs[1]]
    if x.dtype != "INT8" or len(x.shape) != 4 or len(w.shape) != 4:
        return 0
    o = op.options
    k_h, k_w, c_in = w.shape[1], w.shape[2], x.shape[3]
    dilated = o.get("dilation_h", 1) != 1 or o.get("dilation_w", 1) != 1
    if op.opname == "CONV_2D":
        # a 1x1 filter at stride 1 has no padding, SAME or VALID
        pointwise = (k_h, k_w) == (1, 1) and o.get("stride_h", 1) == 1 and o.get("stride_w", 1) == 1 and not dilated
        return 0 if pointwise else 2 * c_in * k_h * k_w * 2
    return c_in * k_h * k_w * 2 if o.get("depth_multiplier", 1) == 1 and x.shape[0] == 1 and not dilated else 0


def scratch_by_node(model: TFLiteModel) -> dict[int, int]:
    """Operator index -> the bytes its CMSIS-NN kernel asks for, where it asks for any."""
    sizes = {op.index: node_scratch_bytes(model, op) for op in model.operators}
    return {k: v for k, v in sizes.items() if v > 0}


def max_scratch_bytes(model: TFLiteModel) -> int:
    """The largest scratch buffer any node asks for, 16-byte aligned as TFLM places it."""
    return max([(node_scratch_bytes(model, op) + 15) // 16 * 16 for op in model.operators] or [0])
