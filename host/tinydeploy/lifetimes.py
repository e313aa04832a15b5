"""When each tensor of a model lives and how many bytes the arena's head needs for it, as the pinned TFLM counts them:
the facts both the analyzer (the head's lower bound) and the memory planner (plan/) work from."""

from __future__ import annotations

from dataclasses import dataclass

from .tflite_model import TFLiteModel

ALIGN = 16  # TFLM's MicroArenaBufferAlignment(): every head buffer's size is rounded up to it


@dataclass(frozen=True)
class Buffer:
    tensor: int
    size: int  # bytes, rounded up to ALIGN
    first: int  # TFLM's allocation scopes: 0 is before the first operator, operator k runs in scope k + 1
    last: int

    def overlaps_in_time(self, other: "Buffer") -> bool:
        return self.first <= other.last and other.first <= self.last


def _align(n: int) -> int:
    return (n + ALIGN - 1) // ALIGN * ALIGN


def lifetimes(model: TFLiteModel, *, keep_input: bool = False) -> list[Buffer]:
    """The head buffers TFLM allocates for this model (non-constant, non-variable tensors with bytes), with the
    scopes TFLM's AllocationInfoBuilder gives them: graph inputs are created in scope 0, an operator's outputs in its
    scope, each tensor lives to its last reader's scope, graph outputs to the end. ``keep_input``: the model input
    lives to the end too (listed as a graph output, see plan.with_plan)."""
    end = len(model.operators)
    first: dict[int, int] = {}
    last: dict[int, int] = {}
    for i in model.inputs:
        first.setdefault(i, 0)
        last[i] = 0
    for op in model.operators:
        scope = op.index + 1
        for i in op.outputs:
            if i >= 0:
                first.setdefault(i, scope)
                last[i] = max(last.get(i, scope), scope)
        for i in op.inputs:
            if i >= 0 and i in first:
                last[i] = max(last[i], scope)
    for i in model.outputs:
        first.setdefault(i, end)
        last[i] = end
    if keep_input:
        for i in model.inputs:
            last[i] = end
    out = []
    for i in sorted(first):
        t = model.tensors[i]
        if t.is_constant or t.is_variable or t.nbytes == 0:
            continue
        out.append(Buffer(i, _align(t.nbytes), first[i], last[i]))
    return out


def live_bytes(buffers: list[Buffer], scopes: int) -> list[int]:
    """Bytes live in each scope 0..scopes."""
    live = [0] * (scopes + 1)
    for b in buffers:
        for s in range(b.first, b.last + 1):
            live[s] += b.size
    return live


def lower_bound(buffers: list[Buffer]) -> int:
    """No plan of these buffers needs less: the most bytes live at one time."""
    if not buffers:
        return 0
    return max(live_bytes(buffers, max(b.last for b in buffers)))
