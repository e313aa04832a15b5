"""tinydeploy: from a Keras image classifier to a measured TFLite Micro firmware on a microcontroller.

The pipeline, one package per stage, data flowing one way as typed artifacts:

    compress/  (TensorFlow)  Keras model -> pruned, quantized .tflite (+ samples for golden vectors)
    repair.py  (no TF)       .tflite -> Repaired: the model as the pinned TFLM runs it (exact rewrites of known gaps)
    analyze/   (no TF)       model -> Analysis: ops, params, MACs, arena, flash, fit verdict, issues with stable codes
    generate/  (no TF)       model + Analysis + Golden -> a PlatformIO project (C arrays, resolver, golden vectors)
    deploy/    (no TF)       `tinydeploy build`: repair -> analyze -> generate (-> emulate -> generate, measured arena)
    device/    (no TF)       flash with PlatformIO, read the firmware's benchmark report over serial
    emulate/   (no TF)       the same firmware on QEMU's Cortex-M4, read with the device's own code
    study/     (TensorFlow)  the accuracy x latency x size grid, tables and plots
    search/    (TensorFlow)  multi-objective architecture search under the board's budget (Optuna)

Board facts live as data in boards/*.json, the pinned runtime's in analyze/tflm_runtime.json.
"""

__version__ = "0.1.0"
