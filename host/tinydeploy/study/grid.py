"""The study grid, resumable: every row is cached as JSON; (dataset, family) groups run in parallel."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from ..compress.names import FAMILIES as MODEL_FAMILIES
from ..compress.names import EQUAL_EPOCHS, FILTERS as FILTER_KIND, PRUNED, QAT, VARIANTS

SPARSITY = 0.5  # the unstructured-pruned int8 row (weights zeroed; its gain is the gzip size)
FILTERS = 0.5  # the structured-pruned int8 row (half the filters removed; smaller and faster)

# family -> build kwargs for microcontroller size
FAMILIES = {
    "custom_cnn": {},
    "vgg_style": {"width": 0.125, "blocks": 3},
    "mobilenet_v1": {"alpha": 0.25},
    "mobilenet_v2": {"alpha": 0.35},
}
# Families structured pruning cannot take (compress/filters.py): channels joined by an addition.
NO_FILTER_PRUNING = {"mobilenet_v2": "residual additions join channels (structured pruning needs a chain)"}
# Reference rows that cannot fit: analysed (size, arena, MACs) but not trained. row -> (family, build kwargs)
TOO_BIG = {"vgg16": ("vgg16", {}), "mobilenet_v2_1.0": ("mobilenet_v2", {"alpha": 1.0})}
assert set(FAMILIES) <= set(MODEL_FAMILIES) and {f for f, _ in TOO_BIG.values()} <= set(MODEL_FAMILIES)
STUDY_FAMILIES = (*FAMILIES, *TOO_BIG)  # the study's rows, in the order of its tables

DATASETS = {"fashion": "fashion-mnist", "radiology": "pneumonia", "dermatology": "ham10000"}

# The rows of one family, in table order: (kind, what it is). A row's `kind` names its compression lever.
KINDS = {**{v: f"{v}, post-training" for v in VARIANTS},
         EQUAL_EPOCHS: "int8 of the parent trained as many epochs as the fine-tuned rows below (their baseline)",
         QAT: "int8 by quantization-aware training",
         PRUNED: f"int8, {SPARSITY:.0%} of the weights zeroed (unstructured)",
         FILTER_KIND: f"int8, {FILTERS:.0%} of the filters removed (structured)"}


# Part of every cached row's key: bump it when a change alters what a group computes, so that a rerun
# does not mix rows made before and after the change. 2: BatchNorm momentum, int32 shape arithmetic.
# 3: rows come from compress() (QAT, structured pruning, equal-epoch baseline, gzip size).
ROWS_VERSION = 3


@dataclass
class Profile:
    name: str
    epochs: int
    finetune_epochs: int
    train_subset: int | None
    test_subset: int | None

    @property
    def key(self) -> str:
        return f"v{ROWS_VERSION}-{self.name}-e{self.epochs}-f{self.finetune_epochs}-{self.train_subset}-{self.test_subset}"

    def describe(self) -> str:
        data = "full datasets" if self.train_subset is None else f"{self.train_subset} training images"
        return f"{self.name} profile: {data}, {self.epochs} epoch(s) + {self.finetune_epochs} fine-tuning"


PROFILES = {
    "quick": Profile("quick", 1, 1, 600, 200),
    "full": Profile("full", 3, 1, None, None),
}


def _group(dataset_key: str, family: str, profile: Profile, cache_dir: str, board) -> list[dict]:
    """Train one family on one dataset, then compress()'s public pipeline (every variant, QAT, unstructured and
    structured pruning, the equal-epoch baseline), its output kept in the cache; analyze every file. Runs in a worker."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import numpy as np

    from ..analyze import analyze_or_graph
    from ..compress.datasets import load_dataset
    from ..compress.models import build, min_input_size, train
    from ..compress.pipeline import CompressOptions, compress
    from ..compress.quantize import convert
    from ..compress.tfenv import seed_everything
    from ..analyze.cycle_model import estimate_ms
    from ..repair import repair
    from ..tflite_model import TFLiteModel

    cache = Path(cache_dir)
    base, kw = TOO_BIG.get(family, (family, FAMILIES.get(family, {})))
    size = max(min_input_size(base), 28)
    ds = load_dataset(DATASETS[dataset_key], size=size if size != 28 else None)
    if profile.train_subset:
        ds = ds.subset(profile.train_subset, profile.test_subset)
    imbalanced = ds.imbalanced
    seed_everything(0)
    model = build(base, ds.input_shape, ds.num_classes, **kw)

    def row_for(name, variant, kind, data, file, crow=None):
        m = repair(TFLiteModel.from_bytes(data, source=name)).model
        a, refused = analyze_or_graph(m, board)  # the arena is measured for int8 models only
        # reasons a row does not fit, beyond the budgets it exceeds
        why = [] if refused is None else [f"arena not measurable ({refused.what})"]
        arena = a.arena.device_bytes if a.arena else None
        fits = variant == "int8" and a.supported and a.fit.fits is True
        over = [f"{k} +{n / 1024:.0f} KiB" for k, n in a.fit.overruns().items()]
        if variant != "int8":
            over.append("not int8")
        elif not a.is_int8:
            over.append(f"not full int8 ({a.type_issues[0].message})")
        over += [i.message for i in a.support_issues] + why
        c = crow or {}
        acc, bal = c.get("accuracy"), c.get("balanced_accuracy")
        return {
            "dataset": dataset_key, "family": family, "model": name, "variant": variant, "kind": kind,
            "sparsity": c.get("sparsity"), "trained": crow is not None,
            "epochs": c.get("epochs"),
            "accuracy": acc, "balanced_accuracy": bal, "imbalanced": imbalanced,
            "headline": bal if imbalanced else acc,
            "tflm_accuracy": c.get("tflm_accuracy"), "vs_equal_epochs_pp": c.get("vs_equal_epochs_pp"),
            "model_bytes": len(data), "gzip_bytes": c.get("gzip_bytes"), "arena_bytes": arena,
            "macs": a.total_macs, "params": a.total_params,
            "model_budget_bytes": a.fit.flash.available_bytes - (a.flash.total_bytes - a.flash.model_bytes),
            "fits": bool(fits), "does_not_fit_by": "; ".join(over) if not fits else "",
            "latency_ms": estimate_ms(a.ops, variant, board), "latency_kind": "estimated",
            "latency_estimate_ms": estimate_ms(a.ops, variant, board), "file": file,
            "arena_figure": a.arena.to_dict() if a.arena else None,  # so that the emulated run does not measure it again
        }

    if family in TOO_BIG:
        rep = np.random.default_rng(0).integers(0, 256, (8,) + ds.input_shape, dtype=np.uint8)
        data = convert(model, "int8", rep, 8)
        file = f"{dataset_key}_{family}_int8.tflite"
        (cache / file).write_bytes(data)
        return [row_for(family, "int8", "int8", data, file)]

    train(model, ds, epochs=profile.epochs, class_weight=ds.imbalanced)
    opts = CompressOptions(board=board, variants=VARIANTS, prune=(SPARSITY,), qat=True,
                           prune_filters=() if family in NO_FILTER_PRUNING else (FILTERS,),
                           finetune_epochs=profile.finetune_epochs)
    sub = f"{dataset_key}_{family}_{profile.key}"
    report = compress(model, ds, family, cache / sub, opts, force=True)
    rows = []
    for c in report["rows"]:
        kind = c["kind"]  # what compress made the row with, not parsed from its name
        c = {**c, "epochs": profile.epochs + (0 if kind in VARIANTS else profile.finetune_epochs)}
        file = f"{sub}/{c['file']}"
        rows.append(row_for(c["name"], c["variant"], kind, (cache / file).read_bytes(), file, c))
    if family in NO_FILTER_PRUNING:  # the row says why it is missing
        rows.append({"dataset": dataset_key, "family": family, "model": f"{family}_filters{int(FILTERS * 100)}",
                     "variant": "int8", "kind": FILTER_KIND, "trained": False, "imbalanced": imbalanced, "fits": False,
                     "does_not_fit_by": f"not applicable: {NO_FILTER_PRUNING[family]}"})
    return rows


