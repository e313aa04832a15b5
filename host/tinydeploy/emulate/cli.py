"""`tinydeploy emulate PROJECT`: the generated firmware, compiled against the pinned TFLM, run on an emulated
Cortex-M4 (QEMU mps2-an386) and benchmarked with the same code that reads a board. No TensorFlow import."""

from __future__ import annotations

import time
from pathlib import Path


def add_parsers(sub, add_board, add_json) -> None:
    from ..cliargs import add_bench_options, bounded_int

    e = sub.add_parser("emulate", help="compile a generated project for an emulated Cortex-M4 (QEMU) and benchmark it there")
    e.add_argument("project", help="the directory written by `tinydeploy build`")
    e.add_argument("--tflm", metavar="DIR", help="the Arduino_TensorFlowLite library folder (default: $TINYDEPLOY_TFLM_DIR, "
                                                 "else PROJECT/.pio/libdeps/<env>/Arduino_TensorFlowLite)")
    e.add_argument("--board", default="nano33ble", help="the board whose build flags the emulated build uses")
    e.add_argument("--jobs", type=bounded_int(1, 64), help="parallel compiler processes for the one-time TFLM build (default: CPU count)")
    e.add_argument("--no-cycles", action="store_true",
                   help="skip the Cortex-M4 cycle estimate (a QEMU plugin beside the exact instruction counts)")
    add_bench_options(e)
    add_json(e)
    e.set_defaults(func=cmd_emulate)


