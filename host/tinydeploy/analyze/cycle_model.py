"""Latency ESTIMATE for a model on a Cortex-M4F board (the Nano 33 BLE) when no bench JSON exists.

Method: cycles = sum over ops of MACs(op) x c(op, dtype) + ops x 2,000 (per-op interpreter overhead).
The constants are assumptions, not measurements of this project:
  int8 with CMSIS-NN: CONV_2D 1.2, DEPTHWISE_CONV_2D 2.5, FULLY_CONNECTED 1.3 cycles/MAC
  (CMSIS-NN's int8 kernels use the M4's 2-way 16-bit SIMD MAC; 1-3 cycles/MAC is the range
  reported for them; field notes: CMSIS-NN ran a small CNN in 4.1x fewer instructions than TFLM's
  reference kernels)
  float32 on the M4F's single-precision FPU, TFLM reference kernels: 6 cycles/MAC
  int16x8: reference kernels, 4 cycles/MAC; float16 and dynamic-range models run as float32
  (weights dequantized): 6 cycles/MAC.
Rows with a measured `bench` JSON use the measurement instead and say so.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Sequence

if TYPE_CHECKING:
    from ..boards import Board
    from .layers import OpStats

OP_OVERHEAD = 2000
INT8 = {"CONV_2D": 1.2, "DEPTHWISE_CONV_2D": 2.5, "FULLY_CONNECTED": 1.3, "TRANSPOSE_CONV": 3.0}
PER_MAC = {"int8": INT8, "int16x8": 4.0, "float32": 6.0, "float16": 6.0, "dynamic": 6.0}


def estimate_cycles(ops: Sequence["OpStats"], variant: str) -> int:
    c = PER_MAC.get(variant, 6.0)
    total = 0.0
    for o in ops:
        per = c.get(o.op, 2.0) if isinstance(c, dict) else c
        total += o.macs * per + OP_OVERHEAD
    return int(total)


def estimate_ms(ops: Sequence["OpStats"], variant: str, board: "Board") -> float:
    return board.ms(estimate_cycles(ops, variant))
