"""`tinydeploy build`: an int8 .tflite -> a PlatformIO firmware project, compiled when PlatformIO can (no TensorFlow)."""

from __future__ import annotations

import shlex
import time
from pathlib import Path

from ..sources import EXAMPLE_MODEL


def add_parsers(sub, add_board, add_json) -> None:
    from ..cliargs import bounded_int
    from ..analyze.requant import DEFAULT_KERNELS, KERNELS
    from ..plan import MEMORY_PLANS

    b = sub.add_parser("build", help="generate a TFLite Micro PlatformIO project for a board (and compile it when possible)")
    b.add_argument("model", nargs="?", help=f"an int8 .tflite (default: the bundled example {EXAMPLE_MODEL.name})")
    add_board(b)
    b.add_argument("-o", "--output", help="output directory (default: build/<model>-<board>)")
    b.add_argument("--force", action="store_true", help="replace a non-empty output directory")
    b.add_argument("--no-compile", action="store_true", help="do not run `pio run`")
    b.add_argument("--samples", help="an .npz with test inputs x (and labels y) for the golden vectors "
                                     "(default: MODEL.samples.npz beside the model, else random inputs)")
    b.add_argument("--labels", help="a text file with one class name per line (default: MODEL.labels.txt beside the model)")
    b.add_argument("--golden", type=bounded_int(1, 64), default=3, metavar="N", help="number of golden vectors (default 3, 1 to 64)")
    b.add_argument("--arena", choices=("host", "measured"), default="host",
                   help="size the tensor arena from the host interpreter's corrected figure + 10%% (host, default), or "
                        "from the firmware's own arena_used_bytes() on the emulated Cortex-M4 + 2%% (measured)")
    b.add_argument("--tflm", metavar="DIR", help="with --arena measured: the Arduino_TensorFlowLite library folder "
                                                 "(default: $TINYDEPLOY_TFLM_DIR)")
    b.add_argument("--kernels", choices=KERNELS, default=DEFAULT_KERNELS,
                   help="tinydeploy: tinydeploy's own int8 kernels (CONV_2D, DEPTHWISE_CONV_2D, FULLY_CONNECTED, ADD; "
                        "requantization parameters in flash), the library's CMSIS-NN kernels elsewhere (default); "
                        "cmsis-nn: the library's kernels only")
    b.add_argument("--memory-plan", choices=MEMORY_PLANS, default="offline",
                   help="offline: tinydeploy plans the arena's activations at build time (exact for chains, a search "
                        "otherwise) and keeps the input tensor, so the firmware holds no copy of it (default); tflm: "
                        "TFLM's own greedy planner at start-up, and a copy of the input")
    add_json(b)
    b.set_defaults(func=cmd_build)


def cmd_build(args) -> int:
    from .. import platformio as pio
    from ..boards import from_args as load_board
    from ..console import console, kib, write_json
    from ..errors import DeviceError
    from .pipeline import BuildRequest, build_project

    t0 = time.monotonic()
    model_path = Path(args.model) if args.model else EXAMPLE_MODEL
    board = load_board(args)
    # canonical (no output path), so that builds are reproducible
    command = ("tinydeploy build" + (f" {shlex.quote(model_path.name)}" if args.model else "") + f" --board {board.id}"
               + (f" --memory-plan {args.memory_plan}" if args.memory_plan != "offline" else ""))
    req = BuildRequest(model_path=model_path, board=board, output=Path(args.output or f"build/{model_path.stem}-{board.id}"),
                       force=args.force, samples=Path(args.samples) if args.samples else None,
                       labels=Path(args.labels) if args.labels else None, golden_count=args.golden, arena=args.arena,
                       tflm=args.tflm, command=command, kernels=args.kernels, memory_plan=args.memory_plan)
    built = build_project(req)
    out, golden = built.path, built.golden
    console.print(f"[green]project written:[/] {out}  (model {kib(len(built.repaired.original.data))}, arena "
                  f"{kib(built.arena.bytes)}, {len(built.analysis.op_names)} op types, {golden.count} {golden.source} "
                  f"golden vectors, {time.monotonic() - t0:.1f} s)")
    folded = built.deployed.folded
    if folded and folded.ops_removed:
        console.print(f"shapes folded: {folded.reshapes} RESHAPE given a constant shape, {folded.reshapes_dropped} "
                      f"RESHAPE into SOFTMAX dropped; {folded.ops_removed} ops and {folded.tensors_removed} tensors "
                      f"fewer for the interpreter to keep (plan/fold.py)")
    result = {"project": str(out), "metadata": built.metadata, "pio": None}
    if not args.no_compile:
        r = pio.run_build(out, board.platformio["platform"])
        result["pio"] = r.to_dict()
        if r.ok:
            console.print(f"[green]pio run:[/] flash {r.flash_used:,} of {r.flash_total:,} B, RAM {r.ram_used:,} of {r.ram_total:,} B")
        elif r.status == "failed":
            console.print(r.log_tail)
            write_json(args.json, result)
            raise DeviceError(r.message, f"Fix the error above, then run `pio run -d {out}`")
        else:
            console.print(f"[yellow]not compiled:[/] {r.message}")
    write_json(args.json, result)
    return 0