def cmd_emulate(args) -> int:
    from ..boards import cycles_to_ms, from_args as load_board
    from ..console import err_console, progress
    from ..device.link import Link
    from ..device.session import BenchOptions, bench_link, finish
    from ..errors import ModelError
    import dataclasses
    import tempfile

    from ..errors import ToolchainError
    from .cycles import CycleProbe, estimate
    from .firmware import EmulatedTarget, emulate_project
    from .qemu import QemuSession

    project = Path(args.project)
    if not project.is_dir():
        raise ModelError(f"project directory {project} " + ("is a file, not a directory" if project.exists() else
                         "does not exist"), "Run `tinydeploy build MODEL.tflite -o DIR` first")
    comparison = _comparison(project, args) if args.accuracy else None  # bad samples are refused before any work
    t0 = time.monotonic()
    with progress() as prog:
        tasks: dict[str, int] = {}

        def show(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = prog.add_task(stage, total=total)
            prog.update(tasks[stage], completed=done)

        board = load_board(args)
        image, lib = emulate_project(project, tflm=args.tflm, board=board, jobs=args.jobs, progress=show)
    built_s = time.monotonic() - t0
    for w in image.warnings:
        err_console.print(f"[yellow]{w}[/]", soft_wrap=True)
    target = EmulatedTarget.load()
    extra = {"emulation": {
        "target": target.id, "machine": target.machine, "counter": "instructions", "method": target.source,
        "tflm": {"library": str(lib.root), "found_by": lib.origin},
        "firmware": image.to_dict(), "build_seconds": round(built_s, 1),
    }}
    probe, no_estimate = None, "--no-cycles" if args.no_cycles else None
    log_dir = tempfile.TemporaryDirectory(prefix="tinydeploy-cycles-")
    if not args.no_cycles:
        try:
            probe = CycleProbe.for_elf(image.elf, Path(log_dir.name) / "cycles.log")
            target = dataclasses.replace(target, qemu_args=(*target.qemu_args, *probe.qemu_args()))
        except ToolchainError as e:  # the instruction counts do not need it
            no_estimate = str(e)
    with log_dir, QemuSession(image.elf, target) as q:
        extra["emulation"]["qemu"] = q.command(q.port)
        with Link.open(url=q.url) as link:
            d = bench_link(link, BenchOptions.from_args(args), json_path=args.json, extra=extra,
                           no_answer_hint=f"The emulated firmware did not answer: rebuild the project with this "
                                          f"tinydeploy (tinydeploy build --force), or raise --hello-wait "
                                          f"({args.hello_wait:g} s now)")
            if comparison is not None:
                d["accuracy"] = _accuracy(link, *comparison)
        if probe is not None:
            d["cycles_estimate"] = estimate(probe.entries(), d.get("ops") or [])
            if d["cycles_estimate"] is None:
                no_estimate = "the plugin's log holds no inference whose op counts match the firmware's"
    d["emulation"]["seconds"] = round(time.monotonic() - t0, 1)
    c = d.get("cycles_estimate")
    if c:
        err_console.print(f"Cycles (an estimate from the Cortex-M4 manual's instruction timings, see the JSON's method): "
                          f"{c['cycles_per_inference']:,} per inference, {c['cycles_per_instruction']} per instruction, "
                          f"{cycles_to_ms(c['cycles_per_inference'], board.cpu_hz):.1f} ms at {board.cpu_mhz} MHz",
                          highlight=False)
    else:
        d["cycles_estimate"] = None
        err_console.print(f"no cycle estimate: {no_estimate}", highlight=False)
    d["memory"] = memory_summary(project, image, d.get("arena") or {})
    m = d["memory"]
    err_console.print(f"RAM (.data + .bss, exact): {m['firmware_ram_bytes']:,} B = arena {m['arena_allocated_bytes']:,} B "
                      f"(used {m['arena_used_bytes']:,}) + {m['ram_beside_arena_bytes']:,} B beside it; analyze "
                      f"estimated {m['analyze']['ram_need_bytes']:,} B; head's lower bound {m['analyze']['lower_bound_bytes']:,} B "
                      f"({m['memory_plan']} plan)", highlight=False)
    return finish(d, args.json)


def memory_summary(project: Path, image, arena: dict) -> dict:
    """The firmware's RAM as linked (exact), the arena in it (allocated; used, as the firmware reports it), and what
    analyze estimated for the same model (from the project's tinydeploy.json)."""
    import json

    meta = json.loads((project / "tinydeploy.json").read_text()) if (project / "tinydeploy.json").is_file() else {}
    an = meta.get("analysis", {})
    mem, ram = an.get("memory") or {}, (an.get("fit") or {}).get("ram") or {}
    allocated = int((meta.get("arena") or {}).get("bytes") or arena.get("allocated") or 0)
    return {"firmware_ram_bytes": image.ram_bytes, "arena_allocated_bytes": allocated,
            "arena_used_bytes": arena.get("used"), "ram_beside_arena_bytes": image.ram_bytes - allocated,
            "memory_plan": (meta.get("memory_plan") or {}).get("choice", "tflm"),
            "analyze": {"ram_need_bytes": ram.get("need_bytes"), "firmware_bytes": ram.get("firmware_bytes"),
                        "arena_bytes": ram.get("arena_bytes"),
                        "lower_bound_bytes": mem.get("lower_bound_bytes")},
            "kind": "exact (the linked image's sections, the firmware's arena_used_bytes()); analyze's are estimates"}


def _comparison(project: Path, args):
    """The --accuracy inputs as the model takes them, their labels, and the TFLM host interpreter's outputs."""
    from ..errors import ModelError
    from ..generate.project import MODEL_FILE
    from ..samples import Samples
    from ..tflite_model import TFLiteModel
    from ..tflm_host import reference_outputs

    model_path = project / MODEL_FILE
    if not model_path.is_file():
        raise ModelError(f"{project} has no {MODEL_FILE} to compare with", "Regenerate the project with this tinydeploy (tinydeploy build --force)")
    model = TFLiteModel.from_file(model_path)
    samples = Samples.load(args.accuracy, args.limit)
    x = samples.int8_inputs(model)
    samples.check_labels(model.output_tensors[0].num_elements)
    host = reference_outputs(model.data, x.reshape((len(x),) + tuple(model.input_tensors[0].shape)))
    return x, samples.y, host.reshape(len(x), -1)


def _accuracy(link, x, y, host) -> dict:
    """The inputs on the emulated device against the host's outputs: accuracy, agreement, identical outputs."""
    from ..console import progress
    from ..device.runner import accuracy_report

    link.drain(0.2)
    with progress() as prog:
        task = prog.add_task("emulated inference", total=len(x))
        return accuracy_report(link, x, y, host_outputs=host, progress=lambda i: prog.update(task, completed=i))
