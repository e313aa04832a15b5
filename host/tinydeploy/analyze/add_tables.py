"""An int8 ADD node's whole arithmetic as two tables of 256 int32 each, computed at build time and proven exact.

TFLM's int8 ADD (the pinned library's ``AddPrepare``/``AddFunc``, reference_ops::AddElementwise) scales each input
separately, ``s_i(v) = MBQMSTOE((v - zp_i) << 20, m_i, e_i)`` (MultiplyByQuantizedMultiplierSmallerThanOneExp: a
saturating rounding doubling high multiply, then a rounding right shift), adds the two, requantizes the sum the same
way with the output's multiplier, adds the output zero point and clamps to the activation range. Each ``s_i`` takes
only 256 values, and the output is a non-decreasing function of ``s_1 + s_2``: close to ``round(M * (s_1 + s_2))`` with
M the output's real multiplier. So the build writes

    T1[a] = floor(M * s_1(a) * 2^16 + (zp_out + 1/2) * 2^16),   T2[b] = floor(M * s_2(b) * 2^16)

and the firmware computes an element as ``SSAT(8, (T1[a] + T2[b]) >> 16)``: two byte loads, two table loads, an add,
one SSAT and the store (td_kernel_add.cpp). That formula rounds once where TFLM rounds twice, and its tables round
down: it can differ from TFLM's where ``M * s`` lies within 2^-15 of a rounding boundary, or on a tie that TFLM's
second rounding decides. So the build moves entries by a unit or two where a pair needs it (the pairs' bounds on
T1[a] + T2[b] are difference constraints: _repair), evaluates TFLM's arithmetic and the tables on all 65,536 pairs of
input values, and writes the tables only where they agree on every one (and the sums fit an int32); a node without
tables runs tinydeploy's exact per-call tables on the device.

Part of analyze (what the kernels a build registers take from flash), rendered by generate (model_params.cpp).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..tflite_model import Operator, TFLiteModel
from .requant import activation_range, quantize_multiplier

FRACTION_BITS = 16  # the shift td_kernel_add.cpp's SSAT applies: an immediate in its instruction
LEFT_SHIFT = 20  # AddPrepare's left_shift for int8 outputs
TABLE_BYTES = 2 * 256 * 4
# What an OpDataAdd costs in the arena's tail (60 B on the 32-bit device, a persistent buffer 16-byte aligned), which a
# node with tables keeps in flash instead
OP_DATA_ADD_BYTES = 64
ENTRY_BYTES = 72  # td_kernel_params.h's AddTables: the output tensor, the OpDataAdd (60 B), the tables' two pointers


def _quantize_smaller_than_one(real: float) -> tuple[int, int]:
    """TFLM's QuantizeMultiplierSmallerThanOneExp: QuantizeMultiplier of a real in (0, 1), its shift <= 0."""
    m, shift = quantize_multiplier(real)
    if not (0.0 < real < 1.0 and shift <= 0):
        raise ValueError(f"ADD multiplier {real} outside (0, 1)")
    return m, shift


def _srdhm(a: np.ndarray, b: int) -> np.ndarray:
    """gemmlowp's SaturatingRoundingDoublingHighMul in int64 (a never equals b == INT32_MIN here)."""
    ab = a.astype(np.int64) * np.int64(b)
    nudge = np.where(ab >= 0, np.int64(1 << 30), np.int64(1 - (1 << 30)))
    s = ab + nudge
    return np.where(s >= 0, s >> 31, -((-s) >> 31))  # C's division by 2^31, toward zero


def _rounding_divide_by_pot(x: np.ndarray, exponent: int) -> np.ndarray:
    """gemmlowp's RoundingDivideByPOT: x / 2^exponent rounded half away from zero."""
    mask = np.int64((1 << exponent) - 1)
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + ((x & mask) > threshold)


def mbqm_smaller_than_one(x: np.ndarray, multiplier: int, shift: int) -> np.ndarray:
    """TFLM's MultiplyByQuantizedMultiplierSmallerThanOneExp (shift <= 0)."""
    return _rounding_divide_by_pot(_srdhm(x, multiplier), -shift)


