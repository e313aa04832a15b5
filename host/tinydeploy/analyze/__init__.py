"""Stage 2: what a .tflite model costs on a board, and whether it fits, before anything is built.

``analyze(model, board)`` never imports TensorFlow: the graph comes from the flatbuffer reader, the
arena from the real TFLM interpreter on the host (in a child process). It analyzes the model it is given: the
model as deployed is made first by ``tinydeploy.repair.repair`` (exact rewrites around the runtime's known gaps),
and an unrepaired model that hits a repairable gap gets an issue saying so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from ..boards import Board
from ..errors import ModelError
from ..tflite_model import TFLiteModel
from .artifacts import ArenaFigure, ArenaNeed, Budget, FitVerdict, FlashEstimate
from .layers import WEIGHT_OPS, OpStats, op_stats
from .add_tables import ENTRY_BYTES, TABLE_BYTES, add_resident_bytes, add_tables
from .requant import DEFAULT_KERNELS, conv_resident_bytes, flash_params
from .runtime import Runtime, pinned

ARENA_MARGIN_FRACTION = 0.10  # added to the measured arena when a project is generated
ARENA_MARGIN_MIN_BYTES = 1024
ARENA_ALIGN_BYTES = 16  # arena_used_bytes() needs up to 16 B more when the arena pointer is unaligned


def arena_with_tail_margin(head_bytes: int, tail_bytes: int) -> int:
    """The arena for a head known exactly (an offline plan, its scratch placed: lifetimes.head_with_scratch) and a tail
    the host estimates: the margin is on the estimated part only, 10 % of it (at least 1 KiB) + 16 B, rounded to 16."""
    size = head_bytes + tail_bytes + max(int(tail_bytes * ARENA_MARGIN_FRACTION), ARENA_MARGIN_MIN_BYTES) + \
        ARENA_ALIGN_BYTES
    return (size + 15) // 16 * 16


def arena_with_margin(device_bytes: int) -> int:
    """The arena a generated project allocates: measured 32-bit figure + 10 % (at least 1 KiB) + 16 B, rounded to 16."""
    size = device_bytes + max(int(device_bytes * ARENA_MARGIN_FRACTION), ARENA_MARGIN_MIN_BYTES) + ARENA_ALIGN_BYTES
    return (size + 15) // 16 * 16


def head_and_planning(model: TFLiteModel) -> tuple[int | None, int]:
    """(the head TFLM lays out, the offline plan with the CMSIS-NN scratch buffers placed, exact; None without a
    plan; the free space TFLM needs while it prepares the nodes and plans the head (lifetimes.prepare_bytes,
    planning_bytes), which the arena must hold above the tail where the head is smaller)."""
    from ..lifetimes import head_with_scratch, planning_bytes, prepare_bytes
    from .scratch import scratch_by_node

    scratch = scratch_by_node(model)
    return head_with_scratch(model, scratch), max(planning_bytes(model, len(scratch)), prepare_bytes(model, len(scratch)))


def flash_resident_bytes(model: TFLiteModel, kernels: str) -> int:
    """The arena bytes the library's kernels would keep for what a build with ``kernels`` has in flash: the
    convolutions' per-channel parameters and own loops' op data (requant.py), ADD's op data (add_tables.py)."""
    return conv_resident_bytes(model, kernels) + add_resident_bytes(model, kernels)


# The builtin data structs `build` writes into flash (model_params.cpp's kFlashBuiltinData, td_builtin_data.h's
# constructors, which fill them as the pinned library's parsers do): per op, the constructor and the options it takes
FLASH_BUILTIN = {
    "CONV_2D": ("ConvParams", ("padding", "stride_w", "stride_h", "fused_activation", "dilation_w", "dilation_h")),
    "DEPTHWISE_CONV_2D": ("DepthwiseConvParams", ("padding", "stride_w", "stride_h", "depth_multiplier",
                                                  "fused_activation", "dilation_w", "dilation_h")),
    "AVERAGE_POOL_2D": ("PoolParams", ("padding", "stride_w", "stride_h", "filter_w", "filter_h", "fused_activation")),
    "MAX_POOL_2D": ("PoolParams", ("padding", "stride_w", "stride_h", "filter_w", "filter_h", "fused_activation")),
}


def _flash_call(op) -> str | None:
    """The constructor call that makes ``op``'s builtin data struct in flash, or None (not a FLASH_BUILTIN op)."""
    ctor = FLASH_BUILTIN.get(op.opname)
    if ctor is None or not all(k in op.options for k in ctor[1]):
        return None
    return f"{ctor[0]}({', '.join(str(int(op.options[k])) for k in ctor[1])})"


