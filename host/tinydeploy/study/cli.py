"""`tinydeploy study`: the accuracy x latency x size grid."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path


def add_parsers(sub, add_board, add_json) -> None:
    from ..cliargs import bounded_float, bounded_int
    from .grid import DEFAULT_FAMILIES, STUDY_FAMILIES

    s = sub.add_parser("study", help="accuracy x latency x size study over datasets, model families and variants")
    add_board(s)
    s.add_argument("--datasets", default="fashion,radiology,dermatology", help="comma-separated: fashion,radiology,dermatology (default all three)")
    s.add_argument("--families", default=",".join(DEFAULT_FAMILIES),
                   help=f"comma-separated, of {','.join(STUDY_FAMILIES)} (default: all but mobilenet_v2, for time); "
                        "vgg16 and mobilenet_v2_1.0 are analysed, not trained; search: the architecture search's front, "
                        "trained like the families")
    s.add_argument("--quick", action="store_true", help="small subsets and one epoch: checks the pipeline in a couple "
                                                        "of minutes; its accuracies mean nothing")
    s.add_argument("-o", "--output", default="results", help="output directory (default results/); the same command "
                                                             "resumes an interrupted study there")
    s.add_argument("--force", action="store_true", help="write into an output directory that holds anything but a study "
                                                        "made by this same command (a committed report, other files)")
    s.add_argument("--latency-budget", type=bounded_float(0.001, 1e7), default=100.0, metavar="MS",
                   help="the latency budget drawn on the plots (default 100 ms: 10 inferences a second)")
    s.add_argument("--workers", type=bounded_int(1, 64), default=2, help="parallel (dataset, family) groups (default 2)")
    s.add_argument("--bench", action="append", default=[], metavar="DATASET/MODEL/VARIANT=BENCH.json",
                   help="use a measured latency from a `tinydeploy bench --json` file for that row")
    s.add_argument("--tflm", metavar="DIR", help="the Arduino_TensorFlowLite library for emulated latencies "
                                                 "(default: $TINYDEPLOY_TFLM_DIR)")
    s.add_argument("--no-emulate", action="store_true", help="estimate every latency with the cycle model, even "
                                                             "where the emulator could measure it")
    add_json(s)
    s.set_defaults(func=cmd_study)


STUDY_FILES = {"cache", "report.md", "study.csv", "study.md", "accuracy_vs_size.png", "accuracy_vs_latency.png",
               "size_reduction.png"}


def _foreign(run: dict):
    """What in an output directory is not a study made by this same command (``run``: profile, datasets, families,
    recorded in its cache), which the command resumes; a committed report without its cache is foreign too."""
    def found(out: Path) -> str | None:
        other = sorted(p.name for p in out.iterdir() if p.name not in STUDY_FILES)
        if other:
            return other[0]
        if not any(out.iterdir()):
            return None
        try:
            same = json.loads((out / "cache" / "run.json").read_text()) == run
        except (OSError, ValueError):
            same = False
        return None if same else "a study made by another command"

    return found


def cmd_study(args) -> int:
    import sys

    from ..boards import from_args as load_board
    from ..console import console, progress, write_json
    from ..fsutil import check_output_dir, write_json_atomic
    from ..errors import TinyDeployError
    from .grid import DATASETS, PROFILES, RESOLUTION, STUDY_FAMILIES, add_emulated_latency, apply_measured, group_seconds, run
    from ..analyze.requant import DEFAULT_KERNELS
    from .outputs import write_all

    from ..compress.tfenv import require_training_extra

    require_training_extra("study")
    datasets = [d for d in args.datasets.split(",") if d]
    families = [f for f in args.families.split(",") if f]
    for d in datasets:
        if d not in DATASETS:
            raise TinyDeployError(f"unknown dataset {d!r}", f"Choose from {', '.join(DATASETS)}")
    for f in families:
        if f not in STUDY_FAMILIES:
            raise TinyDeployError(f"unknown family {f!r}", f"Choose from {', '.join(STUDY_FAMILIES)}")
    measured = {}
    for spec in args.bench:
        key, _, path = spec.partition("=")
        d, _, rest = key.partition("/")
        if d not in datasets or not rest.partition("/")[2] or not any(rest.startswith(f) for f in families):
            raise TinyDeployError(f"--bench {key}: not a DATASET/MODEL/VARIANT of this study",
                                  "e.g. --bench fashion/custom_cnn/int8=BENCH.json (the study.csv's columns)")
        try:
            bench = json.loads(Path(path).read_text())
            ms = bench["latency"]["ms"]["median"]
            sha = bench["device"].get("sha")
        except (OSError, KeyError, TypeError, ValueError, AttributeError):
            raise TinyDeployError(f"cannot read a bench latency from {path}", "Pass a file written by `tinydeploy bench --json`") from None
        measured[key] = (ms, sha, path)
    board = load_board(args)
    profile = PROFILES["quick" if args.quick else "full"]
    out = Path(args.output)
    keys = {d: profile.for_group(d).key for d in datasets}  # a dataset's key, and each group's own where it differs
    keys.update({f"{d}/{f}": k for d in datasets for f in families if (k := profile.for_group(d, f).key) != keys[d]})
    run_id = {"profile": keys, "datasets": datasets, "families": families}
    check_output_dir(out, args.force, foreign=_foreign(run_id))
    (out / "cache").mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "cache" / "run.json", run_id)
    t0 = time.monotonic()
    with progress() as prog:
        task = prog.add_task(f"study ({profile.name})", total=len(datasets) * len(families))
        rows, failures = run(datasets, families, profile, out, board, workers=args.workers,
                             progress=lambda done, total: prog.update(task, completed=done))
        apply_measured(rows, measured, out / "cache")
        why_not = None if not args.no_emulate else "--no-emulate"
        if why_not is None:
            from ..emulate import why_not_emulated

            why_not = why_not_emulated(args.tflm)
        if why_not is None:
            etask = prog.add_task("emulated latency (int8 rows that fit)", total=None)
            add_emulated_latency(rows, out, args.tflm, board,
                                 progress=lambda done, total: prog.update(etask, completed=done, total=total))
        else:
            console.print(f"[yellow]latencies are cycle-model estimates:[/] {why_not}")
    timed, untimed = group_seconds(rows)
    meta = {"profile": profile.name, "board": board.id, "inputs": {d: RESOLUTION[d] for d in datasets}, "cpu_mhz": board.cpu_mhz, "profile_text": profile.describe(), "latency_budget_ms": args.latency_budget,
            "seconds": time.monotonic() - t0, "workers": args.workers, "kernels": DEFAULT_KERNELS, "group_seconds": timed,
            "groups_untimed": untimed, "latency_source": why_not or "emulated",
            "command": "tinydeploy " + " ".join(sys.argv[1:]),
            "machine": f"{platform.machine()}, {__import__('os').cpu_count()} cores", "failures": failures}
    files = write_all(rows, out, meta)
    console.print(f"[green]study written to {out}/[/]: {', '.join([files['report'], files['csv'], *files['plots']])} "
                  f"({meta['seconds']:.0f} s; cached groups are reused on the next run)")
    write_json(args.json, {"rows": rows, "files": files, "meta": meta, "failures": failures})
    if failures:
        raise TinyDeployError(f"{len(failures)} of {len(datasets) * len(families)} groups failed and are missing from "
                              f"the report (first: {failures[0]})",
                              "Run the same command again: finished groups are cached and only the failed ones rerun")
    return 0