def run(datasets, families, profile: Profile, out_dir: Path, board, *, workers: int = 2,
        progress=None) -> tuple[list[dict], list[str]]:
    """Rows of every (dataset, family) group, and a line for each group that failed. A failed group does
    not stop the others; it is not cached, so the next run tries it again."""
    cache = out_dir / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    todo, rows = [], []
    for d in datasets:
        for f in families:
            path = cache / f"rows_{d}_{f}_{profile.key}.json"
            if path.exists():
                rows += json.loads(path.read_text())
            else:
                todo.append((d, f, path))
    total = len(datasets) * len(families)
    done = total - len(todo)
    if progress:
        progress(done, total)
    failures = []
    # spawn, not fork: a worker forked from a process that already runs TensorFlow's threads can deadlock
    with _pool(workers) as pool:
        futs = {pool.submit(_group, d, f, profile, str(cache), board): (d, f, p) for d, f, p in todo}
        for fut in as_completed(futs):
            d, f, path = futs[fut]
            try:
                group = fut.result()
            except Exception as e:  # a worker's error, or its crash (BrokenProcessPool)
                failures.append(f"{d}/{f}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
                continue
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(group, indent=1))
            tmp.replace(path)  # a finished group is cached atomically: an interrupted study resumes here
            rows += group
            done += 1
            if progress:
                progress(done, total)
    order = {d: i for i, d in enumerate(datasets)}
    forder = {f: i for i, f in enumerate(families)}
    kinds = list(KINDS)
    rows.sort(key=lambda r: (order[r["dataset"]], forder[r["family"]], kinds.index(r["kind"])))
    return rows, failures


