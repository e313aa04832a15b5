"""The compress pipeline: (train) -> (prune, fine-tune, strip) -> convert variants -> evaluate -> files.

Everything goes to a staged directory first: an interrupted run leaves nothing half-written.
"""

from __future__ import annotations

import gzip
import time
from dataclasses import dataclass, field
from pathlib import Path

from ..boards import Board
from ..boards import load as load_board
from ..console import console, err_console
from ..fsutil import StagedDirectory, write_json_atomic, write_text_atomic
from ..samples import Samples
from .datasets import Dataset
from .names import EQUAL_EPOCHS, FILTERS, FINE_TUNED, PRUNED, QAT, VARIANTS
from .evaluate import metrics, predict_tflm, quantize_inputs_int8, scores_tflite
from .prune import FINETUNE_LR
from .quantize import convert


@dataclass(frozen=True)
class FineTune:
    """How every row trained after the parent is trained: the equal-epoch baseline, QAT, unstructured and structured
    pruning alike, so that they are compared like with like. ``patience`` None: exactly ``epochs``; else until the
    validation metric has not improved for ``patience`` epochs (best weights kept), at most ``epochs``."""
    epochs: int = 2
    patience: int | None = None
    recipe: str = "plain"  # names.RECIPES
    batch_size: int = 128
    lr: float = FINETUNE_LR

    def train_kw(self, ds: Dataset) -> dict:
        return dict(epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, class_weight=ds.imbalanced,
                    recipe=self.recipe, patience=self.patience)

    def describe(self) -> str:
        how = f"{self.epochs}" if self.patience is None else f"until it stops improving ({self.patience} epochs' patience, at most {self.epochs})"
        return f"fine-tuned {how} epoch(s), recipe {self.recipe}"


@dataclass
class CompressOptions:
    variants: tuple[str, ...] = VARIANTS
    prune: tuple[float, ...] = ()  # target sparsities; each adds a pruned int8 model
    qat: bool = False  # adds a quantization-aware-trained int8 model
    prune_filters: tuple[float, ...] = ()  # fractions of filters removed; each adds a smaller int8 model
    finetune: FineTune = field(default_factory=FineTune)
    rep_samples: int = 200
    golden_samples: int = 16
    eval_limit: int | None = None  # evaluate on at most this many test images
    tflm_eval: bool = True  # also run the int8 models through the TFLM host interpreter
    board: Board | None = None  # the board the int8 rows' deployment figures are for (default: nano33ble)


@dataclass
class VariantResult:
    name: str
    variant: str
    kind: str  # the variant for a post-training conversion, else EQUAL_EPOCHS or one of FINE_TUNED (names.py)
    file: str
    bytes: int
    sparsity: float | None
    metrics: dict
    tflm_metrics: dict | None = None
    extra: dict = field(default_factory=dict)

    def row(self) -> dict:
        return {"name": self.name, "variant": self.variant, "kind": self.kind, "file": self.file, "bytes": self.bytes,
                "sparsity": self.sparsity, "accuracy": self.metrics["accuracy"],
                "balanced_accuracy": self.metrics["balanced_accuracy"], "auc": self.metrics.get("auc"),
                "per_class_recall": self.metrics.get("per_class_recall"),
                "tflm_accuracy": None if self.tflm_metrics is None else self.tflm_metrics["accuracy"],
                **self.extra}


def evaluate_variant(model_bytes: bytes, ds: Dataset, variant: str, *, limit: int | None = None,
                     tflm: bool = True) -> tuple[dict, dict | None]:
    """Test-split metrics with the TFLite interpreter, and for int8 also with the TFLM host interpreter."""
    x, y = ds.x_test[:limit], ds.y_test[:limit]
    scores = scores_tflite(model_bytes, x)
    m = metrics(y, scores.argmax(axis=1), ds.num_classes, scores)
    tm = metrics(y, predict_tflm(model_bytes, x), ds.num_classes) if variant == "int8" and tflm else None
    return m, tm


def _clone(model):
    from .tfenv import import_tf

    _, keras = import_tf()
    clone = keras.models.clone_model(model)
    clone.set_weights(model.get_weights())
    return clone


