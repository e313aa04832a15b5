"""Test samples for a model (``MODEL.samples.npz``, written by ``compress``, read by ``build``, ``bench`` and
``emulate``): one reader with one set of rules.

    x          model inputs: int8 as the model takes them, or uint8 images (scaled to [0, 1] and quantized
               with the model's input scale, as training normalized them)
    y          labels (optional)
    host_pred  the TFLM host interpreter's predictions for x (optional; lets `bench --accuracy` report
               host accuracy and agreement without the model)
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import DatasetError


@dataclass(frozen=True)
class Samples:
    x: np.ndarray
    y: np.ndarray | None = None
    host_pred: np.ndarray | None = None
    source: str = "<memory>"

    @classmethod
    def load(cls, path: str | Path, limit: int | None = None) -> "Samples":
        path = Path(path)
        if not path.is_file():
            raise DatasetError(f"samples file {path} " + ("is a directory" if path.is_dir() else "does not exist"),
                               "Check the path")
        with open(path, "rb") as f:
            if f.read(4) != b"PK\x03\x04":  # every .npz is a zip archive
                raise DatasetError(f"samples file {path} is not an .npz archive",
                                   "Pass an .npz written by numpy.savez with arrays x (and y)")
        try:
            with np.load(path, allow_pickle=False) as z:
                if "x" not in z:
                    raise DatasetError(f"{path} has no array 'x'", "A samples file holds x (inputs), optionally y (labels)")
                x = z["x"][:limit]
                y = z["y"][:limit].reshape(-1) if "y" in z else None
                host = z["host_pred"][:limit].reshape(-1) if "host_pred" in z else None
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
            raise DatasetError(f"cannot read samples file {path} ({e})", "Pass an .npz with arrays x and y") from None
        if len(x) == 0:
            raise DatasetError(f"{path} holds no samples (x is empty)", "Write at least one input")
        if x.dtype not in (np.int8, np.uint8):
            raise DatasetError(f"{path}: x is {x.dtype}; samples are int8 model inputs or uint8 images",
                               "Write x as int8 (quantized) or uint8 (images)")
        for name, a in (("y", y), ("host_pred", host)):
            if a is not None and len(a) != len(x):
                raise DatasetError(f"{path}: {name} has {len(a)} entries for {len(x)} inputs", "Write one per input")
        return cls(x, y, host, str(path))

    def check_labels(self, classes: int) -> None:
        """Labels, if any, name one of the model's classes (else every accuracy would silently be 0)."""
        if self.y is not None and len(self.y) and not (0 <= int(self.y.min()) and int(self.y.max()) < classes):
            bad = int(self.y.min()) if int(self.y.min()) < 0 else int(self.y.max())
            raise DatasetError(f"{self.source}: label {bad} is not a class of the model (0 to {classes - 1})",
                               "Use samples labelled for this model")

    def int8_inputs(self, model=None) -> np.ndarray:
        """x as the model's int8 inputs, one row per sample. uint8 images need the model (its input scale)."""
        x = self.x
        if x.dtype == np.uint8:
            if model is None:
                raise DatasetError(f"{self.source} holds uint8 images, not int8 model inputs",
                                   "Use the MODEL.samples.npz that `tinydeploy compress` wrote, or quantize x to int8")
            tensor = model.input_tensors[0]
            if not tensor.quantization.scales:
                raise DatasetError("the model's input has no quantization scale", "Use a full-integer int8 model")
            x = tensor.quantize(x.astype(np.float32) / 255.0)
        x = x.reshape(len(x), -1)
        if model is not None and x.shape[1] != model.input_tensors[0].num_elements:
            raise DatasetError(f"samples in {self.source} have {x.shape[1]} values per input, the model takes "
                               f"{model.input_tensors[0].num_elements}", "Use samples made for this model")
        return x

    def save(self, path: str | Path) -> None:
        arrays = {"x": self.x}
        if self.y is not None:
            arrays["y"] = self.y
        if self.host_pred is not None:
            arrays["host_pred"] = self.host_pred
        np.savez(path, **arrays)