def apply_measured(rows: list[dict], measured: dict, cache: Path) -> int:
    """Board latencies from `tinydeploy bench --json` files ({DATASET/MODEL/VARIANT: (ms, sha, path)}) replace the
    others, each checked against its row's model: the bench's firmware must run that row's model as deployed (the
    first 16 hex digits of its sha256). Applied after the cache, so a cached row never hides (or keeps) a figure."""
    import hashlib

    from ..errors import TinyDeployError
    from ..repair import repair
    from ..tflite_model import TFLiteModel

    by_key = {f"{r['dataset']}/{r['model']}/{r['variant']}": r for r in rows}
    for key, (ms, sha, path) in measured.items():
        r = by_key.get(key)
        if r is None:
            raise TinyDeployError(f"--bench {key}: the study has no such row",
                                  f"Rows: DATASET/MODEL/VARIANT as in study.csv, e.g. {next(iter(by_key), 'none')}")
        deployed = repair(TFLiteModel.from_bytes((cache / r["file"]).read_bytes(), source=r["file"])).model
        want = hashlib.sha256(deployed.data).hexdigest()[:16]
        if sha != want:
            raise TinyDeployError(f"--bench {key}={path} was measured on another model (sha256 {sha or 'not reported'}, "
                                  f"the row's model as deployed is {want})",
                                  f"Build, flash and bench that row's model: tinydeploy build {cache / r['file']}")
        r.update(latency_ms=ms, latency_kind="measured")
    return len(measured)


@contextlib.contextmanager
def _pool(workers: int):
    """Worker processes, spawned, not forked (a worker forked from a process that already runs TensorFlow's threads can
    deadlock). On Ctrl-C or a termination signal the workers are ended at once, not waited for."""
    pool = ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn"))
    try:
        yield pool
    except BaseException:
        for proc in list(getattr(pool, "_processes", {}).values()):
            proc.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown(wait=True)


def add_emulated_latency(rows: list[dict], out_dir: Path, tflm: str | None, board, progress=None) -> int:
    """Instructions per inference on the emulated Cortex-M4 for every int8 row that fits (and has no board
    measurement): the row's latency becomes `emulated`. Results are cached by what decides them: the model's bytes,
    the TFLM library's files, the compiler's version and the board's flags, and tinydeploy's firmware and templates. Returns the number of
    rows measured."""
    import hashlib

    from ..emulate.tflm_library import TflmLibrary
    from ..emulate.toolchain import ArmToolchain
    from ..sources import firmware_dir, templates_dir

    from ..analyze import analyze
    from ..analyze.artifacts import ArenaFigure
    from ..emulate.measure import measure
    from ..fsutil import write_json_atomic
    from ..repair import repair
    from ..tflite_model import TFLiteModel

    cache = out_dir / "cache"
    todo = [r for r in rows if r["variant"] == "int8" and r["fits"] and r.get("latency_kind") != "measured"]
    if not todo:
        return 0
    setup = hashlib.sha256(TflmLibrary.locate(tflm).fingerprint().encode() + ArmToolchain.find().version.encode()
                           + json.dumps([board.gcc_flags, board.compile], sort_keys=True).encode())
    for d in (firmware_dir(), templates_dir()):
        for p in sorted(d.rglob("*")):
            if p.is_file() and "__pycache__" not in p.parts:
                setup.update(p.relative_to(d).as_posix().encode() + b"\0" + p.read_bytes())
    for i, r in enumerate(todo):
        path = cache / r["file"]
        data = path.read_bytes()
        key = hashlib.sha256(setup.digest() + data).hexdigest()[:24]
        em = cache / f"emulated_{key}.json"
        if em.exists():
            m = json.loads(em.read_text())
        else:
            model = repair(TFLiteModel.from_bytes(data, source=path.name)).model
            figure = ArenaFigure(**r["arena_figure"]) if r.get("arena_figure") else None
            m = measure(model, analyze(model, board, arena=figure), tflm=tflm, runs=1, name=r["model"]).to_dict()
            write_json_atomic(em, m)
        r.update(latency_ms=board.ms(m["instructions"]), latency_kind="emulated",
                 instructions=m["instructions"], device_arena_bytes=m["arena_used_bytes"])
        if progress:
            progress(i + 1, len(todo))
    return len(todo)
