"""Per-channel requantization parameters and a node's whole op data, computed at build time as TFLM's Prepare
computes them at start-up.

A CONV_2D or DEPTHWISE_CONV_2D node of an int8 model requantizes each output channel by the real multiplier
input_scale * filter_scale[c] / output_scale, which TFLM turns into a 32-bit fixed-point multiplier and a shift
(``QuantizeMultiplier`` in tensorflow/lite/kernels/internal/quantization_util.cc, through
``PopulateConvolutionQuantizationParams``) and keeps in the tensor arena: 8 bytes a channel, RAM. Every input of that
computation is a constant of the model, so `tinydeploy build` computes the same integers here and writes them as const
arrays (``model_params.cpp``, flash) that tinydeploy's kernels point their op data at; the firmware checks each one
against TFLM's own function before it uses it (firmware/kernels/td_kernel_params.cpp).

The rest of the node's op data (TFLM's ``OpDataConv``: padding, zero points, activation range) is constant too: the
build writes it beside the parameters, and a node that tinydeploy's own loops run points its op data at that flash
copy after Prepare has computed the same struct and found it equal, so such a node keeps nothing in the arena.

Part of analyze (what a model costs with the kernels a build registers), rendered by generate (model_params.cpp).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from ..tflite_model import Operator, TFLiteModel

KERNELS = ("tinydeploy", "cmsis-nn")  # whose kernels the resolver registers where tinydeploy has its own
# The default: tinydeploy's kernels (bit-exact with TFLM's reference kernels, and no op of the benchmark models or the
# study's families slower than with the library's: bench/kernels.py --study); cmsis-nn is the pinned library's alone.
DEFAULT_KERNELS = "tinydeploy"
OPS = {"CONV_2D": 0, "DEPTHWISE_CONV_2D": 3}  # op -> the filter's output-channel (quantized) dimension
# The schema's Padding (SAME 0, VALID 1) and ActivationFunctionType (RELU 1, RELU_N1_TO_1 2, RELU6 3)
SAME = 0
RELU, RELU_N1_TO_1, RELU6 = 1, 2, 3
# What an OpDataConv costs in the arena's tail: 56 B on the 32-bit device, each persistent buffer 16-byte aligned
OP_DATA_CONV_BYTES = 64


def _round(x: float) -> int:
    """TfLiteRound: std::round, half away from zero."""
    return int(math.copysign(math.floor(abs(x) + 0.5), x))


def activation_range(activation: int, scale: float, zero_point: int) -> tuple[int, int]:
    """TFLM's CalculateActivationRangeQuantized for an int8 output: ``x / scale`` in float32 as the device divides it,
    rounded half away from zero, plus the zero point, within [-128, 127]."""
    def q(x: float) -> int:
        return zero_point + _round(float(np.float32(x) / np.float32(scale)))

    lo, hi = -128, 127
    if activation in (RELU, RELU6):
        lo = max(lo, q(0.0))
    if activation == RELU6:
        hi = min(hi, q(6.0))
    if activation == RELU_N1_TO_1:
        lo, hi = max(lo, q(-1.0)), min(hi, q(1.0))
    return lo, hi


def padding(same: bool, stride: int, dilation: int, in_size: int, filter_size: int) -> tuple[int, int]:
    """TFLM's ComputePaddingHeightWidth along one axis: (padding, offset)."""
    effective = (filter_size - 1) * dilation + 1
    out = (in_size + stride - 1) // stride if same else (in_size + stride - effective) // stride
    total = max((out - 1) * stride + effective - in_size, 0)
    return total // 2, total % 2


# td_kernel_util.h's bounds of util::MakeRequant's 32-bit shortcut (kShortcutBound, kShortcutRight,
# kShortcutMaxProducts)
SHORTCUT_BOUND = 1 << 29
SHORTCUT_RIGHT = 23
SHORTCUT_MAX_PRODUCTS = 1 << 14


