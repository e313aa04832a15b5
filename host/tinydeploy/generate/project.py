"""Render a complete PlatformIO project: templates/ per model + firmware/ static sources."""

from __future__ import annotations

import hashlib
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .. import __version__
from ..analyze import (ARENA_ALIGN_BYTES, ARENA_MARGIN_FRACTION, ARENA_MARGIN_MIN_BYTES, Analysis, arena_need,
                       flash_builtin_structs, head_and_planning)
from ..analyze.add_tables import add_tables
from ..analyze.requant import DEFAULT_KERNELS, KERNELS, cmsis_wrapper_takes_3x3, flash_params, own_loops_take
from ..errors import TinyDeployError
from ..fsutil import StagedDirectory, write_json_atomic
from ..sources import firmware_dir, templates_dir
from ..tflite_model import TFLiteModel
from .carray import byte_array, c_comment, c_identifier, c_string, int_array
from .golden import Golden
from .registration import registration

TEMPLATES = ("platformio.ini", "README.md", "src/model_config.h", "src/model_ops.h", "src/model_data.cpp",
             "src/golden_data.cpp", "src/model_params.cpp")
FIRMWARE_FILES = ("main.cpp", "td_board.h", "td_board_arduino.cpp", "td_device.cpp", "td_device.h", "td_log.cpp",
                  "td_log.h", "td_report.cpp", "td_report.h", "td_stats.cpp", "td_stats.h", "td_tflm.cpp", "td_tflm.h",
                  "td_model_info.h", "td_builtin_data.cpp", "td_builtin_data.h")


def kernel_table() -> dict:
    """firmware/kernels/kernels.json: tinydeploy's kernels, by op, and their sources."""
    import json

    return json.loads((firmware_dir() / "kernels" / "kernels.json").read_text())


def _float_repr(x: float | None) -> str:
    return "0.0" if x is None else repr(float(np.float32(x)))


def _io_context(t) -> dict:
    q = t.quantization
    return {"dtype": t.dtype, "shape": list(t.shape), "bytes": t.nbytes,
            "scale_repr": _float_repr(q.scales[0] if q.scales else None),
            "zero_point": q.zero_points[0] if q.zero_points else 0}


MEASURED_ARENA_MARGIN = 0.02  # over the device's own arena_used_bytes(): it is the figure itself, not an estimate


def _round16(n: float) -> int:
    return (int(n) + 15) // 16 * 16


@dataclass(frozen=True)
class ArenaPlan:
    """The tensor arena a generated project allocates, and where the figure comes from."""

    kind: str  # "host-estimate" | "measured" | "probe"
    host_bytes: int | None  # the host interpreter's 64-bit figure
    needed_bytes: int  # what the runtime needs, by the figure's source
    bytes: int  # what the project allocates
    source: str
    margin: str

    def to_dict(self) -> dict:
        return asdict(self)


def host_arena_plan(analysis: Analysis, model: TFLiteModel, kernels: str = DEFAULT_KERNELS) -> ArenaPlan:
    """The arena from the host interpreter's figure, corrected to 32-bit, with a margin for what it cannot see
    (analyze.arena_need, the rule analyze's verdict uses too). ``model``: as deployed."""
    arena = analysis.arena
    if arena is None:
        raise TinyDeployError("the arena was not measured", "Run build without --no-arena")
    need = analysis.arena_need if analysis.kernels == kernels and analysis.arena_need else \
        arena_need(arena, model, kernels)
    flash = need.flash_bytes
    flash_note = f", less {flash} B of per-channel parameters and op data in flash" if flash else ""
    measured = (f"the host TFLM interpreter measured {arena.host_total_bytes} B (64-bit), corrected to "
                f"{arena.device_bytes - arena.scratch_bytes} B for the 32-bit device")
    if need.planned:
        return ArenaPlan("host-estimate", arena.host_total_bytes, need.needed_bytes, need.allocated_bytes,
                         f"{measured}: head {need.head_bytes} B (the offline plan with the CMSIS-NN kernels' scratch "
                         f"buffers, exact, or TFLM's planning space) + tail {need.tail_bytes} B (estimated{flash_note})",
                         f"on the tail: {int(ARENA_MARGIN_FRACTION * 100)}%, at least {ARENA_MARGIN_MIN_BYTES} B, "
                         "+ 16 B alignment")
    return ArenaPlan("host-estimate", arena.host_total_bytes, need.needed_bytes, need.allocated_bytes,
                     f"{measured}, plus {arena.scratch_bytes} B for the largest CMSIS-NN scratch buffer{flash_note}",
                     f"{int(ARENA_MARGIN_FRACTION * 100)}%, at least {ARENA_MARGIN_MIN_BYTES} B, + 16 B alignment")