def flash_builtin_structs(model: TFLiteModel) -> list[dict]:
    """The model's distinct builtin data structs of the FLASH_BUILTIN ops, each once: {op, call}."""
    seen = dict.fromkeys((op.opname, c) for op in model.operators if (c := _flash_call(op)) is not None)
    return [{"op": name, "call": call} for name, call in seen]


def shared_builtin_bytes(model: TFLiteModel, runtime: Runtime | None = None) -> int:
    """The arena bytes the firmware saves, at least, with an offline plan (firmware/td_builtin_data.h; tflm_runtime.json's
    shared_builtin_data): a node of the ops whose struct analyze reads whole (struct_bytes, the FLASH_BUILTIN ops)
    finds its struct in flash and saves it; a node of the other shared ops is counted as a distinct struct in the
    arena (a header, no saving)."""
    facts = (runtime or pinned()).shared_builtin_data
    saved = others = 0
    for op in model.operators:
        if op.opname in facts["struct_bytes"] and _flash_call(op) is not None:
            saved += facts["struct_bytes"][op.opname]
        elif op.opname in facts["ops"]:
            others += 1
    return saved - facts["header_bytes"] * others


# TfLiteAffineQuantization (two pointers and an int) and its arrays: pointer-dominated, about half on the device
QUANTIZATION_RATIO = 0.5


def device_arena(rec: dict, runtime: Runtime) -> dict:
    """The host recording allocator's figures (tflm_host.record_arena) as the 32-bit device would allocate them: the
    interpreter's structures scaled from the host's sizes (tflm_host.HOST_BYTES) to the device's (interpreter_structs),
    the quantization structs halved; activations, op data (int32 arrays, the same on both) and unlisted tail bytes as
    measured, which overestimates slightly."""
    from .. import tflm_host

    facts = runtime.interpreter_structs
    ratios = {facts["recorded_as"][k]: facts["device_bytes"][k] / tflm_host.HOST_BYTES[k] for k in tflm_host.HOST_BYTES}
    ratios["Persistent TfLiteTensor quantization data"] = QUANTIZATION_RATIO
    categories, saved = {}, 0.0
    for what, c in rec["categories"].items():
        ratio = ratios.get(what, 1.0)
        categories[what] = {**c, "ratio_32bit": ratio, "bytes_32bit": int(round(c["bytes_host"] * ratio))}
        saved += c["bytes_host"] * (1 - ratio)
    sizes = ", ".join(f"{k} {tflm_host.HOST_BYTES[k]}->{facts['device_bytes'][k]} B" for k in tflm_host.HOST_BYTES)
    method = ("host TFLM (64-bit) recording allocator figures; the interpreter's structures it lists are scaled to their "
              f"sizes on the device (tflm_runtime.json's interpreter_structs: {sizes}), quantization structs "
              f"x{QUANTIZATION_RATIO}; activations and op data are kept as measured")
    return {**rec, "categories": categories, "device_bytes": int(rec["host_total_bytes"] - round(saved)),
            "method": method}


def arena_need(arena: ArenaFigure, model: TFLiteModel, kernels: str = DEFAULT_KERNELS) -> ArenaNeed:
    """The arena ``build`` allocates by default for ``model`` (as deployed) from the host's figure: with an offline
    plan the head is exact (the planned tensors and the CMSIS-NN kernels' scratch buffers where TFLM puts them, or
    TFLM's planning space where that is larger) and the margin covers the estimated tail only; without one, the whole
    figure gets it. With tinydeploy's kernels the tail leaves out what they keep in flash (requant.py); with an offline
    plan, also the builtin data the firmware shares (shared_builtin_bytes)."""
    flash = flash_resident_bytes(model, kernels)
    head, planning = head_and_planning(model)
    host_head = arena.host_head_bytes or 0
    if head is not None and arena.host_head_bytes is not None:
        tail = arena.device_bytes - arena.scratch_bytes - host_head - flash - shared_builtin_bytes(model)
        head = max(head, planning)
        return ArenaNeed(kernels, True, head, tail, flash, head + tail, arena_with_tail_margin(head, tail))
    needed = arena.device_bytes - flash + max(0, planning - host_head)
    return ArenaNeed(kernels, False, host_head, needed - host_head, flash, needed, arena_with_margin(needed))


