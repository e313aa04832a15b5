"""Stage 3: a PlatformIO project from an int8 .tflite: C arrays, op resolver, arena, golden vectors."""
