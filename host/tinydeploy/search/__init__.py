"""Stage 6: hardware-aware architecture search (`tinydeploy search`). Candidates that cannot fit the board are
rejected before training; the rest are trained, compressed, converted to int8 and measured (validation accuracy,
latency on the emulated Cortex-M4); Optuna keeps the trials in a storage several workers can share."""
