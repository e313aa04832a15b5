"""The search space: model structures a microcontroller can hold, and the compression applied to each.

A ``Candidate`` is plain data (JSON in the Optuna storage and in the output), so any worker, or `bench/search.py`,
rebuilds the same Keras model from it with ``build_model``. Families:

  cnn    Conv-BN-ReLU-MaxPool per stage (the custom CNN)
  vgg    two Conv-BN-ReLU then MaxPool per stage (VGG-style)
  mbv1   a stem convolution, then per stage a stride-2 depthwise 3x3/5x5 and a pointwise convolution (MobileNet V1)
  mbv2   a stem convolution, then per stage two inverted residual blocks (expand x3, depthwise, project; the second
         adds its input back: MobileNet V2)

Compression: ``ptq`` (post-training int8), ``qat`` (quantization-aware fine-tuning, then int8) and, for the chain
families only (structured pruning cannot follow a residual addition), ``filters25`` / ``filters50`` (that fraction of
the filters removed, then fine-tuned).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass

FAMILIES = ("cnn", "vgg", "mbv1", "mbv2")
WIDTHS = (8, 12, 16, 24, 32, 48, 64)
KERNELS = (3, 5)
RESOLUTIONS = (28, 24, 20, 16)  # only those at most the dataset's own size are offered
COMPRESSION = ("ptq", "qat", "filters25", "filters50")
COMPRESSION_RESIDUAL = ("ptq", "qat")  # mbv2: no structured pruning


@dataclass(frozen=True)
class Candidate:
    family: str
    widths: tuple[int, ...]  # output channels per stage
    kernels: tuple[int, ...]  # kernel size per stage
    resolution: int  # input side in pixels
    head: str  # "flatten" | "gap"
    compression: str

    @property
    def stages(self) -> int:
        return len(self.widths)

    @property
    def filter_fraction(self) -> float:
        return int(self.compression[len("filters"):]) / 100 if self.compression.startswith("filters") else 0.0

    def describe(self) -> str:
        return (f"{self.family} {'-'.join(map(str, self.widths))} k{''.join(map(str, self.kernels))} "
                f"{self.resolution}px {self.head} {self.compression}")

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, text: str) -> "Candidate":
        d = json.loads(text)
        return cls(d["family"], tuple(d["widths"]), tuple(d["kernels"]), d["resolution"], d["head"], d["compression"])


def suggest(trial, native_size: int) -> Candidate:
    """Sample a candidate with Optuna's define-by-run API. Parameters exist only where they apply (widths of stages
    beyond the depth are not sampled); the compression choice has its own name for the residual family, since an
    Optuna parameter keeps one set of choices."""
    family = trial.suggest_categorical("family", FAMILIES)
    stages = trial.suggest_int("stages", 2, 4)
    widths = tuple(trial.suggest_categorical(f"width{i}", WIDTHS) for i in range(stages))
    kernels = tuple(trial.suggest_categorical(f"kernel{i}", KERNELS) for i in range(stages))
    resolution = trial.suggest_categorical("resolution", tuple(r for r in RESOLUTIONS if r <= native_size) or (native_size,))
    head = trial.suggest_categorical("head", ("flatten", "gap"))
    if family == "mbv2":
        compression = trial.suggest_categorical("compression_residual", COMPRESSION_RESIDUAL)
    else:
        compression = trial.suggest_categorical("compression", COMPRESSION)
    return Candidate(family, widths, kernels, resolution, head, compression)


def build_model(c: Candidate, channels: int, num_classes: int):
    """The Keras model of a candidate (untrained). Layers are those the TFLM runtime and the structured pruner know."""
    from ..compress.tfenv import import_tf

    _, keras = import_tf()
    L = keras.layers

    def conv_bn(x, f, k, stride=1, act="relu"):
        x = L.Conv2D(f, k, strides=stride, padding="same", use_bias=False)(x)
        x = L.BatchNormalization(momentum=0.9)(x)
        return L.ReLU(6.0 if act == "relu6" else None)(x) if act else x

    def dw_bn(x, k, stride, act="relu"):
        x = L.DepthwiseConv2D(k, strides=stride, padding="same", use_bias=False)(x)
        x = L.BatchNormalization(momentum=0.9)(x)
        return L.ReLU(6.0 if act == "relu6" else None)(x)

    x = inp = L.Input((c.resolution, c.resolution, channels))
    if c.family in ("cnn", "vgg"):
        for f, k in zip(c.widths, c.kernels):
            for _ in range(2 if c.family == "vgg" else 1):
                x = conv_bn(x, f, k)
            x = L.MaxPool2D()(x)
    elif c.family == "mbv1":
        x = conv_bn(x, c.widths[0], 3)
        for f, k in zip(c.widths, c.kernels):
            x = dw_bn(x, k, 2)
            x = conv_bn(x, f, 1)
    elif c.family == "mbv2":
        x = conv_bn(x, c.widths[0], 3, act="relu6")
        for f, k in zip(c.widths, c.kernels):
            for stride in (2, 1):
                inp_c = x.shape[-1]
                y = conv_bn(x, 3 * inp_c, 1, act="relu6")
                y = dw_bn(y, k, stride, act="relu6")
                y = conv_bn(y, f, 1, act=None)
                x = L.Add()([x, y]) if stride == 1 and inp_c == f else y
    else:
        raise ValueError(f"unknown family {c.family}")
    x = L.Flatten()(x) if c.head == "flatten" else L.GlobalAveragePooling2D()(x)
    x = L.Dropout(0.2)(x)
    return keras.Model(inp, L.Dense(num_classes, activation="softmax")(x), name=c.family)


def compressed(c: Candidate, model, ds, ft):
    """The trained ``model`` with the candidate's compression (compress/pipeline.py, fine-tuned by ``ft``, a
    FineTune): a QAT copy, or a copy with that fraction of the filters removed; ``model`` itself for PTQ."""
    from ..compress.pipeline import filter_pruned_copy, qat_copy

    if c.compression == "qat":
        return qat_copy(model, ds, ft)
    if c.filter_fraction:
        return filter_pruned_copy(model, ds, c.filter_fraction, ft)
    return model
