"""Magnitude pruning with tensorflow-model-optimization: polynomial-decay schedule to a target
sparsity, fine-tuning, strip_pruning; sparsity per layer read back from the stripped weights."""

from __future__ import annotations

import numpy as np

from .tfenv import import_tf


FINETUNE_LR = 5e-4  # pruning's fine-tuning, and the equal-epoch baseline's extra epochs


def prune(model, ds, *, target_sparsity: float, epochs: int = 2, batch_size: int = 128, lr: float = FINETUNE_LR,
          class_weight: bool = False):
    import tensorflow_model_optimization as tfmot

    from .models import train

    _, keras = import_tf()
    steps_per_epoch = int(np.ceil(len(ds.y_train) / batch_size))
    end_step = max(steps_per_epoch * epochs, 1)
    schedule = tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=0.0, final_sparsity=float(target_sparsity), begin_step=0,
        end_step=max(int(end_step * 0.8), 1), frequency=max(steps_per_epoch // 4, 1))
    pruned = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
    train(pruned, ds, epochs=epochs, batch_size=batch_size, lr=lr, class_weight=class_weight,
          callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    return tfmot.sparsity.keras.strip_pruning(pruned)


def sparsity_report(model) -> dict:
    """Fraction of exact zeros in each layer's kernel (weights of rank >= 2), and overall."""
    layers = {}
    zeros = total = 0
    for layer in model.layers:
        for w in layer.weights:
            if "kernel" in w.name and len(w.shape) >= 2:
                a = w.numpy()
                z = int((a == 0).sum())
                layers[layer.name] = {"zeros": z, "weights": int(a.size), "sparsity": z / a.size}
                zeros += z
                total += a.size
    return {"layers": layers, "overall": zeros / total if total else 0.0}
