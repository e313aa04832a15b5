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

from .errors import ModelError
from .tflite_model import TFLiteModel


def _schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as S

    return S


@dataclass(frozen=True)
class Repair:
    gap: str  # known gap id (tflm_runtime.json)
    op_index: int
    op: str
    what: str  # one line for the user

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def _aligned_buffer_type(S):
    class AlignedBuffer(S.BufferT):
        """A buffer whose data starts on a 16-byte boundary of the file."""

        def Pack(self, builder):
            data = None
            if self.data is not None and len(self.data):
                payload = np.ascontiguousarray(self.data, dtype=np.uint8).tobytes()
                builder.StartVector(1, len(payload), 16)
                builder.head -= len(payload)
                builder.Bytes[builder.head:builder.head + len(payload)] = payload
                builder.vectorNumElems = len(payload)
                data = builder.EndVector()
            S.BufferStart(builder)
            if data is not None:
                S.BufferAddData(builder, data)
            S.BufferAddOffset(builder, self.offset)
            S.BufferAddSize(builder, self.size)
            return S.BufferEnd(builder)

    return AlignedBuffer


class _Editor:
    def __init__(self, data: bytes):
        self.S = _schema()
        try:
            self.m = self.S.ModelT.InitFromPackedBuf(bytearray(data), 0)
        except Exception as e:  # the reader accepted the file, so this is unexpected
            raise ModelError(f"the model's flatbuffer cannot be unpacked for rewriting ({e})",
                             "Re-convert the model with the TFLite converter") from None
        self.g = self.m.subgraphs[0]

    def opcode(self, name: str, version: int) -> int:
        code = getattr(self.S.BuiltinOperator, name)
        for i, oc in enumerate(self.m.operatorCodes):
            if max(oc.builtinCode, oc.deprecatedBuiltinCode) == code:
                return i
        oc = self.S.OperatorCodeT()
        oc.builtinCode, oc.deprecatedBuiltinCode, oc.version = code, min(code, 127), version
        self.m.operatorCodes.append(oc)
        return len(self.m.operatorCodes) - 1

    def buffer(self, raw: bytes) -> int:
        b = self.S.BufferT()
        b.data = np.frombuffer(raw, dtype=np.uint8).copy()
        self.m.buffers.append(b)
        return len(self.m.buffers) - 1

    def tensor(self, name: str, shape, type_: int, buffer: int, quant=None) -> int:
        t = self.S.TensorT()
        t.name, t.shape, t.type, t.buffer = name, np.asarray(shape, dtype=np.int32), type_, buffer
        t.quantization = quant
        self.g.tensors.append(t)
        return len(self.g.tensors) - 1

    def quant(self, scales, zero_points, dim: int = 0):
        q = self.S.QuantizationParametersT()
        q.scale = np.asarray(scales, dtype=np.float32)
        q.zeroPoint = np.asarray(zero_points, dtype=np.int64)
        q.quantizedDimension = dim
        return q

    def const_shape(self, name: str, shape) -> int:
        arr = np.asarray(shape, dtype=np.int32)
        return self.tensor(name, [len(arr)], self.S.TensorType.INT32, self.buffer(arr.tobytes()))

    def zero_bias(self, name: str, input_t: int, weights_t: int, channels: int) -> int:
        in_scale = float(self.g.tensors[input_t].quantization.scale[0])
        w_scale = np.asarray(self.g.tensors[weights_t].quantization.scale, dtype=np.float64)
        scales = np.broadcast_to(w_scale, (channels,)) * in_scale
        return self.tensor(name, [channels], self.S.TensorType.INT32,
                           self.buffer(np.zeros(channels, np.int32).tobytes()), self.quant(scales, np.zeros(channels)))

    def op(self, opcode: int, inputs, outputs, options_type: int, options):
        o = self.S.OperatorT()
        o.opcodeIndex, o.inputs, o.outputs = opcode, np.asarray(inputs, np.int32), np.asarray(outputs, np.int32)
        o.builtinOptionsType, o.builtinOptions = options_type, options
        return o

    def pack(self) -> bytes:
        import flatbuffers

        aligned = _aligned_buffer_type(self.S)
        for i, b in enumerate(self.m.buffers):
            nb = aligned()
            nb.data, nb.offset, nb.size = b.data, b.offset, b.size
            self.m.buffers[i] = nb
        builder = flatbuffers.Builder(1 << 16)
        builder.Finish(self.m.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())


def _name(t) -> str:
    n = t.name
    return n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n)  # a corrupt file's may not be UTF-8


def _fc_as_conv(ed: _Editor, op) -> list:
    S, g = ed.S, ed.g
    x, w = int(op.inputs[0]), int(op.inputs[1])
    b = int(op.inputs[2]) if len(op.inputs) > 2 else -1
    y = int(op.outputs[0])
    C, K = (int(d) for d in g.tensors[w].shape)
    N = int(np.prod(g.tensors[x].shape)) // K
    xt, yt, wt = g.tensors[x], g.tensors[y], g.tensors[w]
    base = _name(yt)
    x4 = ed.tensor(f"{base}/td_as_image", [N, 1, 1, K], xt.type, 0, ed.quant(xt.quantization.scale, xt.quantization.zeroPoint))
    w4 = ed.tensor(f"{_name(wt)}/td_1x1", [C, 1, 1, K], wt.type, wt.buffer,
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


def _with_zero_bias(ed: _Editor, op) -> list:
    x, w = int(op.inputs[0]), int(op.inputs[1])
    wt = ed.g.tensors[w]
    # CONV_2D weights are [C, kh, kw, in], DEPTHWISE_CONV_2D weights [1, kh, kw, C]
    channels = int(wt.shape[0] if ed.S.BuiltinOperator.CONV_2D == _builtin(ed, op) else wt.shape[-1])
    b = ed.zero_bias(f"{_name(ed.g.tensors[int(op.outputs[0])])}/td_zero_bias", x, w, channels)
    op.inputs = np.asarray([x, w, b], np.int32)
    return [op]


def _builtin(ed: _Editor, op) -> int:
    oc = ed.m.operatorCodes[op.opcodeIndex]
    return max(oc.builtinCode, oc.deprecatedBuiltinCode)


REPAIRS = {"fully-connected-as-conv": _fc_as_conv, "zero-bias": _with_zero_bias}


def apply(data: bytes, repairs: list[Repair], kinds: dict[str, str]) -> bytes:
    """The model with each listed op rewritten; ``kinds`` maps a gap id to its repair (from the runtime's data)."""
    if not repairs:
        return data
    ed = _Editor(data)
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