def measured_arena_plan(analysis: Analysis, model: TFLiteModel, used_bytes: int, target: str) -> ArenaPlan:
    """The arena from the firmware's own arena_used_bytes() (the pinned TFLM and its CMSIS-NN kernels), which counts
    the head and the tail once AllocateTensors() is done but not the space TFLM prepares the nodes and plans the head
    in: where that is larger than the head (small activations, many tensors, wide per-channel layers), the arena holds
    it above the tail."""
    head, planning = head_and_planning(model)
    if head is None:
        head = analysis.arena.host_head_bytes if analysis.arena and analysis.arena.host_head_bytes else 0
    needed = max(used_bytes, used_bytes - head + planning)
    planning_note = f" (+ {needed - used_bytes} B for the space TFLM prepares the nodes and plans in)" if needed > used_bytes else ""
    return ArenaPlan("measured", analysis.arena.host_total_bytes if analysis.arena else None, needed,
                     _round16(needed * (1 + MEASURED_ARENA_MARGIN) + ARENA_ALIGN_BYTES),
                     f"the firmware's arena_used_bytes() measured {used_bytes} B on {target} with the pinned TFLM"
                     + planning_note, f"{int(MEASURED_ARENA_MARGIN * 100)}%, + 16 B alignment")


def _cmsis_flags(model: TFLiteModel, params) -> list[tuple[str, int]]:
    """td_kernel_cmsis.cpp's TD_CMSIS_CONV / TD_CMSIS_DEPTHWISE where a default differs: 0 where tinydeploy's own loops
    take every such node with its parameters in flash (the CMSIS-NN function need not be linked); for DEPTHWISE, 2
    where every node left to CMSIS-NN is one its wrapper runs by the 3x3 function (the wrapper's others need not be)."""
    nodes = [model.operators[p.operator] for p in params]
    flags = []
    for op, macro in (("CONV_2D", "CONV"), ("DEPTHWISE_CONV_2D", "DEPTHWISE")):
        mine = [n for n in nodes if n.opname == op]
        left = [n for n in mine if not own_loops_take(model, n)]
        if mine and not left:
            flags.append((macro, 0))
        elif left and op == "DEPTHWISE_CONV_2D" and all(cmsis_wrapper_takes_3x3(model, n) for n in left):
            flags.append((macro, 2))
    return flags


