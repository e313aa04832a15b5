"""Quantization-aware training with tensorflow-model-optimization: fake-quantization nodes learn int8 ranges
while the model fine-tunes, then the usual full-integer conversion (compress/quantize.py) makes the int8 model."""

from __future__ import annotations



def quantize_aware(model):
    """``model`` with fake-quantization nodes (tensorflow-model-optimization's quantize_model), to be fine-tuned
    (compress/pipeline.py: qat_copy)."""
    import tensorflow_model_optimization as tfmot

    return tfmot.quantization.keras.quantize_model(model)
