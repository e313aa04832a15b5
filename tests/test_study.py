"""study --quick end to end: rows, resumability, CSV and Markdown agree, plots exist."""

from __future__ import annotations

import csv
import json

import pytest

from conftest import run_cli

pytestmark = pytest.mark.slow  # trains with TensorFlow


def test_quick_study(tmp_path, tflm_dir):
    out = tmp_path / "r"
    args = ("study", "--quick", "--datasets", "radiology", "--families", "custom_cnn,vgg16,mobilenet_v2_1.0", "-o", out,
            "--tflm", tflm_dir)
    run_cli(*args, check=0, timeout=600)
    rows = list(csv.DictReader(open(out / "study.csv")))
    assert len(rows) == 9  # 5 variants + 2 pruned int8 + the vgg16 and mobilenet_v2_1.0 reference rows
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
    assert sum(r["latency_kind"] == "emulated" for r in rows) == 3  # int8, pruned50, pruned75
    md = (out / "study.md").read_text().splitlines()[2:]
    assert [l.split(" | ")[2] for l in md] == [r["model"] for r in rows]
    for png in ("accuracy_vs_size.png", "accuracy_vs_latency.png", "size_reduction.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    # resumable: the second run reuses the cached groups
    before = (out / "study.csv").read_text()
    r = run_cli(*args, "--json", "-", check=0, timeout=120)
    assert (out / "study.csv").read_text() == before
    assert len(json.loads(r.stdout)["rows"]) == 9  # --json -: the document alone on stdout


def test_two_groups_one_failing_keeps_the_other(tmp_path):
    """A group that fails (here: an unknown dataset) is reported; the other group's rows are there and cached."""
    from tinydeploy.study.grid import PROFILES, run

    rows, failures = run(["no-such-dataset", "radiology"], ["vgg16"], PROFILES["quick"], tmp_path, workers=2)
    assert len(failures) == 1 and failures[0].startswith("no-such-dataset/vgg16: KeyError")
    assert [(r["dataset"], r["family"]) for r in rows] == [("radiology", "vgg16")]
    assert [p.name.split("_")[1] for p in (tmp_path / "cache").glob("rows_*.json")] == ["radiology"]
