"""Evaluate .tflite variants on a test split: accuracy, balanced accuracy, confusion matrix, size."""

from __future__ import annotations

import numpy as np

from .datasets import normalize


def metrics(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int) -> dict:
    y_true = np.asarray(y_true).reshape(-1)
    y_pred = np.asarray(y_pred).reshape(-1)
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    per_class = [cm[i, i] / cm[i].sum() for i in range(num_classes) if cm[i].sum() > 0]
    return {"n": int(len(y_true)), "accuracy": float((y_true == y_pred).mean()) if len(y_true) else 0.0,
            "balanced_accuracy": float(np.mean(per_class)) if per_class else 0.0, "confusion": cm.tolist()}


def _input_tensor(model_bytes: bytes):
    from ..tflite_model import TFLiteModel

    return TFLiteModel.from_bytes(model_bytes).input_tensors[0]


def predict_tflite(model_bytes: bytes, x_uint8: np.ndarray) -> np.ndarray:
    """Class predictions from the TFLite (desktop) interpreter; quantizes inputs for integer models."""
    from .tfenv import import_tf, native_stderr_quiet

    tf, _ = import_tf()
    with native_stderr_quiet():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
        interp = tf.lite.Interpreter(model_content=model_bytes, num_threads=2)
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    x = normalize(x_uint8)
    if inp["dtype"] != np.float32:  # integer input: quantize the whole batch once
        x = _input_tensor(model_bytes).quantize(x)
    preds = np.empty(len(x), np.int64)
    interp.resize_tensor_input(inp["index"], [1] + list(x.shape[1:]))
    with native_stderr_quiet():
        interp.allocate_tensors()
    for i in range(len(x)):
        interp.set_tensor(inp["index"], x[i:i + 1])
        interp.invoke()
        preds[i] = int(np.argmax(interp.get_tensor(out["index"])[0]))
    return preds


def quantize_inputs_int8(model_bytes: bytes, x_uint8: np.ndarray) -> np.ndarray:
    """The int8 inputs the device gets for these images (from the model's input quantization)."""
    from ..samples import Samples
    from ..tflite_model import TFLiteModel

    x = np.asarray(x_uint8, dtype=np.uint8)
    return Samples(x).int8_inputs(TFLiteModel.from_bytes(model_bytes)).reshape(x.shape)


def predict_tflm(model_bytes: bytes, x_uint8: np.ndarray) -> np.ndarray:
    """Class predictions from the real TFLM interpreter on the host (int8 models)."""
    from ..tflm_host import reference_outputs

    xq = quantize_inputs_int8(model_bytes, x_uint8)
    outs = reference_outputs(model_bytes, xq, timeout=600)
    return outs.reshape(len(xq), -1).argmax(axis=1)