@dataclass(frozen=True)
class AddData:
    """TFLM's OpDataAdd for an int8 node, as AddPrepare fills it (the fields the int8 path reads)."""

    input1_offset: int
    input2_offset: int
    output_offset: int
    left_shift: int
    input1_multiplier: int
    input1_shift: int
    input2_multiplier: int
    input2_shift: int
    output_multiplier: int
    output_shift: int
    activation: tuple[int, int]

    def op_fields(self) -> tuple[int, ...]:
        """The fields in td_kernel_params.h's AddOpData's order."""
        return (self.input1_offset, self.input2_offset, self.output_offset, self.left_shift, self.input1_multiplier,
                self.input1_shift, self.input2_multiplier, self.input2_shift, self.output_multiplier,
                self.output_shift, *self.activation)

    def reference(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """TFLM's int8 ADD of int8 values a and b (arrays of one shape), element by element."""
        s1 = mbqm_smaller_than_one((a.astype(np.int64) + self.input1_offset) << self.left_shift,
                                   self.input1_multiplier, self.input1_shift)
        s2 = mbqm_smaller_than_one((b.astype(np.int64) + self.input2_offset) << self.left_shift,
                                   self.input2_multiplier, self.input2_shift)
        raw = mbqm_smaller_than_one(s1 + s2, self.output_multiplier, self.output_shift) + self.output_offset
        return np.clip(raw, *self.activation).astype(np.int8)


def add_data(scales: tuple[float, float, float], zero_points: tuple[int, int, int], activation: int) -> AddData:
    """AddPrepare's CalculateOpDataAdd for int8 tensors with these (float32) scales and zero points."""
    s1, s2, so = (float(np.float32(s)) for s in scales)  # the device holds float32 scales, widened to double
    twice_max = 2.0 * max(s1, s2)
    m1, e1 = _quantize_smaller_than_one(s1 / twice_max)
    m2, e2 = _quantize_smaller_than_one(s2 / twice_max)
    mo, eo = _quantize_smaller_than_one(twice_max / ((1 << LEFT_SHIFT) * so))
    return AddData(-zero_points[0], -zero_points[1], zero_points[2], LEFT_SHIFT, m1, e1, m2, e2, mo, eo,
                   activation_range(activation, so, zero_points[2]))


@dataclass(frozen=True)
class AddTables:
    """One ADD node's tables, keyed by its output tensor (how the firmware finds them), with the op data they were
    computed from (which the firmware checks against AddPrepare's)."""

    operator: int
    output_tensor: int
    data: AddData
    table1: tuple[int, ...]  # indexed by the first input's value + 128
    table2: tuple[int, ...]


def fused_tables(d: AddData) -> tuple[np.ndarray, np.ndarray] | None:
    """T1, T2 (int64 arrays of 256, indexed by value + 128) such that clamp((T1[a] + T2[b]) >> 16) equals TFLM's ADD
    on every pair of int8 values, or None where this form does not reproduce it (or overflows an int32)."""
    v = np.arange(-128, 128, dtype=np.int64)
    s1 = mbqm_smaller_than_one((v + d.input1_offset) << d.left_shift, d.input1_multiplier, d.input1_shift)
    s2 = mbqm_smaller_than_one((v + d.input2_offset) << d.left_shift, d.input2_multiplier, d.input2_shift)
    # M * s * 2^16 = s * multiplier * 2^(16 + shift - 31), floored (an arithmetic shift floors); shift <= 0
    down = 31 - FRACTION_BITS - d.output_shift
    t1 = ((s1 * d.output_multiplier) >> down) + (((2 * d.output_offset + 1) << FRACTION_BITS) >> 1)
    t2 = (s2 * d.output_multiplier) >> down
    # values beyond what can still leave the int8 range saturate either way: clamped so the sums fit an int32
    edge = 128 << FRACTION_BITS
    t1 = np.clip(t1, -edge - t2.max(), edge - t2.min())
    t2 = np.clip(t2, -edge - t1.max(), edge - t1.min())
    limit = 1 << 30  # each table within +-2^30: the sum fits an int32
    if np.abs(t1).max() >= limit or np.abs(t2).max() >= limit:
        return None
    exact = d.reference(v[:, None], v[None, :]).astype(np.int64)
    t1, t2 = _repair(t1 + 1, t2, exact, d.activation)  # + 1: both round down, the sum by less than 2 units
    if t1 is None or np.abs(t1).max() >= limit or np.abs(t2).max() >= limit:
        return None
    fast = np.clip((t1[:, None] + t2[None, :]) >> FRACTION_BITS, *d.activation)
    if not np.array_equal(fast, exact):  # the proof, whatever _repair did
        return None
    return t1, t2


def _repair(t1: np.ndarray, t2: np.ndarray, exact: np.ndarray, activation: tuple[int, int]):
    """The tables nearest below (t1, t2) whose sums land every pair in its exact output's interval of 2^16, or
    (None, None) where none exist. Where the single rounding meets a tie that TFLM's two roundings resolve
    otherwise, a table entry moves by a unit or two. Each pair (a, b) bounds T1[a] - (-T2[b]) from below
    (o << 16, unless o is the range's low end, which any smaller sum also gives) and above ((o + 1) << 16 - 1, unless
    o is the high end): difference constraints, solved by Bellman-Ford's relaxation from (t1, -t2) as the start."""
    big = np.int64(1 << 40)
    lower = np.where(exact > activation[0], exact << FRACTION_BITS, -big)
    upper = np.where(exact < activation[1], ((exact + 1) << FRACTION_BITS) - 1, big)
    x, y = t1.copy(), -t2
    for _ in range(2 * len(x) + 2):  # a feasible system settles within as many rounds as nodes
        nx = np.minimum(x, (y[None, :] + upper).min(axis=1))  # x_a <= y_b + upper
        ny = np.minimum(y, (nx[:, None] - lower).min(axis=0))  # y_b <= x_a - lower
        if np.array_equal(nx, x) and np.array_equal(ny, y):
            return x, -y
        x, y = nx, ny
    return None, None


def _node_tables(model: TFLiteModel, op: Operator) -> AddTables | None:
    if op.opname != "ADD" or len(op.inputs) != 2 or len(op.outputs) != 1:
        return None
    a, b, y = (model.tensors[i] for i in (op.inputs[0], op.inputs[1], op.outputs[0]))
    if {a.dtype, b.dtype, y.dtype} != {"INT8"} or not (tuple(a.shape) == tuple(b.shape) == tuple(y.shape)):
        return None  # td_kernel_add.cpp's Applies: same shapes, int8
    if not all(t.quantization.scales for t in (a, b, y)):
        return None
    zero = tuple(t.quantization.zero_points[0] if t.quantization.zero_points else 0 for t in (a, b, y))
    try:
        d = add_data((a.quantization.scales[0], b.quantization.scales[0], y.quantization.scales[0]), zero,
                     op.options.get("fused_activation", 0))
    except (ValueError, ZeroDivisionError, OverflowError):  # a scale of 0, inf or nan: TFLM's Prepare refuses it
        return None
    tables = _tables(d)
    return AddTables(op.index, op.outputs[0], d, *tables) if tables else None


@lru_cache(maxsize=256)
def _tables(d: AddData) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """fused_tables as tuples, once per quantization (a build asks for a model's tables three times)."""
    tables = fused_tables(d)
    return None if tables is None else (tuple(int(t) for t in tables[0]), tuple(int(t) for t in tables[1]))


def add_tables(model: TFLiteModel, kernels: str) -> list[AddTables]:
    """The int8 ADD nodes whose tables model_params.cpp holds (tinydeploy's kernels only), in operator order."""
    if kernels != "tinydeploy":
        return []
    return [t for t in (_node_tables(model, op) for op in model.operators) if t is not None]


def add_resident_bytes(model: TFLiteModel, kernels: str) -> int:
    """The arena bytes the library's kernels would keep for what a build with ``kernels`` has in flash: the op data of
    every ADD node with tables."""
    return OP_DATA_ADD_BYTES * len(add_tables(model, kernels))
