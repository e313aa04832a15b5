"""study --quick end to end: rows, resumability, CSV and Markdown agree, plots exist."""

from __future__ import annotations

import csv
import json

import pytest

from conftest import run_cli

pytestmark = pytest.mark.slow  # trains with TensorFlow


def test_quick_study(tmp_path, tflm_dir):
    """The quick profile end to end, through compress()'s public pipeline: every row kind, emulated latencies for the
    int8 rows that fit, structured-pruned rows smaller and faster than their parent, the CSV and the Markdown in
    agreement, the report and the plots, resumption, --bench applied over cached rows, and the output guard."""
    out = tmp_path / "r"
    args = ("study", "--quick", "--datasets", "radiology", "--families", "custom_cnn,vgg16,mobilenet_v2_1.0", "-o", out,
            "--tflm", tflm_dir)
    run_cli(*args, check=0, timeout=600)  # its time is in the CI log (--durations), not asserted: machines are shared
    rows = list(csv.DictReader(open(out / "study.csv")))
    kinds = [r["kind"] for r in rows if r["family"] == "custom_cnn"]
    assert kinds == ["float32", "float16", "dynamic", "int16x8", "int8", "int8+epochs", "int8+qat", "int8+pruned",
                     "int8+filters"]
    by = {r["kind"]: r for r in rows if r["family"] == "custom_cnn"}
    assert [r["epochs"] for r in rows if r["family"] == "custom_cnn"] == ["1"] * 5 + ["2"] * 4  # 1 epoch + 1 fine-tuning
    vgg = [r for r in rows if r["family"] == "vgg16"][0]
    assert vgg["fits"] == "False" and "flash +" in vgg["does_not_fit_by"]
    # untrained MobileNetV2 1.0: TFLM's host interpreter aborts on it; the row still comes, saying why
    mb = [r for r in rows if r["family"] == "mobilenet_v2_1.0"][0]
    assert mb["fits"] == "False" and "flash +" in mb["does_not_fit_by"]
    assert all(r["does_not_fit_by"] for r in rows if r["fits"] == "False")
    # int8 rows that fit: instructions counted on the emulated Cortex-M4; the rest: the cycle model's estimate
    for r in rows:
        deployable = r["variant"] == "int8" and r["fits"] == "True"
        assert r["latency_kind"] == ("emulated" if deployable else "estimated"), r
        if deployable:
            assert int(r["instructions"]) > 100_000 and int(r["device_arena_bytes"]) > 0
            assert float(r["latency_ms"]) == pytest.approx(int(r["instructions"]) / 64e3, rel=1e-3)
    assert sum(r["latency_kind"] == "emulated" for r in rows) == 5
    # structured pruning: smaller and faster than its parent (both emulated); unstructured: same bytes, smaller gzip
    f, p, u = by["int8+filters"], by["int8"], by["int8+pruned"]
    assert int(f["model_bytes"]) <= 0.55 * int(p["model_bytes"]) and int(f["instructions"]) < 0.6 * int(p["instructions"])
    assert int(f["macs"]) <= 0.55 * int(p["macs"])
    assert u["model_bytes"] == p["model_bytes"] and int(u["gzip_bytes"]) < int(p["gzip_bytes"])
    # TFLM multiplies the zeros too: the same work to within data-dependent branches (measured: 40 in 4.4 million)
    assert int(u["instructions"]) == pytest.approx(int(p["instructions"]), rel=1e-3)
    # the QAT and pruned rows are compared with the parent trained on the same way, in the headline metric
    base = float(by["int8+epochs"]["balanced_accuracy"])
    for k in ("int8+qat", "int8+pruned", "int8+filters"):
        assert float(by[k]["vs_equal_epochs_pp"]) == pytest.approx(100 * (float(by[k]["balanced_accuracy"]) - base), abs=0.01)
    # medical metrics: per-class recall (its mean is the balanced accuracy) and the macro one-vs-rest AUC
    for r in rows:
        if r["trained"] == "True":
            recall = [float(v) for v in r["per_class_recall"].split()]
            assert len(recall) == 2 and sum(recall) / 2 == pytest.approx(float(r["balanced_accuracy"]), abs=0.01)
            assert 0.0 <= float(r["auc"]) <= 1.0 and r["input"] == "28x28x1"
    # the headline metric (radiology is imbalanced: balanced accuracy) is the mean recall of the confusion matrix
    # compress recorded for that very model, on the whole test split
    import numpy as np

    (cmp,) = (out / "cache").glob("radiology_custom_cnn_*/compress.json")
    cm = np.array(json.loads(cmp.read_text())["confusion"][f"{by['int8+epochs']['model']}/int8"], dtype=float)
    assert cm.sum() == 200 and base == pytest.approx(np.mean(np.diag(cm) / np.maximum(cm.sum(1), 1)), abs=1e-4)
    # the Markdown table and the CSV hold the same rows and values
    cells = lambda line: [c.strip() for c in line[1:-1].split("|")]
    lines = (out / "study.md").read_text().splitlines()
    cols = cells(lines[0])
    assert cols == list(rows[0].keys()) and len(lines) == 2 + len(rows)
    for line, r in zip(lines[2:], rows):
        assert cells(line) == [r[c].replace("|", "/") for c in cols]
    for png in ("accuracy_vs_size.png", "accuracy_vs_latency.png", "size_reduction.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    report = (out / "report.md").read_text()
    assert "Quick profile" in report and "mean nothing" in report and "Beside the reference paper's insights" in report
    # resumable: the same command reuses the cached groups; --bench now applies to a cached row
    before = (out / "study.csv").read_text()
    r = run_cli(*args, "--json", "-", check=0, timeout=120)
    assert (out / "study.csv").read_text() == before
    assert len(json.loads(r.stdout)["rows"]) == 11  # --json -: the document alone on stdout
    # --bench: a board's figure for a row, only if the board ran that row's model (the firmware's sha256 prefix,
    # read here from the project `build` makes of the row's file)
    file = next(x["file"] for x in json.loads(r.stdout)["rows"] if x["model"] == "custom_cnn" and x["variant"] == "int8")
    proj = tmp_path / "proj"
    run_cli("build", out / "cache" / file, "-o", proj, "--no-compile", check=0)
    import re

    sha = re.search(r'TD_MODEL_SHA256_PREFIX "([0-9a-f]{16})"', (proj / "src" / "model_config.h").read_text()).group(1)
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"latency": {"ms": {"median": 12.5}}, "device": {"sha": "0" * 16}}))
    r = run_cli(*args, "--bench", f"radiology/custom_cnn/int8={bench}")
    assert r.returncode == 2 and "measured on another model" in r.stderr
    r = run_cli(*args, "--bench", f"radiology/custom_cnn_qat/int8={bench}".replace("_qat", "_nosuch"))
    assert r.returncode == 2 and "no such row" in r.stderr
    bench.write_text(json.dumps({"latency": {"ms": {"median": 12.5}}, "device": {"sha": sha}}))
    r = run_cli(*args, "--bench", f"radiology/custom_cnn/int8={bench}", "--json", "-", check=0, timeout=120)
    row = [x for x in json.loads(r.stdout)["rows"] if x["model"] == "custom_cnn" and x["variant"] == "int8"][0]
    assert row["latency_kind"] == "measured" and row["latency_ms"] == 12.5
    # another command's study in the same directory, or a report without its cache: refused without --force
    r = run_cli("study", "--quick", "--datasets", "radiology", "--families", "custom_cnn", "-o", out)
    assert r.returncode == 2 and "not empty" in r.stderr and (out / "study.csv").read_text() != ""
    (out / "notes.txt").write_text("mine")
    r = run_cli(*args)
    assert r.returncode == 2 and "notes.txt" in r.stderr and (out / "notes.txt").read_text() == "mine"


