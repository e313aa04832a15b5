"""`tinydeploy search` on Fashion-MNIST within a time budget, its front compared with the study's hand-picked families.

1. Search: `tinydeploy search --dataset fashion-mnist --timeout BUDGET` (trials train on a SUBSET of the training set,
   latency emulated on the Cortex-M4 when the emulator is there).
2. Like with like: every front model is trained again the way the study trains its rows (full training set, the
   study's full-profile epochs, then its compression with one fine-tuning epoch), converted to int8, evaluated on the
   test split, and run on the emulated Cortex-M4.
3. Each study family's best int8 row that fits (from STUDY_CSV, `results/study.csv` by default) is compared with the
   retrained front: does a front model fit and beat it on accuracy at equal or lower latency? The script prints, for
   every family, the answer and, where it is no, by how much the front falls short.

    python bench/search.py [BUDGET_SECONDS] [SUBSET] [STUDY_CSV]      (default 1200, 10000, results/study.csv)
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")


def retrain(cand_json: str, epochs: int, tflm: str | None) -> dict:
    """A front candidate trained like a study row, int8, test accuracy, emulated instructions."""
    from tinydeploy import boards
    from tinydeploy.analyze import analyze
    from tinydeploy.compress.datasets import load_dataset, prepare
    from tinydeploy.compress.evaluate import metrics, predict_tflite
    from tinydeploy.compress.models import train
    from tinydeploy.compress.pipeline import FineTune
    from tinydeploy.compress.quantize import convert
    from tinydeploy.compress.tfenv import seed_everything
    from tinydeploy.emulate.measure import measure
    from tinydeploy.search.space import Candidate, build_model, compressed
    from tinydeploy.tflite_model import TFLiteModel

    c = Candidate.from_json(cand_json)
    ds = load_dataset("fashion-mnist")
    if c.resolution != ds.input_shape[0]:
        ds = prepare(ds, size=c.resolution)
    seed_everything(0)
    m = build_model(c, ds.input_shape[-1], ds.num_classes)
    train(m, ds, epochs=epochs)
    m = compressed(c, m, ds, FineTune(epochs=1))
    data = convert(m, "int8", ds.x_train)
    acc = metrics(ds.y_test, predict_tflite(data, ds.x_test), ds.num_classes)["accuracy"]
    board = boards.load("nano33ble")
    from tinydeploy.repair import repair

    deployed = repair(TFLiteModel.from_bytes(data, source=c.describe())).model
    a = analyze(deployed, board)
    e = measure(deployed, a, tflm=tflm, runs=1, name="front")
    return {"candidate": c.describe(), "accuracy": acc, "bytes": len(data), "fits": bool(a.fit.fits),
            "instructions": e.instructions, "latency_ms": board.ms(e.instructions)}


def main() -> int:
    budget = int(sys.argv[1]) if len(sys.argv) > 1 else 1200
    subset = int(sys.argv[2]) if len(sys.argv) > 2 else 10000
    study_csv = Path(sys.argv[3] if len(sys.argv) > 3 else "results/study.csv")
    tflm = os.environ.get("TINYDEPLOY_TFLM_DIR")
    study_rows = [r for r in csv.DictReader(open(study_csv)) if r["dataset"] == "fashion" and r["variant"] == "int8"
                  and r["fits"] == "True" and r["accuracy"]]
    epochs = max(int(r["epochs"]) for r in study_rows if r["kind"] == "int8")  # the study's full-profile training
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.monotonic()
        r = subprocess.run([sys.executable, "-m", "tinydeploy", "search", "--dataset", "fashion-mnist", "--timeout",
                            str(budget), "--trials", "1000", "--subset", str(subset), "--epochs", str(epochs),
                            "-o", f"{tmp}/s", "--json", "-"], stdout=subprocess.PIPE, text=True)
        search_s = time.monotonic() - t0
        if r.returncode != 0:
            return r.returncode
        rep = json.loads(r.stdout)
        cands = [json.loads(Path(tmp, "s", row["file"].replace("_int8.tflite", "_int8.candidate.json")).read_text())
                 for row in rep["front"]]
    t1 = time.monotonic()
    front = [retrain(json.dumps(c), epochs, tflm) for c in cands]
    retrain_s = time.monotonic() - t1
    t = rep["trials"]
    print(f"search: {search_s:.0f} s (budget {budget} s), {t['COMPLETE']} trials completed, {t['PRUNED']} pruned "
          f"({rep['rejected_before_or_after_training']} rejected by the board's budget), {subset} training images "
          f"and {epochs} epochs a trial; latency {rep['latency']}")
    print(f"front retrained like the study's rows (full training set, {epochs} epochs + 1 fine-tuning where "
          f"compressed): {retrain_s:.0f} s")
    print(f"{'front model (int8)':<44} {'test acc.':>9} {'instructions':>12} {'ms':>7} {'bytes':>7}")
    for f in front:
        print(f"{f['candidate']:<44} {f['accuracy']:>9.4f} {f['instructions']:>12,} {f['latency_ms']:>7.2f} {f['bytes']:>7,}")
    print(f"\nagainst the study's best int8 row that fits, per family ({study_csv}):")
    beaten = 0
    families = sorted({r["family"] for r in study_rows})
    for fam in families:
        best = max((r for r in study_rows if r["family"] == fam), key=lambda r: float(r["accuracy"]))
        acc, lat = float(best["accuracy"]), float(best["latency_ms"])
        ok = [f for f in front if f["fits"] and f["latency_ms"] <= lat]
        top = max(ok, key=lambda f: f["accuracy"], default=None)
        if top and top["accuracy"] > acc:
            beaten += 1
            verdict = f"beaten by {top['candidate']} ({top['accuracy']:.4f}, {top['latency_ms']:.2f} ms)"
        elif top:
            verdict = f"not beaten: the best front model at <= {lat:.2f} ms is {100 * (top['accuracy'] - acc):+.2f} pp"
        else:
            verdict = f"not beaten: no front model is as fast as {lat:.2f} ms"
        print(f"  {fam:<14} {best['model']:<24} {best['kind']:<13} {acc:.4f} at {lat:.2f} ms ({best['latency_kind']}): "
              f"{verdict}")
    print(f"the search's front beats {beaten} of {len(families)} hand-picked families at equal or lower latency")
    return 0


if __name__ == "__main__":
    sys.exit(main())
