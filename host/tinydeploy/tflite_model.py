"""A .tflite reader that does not import TensorFlow.

It reads the flatbuffer through the generated schema bindings of the ``tflite`` package and copies
everything the later stages need into small plain dataclasses, so that a corrupt file fails here,
in one place, with one clear error, and nothing downstream touches the flatbuffer again.

    model = TFLiteModel.from_file("model.tflite")
    for op in model.operators: print(op.opname, [model.tensors[i].shape for i in op.outputs])
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .errors import ModelError

_FILE_IDENTIFIER = b"TFL3"
_SCHEMA_VERSION = 3


def _enum_names(enum_cls) -> dict[int, str]:
    return {v: k for k, v in vars(enum_cls).items() if not k.startswith("_") and isinstance(v, int)}


def _tflite():
    import tflite  # generated flatbuffers code; imports flatbuffers only

    return tflite


_TYPE_NAMES: dict[int, str] | None = None
_OP_NAMES: dict[int, str] | None = None

# Bytes per element of each tensor type, by type name.
_ITEMSIZE = {
    "FLOAT32": 4, "FLOAT16": 2, "INT32": 4, "UINT8": 1, "INT64": 8, "BOOL": 1, "INT16": 2,
    "INT8": 1, "FLOAT64": 8, "UINT64": 8, "UINT32": 4, "UINT16": 2, "INT4": 0.5, "COMPLEX64": 8,
}


def type_name(code: int) -> str:
    global _TYPE_NAMES
    if _TYPE_NAMES is None:
        _TYPE_NAMES = _enum_names(_tflite().TensorType)
    return _TYPE_NAMES.get(code, f"TYPE_{code}")


def op_name(code: int) -> str:
    global _OP_NAMES
    if _OP_NAMES is None:
        _OP_NAMES = _enum_names(_tflite().BuiltinOperator)
    return _OP_NAMES.get(code, f"BUILTIN_{code}")


@dataclass(frozen=True)
class Quantization:
    scales: tuple[float, ...] = ()
    zero_points: tuple[int, ...] = ()
    quantized_dimension: int = 0

    @property
    def per_channel(self) -> bool:
        return len(self.scales) > 1


@dataclass
class Tensor:
    index: int
    name: str
    shape: tuple[int, ...]
    dtype: str  # schema name: INT8, FLOAT32, ...
    buffer: int
    quantization: Quantization
    data: bytes | None = None  # constant data, None for activations
    is_variable: bool = False

    @property
    def is_constant(self) -> bool:
        return self.data is not None and len(self.data) > 0

    @property
    def num_elements(self) -> int:
        n = 1
        for d in self.shape:
            n *= max(int(d), 1)
        return n

    @property
    def nbytes(self) -> int:
        return int(np.ceil(self.num_elements * _ITEMSIZE.get(self.dtype, 4)))

    def quantize(self, x: np.ndarray) -> np.ndarray:
        """Real values -> this tensor's integer type: round(x / scale + zero_point), clipped to the type's range."""
        dt = {"INT8": np.int8, "INT16": np.int16, "UINT8": np.uint8}.get(self.dtype)
        if dt is None or not self.quantization.scales:
            raise ValueError(f"tensor {self.name!r} ({self.dtype}) is not quantized")
        q = self.quantization
        zp = q.zero_points[0] if q.zero_points else 0
        info = np.iinfo(dt)
        return np.clip(np.round(np.asarray(x, np.float32) / q.scales[0] + zp), info.min, info.max).astype(dt)


@dataclass
class Operator:
    index: int
    opcode: int  # builtin code
    opname: str
    version: int
    custom_code: str | None
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: dict = field(default_factory=dict)


@dataclass
class TFLiteModel:
    """The first subgraph of a .tflite model, read eagerly."""

    data: bytes
    version: int
    description: str
    tensors: list[Tensor]
    operators: list[Operator]
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    num_subgraphs: int
    source: str = "<bytes>"
    metadata: dict = field(default_factory=dict)  # name -> its buffer's bytes (the first entry of a name)

    # ---- construction -------------------------------------------------------------------
    MAX_MODEL_BYTES = 256 << 20  # far beyond any board's flash; a larger file is not read into memory

    @classmethod
    def from_file(cls, path: str | Path) -> "TFLiteModel":
        path = Path(path)
        if not path.exists():
            raise ModelError(f"model file {path} does not exist", "Check the path, or run `tinydeploy compress` to make one")
        if path.is_dir():
            raise ModelError(f"{path} is a directory, not a .tflite file", "Pass the .tflite file itself")
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(8)
            if len(head) == 8 and head[4:8] != _FILE_IDENTIFIER:
                return cls.from_bytes(head, source=str(path))  # the header's error, without reading the rest
            if size > cls.MAX_MODEL_BYTES:
                raise ModelError(f"{path} is {size:,} bytes; no model for a microcontroller is that large (at most "
                                 f"{cls.MAX_MODEL_BYTES:,} are read)", "Check the file: a model must fit in the board's flash")
            data = head + f.read()
        return cls.from_bytes(data, source=str(path))

    @classmethod
    def from_bytes(cls, data: bytes, source: str = "<bytes>") -> "TFLiteModel":
        if len(data) == 0:
            raise ModelError(f"{source} is empty", "Re-export the model with `tinydeploy compress`")
        if len(data) < 8 or data[4:8] != _FILE_IDENTIFIER:
            hint = "Convert it with `tinydeploy compress` (a Keras .h5/.keras model is not a .tflite file)"
            if data[:4] == b"\x89HDF" or data[:8] == b"\x89HDF\r\n\x1a\n":
                hint = "This is a Keras HDF5 file; convert it with `tinydeploy compress`"
            raise ModelError(f"{source} is not a TFLite flatbuffer (no 'TFL3' identifier)", hint)
        (root,) = struct.unpack_from("<I", data, 0)
        if root + 4 > len(data):
            raise ModelError(f"{source} is truncated or corrupt (root table offset {root} is past the end)",
                             "Re-export or re-download the model")
        try:
            model = cls._parse(data, source)
        except ModelError:
            raise
        except Exception as e:  # flatbuffers raises anything from IndexError to UnicodeDecodeError on garbage
            raise ModelError(f"{source} is truncated or corrupt ({type(e).__name__} while reading the flatbuffer)",
                             "Re-export or re-download the model") from None
        model._validate()
        return model

    @classmethod
    def _parse(cls, data: bytes, source: str) -> "TFLiteModel":
        tfl = _tflite()
        m = tfl.Model.GetRootAsModel(data, 0)
        version = m.Version()
        nsub = m.SubgraphsLength()
        if nsub < 1:
            raise ModelError(f"{source} has no subgraph", "Re-export the model")
        opcodes = []
        for i in range(m.OperatorCodesLength()):
            oc = m.OperatorCodes(i)
            code = max(int(oc.BuiltinCode()), int(oc.DeprecatedBuiltinCode()))
            custom = oc.CustomCode()
            opcodes.append((code, int(oc.Version()), custom.decode("utf-8", "replace") if custom else None))
        nbuf = m.BuffersLength()
        buffers: list[bytes | None] = []
        for i in range(nbuf):
            b = m.Buffers(i)
            if b.DataLength() > 0:
                buffers.append(b.DataAsNumpy().tobytes())
            elif hasattr(b, "Size") and b.Size() > 0:  # data stored after the flatbuffer (models > 2 GB)
                off, size = int(b.Offset()), int(b.Size())
                if off + size > len(data):
                    raise ModelError(f"{source} is truncated (buffer {i} points past the end)", "Re-export the model")
                buffers.append(data[off:off + size])
            else:
                buffers.append(None)
        sg = m.Subgraphs(0)
        tensors = []
        for i in range(sg.TensorsLength()):
            t = sg.Tensors(i)
            shape = tuple(int(d) for d in (t.ShapeAsNumpy() if t.ShapeLength() else []))
            q = t.Quantization()
            quant = Quantization()
            if q is not None and q.ScaleLength() > 0:
                quant = Quantization(
                    tuple(float(s) for s in q.ScaleAsNumpy()),
                    tuple(int(z) for z in (q.ZeroPointAsNumpy() if q.ZeroPointLength() else [])),
                    int(q.QuantizedDimension()),
                )
            bidx = int(t.Buffer())
            if not 0 <= bidx < max(nbuf, 1):
                raise ModelError(f"{source} is corrupt (tensor {i} names buffer {bidx} of {nbuf})", "Re-export the model")
            name = t.Name()
            tensors.append(Tensor(
                index=i,
                name=name.decode("utf-8", "replace") if name else f"tensor_{i}",
                shape=shape,
                dtype=type_name(int(t.Type())),
                buffer=bidx,
                quantization=quant,
                data=buffers[bidx] if bidx < len(buffers) else None,
                is_variable=bool(t.IsVariable()),
            ))
        operators = []
        for i in range(sg.OperatorsLength()):
            o = sg.Operators(i)
            idx = int(o.OpcodeIndex())
            if not 0 <= idx < len(opcodes):
                raise ModelError(f"{source} is corrupt (operator {i} has opcode index {idx})", "Re-export the model")
            code, ver, custom = opcodes[idx]
            ins = tuple(int(x) for x in (o.InputsAsNumpy() if o.InputsLength() else []))
            outs = tuple(int(x) for x in (o.OutputsAsNumpy() if o.OutputsLength() else []))
            operators.append(Operator(i, code, custom if custom else op_name(code), ver, custom, ins, outs,
                                      _options(tfl, code, o)))
        metadata = {}
        for i in range(m.MetadataLength()):
            md = m.Metadata(i)
            name, b = md.Name(), int(md.Buffer())
            # a corrupt file's name need not be UTF-8 (and then is nobody's)
            key = name.decode("utf-8", "replace") if name else ""
            if 0 <= b < len(buffers) and buffers[b] is not None:
                metadata.setdefault(key, buffers[b])
        desc = m.Description()
        return cls(
            data=bytes(data),
            version=int(version),
            description=desc.decode("utf-8", "replace") if desc else "",
            tensors=tensors,
            operators=operators,
            inputs=tuple(int(x) for x in (sg.InputsAsNumpy() if sg.InputsLength() else [])),
            outputs=tuple(int(x) for x in (sg.OutputsAsNumpy() if sg.OutputsLength() else [])),
            num_subgraphs=int(nsub),
            source=source,
            metadata=metadata,
        )

    def _validate(self) -> None:
        n = len(self.tensors)
        if self.version != _SCHEMA_VERSION:
            raise ModelError(f"{self.source} has schema version {self.version}, expected {_SCHEMA_VERSION}",
                             "Re-export the model with a current TensorFlow")
        if not self.inputs or not self.outputs:
            raise ModelError(f"{self.source} declares no inputs or outputs", "Re-export the model")
        for op in self.operators:
            for t in op.inputs + op.outputs:
                if t != -1 and not 0 <= t < n:
                    raise ModelError(f"{self.source} is corrupt (operator {op.index} names tensor {t} of {n})",
                                     "Re-export the model")
        for t in self.inputs + self.outputs:
            if not 0 <= t < n:
                raise ModelError(f"{self.source} is corrupt (graph input/output tensor {t} of {n})", "Re-export the model")
        for t in self.tensors:
            if any(d < -1 or d > 1 << 24 for d in t.shape):
                raise ModelError(f"{self.source} is corrupt (tensor {t.index} has shape {t.shape})", "Re-export the model")
            if t.is_constant and t.dtype in _ITEMSIZE and len(t.data) < t.nbytes:
                raise ModelError(f"{self.source} is corrupt (tensor {t.name!r} has {len(t.data)} of {t.nbytes} bytes)",
                                 "Re-export the model")

    # ---- convenience --------------------------------------------------------------------
    @property
    def input_tensors(self) -> list[Tensor]:
        return [self.tensors[i] for i in self.inputs]

    @property
    def output_tensors(self) -> list[Tensor]:
        return [self.tensors[i] for i in self.outputs]

    @property
    def op_names(self) -> list[str]:
        """Distinct operator names, in order of first use."""
        return list(dict.fromkeys(op.opname for op in self.operators))

def _options(tfl, code: int, o) -> dict:
    """The few builtin options the analysis and the build need (strides, padding, depth multiplier, fused
    activation)."""
    name = op_name(code)
    table = o.BuiltinOptions()
    if table is None:
        return {}
    cls = {"CONV_2D": "Conv2DOptions", "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
           "FULLY_CONNECTED": "FullyConnectedOptions", "AVERAGE_POOL_2D": "Pool2DOptions",
           "MAX_POOL_2D": "Pool2DOptions", "SOFTMAX": "SoftmaxOptions", "ADD": "AddOptions"}.get(name)
    if cls is None:
        return {}
    opt = getattr(tfl, cls)()
    opt.Init(table.Bytes, table.Pos)
    out = {}
    for key, getter in (("stride_h", "StrideH"), ("stride_w", "StrideW"), ("padding", "Padding"),
                        ("depth_multiplier", "DepthMultiplier"), ("filter_h", "FilterHeight"),
                        ("filter_w", "FilterWidth"), ("fused_activation", "FusedActivationFunction"),
                        ("dilation_h", "DilationHFactor"), ("dilation_w", "DilationWFactor")):
        if hasattr(opt, getter):
            out[key] = int(getattr(opt, getter)())
    if hasattr(opt, "Beta"):
        out["beta"] = float(opt.Beta())
    return out