# Issue codes: stable, for callers and scripts to test (messages are for people and may change).
TYPE_NOT_INT8 = "type-not-int8"
UNSUPPORTED_OP = "unsupported-op"
SOFTMAX_SCALE = "softmax-input-scale"
SUBGRAPHS = "several-subgraphs"
MULTI_IO = "several-inputs-or-outputs"
OUTPUT_TOO_LARGE = "output-too-large"
RUNTIME_GAP = "runtime-gap"  # a known gap of the runtime that nothing repairs
REPAIRABLE_GAP = "repairable-gap"  # a known gap that tinydeploy.repair rewrites exactly (repair before analyze)

# The firmware reports every output of a golden check in one record line, which the host reads up to
# device.link.MAX_LINE bytes: outputs larger than this cannot be checked (up to 5 characters per int8 value).
MAX_OUTPUT_ELEMENTS = 600


@dataclass
class Issue:
    kind: str  # "type" | "unsupported-op" | "runtime-gap": the class of problem
    message: str
    op_index: int | None = None
    tensor: str | None = None
    hint: str | None = None  # what to do, when it is not the usual advice of its kind
    code: str = UNSUPPORTED_OP  # the stable machine-readable reason (the constants above)

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class Analysis:
    source: str
    model_bytes: int
    board: Board
    runtime: Runtime
    ops: list[OpStats]
    input: dict
    output: dict
    type_issues: list[Issue]
    support_issues: list[Issue]
    arena: ArenaFigure | None  # None when not measured
    flash: FlashEstimate
    memory: dict  # the head's lower bound: lifetimes.lower_bound, as TFLM counts lifetimes and with the input kept
    kernels: str = DEFAULT_KERNELS  # whose kernels the build registers (requant.KERNELS)
    arena_need: ArenaNeed | None = None  # the arena that build allocates (None when the arena was not measured)
    fit: FitVerdict | None = None

    @property
    def total_macs(self) -> int:
        return sum(o.macs for o in self.ops)

    @property
    def total_params(self) -> int:
        return sum(o.params for o in self.ops)

    @property
    def op_names(self) -> list[str]:
        return list(dict.fromkeys(o.op for o in self.ops))  # distinct, in order of first use

    @property
    def is_int8(self) -> bool:
        return not self.type_issues

    @property
    def supported(self) -> bool:
        return not self.support_issues

    def to_dict(self) -> dict:
        return {
            "schema": "tinydeploy.analysis/1",
            "model": self.source,
            "model_bytes": self.model_bytes,
            "board": self.board.to_dict(),
            "runtime": {"name": self.runtime.name, "lib_dep": self.runtime.lib_dep, "ops_source": self.runtime.ops_source},
            "input": self.input,
            "output": self.output,
            "ops": [o.to_dict() for o in self.ops],
            "totals": {"ops": len(self.ops), "params": self.total_params, "macs": self.total_macs},
            "op_types": self.op_names,
            "int8": {"ok": self.is_int8, "issues": [i.to_dict() for i in self.type_issues]},
            "support": {"ok": self.supported, "issues": [i.to_dict() for i in self.support_issues]},
            "arena": self.arena.to_dict() if self.arena else None,
            "arena_need": self.arena_need.to_dict() if self.arena_need else None,
            "memory": self.memory,
            "flash": self.flash.to_dict(),
            "fit": self.fit.to_dict() if self.fit else None,
        }


def _io(model: TFLiteModel, idx: int) -> dict:
    t = model.tensors[idx]
    q = t.quantization
    return {"name": t.name, "shape": list(t.shape), "dtype": t.dtype,
            "scale": q.scales[0] if q.scales else None, "zero_point": q.zero_points[0] if q.zero_points else None}


def shape_tensors(model: TFLiteModel) -> set[int]:
    """Integer tensors that carry shapes, not data: constants, SHAPE's outputs, and integer arithmetic on
    those alone (Keras's Reshape converts to SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE)."""
    shape = {t.index for t in model.tensors if t.dtype in ("INT32", "INT64") and t.is_constant}
    for op in model.operators:
        outs = [i for i in op.outputs if i >= 0]
        if not outs or any(model.tensors[i].dtype not in ("INT32", "INT64") for i in outs):
            continue
        if op.opname == "SHAPE" or all(i in shape for i in op.inputs if i >= 0):
            shape.update(outs)
    return shape


