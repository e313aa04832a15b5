"""Golden vectors: a few real inputs and the outputs of the real TFLM interpreter on the host for them."""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DatasetError
from ..tflite_model import TFLiteModel

# Host TFLM (2026) and the device's TFLM (2023 sync) may round int8 SOFTMAX differently by one step
# (measured: desktop TFLite vs TFLM differ by +-1 on softmax outputs); other kernels agreed exactly.
DEFAULT_TOLERANCE = 1


@dataclass
class Golden:
    source: str  # "test-set" | "random"
    inputs: np.ndarray  # (N, input_bytes) int8
    outputs: np.ndarray  # (N, output_bytes) int8
    labels: np.ndarray | None
    tolerance: int = DEFAULT_TOLERANCE

    @property
    def count(self) -> int:
        return int(self.inputs.shape[0])


def samples_path_for(model_path: str | Path) -> Path:
    """Where `tinydeploy compress` leaves test samples for a model: MODEL.samples.npz beside it."""
    p = Path(model_path)
    return p.with_name(p.stem + ".samples.npz")


def quantize_input(x: np.ndarray, tensor) -> np.ndarray:
    """Samples as the model's input type: int8 as they are, uint8 images scaled to [0, 1], then quantized."""
    if x.dtype == np.int8:
        return x
    if np.issubdtype(x.dtype, np.integer):  # uint8 images: to [0, 1] first, as training normalized them
        x = x.astype(np.float32) / 255.0
    if not tensor.quantization.scales:
        raise DatasetError("the model's input has no quantization scale", "Use a full-integer int8 model")
    return tensor.quantize(x)


def load_samples(path: str | Path, model: TFLiteModel, count: int) -> tuple[np.ndarray, np.ndarray | None]:
    path = Path(path)
    try:
        with np.load(path) as z:
            if "x" not in z:
                raise DatasetError(f"{path} has no array 'x'", "Samples files hold x (inputs) and optionally y (labels)")
            x, y = z["x"][:count], (z["y"][:count] if "y" in z else None)
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
        raise DatasetError(f"cannot read samples file {path} ({e})", "Pass an .npz with arrays x and y") from None
    inp = model.input_tensors[0]
    xq = quantize_input(x, inp)
    if xq[0].size != inp.num_elements:
        raise DatasetError(f"samples in {path} have {xq[0].size} values per input, the model takes {inp.num_elements}",
                           "Use samples made for this model")
    return xq.reshape(len(xq), -1), y


def make_golden(model: TFLiteModel, *, samples: str | Path | None = None, count: int = 3) -> Golden:
    from ..tflm_host import reference_outputs

    inp = model.input_tensors[0]
    if samples is not None and Path(samples).exists():
        x, y = load_samples(samples, model, count)
        source = "test-set"
    else:
        # No data: deterministic pseudo-random inputs, seeded by the model's bytes.
        seed = int.from_bytes(hashlib.sha256(model.data).digest()[:4], "little")
        x = np.random.default_rng(seed).integers(-128, 128, size=(count, inp.num_elements), dtype=np.int16).astype(np.int8)
        y, source = None, "random"
    outputs = reference_outputs(model.data, x.reshape((len(x),) + tuple(inp.shape)))
    return Golden(source=source, inputs=x, outputs=outputs.astype(np.int8).reshape(len(x), -1), labels=y)
