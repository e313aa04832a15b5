"""Exact rewrites of a .tflite model around the pinned TFLM's known gaps (``tflm_runtime.json``), on the
flatbuffer itself (the schema's generated object API from the tflite-micro wheel; no TensorFlow).

- ``fully-connected-as-conv``: this TFLM applies only the first scale of a per-channel FULLY_CONNECTED. The
  layer y = act(W x + b), W of shape [C, K] with a scale per output channel, is the 1x1 convolution of x
  seen as an [N, 1, 1, K] image with the same int8 weights seen as [C, 1, 1, K], the same bias and the same
  per-channel scales, which this TFLM computes per channel: RESHAPE -> CONV_2D -> RESHAPE. Every integer
  operation is the same, so every output bit is (the tests check it on the host interpreter and on the
  emulated device).
- ``zero-bias``: this TFLM's CONV_2D and DEPTHWISE_CONV_2D Prepare release a missing bias tensor as if it had
  been allocated, and AllocateTensors() fails; an explicit int32 bias of zeros (scale input x weight, per
  channel) adds nothing to any accumulator.

Buffers are written 16-byte aligned, as the TFLite converter writes them.

This is the step before ``analyze``: ``repair(model)`` returns the model as deployed and the typed list of what was
rewritten; everything after it (analyze, generate, emulate) works on ``Repaired.model``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .tflite_edit import Editor, name_of
from .tflite_model import TFLiteModel


@dataclass(frozen=True)
class Repair:
    gap: str  # known gap id (tflm_runtime.json)
    op_index: int
    op: str
    what: str  # one line for the user

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _fc_as_conv(ed: Editor, op) -> list:
    S, g = ed.S, ed.g
    x, w = int(op.inputs[0]), int(op.inputs[1])
    b = int(op.inputs[2]) if len(op.inputs) > 2 else -1
    y = int(op.outputs[0])
    C, K = (int(d) for d in g.tensors[w].shape)
    N = int(np.prod(g.tensors[x].shape)) // K
    xt, yt, wt = g.tensors[x], g.tensors[y], g.tensors[w]
    base = name_of(yt)
    x4 = ed.tensor(f"{base}/td_as_image", [N, 1, 1, K], xt.type, 0, ed.quant(xt.quantization.scale, xt.quantization.zeroPoint))
    w4 = ed.tensor(f"{name_of(wt)}/td_1x1", [C, 1, 1, K], wt.type, wt.buffer,
                   ed.quant(wt.quantization.scale, wt.quantization.zeroPoint, 0))
    if b < 0:
        b = ed.zero_bias(f"{base}/td_zero_bias", x, w, C)
    y4 = ed.tensor(f"{base}/td_conv_out", [N, 1, 1, C], yt.type, 0, ed.quant(yt.quantization.scale, yt.quantization.zeroPoint))
    reshape, conv = ed.opcode("RESHAPE", 1), ed.opcode("CONV_2D", 3)
    r_in = S.ReshapeOptionsT()
    r_in.newShape = np.array([N, 1, 1, K], np.int32)
    c_opt = S.Conv2DOptionsT()
    c_opt.padding, c_opt.strideW, c_opt.strideH = S.Padding.VALID, 1, 1
    c_opt.dilationWFactor, c_opt.dilationHFactor = 1, 1
    c_opt.fusedActivationFunction = op.builtinOptions.fusedActivationFunction if op.builtinOptions else 0
    r_out = S.ReshapeOptionsT()
    r_out.newShape = np.asarray(yt.shape, np.int32)
    return [
        ed.op(reshape, [x, ed.const_shape(f"{base}/td_shape_in", [N, 1, 1, K])], [x4], S.BuiltinOptions.ReshapeOptions, r_in),
        ed.op(conv, [x4, w4, b], [y4], S.BuiltinOptions.Conv2DOptions, c_opt),
        ed.op(reshape, [y4, ed.const_shape(f"{base}/td_shape_out", yt.shape)], [y], S.BuiltinOptions.ReshapeOptions, r_out),
    ]


def _with_zero_bias(ed: Editor, op) -> list:
    x, w = int(op.inputs[0]), int(op.inputs[1])
    wt = ed.g.tensors[w]
    # CONV_2D weights are [C, kh, kw, in], DEPTHWISE_CONV_2D weights [1, kh, kw, C]
    channels = int(wt.shape[0] if ed.S.BuiltinOperator.CONV_2D == _builtin(ed, op) else wt.shape[-1])
    b = ed.zero_bias(f"{name_of(ed.g.tensors[int(op.outputs[0])])}/td_zero_bias", x, w, channels)
    op.inputs = np.asarray([x, w, b], np.int32)
    return [op]


def _builtin(ed: Editor, op) -> int:
    oc = ed.m.operatorCodes[op.opcodeIndex]
    return max(oc.builtinCode, oc.deprecatedBuiltinCode)


REPAIRS = {"fully-connected-as-conv": _fc_as_conv, "zero-bias": _with_zero_bias}


def apply(data: bytes, repairs: list[Repair], kinds: dict[str, str]) -> bytes:
    """The model with each listed op rewritten; ``kinds`` maps a gap id to its repair (from the runtime's data)."""
    if not repairs:
        return data
    ed = Editor(data)
    by_index = {r.op_index: REPAIRS[kinds[r.gap]] for r in repairs}
    ops = []
    for i, op in enumerate(ed.g.operators):
        ops += by_index[i](ed, op) if i in by_index else [op]
    ed.g.operators = ops
    return ed.pack()


@dataclass(frozen=True)
class Repaired:
    """A model and the model as the pinned runtime will run it (the same outputs, bit for bit)."""

    original: TFLiteModel
    model: TFLiteModel  # the original itself when nothing needed a rewrite
    repairs: tuple[Repair, ...]

    def to_dict(self) -> list[dict]:
        return [r.to_dict() for r in self.repairs]


def repair(model: TFLiteModel, runtime=None) -> Repaired:
    """Rewrite every op that hits a repairable known gap of ``runtime`` (default: the pinned one)."""
    from .analyze import gap_hits
    from .analyze.runtime import pinned

    runtime = runtime or pinned()
    repairs = tuple(Repair(gap["id"], op.index, op.opname, f"{op.opname} (op {op.index}): {gap['what']}; build: "
                                                              f"{gap['repair_what']}")
                    for gap, op in gap_hits(model, runtime) if gap.get("repair"))
    if not repairs:
        return Repaired(model, model, ())
    kinds = {g["id"]: g["repair"] for g in runtime.known_gaps if g.get("repair")}
    return Repaired(model, TFLiteModel.from_bytes(apply(model.data, list(repairs), kinds), source=model.source), repairs)
