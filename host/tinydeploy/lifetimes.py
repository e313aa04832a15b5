"""When each tensor of a model lives and how many bytes the arena's head needs for it, as the pinned TFLM counts them:
the facts both the analyzer (the head's lower bound, the arena a build allocates) and the memory planner (plan/) work
from; and where TFLM lays out the head of a model that carries an offline plan (its metadata, written by plan/)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .tflite_model import TFLiteModel

ALIGN = 16  # TFLM's MicroArenaBufferAlignment(): every head buffer's size is rounded up to it
METADATA_NAME = "OfflineMemoryAllocation"  # the name the pinned TFLM looks for (micro_allocation_info.cpp)


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


def offline_plan(model: TFLiteModel) -> list[int] | None:
    """The offsets of the model's OfflineMemoryAllocation plan (metadata: version, subgraph, count, offsets), or
    None."""
    raw = model.metadata.get(METADATA_NAME)
    if raw is None:
        return None
    words = np.frombuffer(raw[:len(raw) // 4 * 4], dtype="<i4")
    return [int(w) for w in words[3:3 + int(words[2])]] if len(words) >= 3 else None


def lowest_gap(busy: list[tuple[int, int]], size: int) -> int:
    """The lowest offset where ``size`` bytes fit between the sorted (start, end) ranges ``busy``."""
    at = 0
    for lo, hi in busy:
        if at + size <= lo:
            break
        at = max(at, hi)
    return at


def head_with_scratch(model: TFLiteModel, scratch: dict[int, int]) -> int | None:
    """The head TFLM lays out for a planned model (OfflineMemoryAllocation) once the kernels' scratch buffers are in it
    (``scratch``: operator index -> bytes requested): every tensor sits at its planned offset, and TFLM's greedy
    planner puts each scratch buffer, live only while its operator runs (and no two operators run at once), at the
    first gap among the tensors live then, the way _first_fit does. None for a model without a plan."""
    offsets = offline_plan(model)
    if offsets is None:
        return None
    buffers = [b for b in lifetimes(model) if 0 <= offsets[b.tensor]]
    head = max([offsets[b.tensor] + b.size for b in buffers] or [0])
    for op, size in scratch.items():
        if size <= 0:
            continue
        size = (size + ALIGN - 1) // ALIGN * ALIGN
        scope = op + 1  # operator k runs in scope k + 1 (lifetimes)
        busy = sorted((offsets[b.tensor], offsets[b.tensor] + b.size) for b in buffers if b.first <= scope <= b.last)
        head = max(head, lowest_gap(busy, size) + size)
    return head


# What TFLM's AllocateTensors() holds in the arena's free space while it plans the head (micro_allocator.cpp,
# CommitStaticMemoryPlan), on the 32-bit device: an AllocationInfo (size_t, a pointer, three ints, a bool: 24 B) per
# tensor of the model and per scratch buffer, and the GreedyMemoryPlanner's arrays, per_buffer_size() = 40 B
# (BufferRequirements 16, two int arrays, ListEntry 12, the offsets) per buffer it plans; each array 16-byte aligned.
ALLOCATION_INFO_BYTES = 24
PLANNER_BYTES_PER_BUFFER = 40


def planning_bytes(model: TFLiteModel, scratch_buffers: int = 0) -> int:
    """The free space TFLM needs while it plans this model's head (then released): a model whose head is smaller
    than this needs the arena sized for it, or AllocateTensors() fails ("Too many buffers")."""
    infos = ALLOCATION_INFO_BYTES * (len(model.tensors) + scratch_buffers)
    planner = PLANNER_BYTES_PER_BUFFER * (len(lifetimes(model)) + scratch_buffers)
    return (infos + ALIGN - 1) // ALIGN * ALIGN + (planner + ALIGN - 1) // ALIGN * ALIGN + 2 * ALIGN


# What a node's Prepare holds in the same free space (micro_allocator.cpp: AllocateTempTfLiteTensor,
# InitializeTfLiteTensorFromFlatbuffer; released once the node is prepared), on the 32-bit device: per temporary tensor
# a TfLiteTensor (40 B) and, where the tensor has quantization parameters, a TfLiteAffineQuantization (12 B) and its
# zero points as an int array (4 B + 4 B a channel: 1 KB for a 256-channel filter). A node's kernel may take each of
# its tensors twice before the space is released (tinydeploy's kernels look at the node, then run the library's
# Prepare); beside them, the scratch buffer requests TFLM keeps there until it plans (8 B each, room for 12 more).
TEMP_TENSOR_BYTES = 40
TEMP_QUANTIZATION_BYTES = 12 + 4
SCRATCH_REQUEST_BYTES = 8
MAX_SCRATCH_PER_OP = 12


def _temp_bytes(model: TFLiteModel, index: int) -> int:
    q = model.tensors[index].quantization
    return TEMP_TENSOR_BYTES + (TEMP_QUANTIZATION_BYTES + 4 * len(q.scales) if q.scales and q.zero_points else 0)


def prepare_bytes(model: TFLiteModel, scratch_buffers: int = 0) -> int:
    """The free space TFLM needs while it prepares the nodes (the most any one node's Prepare takes, each of its
    tensors twice, and the scratch buffer requests): a model whose head is smaller than this needs the arena sized
    for it, or AllocateTensors() fails ("Failed to allocate temp memory")."""
    worst = max((2 * sum(_temp_bytes(model, i) for i in (*op.inputs, *op.outputs) if i >= 0)
                 for op in model.operators), default=0)
    return _align(worst) + _align(SCRATCH_REQUEST_BYTES * (scratch_buffers + MAX_SCRATCH_PER_OP)) + 2 * ALIGN
