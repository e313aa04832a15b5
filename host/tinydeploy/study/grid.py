"""The study grid, resumable: every row is cached as JSON; (dataset, family) groups run in parallel."""

from __future__ import annotations

import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from ..compress.names import FAMILIES as MODEL_FAMILIES
from ..compress.names import VARIANTS

SPARSITIES = (0.5, 0.75)

# family -> build kwargs for microcontroller size
FAMILIES = {
    "custom_cnn": {},
    "vgg_style": {"width": 0.125, "blocks": 3},
    "mobilenet_v1": {"alpha": 0.25},
    "mobilenet_v2": {"alpha": 0.35},
}
# Reference rows that cannot fit: analysed (size, arena, MACs) but not trained. row -> (family, build kwargs)
TOO_BIG = {"vgg16": ("vgg16", {}), "mobilenet_v2_1.0": ("mobilenet_v2", {"alpha": 1.0})}
assert set(FAMILIES) <= set(MODEL_FAMILIES) and {f for f, _ in TOO_BIG.values()} <= set(MODEL_FAMILIES)
STUDY_FAMILIES = (*FAMILIES, *TOO_BIG)  # the study's rows, in the order of its tables

DATASETS = {"fashion": "fashion-mnist", "radiology": "pneumonia", "dermatology": "ham10000"}


# Part of every cached row's key: bump it when a change alters what a group computes, so that a rerun
# does not mix rows made before and after the change. 2: BatchNorm momentum, int32 shape arithmetic.
ROWS_VERSION = 2


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


PROFILES = {
    "quick": Profile("quick", 1, 1, 1500, 300),
    "full": Profile("full", 3, 1, None, None),
}