def test_two_groups_one_failing_keeps_the_other(tmp_path):
    """A group that fails (here: an unknown dataset) is reported; the other group's rows are there and cached."""
    from tinydeploy.boards import load
    from tinydeploy.study.grid import PROFILES, run

    rows, failures = run(["no-such-dataset", "radiology"], ["vgg16"], PROFILES["quick"], tmp_path, load("nano33ble"),
                         workers=2)
    assert len(failures) == 1 and failures[0].startswith("no-such-dataset/vgg16: KeyError")
    assert [(r["dataset"], r["family"]) for r in rows] == [("radiology", "vgg16")]
    assert [p.name.split("_")[1] for p in (tmp_path / "cache").glob("rows_*.json")] == ["radiology"]


def test_a_datasets_own_cap_retrains_that_dataset_only():
    """Profile.caps: a dataset's own (epochs, patience) changes its groups' cache key and nobody else's, a group's own
    cap wins over its dataset's, and the report's profile line states both; group_seconds sums each group's recorded
    time once."""
    from dataclasses import replace

    from tinydeploy.study.grid import PROFILES, group_seconds

    full = PROFILES["full"]
    base = replace(full, caps={})
    longer = replace(full, caps={"fashion": (30, 6), "radiology/bn_cnn": (40, 10)})
    assert longer.for_group("radiology").key == base.for_group("radiology").key == base.key
    assert longer.for_group("radiology", "custom_cnn").key == base.key
    assert longer.for_group("fashion").key != base.for_group("fashion").key
    f = longer.for_group("fashion", "bn_cnn")
    assert (f.epochs, f.patience, f.finetune_epochs) == (30, 6, full.finetune_epochs) and "e30p6" in f.key
    g = longer.for_group("radiology", "bn_cnn")
    assert (g.epochs, g.patience) == (40, 10) and "e40p10" in g.key
    assert "fashion: patience 6, at most 30 epochs" in longer.describe()
    assert "radiology/bn_cnn: patience 10, at most 40 epochs" in longer.describe()
    rows = [{"dataset": "a", "family": "x", "group_seconds": 10.0}, {"dataset": "a", "family": "x", "group_seconds": 10.0},
            {"dataset": "b", "family": "x", "group_seconds": 5.5}, {"dataset": "b", "family": "y"}]
    assert group_seconds(rows) == (15.5, 1)
