"""Quantization-aware training with tensorflow-model-optimization: fake-quantization nodes learn int8 ranges
while the model fine-tunes, then the usual full-integer conversion (compress/quantize.py) makes the int8 model."""

from __future__ import annotations

from .prune import FINETUNE_LR
from .tfenv import import_tf


def qat_copy(model, ds, *, epochs: int, batch_size: int = 128, lr: float = FINETUNE_LR, class_weight: bool = False):
    """A quantization-aware copy of ``model``, fine-tuned ``epochs`` (``model`` itself is left as it is)."""
    import tensorflow_model_optimization as tfmot

    from .models import train

    _, keras = import_tf()
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    q = tfmot.quantization.keras.quantize_model(clone)
    return train(q, ds, epochs=epochs, batch_size=batch_size, lr=lr, class_weight=class_weight)