def continued_copy(model, ds: Dataset, ft: FineTune):
    """A copy of ``model`` trained on as the fine-tuned rows are (the equal-epoch baseline)."""
    from .models import train

    return train(_clone(model), ds, **ft.train_kw(ds))


def pruned_copy(model, ds: Dataset, sparsity: float, ft: FineTune):
    """A pruned, fine-tuned and stripped copy of ``model``; the model itself is left as it is."""
    from .prune import prune

    return prune(_clone(model), ds, target_sparsity=sparsity, **ft.train_kw(ds))


def filter_pruned_copy(model, ds: Dataset, fraction: float, ft: FineTune):
    """``model`` with ``fraction`` of its filters removed (compress/filters.py), fine-tuned; ``model`` itself is left
    as it is."""
    from .filters import prune_filters
    from .models import train

    return train(prune_filters(model, fraction), ds, **ft.train_kw(ds))


def qat_copy(model, ds: Dataset, ft: FineTune):
    """A quantization-aware copy of ``model`` (compress/qat.py), fine-tuned."""
    from .models import train
    from .qat import quantize_aware

    return train(quantize_aware(_clone(model)), ds, **ft.train_kw(ds))


def deployment_figures(data: bytes, name: str, board: Board) -> dict:
    """What an int8 model costs on the board, from the TF-free analyzer: MACs, parameters, arena (measured by the TFLM
    host interpreter, 32-bit figure) and a latency ESTIMATE from the cycle model (analyze/cycle_model.py)."""
    from ..analyze import analyze_or_graph
    from ..analyze.cycle_model import estimate_ms
    from ..plan import deployed
    from ..tflite_model import TFLiteModel

    a, _ = analyze_or_graph(deployed(TFLiteModel.from_bytes(data, source=name)).model, board)  # as `build` deploys it
    return {"macs": a.total_macs, "params": a.total_params, "arena_bytes": a.arena.device_bytes if a.arena else None,
            "latency_ms_estimate": round(estimate_ms(a.ops, "int8", board), 3),
            "fits": None if a.fit.fits is None else bool(a.fit.fits)}