def check_types(model: TFLiteModel) -> list[Issue]:
    """Every tensor that is not int8, except int32 biases and int32 shape computations."""
    issues = []
    shape = shape_tensors(model)
    seen = set()
    for op in model.operators:
        for pos, ti in enumerate(op.inputs + op.outputs):
            if ti < 0 or ti in seen:
                continue
            seen.add(ti)
            t = model.tensors[ti]
            if t.dtype == "INT8":
                continue
            is_input = pos < len(op.inputs)
            if t.dtype in ("INT32", "INT64") and is_input and t.is_constant:
                if op.opname in WEIGHT_OPS and pos == 2:
                    continue  # bias
                if op.opname not in WEIGHT_OPS:
                    continue  # shape, axis, paddings
            if ti in shape and not t.is_constant:
                continue  # computed shapes (SHAPE, STRIDED_SLICE, PACK on int32)
            role = "constant" if t.is_constant else "activation"
            issues.append(Issue("type", f"{t.dtype} {role} {t.name!r} of {op.opname} (op {op.index})", op.index, t.name,
                                code=TYPE_NOT_INT8))
    return issues


def _int8_input(model: TFLiteModel, op) -> bool:
    return model.tensors[op.inputs[0]].dtype == "INT8"  # the gaps are in the int8 kernels; other models are not deployed


def _has_per_channel_weights(model: TFLiteModel, op) -> bool:
    return _int8_input(model, op) and len(op.inputs) > 1 and model.tensors[op.inputs[1]].quantization.per_channel


def _has_no_bias(model: TFLiteModel, op) -> bool:
    return _int8_input(model, op) and (len(op.inputs) < 3 or op.inputs[2] < 0)


# How each known gap of tflm_runtime.json is recognised in a model (the facts about it are data there).
GAP_DETECTORS = {
    "per-channel-fully-connected": _has_per_channel_weights,
    "conv-without-bias": _has_no_bias,
    "depthwise-without-bias": _has_no_bias,
}


def gap_hits(model: TFLiteModel, runtime: Runtime) -> list[tuple[dict, object]]:
    """(known gap, op) for every op of the model that hits a known gap of the runtime (tflm_runtime.json)."""
    return [(gap, op) for op in model.operators for gap in runtime.known_gaps
            if gap["op"] == op.opname and GAP_DETECTORS[gap["id"]](model, op)]


def gap_issues(model: TFLiteModel, runtime: Runtime) -> list[Issue]:
    issues = []
    for gap, op in gap_hits(model, runtime):
        if gap.get("repair"):
            issues.append(Issue("runtime-gap", f"{op.opname} (op {op.index}): {gap['what']}", op.index,
                                code=REPAIRABLE_GAP, hint="tinydeploy build and tinydeploy analyze rewrite it exactly "
                                "(in Python: tinydeploy.repair.repair(model) before analyze)"))
        else:
            issues.append(Issue("runtime-gap", f"{op.opname} (op {op.index}): {gap['what']}", op.index, code=RUNTIME_GAP))
    return issues


def check_support(model: TFLiteModel, runtime: Runtime) -> list[Issue]:
    issues = []
    for name in model.op_names:
        if not runtime.supports(name):
            issues.append(Issue("unsupported-op", f"{name} is not in the pinned TFLite Micro runtime ({runtime.commit})",
                                code=UNSUPPORTED_OP))
    for op in model.operators:
        # TFLM's int8 softmax turns input_scale * beta * 2^26 into a fixed-point multiplier that must exceed 1
        # (PreprocessSoftmaxScaling -> QuantizeMultiplierGreaterThanOne: TFLITE_CHECK_GT); below it, Prepare aborts.
        if op.opname == "SOFTMAX" and model.tensors[op.inputs[0]].dtype == "INT8":
            scale = model.tensors[op.inputs[0]].quantization.scales[0]
            if scale * op.options.get("beta", 1.0) * 2 ** 26 <= 1.0:
                issues.append(Issue(
                    "unsupported-op", f"SOFTMAX (op {op.index}): its input scale {scale:.3g} is below what TFLM's int8 "
                    f"softmax accepts (scale x beta x 2^26 must exceed 1; TFLM aborts while allocating): the values "
                    f"before it barely vary over the representative data, as in an untrained or collapsed model", op.index,
                    hint="Train the model, or calibrate it with representative data that moves its outputs, then "
                         "convert it again", code=SOFTMAX_SCALE))
    if model.num_subgraphs > 1:
        issues.append(Issue("unsupported-op", f"the model has {model.num_subgraphs} subgraphs; generated projects run "
                                              f"the first only", code=SUBGRAPHS))
    # an input also listed as an output is the memory plan's kept input (plan.with_plan), not a second result
    results = [o for o in model.outputs if o not in model.inputs]
    if len(model.inputs) != 1 or len(results) != 1:
        issues.append(Issue("unsupported-op", f"the model has {len(model.inputs)} inputs and {len(model.outputs)} outputs; "
                                              f"the generated firmware runs image classifiers with one input and one output",
                            code=MULTI_IO, hint="Export a model with a single input image and a single class-score "
                                                "output (concatenate or drop the others in Keras), then convert it again"))
    elif model.output_tensors[0].num_elements > MAX_OUTPUT_ELEMENTS:
        n = model.output_tensors[0].num_elements
        issues.append(Issue("unsupported-op", f"the model's output has {n:,} values; the firmware checks and reports "
                                              f"at most {MAX_OUTPUT_ELEMENTS} (class scores)", code=OUTPUT_TOO_LARGE,
                            hint="End the model with its classifier (a Dense layer over the classes), then convert "
                                 "it again"))
    return issues


