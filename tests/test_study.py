"""study --quick end to end: rows, resumability, CSV and Markdown agree, plots exist."""

from __future__ import annotations

import csv

from conftest import run_cli


def test_quick_study(tmp_path):
    out = tmp_path / "r"
    args = ("study", "--quick", "--datasets", "radiology", "--families", "custom_cnn,vgg16", "-o", out)
    run_cli(*args, check=0, timeout=600)
    rows = list(csv.DictReader(open(out / "study.csv")))
    assert len(rows) == 8  # 5 variants + 2 pruned int8 + the vgg16 reference row
    vgg = [r for r in rows if r["family"] == "vgg16"][0]
    assert vgg["fits"] == "False" and "flash +" in vgg["does_not_fit_by"]
    assert all(r["latency_kind"] == "estimated" for r in rows)
    md = (out / "study.md").read_text().splitlines()[2:]
    assert [l.split(" | ")[2] for l in md] == [r["model"] for r in rows]
    for png in ("accuracy_vs_size.png", "accuracy_vs_latency.png", "size_reduction.png"):
        assert (out / png).read_bytes()[:4] == b"\x89PNG"
    # resumable: the second run reuses the cached groups
    before = (out / "study.csv").read_text()
    r = run_cli(*args, check=0, timeout=120)
    assert (out / "study.csv").read_text() == before
