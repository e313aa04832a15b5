"""Edits of a .tflite flatbuffer through the schema's generated object API (the tflite-micro wheel; no TensorFlow):
the model unpacked, changed and packed again with its buffers 16-byte aligned, as the TFLite converter writes them.
repair.py's rewrites, plan/'s folds and plan, and the host reference's segments (tflm_host.py) use it."""

from __future__ import annotations

import numpy as np

from .errors import ModelError


def _schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as S

    return S


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


class Editor:
    """A model unpacked for rewriting (subgraph 0 as `g`), its helpers for new buffers, tensors and ops, and `pack()`."""

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

    def drop_metadata(self, name: str) -> None:
        """The model's metadata without the entries called NAME."""
        self.m.metadata = [m for m in (self.m.metadata or []) if name_of(m) != name]

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


def name_of(t) -> str:
    """A tensor's or a metadata entry's name."""
    n = t.name
    return n.decode("utf-8", "replace") if isinstance(n, bytes) else str(n)  # a corrupt file's may not be UTF-8
