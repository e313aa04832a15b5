"""`tinydeploy build`: an int8 .tflite -> a PlatformIO firmware project (no TensorFlow import)."""

from __future__ import annotations

import shlex
import time
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
EXAMPLE_MODEL = EXAMPLES / "fashion_cnn_int8.tflite"


def add_parsers(sub, add_board, add_json) -> None:
    from ..cliargs import bounded_int

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
    add_json(b)
    b.set_defaults(func=cmd_build)


def _labels(path: Path | None, model_path: Path) -> list[str]:
    from ..errors import TinyDeployError

    if path is not None and not path.is_file():
        raise TinyDeployError(f"labels file {path} does not exist", "Check the path, or leave --labels out")
    p = path or model_path.with_name(model_path.stem + ".labels.txt")
    if p.exists():
        try:
            return [l.strip() for l in p.read_text().splitlines() if l.strip()]
        except (OSError, UnicodeDecodeError) as e:
            raise TinyDeployError(f"cannot read labels file {p} ({e})", "One class name per line, UTF-8") from None
    return []


def cmd_build(args) -> int:
    from ..analyze import analyze, require_deployable, require_fit
    from ..boards import from_args as load_board
    from ..console import write_json
    from ..console import console, kib
    from ..errors import ModelError
    from ..tflite_model import TFLiteModel
    from .. import platformio as pio
    from .golden import make_golden, samples_path_for
    from ..fsutil import check_output_dir
    from .project import build_context, render_project

    t0 = time.monotonic()
    model_path = Path(args.model) if args.model else EXAMPLE_MODEL
    model = TFLiteModel.from_file(model_path)
    board = load_board(args)
    # the user's inputs and the output directory are checked before any work
    labels = _labels(Path(args.labels) if args.labels else None, model_path)
    samples = Path(args.samples) if args.samples else samples_path_for(model_path)
    if args.samples and not samples.exists():
        raise ModelError(f"samples file {samples} does not exist", "Check the path, or leave --samples out")
    out = Path(args.output or f"build/{model_path.stem}-{board.id}")
    check_output_dir(out, args.force)
    analysis = analyze(model, board)
    require_deployable(analysis)
    require_fit(analysis)
    # The golden outputs come from the model as given; the firmware runs analysis.deployed (the same model
    # with exact rewrites around the runtime's known gaps, if any), so the device checks the rewrite too.
    deployed = analysis.deployed
    try:
        golden = make_golden(model, samples=samples, count=args.golden)
    except ModelError:
        if deployed is model:
            raise
        # the host interpreter cannot run the original either (it crashes on a DEPTHWISE_CONV_2D without bias)
        golden = make_golden(deployed, samples=samples, count=args.golden)
    # Recorded in the generated files; canonical (no output path) so that builds are reproducible.
    command = "tinydeploy build" + (f" {shlex.quote(model_path.name)}" if args.model else "") + f" --board {board.id}"
    arena_plan = None
    if args.arena == "measured":
        from .project import measured_arena_plan

        # args.measure: the emulate stage's measurement, wired in by the root CLI (emulate builds on generate,
        # so generate does not import it)
        m = args.measure(deployed, analysis, tflm=args.tflm, runs=1, golden=golden, labels=labels, name=model_path.stem,
                         command=command)
        arena_plan = measured_arena_plan(analysis, m.arena_used_bytes, m.target)
    ctx = build_context(deployed, analysis, golden, labels, name=model_path.stem, command=command, arena_plan=arena_plan)
    metadata = {
        "schema": "tinydeploy.build/1",
        "model": model_path.name, "model_sha256": ctx["model"]["sha256"], "board": board.id,
        "runtime": ctx["runtime"], "ops": [o["name"] for o in ctx["ops"]], "arena": ctx["arena"],
        "golden": {"count": golden.count, "source": golden.source, "tolerance": golden.tolerance,
                   "labels": None if golden.labels is None else golden.labels.reshape(-1).tolist()},
        "analysis": analysis.to_dict(),
    }
    render_project(ctx, out, force=args.force, metadata=metadata, model_data=deployed.data)
    console.print(f"[green]project written:[/] {out}  (model {kib(len(model.data))}, arena {kib(ctx['arena']['bytes'])}, "
                  f"{len(ctx['ops'])} op types, {golden.count} {golden.source} golden vectors, "
                  f"{time.monotonic() - t0:.1f} s)")
    result = {"project": str(out), "metadata": metadata, "pio": None}
    if not args.no_compile:
        r = pio.run_build(out, board.platformio["platform"])
        result["pio"] = r.to_dict()
        if r.ok:
            console.print(f"[green]pio run:[/] flash {r.flash_used:,} of {r.flash_total:,} B, RAM {r.ram_used:,} of {r.ram_total:,} B")
        elif r.status == "failed":
            console.print(r.log_tail)
            write_json(args.json, result)
            from ..errors import DeviceError

            raise DeviceError(r.message, f"Fix the error above, then run `pio run -d {out}`")
        else:
            console.print(f"[yellow]not compiled:[/] {r.message}")
    write_json(args.json, result)
    return 0
