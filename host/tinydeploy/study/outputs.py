"""Study outputs: CSV, Markdown, PNG plots and a report page linking them."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from ..fsutil import write_bytes_atomic, write_text_atomic

COLUMNS = ["dataset", "family", "model", "variant", "sparsity", "trained", "accuracy", "balanced_accuracy",
           "tflm_accuracy", "model_bytes", "arena_bytes", "macs", "params", "fits", "does_not_fit_by", "latency_ms",
           "latency_kind", "instructions", "device_arena_bytes"]


def _fmt(v, col):
    if v is None:
        return ""
    if isinstance(v, float):
        return f"{v:.4f}" if col not in ("latency_ms",) else f"{v:.2f}"
    return str(v)


def to_csv(rows) -> str:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(COLUMNS)
    for r in rows:
        w.writerow([_fmt(r.get(c), c) for c in COLUMNS])
    return buf.getvalue()


def to_markdown(rows) -> str:
    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(c), c) for c in COLUMNS) + " |")
    return "\n".join(lines) + "\n"


def pareto(points):
    """Indices of points (cost, accuracy) not dominated: lower cost and higher accuracy are better."""
    idx = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front, best = [], -1.0
    for i in idx:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def _save(fig, path: Path) -> str:
    """Write a figure as PNG atomically and close it; returns the file name."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue())
    return path.name


def plots(rows, out_dir: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    trained = [r for r in rows if r["accuracy"] is not None]
    datasets = list(dict.fromkeys(r["dataset"] for r in trained))
    variants = list(dict.fromkeys(r["variant"] + ("-pruned" if "pruned" in r["model"] else "") for r in trained))
    markers = dict(zip(variants, "osD^vP*X"))

    def vkey(r):
        return r["variant"] + ("-pruned" if "pruned" in r["model"] else "")

    for name, xcol, xlabel, logx in (("accuracy_vs_size", "model_bytes", "model size (KiB)", True),
                                     ("accuracy_vs_latency", "latency_ms", "latency on Nano 33 BLE (ms; estimated unless measured)", True)):
        fig, axes = plt.subplots(1, len(datasets), figsize=(6 * len(datasets), 4.5), squeeze=False)
        for ax, d in zip(axes[0], datasets):
            rs = [r for r in trained if r["dataset"] == d]
            fams = list(dict.fromkeys(r["family"] for r in rs))
            colors = dict(zip(fams, plt.cm.tab10.colors))
            for r in rs:
                x = r[xcol] / 1024 if xcol == "model_bytes" else r[xcol]
                ax.scatter(x, r["accuracy"], color=colors[r["family"]], marker=markers[vkey(r)], s=40,
                           edgecolors="k" if r["fits"] else "none")
            if xcol == "latency_ms":
                pts = [(r["latency_ms"], r["accuracy"]) for r in rs]
                front = [rs[i] for i in pareto(pts)]
                ax.plot([r["latency_ms"] for r in front], [r["accuracy"] for r in front], "k--", lw=1, label="Pareto front")
            for f in fams:
                ax.scatter([], [], color=colors[f], label=f)
            for v in variants:
                ax.scatter([], [], color="gray", marker=markers[v], label=v)
            ax.set_xscale("log" if logx else "linear")
            ax.set_xlabel(xlabel)
            ax.set_ylabel("test accuracy")
            ax.set_title(d)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
        fig.suptitle(f"{'Accuracy vs model size' if xcol == 'model_bytes' else 'Accuracy vs inference latency'} "
                     "(black edge: fits the Nano 33 BLE)")
        made.append(_save(fig, out_dir / f"{name}.png"))

    # size reduction per variant: file size relative to the family's float32 model, averaged over families
    fig, ax = plt.subplots(figsize=(7, 4))
    for j, d in enumerate(datasets):
        rs = [r for r in trained if r["dataset"] == d]
        base = {r["family"]: r["model_bytes"] for r in rs if r["variant"] == "float32" and "pruned" not in r["model"]}
        vals = {}
        for r in rs:
            if r["family"] in base:
                vals.setdefault(vkey(r), []).append(r["model_bytes"] / base[r["family"]])
        keys = list(vals)
        ax.bar([i + j * 0.8 / len(datasets) for i in range(len(keys))], [sum(v) / len(v) for v in vals.values()],
               width=0.8 / len(datasets), label=d)
        ax.set_xticks(range(len(keys)), keys, rotation=20)
    ax.set_ylabel("size / float32 size (mean over families)")
    ax.set_title("Model size reduction per variant")
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    made.append(_save(fig, out_dir / "size_reduction.png"))
    return made


def write_all(rows, out_dir: Path, meta: dict) -> dict:
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / "study.csv", to_csv(rows))
    write_text_atomic(out_dir / "study.md", to_markdown(rows))
    pngs = plots(rows, out_dir) if any(r["accuracy"] is not None for r in rows) else []
    report = [f"# tinydeploy study ({meta['profile']} profile)", "",
              f"Command: `{meta['command']}`  ", f"Run time on this machine: {meta['seconds']:.0f} s "
              f"({meta['machine']})", "",
              "Each row's `latency_kind` says where its latency comes from: `measured` (a board's `bench` JSON), "
              "`emulated` (the firmware compiled against the pinned TFLM and run on QEMU's Cortex-M4: `instructions` "
              "per inference, exact; ms = instructions / 64 MHz, an estimate that takes one instruction per cycle, so "
              "the board is slower), or `estimated` (the per-op cycle model, host/tinydeploy/study/cycle_model.py, "
              "where the row does not fit or the emulator was not available). `device_arena_bytes` is the firmware's "
              "own arena_used_bytes() on the emulator.",
              "Arena and fit are measured with the TFLM host interpreter and corrected to 32-bit; flash is an estimate.", "",
              "- Table: [study.md](study.md), [study.csv](study.csv)"]
    report += [f"- ![{p}]({p})" for p in pngs]
    if meta.get("failures"):
        report += ["", "**Missing groups** (failed in this run; rerun the command to retry them):", ""]
        report += [f"- {f}" for f in meta["failures"]]
    report += ["", to_markdown(rows)]
    write_text_atomic(out_dir / "report.md", "\n".join(report) + "\n")
    return {"csv": "study.csv", "markdown": "study.md", "plots": pngs, "report": "report.md"}
