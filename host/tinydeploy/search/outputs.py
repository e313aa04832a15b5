"""What a search leaves: the Pareto front as a table (terminal and front.md), search.json, pareto.png, and each front
model as an int8 .tflite with the sidecars `tinydeploy build` reads, in front/ (replaced whole, atomically)."""

from __future__ import annotations

import re
from pathlib import Path

from ..boards import Board
from ..fsutil import StagedDirectory, write_json_atomic, write_text_atomic
from ..plotting import save_png
from . import run
from .objective import candidate, save_front_model


def _safe_url(url: str) -> str:
    return re.sub(r"://([^:/@]+):[^@]*@", r"://\1:***@", url)


def write_outputs(study, ds, out: Path, board: Board, *, url: str, name: str, emulated: bool, why: str | None,
                  seconds: float) -> dict:
    from optuna.trial import TrialState

    from ..console import console

    trials = study.get_trials(deepcopy=False)
    counts = {s: sum(t.state == getattr(TrialState, s) for t in trials) for s in ("COMPLETE", "PRUNED", "FAIL", "RUNNING")}
    rejected = sum(1 for t in trials if t.state == TrialState.PRUNED and t.user_attrs.get("rejected"))
    front = run.front(study)
    rows = []
    with StagedDirectory(out / "front", force=True) as tmp:
        for t in front:
            test = save_front_model(t, ds, tmp)
            a = t.user_attrs
            rows.append({"trial": t.number, "candidate": candidate(t).describe(), "params": t.params,
                         "metric": a.get("metric"), "val": t.values[0], "latency_ms": t.values[1],
                         "latency_kind": a.get("latency_kind"), "instructions": a.get("instructions"),
                         "model_bytes": a.get("model_bytes"), "arena_bytes": a.get("arena_bytes"), "macs": a.get("macs"),
                         "flash_need_bytes": a.get("flash_need_bytes"), "ram_need_bytes": a.get("ram_need_bytes"),
                         "test_accuracy": test["accuracy"], "test_balanced_accuracy": test["balanced_accuracy"],
                         "file": f"front/{test['file']}", "worker": a.get("worker"), "seconds": a.get("seconds")})
    report = {"schema": "tinydeploy.search/1", "study": name, "storage": _safe_url(url), "dataset": ds.summary(),
              "board": {"id": board.id, "app_flash_bytes": board.app_flash_bytes, "app_ram_bytes": board.app_ram_bytes},
              "latency": "emulated" if emulated else f"cycle-model estimate ({why})", "trials": counts,
              "rejected_before_or_after_training": rejected, "seconds": round(seconds, 1), "front": rows}
    write_json_atomic(out / "search.json", report)
    write_text_atomic(out / "front.md", markdown(report))
    _plot(study, front, out / "pareto.png", board, report)
    _table(report, console)
    return report


def markdown(report: dict) -> str:
    metric = report["front"][0]["metric"] if report["front"] else "accuracy"
    lines = [f"# Pareto front of search {report['study']!r}", "",
             f"{report['dataset']['name']}, {report['dataset']['train']} training images per trial; board "
             f"{report['board']['id']} (app flash {report['board']['app_flash_bytes']:,} B, app RAM "
             f"{report['board']['app_ram_bytes']:,} B); latency {report['latency']}. Trials: "
             + ", ".join(f"{v} {k.lower()}" for k, v in report["trials"].items() if v) + ".", "",
             f"| trial | model | val {metric} | test accuracy | test balanced | latency ms | bytes | arena | file |",
             "|---:|---|---:|---:|---:|---:|---:|---:|---|"]
    for r in report["front"]:
        lines.append(f"| {r['trial']} | {r['candidate']} | {r['val']:.4f} | {r['test_accuracy']:.4f} | "
                     f"{r['test_balanced_accuracy']:.4f} | {r['latency_ms']:.2f} ({r['latency_kind']}) | "
                     f"{r['model_bytes']:,} | {r['arena_bytes'] or 0:,} | {r['file']} |")
    return "\n".join(lines) + "\n"


def _table(report: dict, console) -> None:
    from rich.table import Table

    t = Table(title=f"Pareto front: {len(report['front'])} model(s) that fit the {report['board']['id']} "
                    f"(latency {report['latency']})", title_justify="left")
    for c in ("trial", "model", "val", "test acc.", "latency ms", "bytes", "arena", "file"):
        t.add_column(c, justify="left" if c in ("model", "file") else "right")
    for r in report["front"]:
        t.add_row(str(r["trial"]), r["candidate"], f"{r['val']:.4f}", f"{r['test_accuracy']:.4f}",
                  f"{r['latency_ms']:.2f}", f"{r['model_bytes']:,}", f"{r['arena_bytes'] or 0:,}", r["file"])
    console.print(t)


def _plot(study, front, path: Path, board: Board, report: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from optuna.trial import TrialState

    done = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
            if t.values and "duplicate_of" not in t.user_attrs]
    fig, ax = plt.subplots(figsize=(8, 5))
    ax.scatter([t.values[1] for t in done], [t.values[0] for t in done], color="0.6", s=22, label="completed trials")
    ax.plot([t.values[1] for t in front], [t.values[0] for t in front], "o-", color="crimson", ms=6, lw=1.2,
            label="Pareto front")
    for t in front:
        ax.annotate(str(t.number), (t.values[1], t.values[0]), textcoords="offset points", xytext=(4, 4), fontsize=7)
    metric = front[0].user_attrs.get("metric", "accuracy") if front else "accuracy"
    ax.set_xlabel(f"latency per inference, ms ({report['latency']})")
    ax.set_ylabel(f"validation {metric} (int8)")
    ax.set_title(f"search {report['study']}: every point fits the {board.name} (app flash "
                 f"{board.app_flash_bytes / 1024:,.0f} KiB, app RAM {board.app_ram_bytes / 1024:,.0f} KiB)", fontsize=9)
    ax.ticklabel_format(style="plain", axis="both", useOffset=False)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    save_png(fig, path)
