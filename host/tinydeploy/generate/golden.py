"""Golden vectors: a few real inputs and the outputs of the real TFLM interpreter on the host for them."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..samples import Samples
from ..tflite_model import TFLiteModel

# Host TFLM (2026) and the device's TFLM (2023 sync) may round int8 SOFTMAX differently by one step
# (measured: desktop TFLite vs TFLM differ by +-1 on softmax outputs); int8 MEAN, where they differ too, the host
# reference computes as the pinned library does (tflm_host.pinned_mean); other kernels agreed exactly.
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


def make_golden(model: TFLiteModel, *, samples: str | Path | None = None, count: int = 3) -> Golden:
    from ..tflm_host import reference_outputs

    inp = model.input_tensors[0]
    if samples is not None and Path(samples).exists():
        loaded = Samples.load(samples, count)
        x, y = loaded.int8_inputs(model), loaded.y
        source = "test-set"
    else:
        # No data: deterministic pseudo-random inputs, seeded by the model's bytes.
        seed = int.from_bytes(hashlib.sha256(model.data).digest()[:4], "little")
        x = np.random.default_rng(seed).integers(-128, 128, size=(count, inp.num_elements), dtype=np.int16).astype(np.int8)
        y, source = None, "random"
    outputs = reference_outputs(model.data, x.reshape((len(x),) + tuple(inp.shape)))
    return Golden(source=source, inputs=x, outputs=outputs.astype(np.int8).reshape(len(x), -1), labels=y)