def shortcut_range(multipliers, shifts, biases, products: int, output_zp: int) -> tuple[int, int]:
    """td_kernel_params.cpp's FindShortcutRange: the channels whose requantization may fall outside the kernels'
    32-bit shortcut, from the first to one past the last, ``(begin, end)``; every other channel takes it whatever the
    int8 inputs and weights: its multiplier >= 0, its shift in [-23, -1] (a right shift of 1 to 23) and |bias| + 255 *
    128 * products < 2^29. All of them where the output zero point is outside [-128, 128] or the products are too
    many; ``(0, 0)`` where none."""
    channels = len(multipliers)
    if not -128 <= output_zp <= 128 or not 0 < products <= SHORTCUT_MAX_PRODUCTS:
        return 0, channels
    room = SHORTCUT_BOUND - 255 * 128 * products
    outside = [c for c, (m, s, b) in enumerate(zip(multipliers, shifts, biases, strict=True))
               if not (m >= 0 and 1 <= -s <= SHORTCUT_RIGHT and abs(int(b)) < room)]
    return (outside[0], outside[-1] + 1) if outside else (0, 0)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """TFLM's QuantizeMultiplier (the pinned library's, without TFLITE_SINGLE_ROUNDING): ``real`` as
    multiplier * 2^(shift - 31) with a multiplier in [2^30, 2^31), rounded half away from zero."""
    if real == 0.0:
        return 0, 0
    q, shift = math.frexp(real)  # real = q * 2^shift, 0.5 <= |q| < 1: std::frexp
    scaled = q * (1 << 31)  # exact: a power-of-two scaling
    q_fixed = _round(scaled)
    if q_fixed == 1 << 31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    return q_fixed, shift


@dataclass(frozen=True)
class NodeParams:
    """One node's per-channel multipliers and shifts, keyed by its output tensor (how the firmware finds it)."""

    operator: int
    opname: str
    output_tensor: int
    multipliers: tuple[int, ...]
    shifts: tuple[int, ...]
    # the rest of TFLM's OpDataConv, as its Prepare fills it for an int8 node
    padding: tuple[int, int, int, int]  # width, height, width_offset, height_offset (TfLitePaddingValues' order)
    zero_points: tuple[int, int, int]  # input, filter, output
    activation: tuple[int, int]  # output_activation_min, output_activation_max
    outside: tuple[int, int] = (0, 0)  # the channels that may fall outside the kernels' shortcut (shortcut_range)

    @property
    def channels(self) -> int:
        return len(self.multipliers)


def _node_params(model: TFLiteModel, op: Operator) -> NodeParams | None:
    qdim = OPS.get(op.opname)
    if qdim is None or len(op.inputs) < 2 or len(op.outputs) != 1:
        return None
    x, w, y = model.tensors[op.inputs[0]], model.tensors[op.inputs[1]], model.tensors[op.outputs[0]]
    if (x.dtype, w.dtype, y.dtype) != ("INT8", "INT8", "INT8") or len(w.shape) != 4:
        return None
    channels = w.shape[qdim]
    fs = w.quantization.scales
    if not x.quantization.scales or not y.quantization.scales or not fs:
        return None
    if len(fs) > 1 and (len(fs) != channels or w.quantization.quantized_dimension != qdim):
        return None  # a layout TFLM's Prepare refuses: the library reports it
    if qdim == 3 and len(w.quantization.zero_points) != len(fs):
        return None
    x_scale, y_scale = x.quantization.scales[0], y.quantization.scales[0]  # doubles holding float32 values, as TFLM's
    pairs = [quantize_multiplier(x_scale * fs[c if len(fs) > 1 else 0] / y_scale) for c in range(channels)]
    o = op.options
    same = o.get("padding", SAME) == SAME
    pad_h, off_h = padding(same, o.get("stride_h", 1), o.get("dilation_h", 1), x.shape[1], w.shape[1])
    pad_w, off_w = padding(same, o.get("stride_w", 1), o.get("dilation_w", 1), x.shape[2], w.shape[2])
    zero = [t.quantization.zero_points[0] if t.quantization.zero_points else 0 for t in (x, w, y)]
    multipliers, shifts = tuple(m for m, _ in pairs), tuple(s for _, s in pairs)
    b = model.tensors[op.inputs[2]] if len(op.inputs) > 2 and op.inputs[2] >= 0 else None
    biases = np.frombuffer(b.data, "<i4") if b is not None and b.dtype == "INT32" and b.is_constant else None
    products = w.shape[1] * w.shape[2] * (1 if qdim == 3 else w.shape[3])
    outside = (shortcut_range(multipliers, shifts, biases if biases is not None else [0] * channels, products, zero[2])
               if b is None or (biases is not None and len(biases) == channels) else (0, channels))
    return NodeParams(op.index, op.opname, op.outputs[0], multipliers, shifts, (pad_w, pad_h, off_w, off_h),
                      tuple(zero), activation_range(o.get("fused_activation", 0), y_scale, zero[2]), outside)


