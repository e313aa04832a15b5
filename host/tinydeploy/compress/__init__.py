"""Stage 1: datasets, model families, pruning, quantization and evaluation (imports TensorFlow)."""