def flash_estimate(model: TFLiteModel, runtime: Runtime, kernels: str = DEFAULT_KERNELS) -> FlashEstimate:
    fe = runtime.flash_estimate
    code = {name: runtime.kernel_flash_bytes(name) for name in model.op_names}
    constants = flash_constants_bytes(model, kernels)
    total = len(model.data) + fe["framework_bytes"] + sum(code.values()) + constants
    return FlashEstimate(model_bytes=len(model.data), framework_bytes=fe["framework_bytes"], kernel_bytes=code,
                         total_bytes=total, method=fe["method"], constants_bytes=constants)


def flash_constants_bytes(model: TFLiteModel, kernels: str) -> int:
    """model_params.cpp's constants: per CONV_2D / DEPTHWISE_CONV_2D node two int32 a channel and its ChannelParams
    entry (72 B: the output tensor, the channels, two pointers, the OpDataConv), per ADD node with tables its two
    tables and its entry."""
    params = sum(8 * p.channels + 72 for p in flash_params(model, kernels))
    return params + (TABLE_BYTES + ENTRY_BYTES) * len(add_tables(model, kernels))


def analyze_or_graph(model: TFLiteModel, board: Board) -> tuple[Analysis, ModelError | None]:
    """``analyze`` with the arena measured; when the TFLM host interpreter refuses or aborts on the model, the graph's
    figures without an arena, and the refusal (for callers that report many models and must not stop at one)."""
    try:
        return analyze(model, board), None
    except ModelError as e:
        return analyze(model, board, measure_arena=False), e


def analyze(model: TFLiteModel, board: Board, *, measure_arena: bool = True, runtime: Runtime | None = None,
            arena: ArenaFigure | None = None, kernels: str = DEFAULT_KERNELS) -> Analysis:
    """The model as given: graph figures, issues, the arena measured by the TFLM host interpreter, the arena a build
    with ``kernels`` allocates for it, the fit verdict. ``arena``: the figure an earlier analysis of the same model
    measured (no second interpreter run)."""
    from .. import tflm_host

    runtime = runtime or pinned()
    a = Analysis(
        source=model.source, model_bytes=len(model.data), board=board, runtime=runtime, ops=op_stats(model),
        input=_io(model, model.inputs[0]), output=_io(model, model.outputs[0]),
        type_issues=check_types(model), support_issues=check_support(model, runtime) + gap_issues(model, runtime),
        arena=None, flash=flash_estimate(model, runtime, kernels), memory=memory_bounds(model), kernels=kernels,
    )
    if arena is not None:
        a.arena = arena
    elif measure_arena and a.is_int8 and not a.support_issues:  # TFLM would refuse or abort on the others
        from .scratch import max_scratch_bytes

        rec = device_arena(tflm_host.record_arena(model.data), runtime)
        scratch = max_scratch_bytes(model)  # the host's reference kernels ask for none
        a.arena = ArenaFigure(**{**rec, "device_bytes": rec["device_bytes"] + scratch,
                                 "method": rec["method"] + f"; plus the largest CMSIS-NN scratch buffer, {scratch} B"},
                              scratch_bytes=scratch)
    if a.arena is not None:
        a.arena_need = arena_need(a.arena, model, kernels)
    a.fit = fit_verdict(a)
    return a


