"""The study grid, resumable: every row is cached as JSON; (dataset, family) groups run in parallel."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field, replace
from pathlib import Path

from ..compress.names import FAMILIES as MODEL_FAMILIES
from ..compress.names import EQUAL_EPOCHS, FILTERS as FILTER_KIND, PRUNED, QAT, SEARCH, VARIANTS

SPARSITY = 0.5  # the unstructured-pruned int8 row (weights zeroed; its gain is the gzip size)
FILTERS = 0.5  # the structured-pruned int8 row (half the filters removed; smaller and faster)

# family -> build kwargs for microcontroller size
FAMILIES = {
    "custom_cnn": {},
    "bn_cnn": {},  # the project's own recipe model (bench/recipe.py)
    "vgg_style": {"width": 0.125, "blocks": 3},
    "mobilenet_v1": {"alpha": 0.25},
    "mobilenet_v2": {"alpha": 0.35},
}
# Families structured pruning cannot take (compress/filters.py): channels joined by an addition.
NO_FILTER_PRUNING = {"mobilenet_v2": "residual additions join channels (structured pruning needs a chain)"}
# Reference rows that cannot fit: analysed (size, arena, MACs) but not trained. row -> (family, build kwargs)
TOO_BIG = {"vgg16": ("vgg16", {}), "mobilenet_v2_1.0": ("mobilenet_v2", {"alpha": 1.0})}
assert set(FAMILIES) <= set(MODEL_FAMILIES) and {f for f, _ in TOO_BIG.values()} <= set(MODEL_FAMILIES)
# "start tiny" beside "big to tiny": the architecture search's Pareto front for the dataset (search/), retrained
SEARCH_GROUP = "search"
STUDY_FAMILIES = (*FAMILIES, *TOO_BIG, SEARCH_GROUP)  # the study's rows, in the order of its tables
# The default run leaves out mobilenet_v2 (alpha 0.35), for time: an epoch of it costs about as much as one of
# custom_cnn, vgg_style and mobilenet_v1 together (EPOCH_SECONDS: 64 s against 81 s on Fashion-MNIST, 58 s against 38 s
# on dermatology); `--families` takes it.
DEFAULT_FAMILIES = tuple(f for f in STUDY_FAMILIES if f != "mobilenet_v2")

DATASETS = {"fashion": "fashion-mnist", "radiology": "pneumonia", "dermatology": "ham10000"}
# Input side per dataset: HAM10000 here is 200x150 RGB, and 64x64x3 keeps lesion detail the 28x28 DermaMNIST form
# loses while its models still fit the board (the analyzer decides, row by row); the others are 28x28 at the source.
RESOLUTION = {"fashion": 28, "radiology": 28, "dermatology": 64}

# The rows of one family, in table order: (kind, what it is). A row's `kind` names its compression lever.
KINDS = {**{v: f"{v}, post-training" for v in VARIANTS},
         EQUAL_EPOCHS: "int8 of the parent trained as many epochs as the fine-tuned rows below (their baseline)",
         QAT: "int8 by quantization-aware training",
         PRUNED: f"int8, {SPARSITY:.0%} of the weights zeroed (unstructured)",
         FILTER_KIND: f"int8, {FILTERS:.0%} of the filters removed (structured)",
         SEARCH: "int8, a model of the architecture search's Pareto front, trained like the families"}


# Part of every cached row's key: bump it when a change alters what a group computes, so that a rerun
# does not mix rows made before and after the change. 2: BatchNorm momentum, int32 shape arithmetic.
# 3: rows come from compress() (QAT, structured pruning, equal-epoch baseline, gzip size).
# 4: trained until the validation metric stops improving, AUC and per-class recall, dermatology at 64x64, bn_cnn,
#    the search's rows.
ROWS_VERSION = 4


@dataclass
class Profile:
    """How a study trains. ``epochs``/``finetune_epochs`` are caps where a patience is set (early stopping on the
    validation split's headline metric, best weights kept), else exact."""
    name: str
    epochs: int
    finetune_epochs: int
    train_subset: int | None
    test_subset: int | None
    patience: int | None = None
    finetune_patience: int | None = None
    recipe: str = "plain"
    search_seconds: int = 60  # the search's time budget per dataset, then its front is retrained
    search_subset: int = 1000  # training images a search trial sees
    search_front: int = 2  # front models retrained: the most accurate and the fastest that fit
    # "dataset" or "dataset/family" -> (epochs, patience) where a dataset's (or one group's) parents need another cap
    # than ``epochs``/``patience``; a group's own entry wins over its dataset's
    caps: dict = field(default_factory=dict)

    def for_group(self, dataset_key: str, family: str | None = None) -> "Profile":
        """The profile a (dataset, family) group trains by (its own cap, else its dataset's, where ``caps`` has one);
        its ``key`` names the group's cache entries, so a cap changing retrains the groups it names only."""
        cap = self.caps.get(f"{dataset_key}/{family}", self.caps.get(dataset_key))
        if cap is None:
            return replace(self, caps={})
        epochs, patience = cap
        return replace(self, epochs=epochs, patience=patience, caps={})

    @property
    def key(self) -> str:
        return (f"v{ROWS_VERSION}-{self.name}-e{self.epochs}p{self.patience}-f{self.finetune_epochs}"
                f"p{self.finetune_patience}-{self.recipe}-{self.train_subset}-{self.test_subset}")

    def train(self, model, ds) -> int:
        """Train a parent (a family's, or a search front's model) by this profile; the epochs it ran."""
        from ..compress.models import epochs_run, train

        train(model, ds, epochs=self.epochs, class_weight=ds.imbalanced, recipe=self.recipe, patience=self.patience)
        return epochs_run(model)

    def finetune(self):
        from ..compress.pipeline import FineTune

        return FineTune(epochs=self.finetune_epochs, patience=self.finetune_patience, recipe=self.recipe)

    def describe(self) -> str:
        data = "full datasets" if self.train_subset is None else f"{self.train_subset} training images"
        if self.patience is None:
            return f"{self.name} profile: {data}, {self.epochs} epoch(s) + {self.finetune_epochs} fine-tuning"
        return (f"{self.name} profile: {data}, recipe {self.recipe}, trained until the validation metric stops "
                f"improving (patience {self.patience}, at most {self.epochs} epochs), fine-tuned the same way "
                f"(patience {self.finetune_patience}, at most {self.finetune_epochs})"
                + "".join(f"; {d}: patience {p}, at most {e} epochs" for d, (e, p) in self.caps.items()))


PROFILES = {
    "quick": Profile("quick", 1, 1, 600, 200, search_seconds=20, search_subset=300, search_front=1),
    # At a 12-epoch cap, Fashion-MNIST's parents (the study of 2026-12-01) ran into it still improving, then
    # radiology's custom_cnn and mobilenet_v1 and dermatology's custom_cnn and bn_cnn (2026-12-04) ran all 12 epochs
    # (the cap, not the stopping rule, ended them); the structured-pruned rows ran all 5 fine-tuning epochs. Every
    # dataset now gets the longer caps, and the longer patience the cosine schedule's longer high-rate phase needs.
    # HAM10000's BatchNorm CNN (the study of 2026-12-06) stopped at 9 epochs on its noisy validation balanced accuracy
    # (0.41), and its equal-epoch baseline, trained on 7 epochs more, reached 0.52: patience 5 stopped it before it
    # converged. That group gets patience 10 (its cache key alone changes; the other groups' time is unchanged).
    "full": Profile("full", 24, 10, None, None, patience=5, finetune_patience=2, recipe="field",
                    search_seconds=300, search_subset=5000, search_front=2, caps={"dermatology/bn_cnn": (40, 10)}),
}


# How a row's fit was judged: "deployed" is the model as `build` deploys it with its defaults (repaired, the offline
# memory plan, tinydeploy's kernels), the same verdict `tinydeploy analyze` prints. Cached rows judged otherwise
# (an earlier study judged the model with TFLM's own planner and the firmware's copy of the input) are judged again.
FIT_RULE = "deployed"


def _analysis_fields(board, name, variant, data) -> dict:
    """What the TF-free analyzer says the model costs on the board as `build` deploys it: the fit verdict, the
    arena, the estimated latency."""
    from ..analyze import analyze_or_graph
    from ..analyze.cycle_model import estimate_ms
    from ..plan import as_deployed
    from ..repair import repair
    from ..tflite_model import TFLiteModel

    repaired = repair(TFLiteModel.from_bytes(data, source=name))
    m = as_deployed(repaired, board) if variant == "int8" else repaired.model
    a, refused = analyze_or_graph(m, board)  # the arena is measured for int8 models only
    # reasons a row does not fit, beyond the budgets it exceeds
    why = [] if refused is None else [f"arena not measurable ({refused.what})"]
    fits = variant == "int8" and a.supported and a.fit.fits is True
    over = [f"{k} +{n / 1024:.0f} KiB" for k, n in a.fit.overruns().items()]
    if variant != "int8":
        over.append("not int8")
    elif not a.is_int8:
        over.append(f"not full int8 ({a.type_issues[0].message})")
    over += [i.message for i in a.support_issues] + why
    return {
        "input": "x".join(str(d) for d in m.input_tensors[0].shape[1:]),
        "model_bytes": len(data), "arena_bytes": a.arena.device_bytes if a.arena else None,
        "macs": a.total_macs, "params": a.total_params,
        "model_budget_bytes": a.fit.flash.available_bytes - (a.flash.total_bytes - a.flash.model_bytes),
        "fits": bool(fits), "does_not_fit_by": "; ".join(over) if not fits else "", "fit_rule": FIT_RULE,
        "latency_ms": estimate_ms(a.ops, variant, board), "latency_kind": "estimated",
        "latency_estimate_ms": estimate_ms(a.ops, variant, board),
        "arena_figure": a.arena.to_dict() if a.arena else None,  # so that the emulated run does not measure it again
    }


def _row(dataset_key: str, family: str, imbalanced: bool, board, name, variant, kind, data, file, crow=None) -> dict:
    """A study row: what compress() measured (``crow``; None for a model analysed only) and what the TF-free analyzer
    says the model as deployed costs on the board."""
    fields = _analysis_fields(board, name, variant, data)
    c = crow or {}
    acc, bal = c.get("accuracy"), c.get("balanced_accuracy")
    return {
        "dataset": dataset_key, "family": family, "model": name, "variant": variant, "kind": kind,
        "sparsity": c.get("sparsity"), "trained": crow is not None,
        "epochs": c.get("epochs"), "finetune_epochs": c.get("finetune_epochs_run") or None, "input": fields["input"],
        "accuracy": acc, "balanced_accuracy": bal, "auc": c.get("auc"), "per_class_recall": c.get("per_class_recall"),
        "imbalanced": imbalanced, "headline": bal if imbalanced else acc,
        "tflm_accuracy": c.get("tflm_accuracy"), "vs_equal_epochs_pp": c.get("vs_equal_epochs_pp"),
        "gzip_bytes": c.get("gzip_bytes"), **fields, "file": file,
    }


def refresh_fits(rows: list[dict], cache: Path, board) -> int:
    """Judge again, by FIT_RULE, the cached rows judged another way (their model files are in the cache); returns how
    many. The caller rewrites the cache's rows files."""
    n = 0
    for r in rows:
        if r.get("fit_rule") == FIT_RULE or not r.get("file") or not (cache / r["file"]).exists():
            continue
        # (a cached row's latency is the analyzer's estimate: board and emulated latencies are applied after loading)
        r.update(_analysis_fields(board, r["model"], r["variant"], (cache / r["file"]).read_bytes()))
        n += 1
    return n


def _load(dataset_key: str, size: int, profile: "Profile"):
    from ..compress.datasets import load_dataset

    ds = load_dataset(DATASETS[dataset_key], size=size)
    return ds.subset(profile.train_subset, profile.test_subset) if profile.train_subset else ds


def _group(dataset_key: str, family: str, profile: Profile, cache_dir: str, board) -> list[dict]:
    """Train one family on one dataset, then compress()'s public pipeline (every variant, QAT, unstructured and
    structured pruning, the equal-epoch baseline), its output kept in the cache; analyze every file. Runs in a worker."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    profile = profile.for_group(dataset_key, family)
    if family == SEARCH_GROUP:
        return _search_group(dataset_key, profile, cache_dir, board)
    import numpy as np

    from ..compress.models import build, min_input_size
    from ..compress.pipeline import CompressOptions, compress
    from ..compress.quantize import convert
    from ..compress.tfenv import seed_everything

    cache = Path(cache_dir)
    base, kw = TOO_BIG.get(family, (family, FAMILIES.get(family, {})))
    ds = _load(dataset_key, max(min_input_size(base), RESOLUTION[dataset_key]), profile)
    imbalanced = ds.imbalanced
    seed_everything(0)
    model = build(base, ds.input_shape, ds.num_classes, **kw)

    def row_for(name, variant, kind, data, file, crow=None):
        return _row(dataset_key, family, imbalanced, board, name, variant, kind, data, file, crow)

    if family in TOO_BIG:
        rep = np.random.default_rng(0).integers(0, 256, (8,) + ds.input_shape, dtype=np.uint8)
        data = convert(model, "int8", rep, 8)
        file = f"{dataset_key}_{family}_int8.tflite"
        (cache / file).write_bytes(data)
        return [row_for(family, "int8", "int8", data, file)]

    parent_epochs = profile.train(model, ds)
    opts = CompressOptions(board=board, variants=VARIANTS, prune=(SPARSITY,), qat=True,
                           prune_filters=() if family in NO_FILTER_PRUNING else (FILTERS,),
                           finetune=profile.finetune())
    sub = f"{dataset_key}_{family}_{profile.key}"
    report = compress(model, ds, family, cache / sub, opts, force=True)
    rows = []
    for c in report["rows"]:
        kind = c["kind"]  # what compress made the row with, not parsed from its name
        c = {**c, "epochs": parent_epochs + c.get("finetune_epochs_run", 0)}
        file = f"{sub}/{c['file']}"
        rows.append(row_for(c["name"], c["variant"], kind, (cache / file).read_bytes(), file, c))
    for f in report.get("failed", []):  # a comparison variant the converter refused: a row that says so
        rows.append({"dataset": dataset_key, "family": family, "model": f["name"], "variant": f["variant"],
                     "kind": f["kind"], "trained": False, "imbalanced": imbalanced, "fits": False,
                     "does_not_fit_by": f"not converted: {f['error']}"})
    if family in NO_FILTER_PRUNING:  # the row says why it is missing
        rows.append({"dataset": dataset_key, "family": family, "model": f"{family}_filters{int(FILTERS * 100)}",
                     "variant": "int8", "kind": FILTER_KIND, "trained": False, "imbalanced": imbalanced, "fits": False,
                     "does_not_fit_by": f"not applicable: {NO_FILTER_PRUNING[family]}"})
    return rows


def _timed_group(*args) -> list[dict]:
    """_group's rows, each with ``group_seconds``: the wall time its group took in its worker, kept in the cache, so
    a study run in parts can still say what all of it took."""
    import time

    t0 = time.monotonic()
    rows = _group(*args)
    return [{**r, "group_seconds": round(time.monotonic() - t0, 1)} for r in rows]


def group_seconds(rows: list[dict]) -> tuple[float, int]:
    """The summed wall time of the groups whose rows record it (each group once), and how many groups do not."""
    seen: dict = {}
    for r in rows:
        seen.setdefault((r["dataset"], r["family"]), r.get("group_seconds"))
    return sum(v for v in seen.values() if v is not None), sum(v is None for v in seen.values())


def pick_front(front: list[dict], n: int) -> list[dict]:
    """The search's front models to retrain: the most accurate on validation, then the fastest, then the rest from
    the most accurate down, ``n`` in all."""
    ranked = sorted(front, key=lambda r: -r["val"])
    picks = ranked[:1] + sorted(ranked[1:], key=lambda r: r["latency_ms"])[:1] + ranked[1:]
    return list({r["file"]: r for r in picks}.values())[:n]


def _search_group(dataset_key: str, profile: Profile, cache_dir: str, board) -> list[dict]:
    """"Start tiny": `tinydeploy search` on the dataset within the profile's time budget (its storage in the cache, so
    an interrupted study resumes the search), then each picked front model trained from scratch like the families'
    parents (same recipe, epochs and stopping rule, on the full training set), its compression (QAT or structured
    pruning) fine-tuned like theirs, converted to int8 and measured by compress()."""
    import subprocess
    import sys

    from ..compress.datasets import prepare
    from ..compress.models import epochs_run
    from ..compress.pipeline import CompressOptions, compress
    from ..compress.tfenv import seed_everything
    from ..search.space import Candidate, build_model, compressed

    cache = Path(cache_dir)
    out = cache / f"search_{dataset_key}_{profile.key}"
    cmd = [sys.executable, "-m", "tinydeploy", "search", "--dataset", DATASETS[dataset_key], "--board", board.id,
           "--timeout", str(profile.search_seconds), "--trials", "100000", "--subset", str(profile.search_subset),
           "--no-emulate", "-o", str(out), "--force", "--json", str(out) + ".json"]
    r = subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    if r.returncode != 0:
        raise RuntimeError(f"the search failed (exit {r.returncode}): {(r.stderr.strip().splitlines() or [''])[-1]}")
    report = json.loads(Path(str(out) + ".json").read_text())
    full = _load(dataset_key, 28, profile)  # the search's own data: its candidates are at most 28 px
    ft = profile.finetune()
    rows = []
    for f in pick_front(report["front"], profile.search_front):
        c = Candidate.from_json((out / f["file"].replace("_int8.tflite", "_int8.candidate.json")).read_text())
        ds = prepare(full, size=c.resolution) if c.resolution != full.input_shape[0] else full
        seed_everything(0)
        model = build_model(c, ds.input_shape[-1], ds.num_classes)
        epochs = profile.train(model, ds)
        if c.compression != "ptq":
            model = compressed(c, model, ds, ft)
            epochs += epochs_run(model)
        name = f"search_{Path(f['file']).stem.removesuffix('_int8')}"
        sub = f"{dataset_key}_{name}_{profile.key}"
        rep = compress(model, ds, name, cache / sub, CompressOptions(board=board, variants=("int8",), finetune=ft),
                       force=True)
        crow = {**rep["rows"][0], "epochs": epochs}
        file = f"{sub}/{crow['file']}"
        row = _row(dataset_key, SEARCH_GROUP, ds.imbalanced, board, name, "int8", SEARCH, (cache / file).read_bytes(),
                   file, crow)
        row["candidate"] = c.describe()
        rows.append(row)
    return rows


# Seconds one epoch of the field recipe took on this machine (one thread, measured once on 2026-12-01): the order in
# which groups start (longest first, so that the workers finish at about the same time) and the default families.
EPOCH_SECONDS = {"fashion": {"custom_cnn": 12, "bn_cnn": 43, "vgg_style": 22, "mobilenet_v1": 47, "mobilenet_v2": 64},
                 "dermatology": {"custom_cnn": 9, "bn_cnn": 43, "vgg_style": 12, "mobilenet_v1": 17, "mobilenet_v2": 58},
                 "radiology": {"custom_cnn": 2, "bn_cnn": 12, "vgg_style": 4, "mobilenet_v1": 7, "mobilenet_v2": 22}}
SEARCH_SECONDS_GUESS = 900  # the search's budget and its front's retraining


def _cost(dataset_key: str, family: str) -> float:
    if family == SEARCH_GROUP:
        return SEARCH_SECONDS_GUESS
    return EPOCH_SECONDS.get(dataset_key, {}).get(family, 0.1)


def _write_rows(path: Path, group: list[dict]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(group, indent=1))
    tmp.replace(path)


def run(datasets, families, profile: Profile, out_dir: Path, board, *, workers: int = 2,
        progress=None) -> tuple[list[dict], list[str]]:
    """Rows of every (dataset, family) group, and a line for each group that failed. A failed group does
    not stop the others; it is not cached, so the next run tries it again."""
    cache = out_dir / "cache"
    cache.mkdir(parents=True, exist_ok=True)
    todo, rows = [], []
    for d in datasets:
        for f in families:
            path = cache / f"rows_{d}_{f}_{profile.for_group(d, f).key}.json"
            if path.exists():
                group = json.loads(path.read_text())
                if refresh_fits(group, cache, board):  # judged by an earlier rule: judged again, cached again
                    _write_rows(path, group)
                rows += group
            else:
                todo.append((d, f, path))
    todo.sort(key=lambda t: -_cost(t[0], t[1]))  # longest first: the workers then finish at about the same time
    total = len(datasets) * len(families)
    done = total - len(todo)
    if progress:
        progress(done, total)
    failures = []
    # spawn, not fork: a worker forked from a process that already runs TensorFlow's threads can deadlock
    with _pool(workers) as pool:
        futs = {pool.submit(_timed_group, d, f, profile, str(cache), board): (d, f, p) for d, f, p in todo}
        for fut in as_completed(futs):
            d, f, path = futs[fut]
            try:
                group = fut.result()
            except Exception as e:  # a worker's error, or its crash (BrokenProcessPool)
                failures.append(f"{d}/{f}: {type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}")
                continue
            _write_rows(path, group)  # a finished group is cached atomically: an interrupted study resumes here
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
    from ..plan import MEMORY_PLANS, deployed
    from ..tflite_model import TFLiteModel

    by_key = {f"{r['dataset']}/{r['model']}/{r['variant']}": r for r in rows}
    for key, (ms, sha, path) in measured.items():
        r = by_key.get(key)
        if r is None:
            raise TinyDeployError(f"--bench {key}: the study has no such row",
                                  f"Rows: DATASET/MODEL/VARIANT as in study.csv, e.g. {next(iter(by_key), 'none')}")
        model = TFLiteModel.from_bytes((cache / r["file"]).read_bytes(), source=r["file"])
        # as `tinydeploy build` deploys it, with either memory plan (the instructions are the same)
        shas = [hashlib.sha256(deployed(model, p).model.data).hexdigest()[:16] for p in MEMORY_PLANS]
        want = shas[0]
        if sha not in shas:
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
    measurement), the model as `build` deploys it: the row's latency becomes `emulated`. Results are cached by what
    decides them: the model's bytes, the TFLM library's files, the compiler's version and the board's flags, the
    kernels (the build's default), the fit rule, and tinydeploy's firmware and templates. Returns the number of rows
    measured."""
    import hashlib

    from ..emulate.tflm_library import TflmLibrary
    from ..emulate.toolchain import ArmToolchain
    from ..sources import firmware_dir, templates_dir

    from ..analyze import analyze
    from ..analyze.artifacts import ArenaFigure
    from ..emulate.measure import measure
    from ..fsutil import write_json_atomic
    from ..plan import as_deployed
    from ..repair import repair
    from ..tflite_model import TFLiteModel

    cache = out_dir / "cache"
    todo = [r for r in rows if r["variant"] == "int8" and r["fits"] and r.get("latency_kind") != "measured"]
    if not todo:
        return 0
    from ..analyze.requant import DEFAULT_KERNELS

    setup = hashlib.sha256(TflmLibrary.locate(tflm).fingerprint().encode() + ArmToolchain.find().version.encode()
                           + json.dumps([board.gcc_flags, board.compile, DEFAULT_KERNELS, FIT_RULE], sort_keys=True).encode())
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
            model = as_deployed(repair(TFLiteModel.from_bytes(data, source=path.name)), board)  # as `build` deploys it
            figure = ArenaFigure(**r["arena_figure"]) if r.get("arena_figure") else None
            m = measure(model, analyze(model, board, arena=figure), tflm=tflm, runs=1, name=r["model"],
                        kernels=DEFAULT_KERNELS).to_dict()
            write_json_atomic(em, m)
        r.update(latency_ms=board.ms(m["instructions"]), latency_kind="emulated",
                 instructions=m["instructions"], device_arena_bytes=m["arena_used_bytes"])
        if progress:
            progress(i + 1, len(todo))
    return len(todo)
