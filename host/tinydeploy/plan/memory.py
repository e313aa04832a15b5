"""The planner, its check, the kept input and the plan written into a model (see the package docstring); the
lifetimes and the lower bound it works from are tinydeploy/lifetimes.py."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from ..errors import ModelError
from ..lifetimes import ALIGN, METADATA_NAME, Buffer, lifetimes, lower_bound, lowest_gap, offline_plan
from ..tflite_model import TFLiteModel

ONLINE = -1  # kOnlinePlannedBuffer: TFLM plans this tensor itself
SHUFFLES = 64  # seeded random orders tried beside the heuristic ones, where the graph is not a chain


class PlanError(ModelError):
    """A plan that would let two live tensors share memory (a bug, never shipped), or a model it cannot describe."""


@dataclass(frozen=True)
class MemoryPlan:
    offsets: dict[int, int]  # tensor index -> byte offset in the head
    head_bytes: int  # the end of the highest buffer
    lower_bound_bytes: int
    method: str  # how the winning placement was found
    input_kept: bool
    in_place: tuple[tuple[int, int], ...] = ()  # (input, output) tensors a node writes over: same offset

    def to_dict(self) -> dict:
        return {"head_bytes": self.head_bytes, "lower_bound_bytes": self.lower_bound_bytes, "method": self.method,
                "input_kept": self.input_kept, "tensors": len(self.offsets),
                "in_place": [list(p) for p in self.in_place]}


def _groups(buffers: list[Buffer], in_place) -> dict[int, tuple[Buffer, ...]]:
    """Each tensor of an in-place pair -> every buffer placed at its offset with it (pairs chained through a tensor
    form one group), in order of first use."""
    by_tensor = {b.tensor: b for b in buffers}
    root = {t: t for pair in in_place for t in pair}

    def find(t):
        while root[t] != t:
            t = root[t]
        return t

    for a, b in in_place:
        root[find(b)] = find(a)
    members: dict[int, list[Buffer]] = {}
    for t in root:
        members.setdefault(find(t), []).append(by_tensor[t])
    return {t: tuple(sorted(members[find(t)], key=lambda b: (b.first, b.tensor))) for t in root}


def _common_gap(placed: list[tuple[Buffer, int]], members: tuple[Buffer, ...]) -> int:
    """The lowest offset where every member fits beside the buffers placed that live at once with it."""
    for at in sorted({0} | {o + p.size for p, o in placed}):
        if not any(m.overlaps_in_time(p) and at < o + p.size and o < at + m.size for m in members for p, o in placed):
            return at
    raise AssertionError("unreachable: above every placed buffer is free")


def _first_fit(order: list[Buffer], groups: dict[int, tuple[Buffer, ...]] | None = None) -> tuple[dict[int, int], int]:
    placed: list[tuple[Buffer, int]] = []
    offsets: dict[int, int] = {}
    top = 0
    for b in order:
        if b.tensor in offsets:  # placed with its group
            continue
        group = (groups or {}).get(b.tensor)
        if group is None:
            at = lowest_gap(sorted((o, o + p.size) for p, o in placed if p.overlaps_in_time(b)), b.size)
            group = (b,)
        else:
            at = _common_gap(placed, group)
        for m in group:
            offsets[m.tensor] = at
            placed.append((m, at))
            top = max(top, at + m.size)
    return offsets, top


def _chain(buffers: list[Buffer], pinned: list[Buffer]) -> tuple[dict[int, int], int] | None:
    """Exact when, besides the pinned buffers (kept at the bottom), at most two buffers are live at once and the
    lifetimes form a sequence: buffers alternate between the bottom and the top of the space above the pinned ones,
    so neighbours never meet and the head is the lower bound."""
    rest = sorted((b for b in buffers if b not in pinned), key=lambda b: (b.first, b.last))
    if not rest or max(_live_count(rest)) > 2:
        return None
    for i, a in enumerate(rest):  # a sequence: each buffer overlaps its neighbours in the order only
        if any(a.overlaps_in_time(b) for b in rest[i + 2:]):
            return None
    base = sum(p.size for p in pinned)
    pair = max([a.size + b.size for a, b in zip(rest, rest[1:]) if a.overlaps_in_time(b)] + [b.size for b in rest])
    offsets, at = {}, 0
    for p in pinned:
        offsets[p.tensor], at = at, at + p.size
    side = 0
    for k, b in enumerate(rest):
        if k and not rest[k - 1].overlaps_in_time(b):
            side = 0  # a fresh start: nothing before it is live any more
        offsets[b.tensor] = base if side == 0 else base + pair - b.size
        side ^= 1
    return offsets, base + pair


def _live_count(buffers: list[Buffer]) -> list[int]:
    scopes = max(b.last for b in buffers) + 1
    n = [0] * scopes
    for b in buffers:
        for s in range(b.first, b.last + 1):
            n[s] += 1
    return n


def check(buffers, offsets: dict[int, int], in_place=()) -> None:
    """Raise PlanError unless every buffer is placed, aligned, and no two buffers live at once share a byte, except
    an in-place pair (a node's input and the output it writes over it) at one offset."""
    allowed = {frozenset(p) for p in in_place}
    for b in buffers:
        if b.tensor not in offsets or offsets[b.tensor] < 0 or offsets[b.tensor] % ALIGN:
            raise PlanError(f"memory plan: tensor {b.tensor} has no aligned place", "Report this as a tinydeploy bug")
    bs = list(buffers)
    for i, a in enumerate(bs):
        oa = offsets[a.tensor]
        for b in bs[i + 1:]:
            ob = offsets[b.tensor]
            if a.overlaps_in_time(b) and oa < ob + b.size and ob < oa + a.size:
                if oa == ob and frozenset((a.tensor, b.tensor)) in allowed:
                    continue
                raise PlanError(f"memory plan: tensors {a.tensor} and {b.tensor} are live at once and overlap",
                                "Report this as a tinydeploy bug; build with --memory-plan tflm meanwhile")


def place(buffers: list[Buffer], pinned: list[Buffer] = (), *, shuffles: int = SHUFFLES,
          in_place=()) -> tuple[dict[int, int], int, str]:
    """Offsets for ``buffers`` (the ``pinned`` ones, live throughout, stacked from offset 0 first), the head they span
    and how they were found: the chain construction where it applies (exact), else the best first-fit over TFLM's own
    order (largest first) and other orders (first use, longest life, size x life, seeded shuffles); ``in_place``:
    (input, output) pairs that may share an offset, each group of them placed as one (and beside the chain, which
    does not use them). Checked."""
    pinned = list(pinned)
    groups = _groups(buffers, in_place) if in_place else None
    tries: list[tuple[str, tuple[dict[int, int], int]]] = []
    chain = _chain(buffers, pinned)
    if chain is not None:
        tries.append(("chain (exact)", chain))
    if chain is None or groups:
        rest = [b for b in buffers if b not in pinned]
        orders = {"largest first (TFLM's greedy order)": sorted(rest, key=lambda b: (-b.size, b.first)),
                  "first use": sorted(rest, key=lambda b: (b.first, -b.size)),
                  "longest life": sorted(rest, key=lambda b: (-(b.last - b.first), -b.size)),
                  "size x life": sorted(rest, key=lambda b: (-b.size * (b.last - b.first + 1), b.first))}
        rng = random.Random(0)
        for k in range(shuffles):
            o = rest[:]
            rng.shuffle(o)
            orders[f"shuffle {k}"] = o
        for name, order in orders.items():
            tries.append((name + (", in place" if groups else ""), _first_fit(pinned + order, groups)))
    method, (offsets, head) = min(tries, key=lambda t: t[1][1])
    check(buffers, offsets, in_place)
    return offsets, head, method


def in_place_pairs(model: TFLiteModel, buffers: list[Buffer]) -> tuple[tuple[int, int], ...]:
    """(input, output) of each node tinydeploy's kernels may run in place (analyze.requant.depthwise_in_place), where
    its input's life ends at the node (no later reader, not a graph input or output) and the output is not larger."""
    from ..analyze.requant import depthwise_in_place

    by_tensor = {b.tensor: b for b in buffers}
    pairs = []
    for op in model.operators:
        if len(op.inputs) < 1 or len(op.outputs) != 1:
            continue
        x, y = by_tensor.get(op.inputs[0]), by_tensor.get(op.outputs[0])
        scope = op.index + 1  # lifetimes' scope of the operator
        if (x is None or y is None or x.last != scope or y.first != scope or y.size > x.size
                or x.tensor in model.inputs or x.tensor in model.outputs):
            continue
        if depthwise_in_place(model, op):
            pairs.append((x.tensor, y.tensor))
    return tuple(pairs)


def plan(model: TFLiteModel, *, keep_input: bool = False, shuffles: int = SHUFFLES,
         in_place: bool = False) -> MemoryPlan:
    """The model's head buffers placed (place()); ``keep_input``: the input is live throughout and sits at offset 0,
    alone; ``in_place``: the depthwise nodes tinydeploy's kernels may run in place may have their output over their
    input (only tinydeploy's kernels may run such a plan: TFLM's write an output while its input is still read)."""
    buffers = lifetimes(model, keep_input=keep_input)
    pinned = [b for b in buffers if keep_input and b.tensor in model.inputs]
    pairs = in_place_pairs(model, buffers) if in_place else ()
    offsets, head, method = place(buffers, pinned, shuffles=shuffles, in_place=pairs)
    used = tuple(p for p in pairs if offsets[p[0]] == offsets[p[1]])  # the pairs the winning placement shares
    return MemoryPlan(offsets, head, lower_bound(buffers), method, keep_input, used)


def with_plan(data: bytes, p: MemoryPlan) -> bytes:
    """``data`` with ``p`` as its OfflineMemoryAllocation metadata (an earlier plan replaced). Where the plan keeps the
    input, the input is also listed as a graph output (after the real outputs): TFLM then keeps its memory to the end
    of an inference, so that neither tensors nor kernels' scratch buffers are placed over it. Output 0 stays the
    model's output."""
    ed = _editor(data)
    g = ed.g
    if p.input_kept and int(g.inputs[0]) not in [int(o) for o in g.outputs]:
        g.outputs = np.concatenate([np.asarray(g.outputs, np.int32), np.asarray(g.inputs[:1], np.int32)])
    n = len(g.tensors)
    words = [0, 0, n] + [p.offsets.get(i, ONLINE) for i in range(n)]
    buf = ed.buffer(np.asarray(words, dtype="<i4").tobytes())
    md = ed.S.MetadataT()
    md.name, md.buffer = METADATA_NAME, buf
    ed.drop_metadata(METADATA_NAME)
    ed.m.metadata.append(md)
    return ed.pack()


def planned_offsets(data: bytes) -> list[int] | None:
    """The offsets of an OfflineMemoryAllocation plan in ``data``, or None."""
    return offline_plan(TFLiteModel.from_bytes(data))


def _editor(data: bytes):
    from ..tflite_edit import Editor

    return Editor(data)


MEMORY_PLANS = ("offline", "tflm")  # build --memory-plan: tinydeploy's plan in the model, or TFLM's greedy planner


@dataclass(frozen=True)
class Deployed:
    """The model the firmware runs: repaired (tinydeploy.repair), then planned (``plan`` None with TFLM's planner)."""
    model: TFLiteModel
    repaired: object  # repair.Repaired
    plan: MemoryPlan | None
    folded: object = None  # fold.Folded: the shape computations folded before planning (offline)


def deployed(model: TFLiteModel, memory_plan: str = "offline", kernels: str | None = None) -> Deployed:
    """``model`` as the firmware runs it: the repairs, then with ``offline`` the input kept and the plan written in
    (with tinydeploy's kernels, the default, depthwise nodes in place where they may be: such a model runs right only
    on them, not on the host's TFLM)."""
    from ..repair import repair

    return plan_memory(repair(model), memory_plan, kernels)


def as_deployed(repaired, board) -> TFLiteModel:
    """The model `build` deploys with its defaults, for `analyze` and the study's fit verdicts: planned (``offline``)
    where it deploys (full int8, every op supported), else the repaired model as it is (which `build` refuses)."""
    from ..analyze import analyze

    pre = analyze(repaired.model, board, measure_arena=False)
    return plan_memory(repaired).model if pre.is_int8 and pre.supported else repaired.model


def plan_memory(repaired, memory_plan: str = "offline", kernels: str | None = None) -> Deployed:
    """The repaired model (repair.Repaired) with its memory plan: ``offline`` folds its shape computations
    (fold.fold_shapes), keeps the input and writes the plan into the model (with tinydeploy's ``kernels``, the
    default, depthwise nodes run in place where they may: plan(in_place=True)), ``tflm`` leaves the model as it is
    and planning to TFLM."""
    from ..analyze.requant import DEFAULT_KERNELS
    from .fold import fold_shapes

    if memory_plan not in MEMORY_PLANS:
        raise ValueError(f"memory plan {memory_plan!r}")
    kernels = kernels or DEFAULT_KERNELS
    m = repaired.model
    if memory_plan == "tflm":
        return Deployed(m, repaired, None)
    folded = fold_shapes(m)
    m = folded.model
    p = plan(m, keep_input=True, in_place=kernels == "tinydeploy")  # the lifetimes once its input is also an output
    return Deployed(TFLiteModel.from_bytes(with_plan(m.data, p), source=m.source), repaired, p, folded)
