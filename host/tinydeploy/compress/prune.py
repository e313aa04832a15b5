"""Magnitude pruning with tensorflow-model-optimization: polynomial-decay schedule to a target
sparsity, fine-tuning, strip_pruning; sparsity per layer read back from the stripped weights."""

from __future__ import annotations

import numpy as np

from .tfenv import import_tf


FINETUNE_LR = 5e-4  # pruning's fine-tuning, and the equal-epoch baseline's extra epochs


def prune(model, ds, *, target_sparsity: float, epochs: int = 2, batch_size: int = 128, lr: float = FINETUNE_LR,
          class_weight: bool = False, recipe: str = "plain", patience: int | None = None):
    """Fine-tune ``model`` while a polynomial schedule zeroes its smallest weights up to ``target_sparsity``; returns
    the stripped model. With ``patience`` (fine-tuning until the model recovers, ``epochs`` the cap), the schedule
    reaches its target within the first epochs (at most 3) and early stopping judges only the epochs after it, so the
    weights it keeps always have the target sparsity. The stripped model carries the fit's history
    (models.epochs_run)."""
    import tensorflow_model_optimization as tfmot

    from .models import train

    _, keras = import_tf()
    steps_per_epoch = int(np.ceil(len(ds.y_train) / batch_size))
    ramp = epochs if patience is None else max(1, min(epochs - 1, 3))
    end_step = max(steps_per_epoch * ramp, 1)
    schedule = tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=0.0, final_sparsity=float(target_sparsity), begin_step=0,
        end_step=max(int(end_step * 0.8), 1), frequency=max(steps_per_epoch // 4, 1))
    pruned = tfmot.sparsity.keras.prune_low_magnitude(model, pruning_schedule=schedule)
    train(pruned, ds, epochs=epochs, batch_size=batch_size, lr=lr, class_weight=class_weight, recipe=recipe,
          patience=patience, start_from_epoch=ramp if patience is not None else 0,
          callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    stripped = tfmot.sparsity.keras.strip_pruning(pruned)
    stripped.history = pruned.history
    return stripped


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
