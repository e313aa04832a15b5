"""TFLite conversion: float32, float16, dynamic-range, int16x8 and full-integer int8.

The int8 variant has int8 input and output and a representative dataset of N training samples.
Dense layers are quantized per tensor (not per channel): the pinned TFLM (Arduino library, 2023)
applies only the first scale of a per-channel FULLY_CONNECTED layer, which silently corrupts outputs.
"""

from __future__ import annotations

import numpy as np

from .datasets import normalize
from .names import VARIANTS
from .tfenv import import_tf, native_stderr_quiet


def convert(model, variant: str, x_rep: np.ndarray | None = None, rep_samples: int = 200) -> bytes:
    tf, _ = import_tf()
    conv = tf.lite.TFLiteConverter.from_keras_model(model)
    if variant == "float32":
        pass
    elif variant == "float16":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.target_spec.supported_types = [tf.float16]
    elif variant == "dynamic":
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
    elif variant in ("int8", "int16x8"):
        if x_rep is None:
            raise ValueError(f"{variant} needs representative data")
        rep = normalize(x_rep[:rep_samples])

        def gen():
            for i in range(len(rep)):
                yield [rep[i:i + 1]]

        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = gen
        if variant == "int8":
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            conv.inference_input_type = tf.int8
            conv.inference_output_type = tf.int8
        else:
            conv.target_spec.supported_ops = [tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8]
        conv._experimental_disable_per_channel_quantization_for_dense_layers = True
    else:
        raise ValueError(f"unknown variant {variant!r}; choose from {VARIANTS}")
    with native_stderr_quiet():  # the converter prints its statistics to fd 2
        return conv.convert()
