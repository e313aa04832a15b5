"""tinydeploy: from a Keras image classifier to a measured TFLite Micro firmware on a microcontroller.

The pipeline, one package per stage, data flowing one way:

    compress/  (TensorFlow)  Keras model -> pruned, quantized .tflite (+ samples for golden vectors)
    analyze/   (no TF)       .tflite -> ops, params, MACs, arena, flash, fit verdict
    generate/  (no TF)       .tflite + analysis -> PlatformIO project (C arrays, resolver, golden vectors)
    device/    (no TF)       flash with PlatformIO, read the firmware's benchmark report over serial
    study/     (TensorFlow)  the accuracy x latency x size grid, tables and plots

Board facts live as data in boards/*.json.
"""

__version__ = "0.1.0"