def compress(model, ds: Dataset, name: str, out_dir: Path, opts: CompressOptions, *, force: bool,
             started: float | None = None) -> dict:
    """``started``: time.monotonic() when the command began, so that the reported run time covers loading and
    training too."""
    from .models import epochs_run
    from .prune import sparsity_report

    t0 = started if started is not None else time.monotonic()
    results: list[VariantResult] = []
    with StagedDirectory(out_dir, force) as tmp:
        model.save(tmp / f"{name}.keras")
        labels = "\n".join(ds.class_names) + "\n"
        base_sparsity = sparsity_report(model)["overall"]
        jobs = [(name, model, v, v, base_sparsity, 0) for v in opts.variants]
        ft = opts.finetune
        if opts.prune or opts.qat or opts.prune_filters:
            # Pruned and QAT models are trained on after the parent's training: the parent, trained on the same way,
            # is the like-for-like baseline they are compared with.
            err_console.print(f"training {name} on, {ft.describe()} (the equal-epoch baseline) ...")
            more = continued_copy(model, ds, ft)
            jobs.append((f"{name}_plus{ft.epochs}ep", more, "int8", EQUAL_EPOCHS, sparsity_report(more)["overall"],
                         epochs_run(more)))
        if opts.qat:
            err_console.print(f"quantization-aware training, {ft.describe()} ...")
            q = qat_copy(model, ds, ft)
            jobs.append((f"{name}_qat", q, "int8", QAT, base_sparsity, epochs_run(q)))
        for s in opts.prune:
            err_console.print(f"pruning to {s:.0%} sparsity, {ft.describe()} ...")
            pruned = pruned_copy(model, ds, s, ft)
            rep = sparsity_report(pruned)
            pname = f"{name}_pruned{int(round(s * 100))}"
            pruned.save(tmp / f"{pname}.keras")
            write_json_atomic(tmp / f"{pname}.sparsity.json", rep)
            jobs.append((pname, pruned, "int8", PRUNED, rep["overall"], epochs_run(pruned)))
        for f in opts.prune_filters:
            from .filters import channel_report

            err_console.print(f"removing {f:.0%} of the filters, {ft.describe()} ...")
            smaller = filter_pruned_copy(model, ds, f, ft)
            fpname = f"{name}_filters{int(round(f * 100))}"
            smaller.save(tmp / f"{fpname}.keras")
            write_json_atomic(tmp / f"{fpname}.channels.json",
                              {"parent": channel_report(model), "pruned": channel_report(smaller), "fraction": f})
            jobs.append((fpname, smaller, "int8", FILTERS, sparsity_report(smaller)["overall"], epochs_run(smaller)))
        failed = []  # comparison variants the converter refused: reported, not fatal (int8, the deployed one, is)
        for jname, m, variant, kind, sparsity, more_epochs in jobs:
            err_console.print(f"converting {jname} to {variant} and evaluating ...")
            try:
                data = convert(m, variant, ds.x_train, opts.rep_samples)
            except Exception as e:  # the TFLite converter's errors (ConverterError, ValueError, RuntimeError, ...)
                if variant == "int8":
                    raise
                why = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
                err_console.print(f"warning: {jname} does not convert to {variant} ({why}): left out of the comparison",
                                  highlight=False)
                failed.append({"name": jname, "variant": variant, "kind": kind, "error": why})
                continue
            fname = f"{jname}_{variant}.tflite"
            (tmp / fname).write_bytes(data)
            met, tmet = evaluate_variant(data, ds, variant, limit=opts.eval_limit, tflm=opts.tflm_eval)
            # TFLM stores weights dense: pruning's real gain is the compressed size (TF's pruning guide measures it so)
            r = VariantResult(jname, variant, kind, fname, len(data), sparsity, met, tmet,
                              extra={"gzip_bytes": len(gzip.compress(data, 9)), "finetune_epochs_run": more_epochs})
            if variant == "int8":
                r.extra.update(deployment_figures(data, fname, opts.board or load_board("nano33ble")))
                stem = fname[: -len(".tflite")]
                (tmp / f"{stem}.labels.txt").write_text(labels)
                n = opts.golden_samples
                xq = quantize_inputs_int8(data, ds.x_test[:n])
                host = predict_tflm(data, ds.x_test[:n]) if opts.tflm_eval else None
                Samples(xq, ds.y_test[:n], host).save(tmp / f"{stem}.samples.npz")
            results.append(r)
        report = _report(name, ds, results, time.monotonic() - t0)
        report["failed"] = failed
        write_json_atomic(tmp / "compress.json", report)
        write_text_atomic(tmp / "compress.md", markdown(report))
    return report


def _report(name: str, ds: Dataset, results: list[VariantResult], seconds: float) -> dict:
    f32 = next((r for r in results if r.kind == "float32"), None)
    baseline = next((r for r in results if r.kind == EQUAL_EPOCHS), None)
    rows = []
    for r in results:
        row = r.row()
        row["size_vs_float32"] = r.bytes / f32.bytes if f32 else None
        row["accuracy_delta_pp"] = 100 * (r.metrics["accuracy"] - f32.metrics["accuracy"]) if f32 else None
        if baseline is not None and r.kind in FINE_TUNED:  # same epochs in total
            # the headline metric: balanced accuracy where the classes are imbalanced
            key = "balanced_accuracy" if ds.imbalanced else "accuracy"
            row["vs_equal_epochs_pp"] = 100 * (r.metrics[key] - baseline.metrics[key])
        parent = next((p for p in results if p.kind == "int8"), None)
        if r.kind == FILTERS and parent is not None:  # what removing filters saved on the board
            row["vs_parent"] = {k: r.extra[k] / parent.extra[k] for k in ("macs", "params", "arena_bytes", "latency_ms_estimate")
                                if r.extra.get(k) and parent.extra.get(k)}
            row["vs_parent"]["bytes"] = r.bytes / parent.bytes
        rows.append(row)
    return {"schema": "tinydeploy.compress/1", "model": name, "dataset": ds.summary(), "seconds": round(seconds, 1),
            "rows": rows, "confusion": {f"{r.name}/{r.variant}": r.metrics["confusion"] for r in results}}