def _group(dataset_key: str, family: str, profile: Profile, cache_dir: str, measured: dict) -> list[dict]:
    """Train one family on one dataset, prune, convert all variants, evaluate, analyze. Runs in a worker."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import numpy as np

    from .. import boards
    from ..analyze import analyze
    from ..compress.datasets import load_dataset
    from ..compress.models import build, min_input_size, train
    from ..compress.pipeline import evaluate_variant, pruned_copy
    from ..compress.prune import sparsity_report
    from ..compress.quantize import convert
    from ..compress.tfenv import seed_everything
    from ..errors import ModelError
    from ..tflite_model import TFLiteModel
    from .cycle_model import estimate_ms

    cache = Path(cache_dir)
    board = boards.load("nano33ble")
    base, kw = TOO_BIG.get(family, (family, FAMILIES.get(family, {})))
    size = max(min_input_size(base), 28)
    ds = load_dataset(DATASETS[dataset_key], size=size if size != 28 else None)
    if profile.train_subset:
        ds = ds.subset(profile.train_subset, profile.test_subset)
    seed_everything(0)
    model = build(base, ds.input_shape, ds.num_classes, **kw)
    rows = []

    def row_for(name, variant, data, sparsity, trained, met=None, tmet=None):
        m = TFLiteModel.from_bytes(data, source=name)
        why = []  # reasons a row does not fit, beyond the budgets it exceeds
        try:
            a = analyze(m, board)  # the arena is measured for int8 models only
        except ModelError as e:  # the TFLM host interpreter refused or aborted on this model
            a = analyze(m, board, measure_arena=False)
            why.append(f"arena not measurable ({e.what})")
        ops = [o.to_dict() for o in a.ops]
        arena = a.arena.device_bytes if a.arena else None
        fits = variant == "int8" and a.supported and a.fit.fits is True
        over = [f"{k} +{n / 1024:.0f} KiB" for k, n in a.fit.overruns().items()]
        if variant != "int8":
            over.append("not int8")
        elif not a.is_int8:
            over.append(f"not full int8 ({a.type_issues[0].message})")
        over += [i.message for i in a.support_issues] + why
        key = f"{dataset_key}/{name}/{variant}"
        lat, lat_kind = (measured[key], "measured") if key in measured else (estimate_ms(ops, variant), "estimated")
        return {
            "dataset": dataset_key, "family": family, "model": name, "variant": variant,
            "sparsity": sparsity, "trained": trained,
            "accuracy": None if met is None else met["accuracy"],
            "balanced_accuracy": None if met is None else met["balanced_accuracy"],
            "tflm_accuracy": None if tmet is None else tmet["accuracy"],
            "model_bytes": len(data), "arena_bytes": arena, "macs": a.total_macs, "params": a.total_params,
            "fits": bool(fits), "does_not_fit_by": "; ".join(over) if not fits else "",
            "latency_ms": lat, "latency_kind": lat_kind,
        }

    if family in TOO_BIG:
        rep = np.random.default_rng(0).integers(0, 256, (8,) + ds.input_shape, dtype=np.uint8)
        rows.append(row_for(family, "int8", convert(model, "int8", rep, 8), 0.0, False))
        return rows

    train(model, ds, epochs=profile.epochs, class_weight=ds.imbalanced)
    jobs = [(family, model, v, sparsity_report(model)["overall"]) for v in VARIANTS]
    for s in SPARSITIES:
        pruned = pruned_copy(model, ds, s, epochs=profile.finetune_epochs)
        jobs.append((f"{family}_pruned{int(s * 100)}", pruned, "int8", sparsity_report(pruned)["overall"]))
    for name, m, variant, sp in jobs:
        data = convert(m, variant, ds.x_train)
        (cache / f"{dataset_key}_{name}_{variant}_{profile.name}.tflite").write_bytes(data)
        met, tmet = evaluate_variant(data, ds, variant)
        rows.append(row_for(name, variant, data, sp, True, met, tmet))
    return rows


def run(datasets, families, profile: Profile, out_dir: Path, *, workers: int = 2, measured: dict | None = None,
        progress=None) -> tuple[list[dict], list[str]]:
    """Rows of every (dataset, family) group, and a line for each group that failed. A failed group does
    not stop the others; it is not cached, so the next run tries it again."""
    cache = out_dir / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    measured = measured or {}
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
    with ProcessPoolExecutor(max_workers=workers, mp_context=multiprocessing.get_context("spawn")) as pool:
        futs = {pool.submit(_group, d, f, profile, str(cache), measured): (d, f, p) for d, f, p in todo}
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
    rows.sort(key=lambda r: (order[r["dataset"]], forder[r["family"]], r["model"], VARIANTS.index(r["variant"])))
    return rows, failures


def add_emulated_latency(rows: list[dict], out_dir: Path, profile: Profile, tflm: str | None, progress=None) -> int:
    """Instructions per inference on the emulated Cortex-M4 for every int8 row that fits (and has no board
    measurement): the row's latency becomes `emulated`. Results are cached by the model's sha256. Returns the
    number of rows measured."""
    import hashlib

    from .. import boards
    from ..analyze import analyze
    from ..emulate.measure import measure
    from ..fsutil import write_json_atomic
    from ..tflite_model import TFLiteModel

    cache = out_dir / "cache"
    board = boards.load("nano33ble")
    todo = [r for r in rows if r["variant"] == "int8" and r["fits"] and r["latency_kind"] != "measured"]
    for i, r in enumerate(todo):
        path = cache / f"{r['dataset']}_{r['model']}_{r['variant']}_{profile.name}.tflite"
        if not path.exists():
            continue
        data = path.read_bytes()
        em = cache / f"emulated_{hashlib.sha256(data).hexdigest()[:20]}.json"
        if em.exists():
            m = json.loads(em.read_text())
        else:
            model = TFLiteModel.from_bytes(data, source=path.name)
            a = analyze(model, board)
            m = measure(a.deployed, a, tflm=tflm, runs=1, name=r["model"]).to_dict()
            write_json_atomic(em, m)
        r.update(latency_ms=m["instructions"] / (board.cpu_mhz * 1e6) * 1e3, latency_kind="emulated",
                 instructions=m["instructions"], device_arena_bytes=m["arena_used_bytes"])
        if progress:
            progress(i + 1, len(todo))
    return len(todo)
