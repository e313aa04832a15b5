"""`tinydeploy search`: hardware-aware architecture search under the board's budget (imports TensorFlow and Optuna)."""

from __future__ import annotations

import time
from pathlib import Path

from ..cliargs import bounded_int

OUTPUT_FILES = {"search.db", "search.db-journal", "front", "search.json", "pareto.png", "front.md"}


def add_parsers(sub, add_board, add_json) -> None:
    s = sub.add_parser("search", help="multi-objective architecture search (accuracy up, latency down) over models "
                                      "that fit the board; Optuna, resumable, several workers can share a storage")
    s.add_argument("--dataset", default="fashion-mnist",
                   help="fashion-mnist[:DIR], pneumonia[:PATH], ham10000[:DIR], a MedMNIST .npz, or a class-folder tree")
    add_board(s)
    s.add_argument("--trials", type=bounded_int(1, 100_000), default=20,
                   help="trials in the study in all, over every worker and every resumed run (default 20)")
    s.add_argument("--storage", help="Optuna storage URL (default: sqlite:///OUT/search.db); postgresql://USER@HOST:PORT/DB "
                                     "lets workers on several machines share one search")
    s.add_argument("--study-name", help="default: DATASET-BOARD")
    s.add_argument("--timeout", type=bounded_int(1, 10**7), metavar="SECONDS", help="this worker stops starting trials after this")
    s.add_argument("--subset", type=bounded_int(100, 10**7), default=10000, metavar="N",
                   help="training images per trial (default 10000); validation uses the whole validation split")
    s.add_argument("--epochs", type=bounded_int(1, 1000), default=3, help="training epochs per trial (default 3)")
    s.add_argument("--tflm", metavar="DIR", help="the Arduino_TensorFlowLite library for emulated latency "
                                                 "(default: $TINYDEPLOY_TFLM_DIR)")
    s.add_argument("--no-emulate", action="store_true", help="latency from the cycle model even where the emulator could "
                                                             "measure it")
    s.add_argument("--seed", type=int, default=0, help="data subset seed")
    s.add_argument("-o", "--output", default="search", help="output directory (default search/)")
    s.add_argument("--force", action="store_true", help="use an output directory that holds other files")
    add_json(s)
    s.set_defaults(func=cmd_search)


def _foreign(out: Path) -> str | None:
    """What in an output directory is not a search's own output (which the same command resumes)."""
    return next((p.name for p in sorted(out.iterdir()) if p.name not in OUTPUT_FILES and not p.name.startswith(".front")),
                None)


def _config_of(args, board) -> dict:
    """What makes trials comparable: a resumed or joined study must have been made with the same."""
    return {"dataset": args.dataset, "board": board.id, "subset": args.subset, "epochs": args.epochs, "seed": args.seed,
            "app_flash_bytes": board.app_flash_bytes, "app_ram_bytes": board.app_ram_bytes}


def cmd_search(args) -> int:
    import os

    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    from ..boards import from_args as load_board
    from ..compress.tfenv import require_training_extra
    from ..console import err_console, write_json
    from ..errors import TinyDeployError
    from ..fsutil import check_output_dir
    from . import run

    t_start = time.monotonic()
    require_training_extra("search")
    out = Path(args.output)
    check_output_dir(out, args.force, foreign=_foreign)
    board = load_board(args)
    try:
        import optuna
    except ImportError:
        from ..errors import ToolchainError

        raise ToolchainError("tinydeploy search needs Optuna", "pip install 'tinydeploy[search]'") from None
    import warnings

    # Optuna's own warnings for a failed trial come with a traceback (Ctrl-C included): each trial's line says it instead
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    warnings.filterwarnings("ignore", category=optuna.exceptions.ExperimentalWarning)  # heartbeats: stable since 2.x
    url = run.storage_url(args.storage, out)
    run.check_storage_url(url)
    # the dataset is checked before the storage is touched: a typo leaves no study behind
    from ..compress.datasets import load_dataset

    ds = load_dataset(args.dataset, seed=args.seed)
    ds = ds.subset(args.subset, None, seed=args.seed) if args.subset < len(ds.y_train) else ds
    made_out = not out.exists()
    try:
        if url.startswith("sqlite"):
            out.mkdir(parents=True, exist_ok=True)  # the default storage lives there
        storage = run.open_storage(url)
    except BaseException:
        if made_out and out.is_dir() and not any(out.iterdir()):
            out.rmdir()
        raise
    name = args.study_name or f"{args.dataset.split(':')[0]}-{board.id}"
    config = _config_of(args, board)
    sampler = optuna.samplers.TPESampler(n_startup_trials=5, constant_liar=True)
    study = optuna.create_study(study_name=name, storage=storage, directions=["maximize", "minimize"], sampler=sampler,
                                load_if_exists=True)
    made_with = study.user_attrs.get("config")
    if made_with is None:
        study.set_user_attr("config", config)
    elif made_with != config:
        diff = next(k for k in config if made_with.get(k) != config[k])
        raise TinyDeployError(f"study {name!r} in this storage was made with {diff}={made_with.get(diff)!r}, not "
                              f"{config[diff]!r}", "Use the same options to resume it, or another --study-name")
    orphans = run.fail_orphans(study)
    if orphans:
        err_console.print(f"{orphans} trial(s) left running by a killed worker on this machine: marked failed")

    emulate, why = _emulation(args)
    from .objective import Objective, SearchConfig

    cfg = SearchConfig(board=board, epochs=args.epochs, tflm=args.tflm, emulate=emulate)
    done0 = run.finished(study)
    remaining = max(args.trials - done0, 0)
    err_console.print(f"search {name!r} on {ds.name} ({len(ds.y_train)} training images, {args.epochs} epoch(s) a trial) "
                      f"for the {board.name}: {done0} of {args.trials} trials done; latency "
                      + ("emulated (instructions on the Cortex-M4)" if emulate else f"from the cycle model ({why})"))
    mine = [0]

    def on_trial(study_, trial):
        mine[0] += 1
        err_console.print(run.progress_line(study_, trial, args.trials, t_start, mine[0], args.timeout), soft_wrap=True, highlight=False)

    if remaining:
        from optuna.study import MaxTrialsCallback
        from optuna.trial import TrialState

        study.optimize(Objective(ds, cfg), n_trials=remaining, timeout=args.timeout, catch=(Exception,),
                       gc_after_trial=True,
                       callbacks=[MaxTrialsCallback(args.trials, states=tuple(getattr(TrialState, s) for s in run.FINISHED)),
                                  on_trial])
    from .outputs import write_outputs

    report = write_outputs(study, ds, out, board, url=url, name=name, emulated=emulate, why=why,
                           seconds=time.monotonic() - t_start)
    write_json(args.json, report)
    return 0


def _emulation(args) -> tuple[bool, str | None]:
    if args.no_emulate:
        return False, "--no-emulate"
    from ..emulate import why_not_emulated

    why = why_not_emulated(args.tflm)
    return why is None, why
