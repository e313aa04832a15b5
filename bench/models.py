"""The benchmark models the kernel and memory benches run (untrained weights, calibrated on random data: enough for
speed and memory, which do not depend on what the weights learned).

  mobilenet_v1_0.25_96  keras.applications' MobileNet V1, alpha 0.25, 96x96x3 (MLPerf Tiny's visual wake words size)
  ds_cnn_kws            a DS-CNN-style keyword net: 49x10x1, a 10x4 stride-2 conv, four 64-channel
                        depthwise-separable blocks, global pooling
  resnet8_cifar         a ResNet-8-style CIFAR-10 net: 32x32x3, 16/32/64 channels, three residual stages joined by ADD
  fc_autoencoder        an FC autoencoder in the shape of MLPerf Tiny's anomaly detector: 640 inputs, 128-wide dense
                        layers around an 8-wide code; its last layer has 600 outputs, not 640 (the firmware reports
                        at most 600 values: analyze.MAX_OUTPUT_ELEMENTS)
  study_<family>        the study's families at Fashion-MNIST's 28x28x1 (MobileNets at 32x32), as study/grid.py
                        builds them

    from models import benchmark_models   (bench/ on sys.path, as the bench scripts run)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np


def _resnet8(keras):
    L = keras.layers

    def block(x, f, stride):
        y = L.Conv2D(f, 3, strides=stride, padding="same", activation="relu")(x)
        y = L.Conv2D(f, 3, padding="same")(y)
        if stride != 1 or x.shape[-1] != f:
            x = L.Conv2D(f, 1, strides=stride)(x)
        return L.ReLU()(L.Add()([x, y]))

    inp = L.Input((32, 32, 3))
    x = L.Conv2D(16, 3, padding="same", activation="relu")(inp)
    for f, s in ((16, 1), (32, 2), (64, 2)):
        x = block(x, f, s)
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inp, L.Dense(10, activation="softmax")(x), name="resnet8_cifar")


def _fc_autoencoder(keras):
    L = keras.layers
    widths = (128, 128, 128, 128, 8, 128, 128, 128, 128)
    layers = [L.Input((640,)), *(L.Dense(w, activation="relu") for w in widths), L.Dense(600)]
    return keras.Sequential(layers, name="fc_autoencoder")


def _ds_cnn(keras):
    L = keras.layers
    inp = L.Input((49, 10, 1))
    x = L.Conv2D(64, (10, 4), strides=2, padding="same", activation="relu")(inp)
    for _ in range(4):
        x = L.DepthwiseConv2D(3, padding="same", activation="relu")(x)
        x = L.Conv2D(64, 1, activation="relu")(x)
    x = L.GlobalAveragePooling2D()(x)
    return keras.Model(inp, L.Dense(12, activation="softmax")(x), name="ds_cnn")


def benchmark_models(out: Path, *, study: bool = False, resnet: bool = True) -> list[Path]:
    """Write the models' int8 .tflite files into ``out``; ``study``: the study's families too."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    from tinydeploy.compress.quantize import convert
    from tinydeploy.compress.tfenv import import_tf

    _, keras = import_tf()
    keras.utils.set_random_seed(0)
    rng = np.random.default_rng(0)
    models = [("mobilenet_v1_0.25_96", keras.applications.MobileNet(input_shape=(96, 96, 3), alpha=0.25,
                                                                     weights=None, classes=10)),
              ("ds_cnn_kws", _ds_cnn(keras))]
    if resnet:
        models.append(("resnet8_cifar", _resnet8(keras)))
    models.append(("fc_autoencoder", _fc_autoencoder(keras)))
    if study:
        from tinydeploy.compress.models import build, min_input_size
        from tinydeploy.study.grid import FAMILIES

        for family, kw in FAMILIES.items():
            size = max(min_input_size(family), 28)
            models.append((f"study_{family}", build(family, (size, size, 1), 10, **kw)))
    paths = []
    for name, m in models:
        # non-zero weights all over (untrained biases are zero; the converter would drop zero dense biases)
        m.set_weights([rng.normal(0, 0.2, w.shape).astype(np.float32) if w.ndim > 1 else
                       np.abs(rng.normal(1, 0.1, w.shape)).astype(np.float32) if "variance" in v.name else
                       rng.normal(0, 0.1, w.shape).astype(np.float32) for w, v in zip(m.get_weights(), m.weights)])
        shape = m.input_shape[1:]
        p = out / f"{name}.tflite"
        p.write_bytes(convert(m, "int8", rng.integers(0, 256, (32, *shape), dtype=np.uint8), 32))
        paths.append(p)
    return paths