def markdown(report: dict) -> str:
    ds = report["dataset"]
    lines = [f"# {report['model']} on {ds['name']}", "",
             f"Test split: {ds['test']} images, {len(ds['classes'])} classes. Run time {report['seconds']} s.", "",
             "Δ pp: against float32. Δ equal epochs: a pruned or QAT model against its parent trained as many epochs "
             "in total (post-training int8).", "",
             "| model | variant | bytes | gzip bytes | x float32 | sparsity | accuracy | Δ pp | Δ equal epochs | balanced acc. | TFLM acc. |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in report["rows"]:
        f = lambda v, fmt: "-" if v is None else format(v, fmt)
        lines.append(f"| {r['name']} | {r['variant']} | {r['bytes']:,} | {f(r.get('gzip_bytes'), ',')} | "
                     f"{f(r['size_vs_float32'], '.3f')} | "
                     f"{f(r['sparsity'], '.1%')} | {f(r['accuracy'], '.4f')} | {f(r['accuracy_delta_pp'], '+.2f')} | "
                     f"{f(r.get('vs_equal_epochs_pp'), '+.2f')} | "
                     f"{f(r['balanced_accuracy'], '.4f')} | {f(r['tflm_accuracy'], '.4f')} |")
    dep = [r for r in report["rows"] if r["variant"] == "int8" and "macs" in r]
    if dep:
        lines += ["", "On the board (int8): MACs and parameters from the graph, arena measured by the TFLM host interpreter "
                  "(32-bit), latency an ESTIMATE from the cycle model (`tinydeploy emulate` measures it). "
                  "x parent: a filter-pruned model against its unpruned parent.", "",
                  "| model | MACs | params | bytes | arena bytes | est. latency ms | x parent (MACs / bytes / arena) |",
                  "|---|---:|---:|---:|---:|---:|---|"]
        for r in dep:
            vp = r.get("vs_parent")
            ratio = "-" if not vp else " / ".join(f"{vp[k]:.2f}" if k in vp else "-" for k in ("macs", "bytes", "arena_bytes"))
            lines.append(f"| {r['name']} | {r['macs']:,} | {r['params']:,} | {r['bytes']:,} | "
                         f"{'-' if r['arena_bytes'] is None else format(r['arena_bytes'], ',')} | "
                         f"{r['latency_ms_estimate']:.1f} | {ratio} |")
    for f in report.get("failed", []):
        lines += ["", f"Not converted: {f['name']} to {f['variant']} ({f['error']})."]
    return "\n".join(lines) + "\n"


def render(report: dict) -> None:
    from rich.table import Table

    t = Table(title=f"{report['model']} on {report['dataset']['name']} ({report['dataset']['test']} test images)",
              title_justify="left")
    for c in ("model", "variant", "bytes", "gzip", "x f32", "sparsity", "accuracy", "Δ pp", "bal. acc.", "TFLM acc."):
        t.add_column(c, justify="left" if c in ("model", "variant") else "right")
    f = lambda v, fmt: "-" if v is None else format(v, fmt)
    for r in report["rows"]:
        t.add_row(r["name"], r["variant"], f"{r['bytes']:,}", f(r.get("gzip_bytes"), ","), f(r["size_vs_float32"], ".3f"),
                  f(r["sparsity"], ".1%"),
                  f(r["accuracy"], ".4f"), f(r["accuracy_delta_pp"], "+.2f"), f(r["balanced_accuracy"], ".4f"),
                  f(r["tflm_accuracy"], ".4f"))
    console.print(t)
    dep = [r for r in report["rows"] if r["variant"] == "int8" and "macs" in r]
    if dep:
        d = Table(title="int8 on the board (latency: cycle-model ESTIMATE; x parent: filter-pruned vs unpruned)",
                  title_justify="left")
        for c in ("model", "MACs", "params", "bytes", "arena", "est. ms", "Δ equal epochs", "x parent MACs", "x parent bytes"):
            d.add_column(c, justify="left" if c == "model" else "right")
        for r in dep:
            vp = r.get("vs_parent") or {}
            d.add_row(r["name"], f"{r['macs']:,}", f"{r['params']:,}", f"{r['bytes']:,}", f(r["arena_bytes"], ","),
                      f(r["latency_ms_estimate"], ".1f"), f(r.get("vs_equal_epochs_pp"), "+.2f"), f(vp.get("macs"), ".2f"),
                      f(vp.get("bytes"), ".2f"))
        console.print(d)