def channel_params(model: TFLiteModel) -> list[NodeParams]:
    """Every int8 CONV_2D / DEPTHWISE_CONV_2D node's parameters, in operator order."""
    return [p for p in (_node_params(model, op) for op in model.operators) if p is not None]


def params_bytes(params: list[NodeParams]) -> int:
    """RAM TFLM would keep for these: two int32 arrays a node, each allocation 16-byte aligned in the arena's tail."""
    return sum(2 * ((4 * p.channels + 15) // 16 * 16) for p in params)


# The C constants own_loops_take restates: td_kernel_matmul.h's kMatMulMaxK; td_kernel_depthwise.cpp's kMaxTaps,
# kBufferValues (the planes' row buffer) and kMinOutputPixels as a default build compiles them
MATMUL_MAX_K = 1024
DW_MAX_TAPS = 64
DW_BUFFER_VALUES = 1792
DW_MIN_OUTPUT_PIXELS = 16


def _one_band(out_h: int, out_w: int, k_h: int, k_w: int, stride_h: int, stride_w: int, dil_h: int,
              dil_w: int) -> bool:
    """Whether td_kernel_depthwise.cpp's planes hold a group's whole map at once (one band: SpanRows(out_h) rows of
    Pitch values, four planes, in kBufferValues)."""
    span = (out_h - 1) * stride_h + (k_h - 1) * dil_h + 1
    width = (out_w - 1) * stride_w + (k_w - 1) * dil_w + 1
    return 4 * span * ((width + 4) & ~1) <= DW_BUFFER_VALUES


def own_loops_take(model: TFLiteModel, op: Operator) -> bool:
    """Whether tinydeploy's own loops (not the CMSIS-NN function) run an int8 CONV_2D / DEPTHWISE_CONV_2D node with its
    parameters in flash: td_kernel_conv.cpp's and td_kernel_depthwise.cpp's OwnLoopsTake as a default build compiles
    them. Such a node's op data is in flash too, so the arena estimate leaves it out; a node predicted here that the
    firmware hands to the CMSIS-NN function costs the estimate 64 B, within its margin."""
    if op.opname not in ("CONV_2D", "DEPTHWISE_CONV_2D") or len(op.inputs) < 2 or len(op.outputs) != 1:
        return False
    x, w, y = (model.tensors[i] for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    if {x.dtype, w.dtype, y.dtype} != {"INT8"} or not len(x.shape) == len(w.shape) == len(y.shape) == 4:
        return False
    _, k_h, k_w, c = w.shape
    if op.opname == "CONV_2D":
        return c == x.shape[3] and k_h * k_w * c <= MATMUL_MAX_K
    o = op.options
    dil_h, dil_w, stride_w = o.get("dilation_h", 1), o.get("dilation_w", 1), o.get("stride_w", 1)
    stride_h = o.get("stride_h", 1)
    pixels = y.shape[1] * y.shape[2]
    # one output row's input rows fit the planes' buffer
    row_fits = _one_band(1, y.shape[2], k_h, k_w, stride_h, stride_w, dil_h, dil_w)
    planes = row_fits and pixels >= DW_MIN_OUTPUT_PIXELS
    # the window loops (any size of map, in tiles), whose groups outside their form the planes run
    window = (row_fits and x.shape[0] == 1 and (k_h, k_w, dil_h, dil_w) == (3, 3, 1, 1)
              and stride_h == stride_w in (1, 2) and pixels >= 2)
    one_pixel = pixels == 1 and row_fits  # Taps, the planes for the channels outside its form
    return o.get("depth_multiplier", 1) == 1 and c == x.shape[3] == y.shape[3] and k_h * k_w <= DW_MAX_TAPS and (
        planes or window or one_pixel)


def depthwise_in_place(model: TFLiteModel, op: Operator) -> bool:
    """Whether tinydeploy's depthwise loops may write a DEPTHWISE_CONV_2D node's output over its input (the output at
    the input's offset): its own loops run it (own_loops_take), one batch, and every group of four channels reads all
    its input before it writes an output: a single output pixel (Taps: a group's outputs buffered, then written; the
    planes for the channels outside its form, whose one output row is the map), or the planes holding the whole map
    in one band, which also covers the window loops where the map is one tile (each group's tile copied, then
    computed; EvalOurs has the planes run a node in place that would take more tiles) and Taps on a small map.
    An output pixel's channel c lands on the bytes of input channel c (the channels are the last axis of both and
    their count is the same), which only that channel's group reads, already copied. EvalOurs refuses an aliased node
    that would run in more than one band."""
    if op.opname != "DEPTHWISE_CONV_2D" or not own_loops_take(model, op):
        return False
    x, w, y = (model.tensors[i] for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    if x.shape[0] != 1:
        return False
    o = op.options
    _, k_h, k_w, _ = w.shape
    _, out_h, out_w, _ = y.shape
    if out_h == out_w == 1:
        return True
    sh, sw, dh, dw = o.get("stride_h", 1), o.get("stride_w", 1), o.get("dilation_h", 1), o.get("dilation_w", 1)
    return _one_band(out_h, out_w, k_h, k_w, sh, sw, dh, dw)


def cmsis_wrapper_takes_3x3(model: TFLiteModel, op: Operator) -> bool:
    """Whether CMSIS-NN's arm_depthwise_conv_wrapper_s8 runs a DEPTHWISE_CONV_2D node by arm_depthwise_conv_3x3_s8
    (td_kernel_cmsis.cpp's WrapperTakes3x3): multiplier 1, batch 1, no dilation, a 3x3 filter, padding of at most 1."""
    x, w = model.tensors[op.inputs[0]], model.tensors[op.inputs[1]]
    o = op.options
    same = o.get("padding", SAME) == SAME
    if (o.get("depth_multiplier", 1), x.shape[0], o.get("dilation_h", 1), o.get("dilation_w", 1),
            w.shape[1], w.shape[2]) != (1, 1, 1, 1, 3, 3):
        return False
    pad_h, _ = padding(same, o.get("stride_h", 1), 1, x.shape[1], 3)
    pad_w, _ = padding(same, o.get("stride_w", 1), 1, x.shape[2], 3)
    return pad_h <= 1 and pad_w <= 1


def flash_params(model: TFLiteModel, kernels: str) -> list[NodeParams]:
    """The nodes whose per-channel parameters model_params.cpp holds: every int8 CONV_2D / DEPTHWISE_CONV_2D node with
    tinydeploy's kernels (they take each such node, by their own loops or the library's CMSIS-NN function), none
    with the library's."""
    return channel_params(model) if kernels == "tinydeploy" else []


def conv_resident_bytes(model: TFLiteModel, kernels: str) -> int:
    """The arena bytes the library's kernels would keep for the CONV_2D / DEPTHWISE_CONV_2D data a build with
    ``kernels`` has in flash: the per-channel parameters, and the op data of the nodes tinydeploy's own loops run."""
    params = flash_params(model, kernels)
    own = sum(own_loops_take(model, model.operators[p.operator]) for p in params)
    return params_bytes(params) + own * OP_DATA_CONV_BYTES