def memory_bounds(model: TFLiteModel) -> dict:
    """The least bytes any plan of the arena's head needs (the most live at one operator, TFLM's 16-byte buffer
    alignment included): for this model as it is (a model that keeps its input has it live to the end already), with
    the input kept to the end (what the offline plan does so that the firmware needs no copy of the input), and with
    that and each operator's CMSIS-NN scratch buffer (analyze/scratch.py); whether this model keeps its input."""
    from ..lifetimes import lifetimes, live_bytes, lower_bound
    from .scratch import max_scratch_bytes, scratch_by_node

    kept = model.inputs[0] in model.outputs
    kept_buffers = lifetimes(model, keep_input=True)
    live = live_bytes(kept_buffers, len(model.operators))
    scratch = scratch_by_node(model)
    return {"lower_bound_bytes": lower_bound(lifetimes(model)),
            "lower_bound_input_kept_bytes": lower_bound(kept_buffers),
            # what must be live at each operator, its CMSIS-NN kernel's scratch buffer too (operator k: scope k + 1)
            "lower_bound_with_scratch_bytes": max([live[k + 1] + (v + 15) // 16 * 16 for k, v in scratch.items()]
                                                  + [max(live or [0])]),
            "input_kept": kept, "scratch": "in lower_bound_with_scratch_bytes only (CMSIS-NN's requests, input kept)",
            "largest_scratch_bytes": max_scratch_bytes(model),  # a CMSIS-NN kernel's request (scratch.py)
            "method": "max over operators of the bytes of the tensors live there, each rounded up to 16"}


def fit_verdict(a: Analysis) -> FitVerdict:
    b = a.board
    need = a.arena_need
    arena = need.needed_bytes if need else None
    # the firmware's own copy of the input, unless the model keeps its input (plan.with_plan)
    copy = 0 if a.memory.get("input_kept") else math.prod(a.input["shape"])
    firmware = a.runtime.firmware_ram_bytes(copy, len(a.ops), len(a.op_names))
    return FitVerdict(
        flash=Budget(a.flash.total_bytes, b.app_flash_bytes),
        ram=Budget(need.allocated_bytes + firmware if need else None, b.app_ram_bytes),
        arena_bytes=arena, firmware_bytes=firmware, firmware_kind=a.runtime.firmware_ram_estimate["kind"],
        firmware_method=a.runtime.firmware_ram_estimate["method"],
        margin=f"+{int(ARENA_MARGIN_FRACTION * 100)}% (at least {ARENA_MARGIN_MIN_BYTES} B) + {ARENA_ALIGN_BYTES} B alignment"
               + (" on the estimated tail (the head is the offline plan's, exact)" if need and need.planned else ""),
        peak_op=max(a.ops, key=lambda o: o.live_bytes) if a.ops else None,
        largest_weights=tuple(sorted((o for o in a.ops if o.weight_bytes), key=lambda o: -o.weight_bytes)[:3]),
    )


def require_deployable(a: Analysis) -> None:
    """Raise the one-line error for a model that the generated firmware could not run correctly (exit 2)."""
    if not a.is_int8:
        first = a.type_issues[0].message
        raise ModelError(f"{a.source} is not a full-integer int8 model ({len(a.type_issues)} non-int8 tensors, first: {first})",
                         "A .tflite cannot be re-quantized: convert the Keras model again, with `tinydeploy compress "
                         "--model MODEL.keras --dataset D --quantize int8` or with the TFLite converter (a representative "
                         "dataset, TFLITE_BUILTINS_INT8, int8 input and output)")
    if a.support_issues:
        first = a.support_issues[0]
        raise ModelError(f"{a.source}: {first.message}",
                         first.hint or "Replace that layer in the Keras model with one the runtime has (`tinydeploy "
                                       "analyze` lists them), then convert it again")


def require_fit(a: Analysis) -> None:
    """Raise the one-line verdict for a model that does not fit the board (exit 1), with the levers that shrink it."""
    if a.fit.fits is not False:
        return
    from ..console import kib
    from ..errors import EXIT_DOES_NOT_FIT

    over = ", ".join(f"{k} over by {kib(n)}" for k, n in a.fit.overruns().items())
    raise ModelError(f"{a.source} does not fit the {a.board.name} ({over})",
                     "Shrink what the board stores and holds: a smaller width multiplier, a smaller input size, fewer "
                     "filters (`tinydeploy compress --prune-filters`), or fewer layers; unstructured pruning leaves the "
                     "int8 file the same size", exit_code=EXIT_DOES_NOT_FIT)
