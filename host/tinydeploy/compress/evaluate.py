"""Evaluate .tflite variants on a test split: accuracy, balanced accuracy, confusion matrix, size."""

from __future__ import annotations

import numpy as np

from .datasets import normalize


def metrics(y_true: np.ndarray, y_pred: np.ndarray, num_classes: int, scores: np.ndarray | None = None) -> dict:
    """Accuracy, balanced accuracy (mean per-class recall), per-class recall and the confusion matrix; with
    ``scores`` (N x classes, the model's dequantized outputs) also the macro one-vs-rest ROC AUC."""
    y_true = np.asarray(y_true).reshape(-1)
    y_pred = np.asarray(y_pred).reshape(-1)
    cm = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(cm, (y_true, y_pred), 1)
    recall = [float(cm[i, i] / cm[i].sum()) if cm[i].sum() > 0 else None for i in range(num_classes)]
    present = [r for r in recall if r is not None]
    out = {"n": int(len(y_true)), "accuracy": float((y_true == y_pred).mean()) if len(y_true) else 0.0,
           "balanced_accuracy": float(np.mean(present)) if present else 0.0, "per_class_recall": recall,
           "confusion": cm.tolist()}
    if scores is not None:
        out["auc"] = macro_auc(y_true, np.asarray(scores, np.float64), num_classes)
    return out


def roc_auc(positive: np.ndarray, score: np.ndarray) -> float | None:
    """Area under the ROC curve of ``score`` for the boolean labels ``positive``: the probability that a random
    positive scores above a random negative, ties counting half (Mann-Whitney U over average ranks). None when one
    side is empty."""
    pos = np.asarray(positive, bool)
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return None
    _, which, counts = np.unique(np.asarray(score), return_inverse=True, return_counts=True)
    last = np.cumsum(counts)  # 1-based rank of each distinct score's last occurrence
    ranks = (last - (counts - 1) / 2)[which.reshape(-1)]  # ties share their average rank
    u = ranks[pos].sum() - n_pos * (n_pos + 1) / 2
    return float(u / (n_pos * n_neg))


def macro_auc(y_true: np.ndarray, scores: np.ndarray, num_classes: int) -> float | None:
    """Macro one-vs-rest ROC AUC: the mean over classes present in ``y_true`` of each class's AUC."""
    aucs = [roc_auc(y_true == c, scores[:, c]) for c in range(num_classes)]
    aucs = [a for a in aucs if a is not None]
    return float(np.mean(aucs)) if aucs else None


def _input_tensor(model_bytes: bytes):
    from ..tflite_model import TFLiteModel

    return TFLiteModel.from_bytes(model_bytes).input_tensors[0]


def scores_tflite(model_bytes: bytes, x_uint8: np.ndarray) -> np.ndarray:
    """The model's outputs (N x classes) from the TFLite (desktop) interpreter, dequantized for integer models;
    inputs are quantized for integer models."""
    from .tfenv import import_tf, native_stderr_quiet

    tf, _ = import_tf()
    with native_stderr_quiet():  # "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."
        interp = tf.lite.Interpreter(model_content=model_bytes, num_threads=2)
    inp = interp.get_input_details()[0]
    out = interp.get_output_details()[0]
    x = normalize(x_uint8)
    if inp["dtype"] != np.float32:  # integer input: quantize the whole batch once
        x = _input_tensor(model_bytes).quantize(x)
    scale, zero = out.get("quantization", (0.0, 0))
    scores = np.empty((len(x), int(np.prod(out["shape"][1:]))), np.float32)
    interp.resize_tensor_input(inp["index"], [1] + list(x.shape[1:]))
    with native_stderr_quiet():
        interp.allocate_tensors()
    for i in range(len(x)):
        interp.set_tensor(inp["index"], x[i:i + 1])
        interp.invoke()
        o = interp.get_tensor(out["index"])[0].reshape(-1)
        scores[i] = (o.astype(np.float32) - zero) * scale if out["dtype"] != np.float32 and scale else o
    return scores


def predict_tflite(model_bytes: bytes, x_uint8: np.ndarray) -> np.ndarray:
    """Class predictions from the TFLite (desktop) interpreter."""
    return scores_tflite(model_bytes, x_uint8).argmax(axis=1)


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
