"""Structured pruning: remove whole filters (output channels) and hidden units, then rebuild a smaller model.

Unlike magnitude pruning, which zeros weights that TFLM still stores and multiplies, this shrinks every tensor the
board stores and computes: fewer filters mean a smaller kernel in this layer and a thinner input in the next.

Method (per layer): a Conv2D's filters are ranked by the L1 norm of their kernel, scaled by the |gamma| / sqrt(var)
of a BatchNormalization that follows it (the filter's real output magnitude after folding); the top
round((1 - fraction) x filters) are kept (at least 1). Hidden Dense layers are ranked the same way by their columns.
A DepthwiseConv2D keeps the channels its input keeps. The classifier (the last Conv2D or Dense) keeps all its outputs.
The kept weights are copied into a model rebuilt from the layers' own configurations; it is then fine-tuned.

Works on chain models (each layer feeds the next): custom_cnn, bn_cnn, vgg_style, mobilenet_v1. A model with branches
(MobileNetV2's residual additions) is refused in one line: channels joined by an addition must be pruned together.
"""

from __future__ import annotations

import numpy as np

from ..errors import TinyDeployError
from .tfenv import import_tf

# Layers that keep their input's channels as they are (and have no per-channel weights).
_PASS = ("InputLayer", "MaxPooling2D", "AveragePooling2D", "ReLU", "Activation", "Dropout", "ZeroPadding2D",
         "SpatialDropout2D", "LeakyReLU", "GlobalAveragePooling2D", "GlobalMaxPooling2D", "Softmax")


def _chain(model):
    """The model's layers in order, when each feeds only the next; else a one-line error."""
    layers = [l for l in model.layers if type(l).__name__ != "InputLayer"]  # Sequential lists none
    for prev, layer in zip(layers, layers[1:]):
        nodes = layer._inbound_nodes
        inbound = [l for n in nodes for l in (n.inbound_layers if isinstance(n.inbound_layers, list) else [n.inbound_layers])]
        if len(nodes) != 1 or len(inbound) != 1 or inbound[0] is not prev:
            raise TinyDeployError(f"structured pruning needs a chain of layers, and {model.name} branches at "
                                  f"{layer.name} ({type(layer).__name__})",
                                  "Use it on custom_cnn, bn_cnn, vgg_style or mobilenet_v1, or --prune for unstructured pruning")
    return layers


def _keep_count(n: int, fraction: float) -> int:
    return max(1, int(round(n * (1.0 - fraction))))


def _top(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k largest scores, in their original order (stable on ties)."""
    return np.sort(np.argsort(-scores, kind="stable")[:k])


def _bn_scale(layers, i):
    """|gamma| / sqrt(var + eps) of a BatchNormalization right after layer i (through nothing else), else None."""
    if i + 1 < len(layers) and type(layers[i + 1]).__name__ == "BatchNormalization":
        bn = layers[i + 1]
        w = dict(zip([v.name.split("/")[-1].split(":")[0] for v in bn.weights], bn.get_weights()))
        gamma = w.get("gamma", np.ones_like(w["moving_variance"]))
        return np.abs(gamma) / np.sqrt(w["moving_variance"] + bn.epsilon)
    return None


def prune_filters(model, fraction: float):
    """A new, smaller model with ``fraction`` of each Conv2D's filters and each hidden Dense layer's units removed
    (the least important by L1 norm), weights copied; ``model`` is left as it is. Not trained: fine-tune it."""
    if not 0 < fraction < 1:
        raise TinyDeployError(f"--prune-filters takes a fraction between 0 and 1, not {fraction}")
    _, keras = import_tf()
    layers = _chain(model)
    weighted = [i for i, l in enumerate(layers) if type(l).__name__ in ("Conv2D", "Dense")]
    classifier = weighted[-1] if weighted else None

    keep = np.arange(model.input_shape[-1])  # the input's channels: never pruned
    new_layers, new_weights = [], []
    for i, layer in enumerate(layers):
        kind = type(layer).__name__
        cfg = layer.get_config()
        w = layer.get_weights()
        if kind == "Conv2D":
            kernel = w[0][:, :, keep, :]
            if i == classifier:
                out = np.arange(kernel.shape[-1])
            else:
                score = np.abs(kernel).sum(axis=(0, 1, 2))
                s = _bn_scale(layers, i)
                out = _top(score * s if s is not None else score, _keep_count(kernel.shape[-1], fraction))
            cfg["filters"] = len(out)
            w = [kernel[..., out]] + [b[out] for b in w[1:]]
            keep = out
        elif kind == "DepthwiseConv2D":
            if cfg.get("depth_multiplier", 1) != 1:
                raise TinyDeployError(f"structured pruning does not handle {layer.name}'s depth multiplier "
                                      f"{cfg['depth_multiplier']}", "Use --prune for unstructured pruning")
            w = [w[0][:, :, keep, :]] + [b[keep] for b in w[1:]]
        elif kind == "Dense":
            kernel = w[0][keep, :]
            out = (np.arange(kernel.shape[1]) if i == classifier
                   else _top(np.abs(kernel).sum(axis=0), _keep_count(kernel.shape[1], fraction)))
            cfg["units"] = len(out)
            w = [kernel[:, out]] + [b[out] for b in w[1:]]
            keep = out
        elif kind == "BatchNormalization":
            w = [a[keep] for a in w]
        elif kind == "Flatten":
            h, wd, c = layer.input_shape[1:]
            keep = (np.arange(h * wd)[:, None] * c + keep[None, :]).reshape(-1)  # NHWC flattening order
        elif kind == "Reshape":
            if len(keep) != layer.input_shape[-1]:
                raise TinyDeployError(f"structured pruning cannot follow pruned channels through {layer.name} (Reshape)",
                                      "Use --prune for unstructured pruning")
        elif kind not in _PASS:
            raise TinyDeployError(f"structured pruning does not know the layer {layer.name} ({kind})",
                                  "Use --prune for unstructured pruning")
        new_layers.append(type(layer).from_config(cfg))
        new_weights.append(w)

    inp = keras.layers.Input(model.input_shape[1:])
    x = inp
    for nl in new_layers:
        x = nl(x)
    smaller = keras.Model(inp, x, name=f"{model.name}_filters{int(round(fraction * 100))}")
    for nl, w in zip(new_layers, new_weights):
        nl.set_weights(w)
    return smaller


def channel_report(model) -> dict:
    """Output channels (filters or units) of every Conv2D, DepthwiseConv2D and Dense layer, and the parameter count."""
    out = {}
    for layer in model.layers:
        kind = type(layer).__name__
        if kind in ("Conv2D", "Dense", "DepthwiseConv2D"):
            out[layer.name] = int(layer.output_shape[-1])
    return {"channels": out, "params": int(model.count_params())}