def build_context(model: TFLiteModel, analysis: Analysis, golden: Golden, labels: list[str], *, name: str,
                  command: str, arena_plan: ArenaPlan | None = None, kernels: str = DEFAULT_KERNELS) -> dict:
    """What the templates render for ``model`` (as deployed). ``labels``: one per class, or none (class_0, ...).
    ``kernels``: "tinydeploy" registers tinydeploy's own kernels (kernels.json) for the ops it has them for."""
    from ..plan import planned_offsets

    if kernels not in KERNELS:
        raise TinyDeployError(f"unknown kernels {kernels!r}", f"Choose from {', '.join(KERNELS)}")
    ours = kernel_table()["ops"] if kernels == "tinydeploy" else {}
    runtime = analysis.runtime
    params = flash_params(model, kernels)
    arena_plan = arena_plan or host_arena_plan(analysis, model, kernels)
    sha = hashlib.sha256(model.data).hexdigest()
    ident = c_identifier(name)
    n_out = model.output_tensors[0].num_elements
    assert not labels or len(labels) == n_out, "labels are counted against the model's outputs before the build"
    labels = labels or [f"class_{i}" for i in range(n_out)]
    planned = planned_offsets(model.data) is not None  # the offline plan (and with it TD_SHARE_BUILTIN_DATA)
    return {
        "version": __version__,
        "command": c_comment(command),
        "model": {"file": c_comment(Path(model.source).name), "name": ident, "id": ident[:40], "sha256": sha,
                  "bytes": len(model.data)},
        "model_array": byte_array(model.data),
        "board": {"id": analysis.board.id, "name": analysis.board.name, "cpu_hz": analysis.board.cpu_mhz * 1_000_000},
        "pio": analysis.board.platformio,
        "runtime": {"library": runtime.library, "lib_dep": runtime.lib_dep, "commit": runtime.commit,
                    "defines": list(runtime.defines)},
        "ops": [{"name": n, "method": runtime.resolver_method(n), "cmsis_nn": n in runtime.cmsis_nn,
                 "kernel": registration(model, ours.get(n), n, {p.operator for p in params}),
                 # an op whose resolver method takes no registration: td::kernels::OpResolver's AddOwn, with its parser
                 "parser": ours.get(n, {}).get("parser")} for n in analysis.op_names],
        "kernels": kernels,
        # ops whose CMSIS-NN function no node needs (own_loops_take predicts every node for tinydeploy's loops), or
        # only in part: the build leaves it out (td_kernel_cmsis.cpp's TD_CMSIS_CONV / TD_CMSIS_DEPTHWISE)
        "cmsis_flags": _cmsis_flags(model, params),
        "max_ops": max(len(model.operators), 1),
        "arena": arena_plan.to_dict(),
        "memory": {**analysis.memory, "planned": planned},
        # tinydeploy's kernels take these from flash (model_params.cpp); the library's keep them in the arena
        "channel_params": [{**vars(p), "channels": p.channels, "multipliers_array": int_array(p.multipliers, 8),
                            "shifts_array": int_array(p.shifts, 16)}
                           for p in params],
        # with the offline plan (TD_SHARE_BUILTIN_DATA) the distinct builtin data structs analyze reads whole, in flash
        "builtin_flash": flash_builtin_structs(model) if planned else [],
        "add_tables": [{"operator": t.operator, "output_tensor": t.output_tensor,
                        "op_data": (*t.data.op_fields(),), "table1_array": int_array(t.table1, 8),
                        "table2_array": int_array(t.table2, 8)} for t in add_tables(model, kernels)],
        "input": _io_context(model.input_tensors[0]),
        "output": _io_context(model.output_tensors[0]),
        "labels": [{"c": c_string(l), "comment": c_comment(l)} for l in labels],
        "golden": {"count": golden.count, "source": golden.source, "tolerance": golden.tolerance,
                   "inputs_array": int_array(golden.inputs), "outputs_array": int_array(golden.outputs)},
        "analysis": {"macs": analysis.total_macs, "params": analysis.total_params,
                     "flash_bytes": analysis.flash.total_bytes, "app_flash_bytes": analysis.board.app_flash_bytes,
                     "app_ram_bytes": analysis.board.app_ram_bytes},
    }


MODEL_FILE = "model.tflite"  # a copy of the model in the project, for `tinydeploy emulate --accuracy` and the user


def render_project(ctx: dict, out_dir: str | Path, *, force: bool, metadata: dict, model_data: bytes) -> Path:
    import jinja2

    firmware = firmware_dir()
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(templates_dir()), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, trim_blocks=True, lstrip_blocks=True,
                             autoescape=False)
    with StagedDirectory(out_dir, force) as tmp:
        (tmp / "src").mkdir()
        for rel in TEMPLATES:
            text = env.get_template(Path(rel).name + ".j2").render(**ctx)
            (tmp / rel).write_text(text)
        for f in FIRMWARE_FILES:
            shutil.copyfile(firmware / f, tmp / "src" / f)
        for f in kernel_table()["sources"]:  # compiled always, linked only when the resolver registers them
            shutil.copyfile(firmware / "kernels" / f, tmp / "src" / f)
        (tmp / MODEL_FILE).write_bytes(model_data)
        write_json_atomic(tmp / "tinydeploy.json", metadata)
    return Path(out_dir)
