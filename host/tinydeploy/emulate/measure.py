"""A model measured on the emulated Cortex-M4 without a project of the user's: rendered into a scratch
folder with a roomy arena, compiled against the pinned TFLM, run once under QEMU. Used by
`build --arena measured` and by `study` (instructions per inference for every deployable int8 row)."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, replace
from pathlib import Path

from ..analyze import Analysis
from ..errors import ModelError
from ..analyze.requant import DEFAULT_KERNELS
from ..tflite_model import TFLiteModel

# The probe's arena: room for what the host interpreter cannot see (CMSIS-NN scratch buffers). The
# instruction count does not depend on the arena's size.
PROBE_ARENA_FACTOR = 2
PROBE_ARENA_EXTRA = 8192


@dataclass(frozen=True)
class Measurement:
    instructions: int  # median per inference
    arena_used_bytes: int  # the firmware's arena_used_bytes()
    target: str
    ops: tuple[tuple[str, int], ...]  # (op tag, instructions) in graph order
    golden_pass: bool
    firmware_ram_bytes: int  # .data + .bss of the emulated image (arena included)
    firmware_flash_bytes: int

    def to_dict(self) -> dict:
        return {"instructions": self.instructions, "arena_used_bytes": self.arena_used_bytes, "target": self.target,
                "ops": [list(o) for o in self.ops], "golden_pass": self.golden_pass,
                "firmware_ram_bytes": self.firmware_ram_bytes, "firmware_flash_bytes": self.firmware_flash_bytes}


def measure(model: TFLiteModel, analysis: Analysis, *, tflm: str | None, runs: int = 3, golden=None,
            labels: list[str] | None = None, name: str = "model", command: str = "tinydeploy emulate",
            kernels: str = DEFAULT_KERNELS) -> Measurement:
    """``model`` as deployed (``tinydeploy.repair``) and its analysis, whose board's flags the build uses."""
    from ..device.bench import DeviceErrorWithReport, run_bench
    from ..device.link import Link
    from ..generate.golden import make_golden
    from ..generate.project import build_context, host_arena_plan, render_project
    from .firmware import emulate_project
    from .qemu import QemuSession

    golden = golden if golden is not None else make_golden(model, count=1)
    plan = host_arena_plan(analysis, model, kernels)
    probe = replace(plan, kind="probe", bytes=plan.bytes * PROBE_ARENA_FACTOR + PROBE_ARENA_EXTRA)
    with tempfile.TemporaryDirectory(prefix="tinydeploy-emu-") as tmp:
        project = Path(tmp) / "probe"
        ctx = build_context(model, analysis, golden, labels or [], name=name, command=command, arena_plan=probe,
                            kernels=kernels)
        render_project(ctx, project, force=False, metadata={}, model_data=model.data)
        image, _ = emulate_project(project, tflm=tflm, board=analysis.board)
        with QemuSession(image.elf) as q, Link.open(url=q.url) as link:
            try:
                rep = run_bench(link, runs=runs, warmup=0, timeout=600, idle_timeout=120)
            except DeviceErrorWithReport as e:
                raise ModelError(f"the model does not run on the emulated device even with a {probe.bytes} B arena "
                                 f"({e.what})", "Check the model with `tinydeploy analyze`") from None
    return Measurement(instructions=rep.latency.counts["median"], arena_used_bytes=rep.arena["used"],
                       target=rep.one("hello").fields.get("target"), ops=tuple(rep.op_counts()),
                       golden_pass=all(g["pass"] for g in rep.golden()),
                       firmware_ram_bytes=image.ram_bytes, firmware_flash_bytes=image.flash_bytes)
