"""Small parts checked against hand-made references: metrics, the Pareto front, USB id matching, PlatformIO's size
lines, the board's clock conversion, the one output-directory guard."""

from __future__ import annotations

import itertools
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest


def test_balanced_accuracy_is_the_mean_recall():
    from tinydeploy.compress.evaluate import metrics

    m = metrics(np.array([0, 0, 0, 1, 2, 2]), np.array([0, 0, 1, 1, 0, 2]), 3)
    assert m["accuracy"] == pytest.approx(4 / 6)
    assert m["balanced_accuracy"] == pytest.approx((2 / 3 + 1 + 1 / 2) / 3)
    assert m["confusion"] == [[2, 1, 0], [0, 1, 0], [1, 0, 1]]


def test_pareto_front_against_the_definition():
    from tinydeploy.plotting import pareto

    rng = np.random.default_rng(1)
    for _ in range(200):
        pts = [tuple(map(float, p)) for p in rng.integers(0, 6, size=(rng.integers(1, 12), 2))]
        front = pareto(pts)
        beaten = {i for i, j in itertools.permutations(range(len(pts)), 2)
                  if pts[j][0] <= pts[i][0] and pts[j][1] >= pts[i][1] and pts[j] != pts[i]}
        # exactly the points nobody beats, one of each identical group, cheapest first
        assert {pts[i] for i in front} == {pts[i] for i in range(len(pts)) if i not in beaten}
        assert len(front) == len({pts[i] for i in front})
        assert [pts[i][0] for i in front] == sorted(pts[i][0] for i in front)


def _fake_ports(monkeypatch, ports):
    from serial.tools import list_ports, list_ports_common

    infos = []
    for dev, vid, pid in ports:
        i = list_ports_common.ListPortInfo(dev, skip_link_detection=True)
        i.vid, i.pid, i.description = vid, pid, "fake"
        infos.append(i)
    monkeypatch.setattr(list_ports, "comports", lambda *a, **k: infos)


def test_ports_recognise_the_board_by_its_usb_ids(monkeypatch):
    from tinydeploy.device.ports import find_board, list_ports
    from tinydeploy.errors import DeviceError

    _fake_ports(monkeypatch, [("/dev/ttyACM1", 0x2341, 0x805A), ("/dev/ttyACM0", 0x2341, 0x005A),
                              ("/dev/ttyUSB0", 0x0403, 0x6001), ("/dev/ttyS0", None, None),
                              ("/dev/ttyACM2", 0x2341, 0x8053)])
    got = {p.device: (p.board, p.mode) for p in list_ports()}
    assert got == {"/dev/ttyACM0": ("nano33ble", "bootloader"), "/dev/ttyACM1": ("nano33ble", "sketch"),
                   "/dev/ttyACM2": ("nano33ble", "sketch (Nano 33 BLE Sense Rev2)"), "/dev/ttyUSB0": (None, None),
                   "/dev/ttyS0": (None, None)}
    assert find_board(mode="bootloader") == "/dev/ttyACM0"
    with pytest.raises(DeviceError, match="3 nano33ble boards"):
        find_board()
    _fake_ports(monkeypatch, [("/dev/ttyUSB0", 0x0403, 0x6001)])
    with pytest.raises(DeviceError, match="no nano33ble board"):
        find_board()


def test_platformio_size_lines_are_read():
    from tinydeploy.platformio import parse_sizes

    log = ("Linking .pio/build/nano33ble/firmware.elf\nChecking size .pio/build/nano33ble/firmware.elf\n"
           "Advanced Memory Usage is available via \"PlatformIO Home > Project Inspect\"\n"
           "RAM:   [==        ]  17.5% (used 45836 bytes from 262144 bytes)\n"
           "Flash: [===       ]  31.2% (used 306868 bytes from 983040 bytes)\n")
    assert parse_sizes(log) == {"ram": (45836, 262144), "flash": (306868, 983040)}
    assert parse_sizes("no sizes here") == {}


def test_counts_to_ms_at_the_boards_clock():
    from tinydeploy.boards import cycles_to_ms, load

    b = load("nano33ble")
    assert b.cpu_hz == 64_000_000 and b.ms(64_000) == pytest.approx(1.0) and cycles_to_ms(1, 1000) == 1.0


def test_the_output_guard(tmp_path, monkeypatch):
    from tinydeploy.errors import TinyDeployError
    from tinydeploy.fsutil import check_output_dir

    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    for bad in (".", "..", tmp_path, "/", Path.home()):
        with pytest.raises(TinyDeployError, match="never replaces"):
            check_output_dir(bad, force=True)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "m.tflite").write_bytes(b"x")
    with pytest.raises(TinyDeployError, match="holds the input"):
        check_output_dir(tmp_path / "in", force=True, inputs=[tmp_path / "in" / "m.tflite"])
    with pytest.raises(TinyDeployError, match="is not empty"):
        check_output_dir(tmp_path / "in", force=False)
    assert check_output_dir(tmp_path / "in", force=True) == tmp_path / "in"
    assert check_output_dir(tmp_path / "in", force=False, foreign=lambda d: None) == tmp_path / "in"
    assert check_output_dir(tmp_path / "new" / "deeper", force=False) == tmp_path / "new" / "deeper"
    with pytest.raises(TinyDeployError, match="not writable"):
        check_output_dir("/proc/x", force=False)


_HOLD = """
import sys, time
from tinydeploy.fsutil import exclusive
with exclusive(sys.argv[1]):
    start = time.monotonic()
    time.sleep(0.5)
    print(start, time.monotonic())
"""


def test_a_second_process_waits_for_the_cache_lock(tmp_path):
    """fsutil.exclusive, which makes the test workers (or two emulated builds) compile the TFLM library once: two
    processes holding it for half a second each hold it one after the other, never at once."""
    procs = [subprocess.Popen([sys.executable, "-c", _HOLD, str(tmp_path / "lock")], stdout=subprocess.PIPE,
                              text=True) for _ in range(2)]
    spans = sorted(tuple(map(float, p.communicate(timeout=60)[0].split())) for p in procs)
    assert all(p.returncode == 0 for p in procs)
    assert spans[1][0] >= spans[0][1], spans


def test_one_tflm_host_run_per_model_and_process(monkeypatch):
    """Compress, the study's row and its emulated run all analyze the same int8 file: the interpreter runs once."""
    from conftest import EXAMPLE
    from tinydeploy import tflm_host
    from tinydeploy.analyze import analyze
    from tinydeploy.boards import load
    from tinydeploy.tflite_model import TFLiteModel

    runs = []
    real = tflm_host._run_child
    monkeypatch.setattr(tflm_host, "_run_child", lambda *a, **k: runs.append(1) or real(*a, **k))
    monkeypatch.setattr(tflm_host, "_ARENA_MEMO", {})
    model = TFLiteModel.from_file(EXAMPLE)
    first = analyze(model, load("nano33ble"))
    second = analyze(TFLiteModel.from_bytes(EXAMPLE.read_bytes()), load("nano33ble"))
    assert len(runs) == 1 and first.arena == second.arena
    third = analyze(model, load("nano33ble"), arena=first.arena, measure_arena=True)
    assert len(runs) == 1 and third.fit.ram.need_bytes == first.fit.ram.need_bytes


def test_macro_auc_against_the_pairwise_definition():
    """ROC AUC by ranks equals its definition: the share of (positive, negative) pairs the score orders right, ties
    counting half; macro one-vs-rest averages the classes present. Scores with many ties, as int8 outputs have."""
    import numpy as np

    from tinydeploy.compress.evaluate import macro_auc, roc_auc

    rng = np.random.default_rng(7)
    for trial in range(40):
        n, k = int(rng.integers(2, 60)), int(rng.integers(2, 6))
        y = rng.integers(0, k, n)
        scores = np.round(rng.random((n, k)) * rng.integers(2, 20)) / 20  # coarse: ties
        want = []
        for c in range(k):
            pos, neg = scores[y == c, c], scores[y != c, c]
            if len(pos) and len(neg):
                d = pos[:, None] - neg[None, :]
                want.append(((d > 0).sum() + 0.5 * (d == 0).sum()) / d.size)
                assert roc_auc(y == c, scores[:, c]) == pytest.approx(want[-1])
            else:
                assert roc_auc(y == c, scores[:, c]) is None
        assert macro_auc(y, scores, k) == (pytest.approx(np.mean(want)) if want else None)
    # a perfect and an inverted ranking
    assert roc_auc(np.array([0, 0, 1, 1], bool), np.array([0.1, 0.2, 0.8, 0.9])) == 1.0
    assert roc_auc(np.array([1, 1, 0, 0], bool), np.array([0.1, 0.2, 0.8, 0.9])) == 0.0


def test_the_study_report_says_how_far_a_missed_target_is_and_what_was_tried():
    from tinydeploy.study.outputs import targets

    def row(model, kind, family, fits, acc, bal=None, auc=None, dataset="dermatology"):
        return {"dataset": dataset, "model": model, "kind": kind, "variant": "int8", "family": family, "fits": fits,
                "accuracy": acc, "balanced_accuracy": bal, "auc": auc, "input": "64x64x3",
                "does_not_fit_by": "" if fits else "RAM +12 KB"}

    rows = [row("a", "int8", "cnn", True, 0.7, 0.50, 0.91), row("a_filters50", "int8+filters", "cnn", True, 0.7, 0.52, 0.88),
            row("b_pruned50", "int8+pruned", "bn", False, 0.7, 0.60, 0.89),
            row("f", "int8", "cnn", True, 0.935, dataset="fashion")]
    text = "\n".join(targets(rows))
    lines = {line.split("|")[1].strip() + " " + line.split("|")[2].strip(): line for line in text.splitlines()
             if line.startswith("| ") and "dataset" not in line}
    assert lines["fashion accuracy"].rstrip().endswith("| 0.9350 | met |")
    assert "a_filters50" in lines["dermatology balanced_accuracy"] and "missed by 3.0 pp" in lines["dermatology balanced_accuracy"]
    assert lines["dermatology auc"].rstrip().endswith("| 0.9100 | met |")
    assert "| radiology | accuracy | 0.90 | none |" in text
    # the missed target's line: what was tried, and the best row of any size, which does not fit, and why
    (missed,) = [line for line in text.splitlines() if line.startswith("- ")]
    assert missed.startswith("- dermatology balanced_accuracy: missed by 3.0 pp. Tried: 3 int8 rows (2 fit the board) "
                             "of 2 families (bn, cnn)")
    assert "b_pruned50 (int8+pruned) at 0.6000, does not fit (RAM +12 KB)" in missed


def test_fma_f32_rounds_once_as_vfma_does():
    """tflm_host.fma_f32 (the pinned MEAN's float path, as the board's VFMA.F32 computes it) against the exact value
    a * b + c rounded once to the nearest float32 (ties to even), by fractions, on 20,000 sums of the kind a MEAN makes;
    a product and a sum each rounded to float32 (no fused multiply-add) differs on some."""
    from fractions import Fraction

    from tinydeploy.tflm_host import fma_f32

    def exact(a, b, c):
        x = Fraction(float(a)) * Fraction(float(b)) + Fraction(float(c))
        f = np.float32(float(x))
        near = [np.nextafter(f, np.float32(-np.inf)), f, np.nextafter(f, np.float32(np.inf))]
        return min(near, key=lambda v: (abs(Fraction(float(v)) - x), int(np.asarray(v).view(np.int32)) & 1))

    rng = np.random.default_rng(3)
    unfused = 0
    for _ in range(10):
        b, c = np.float32(rng.uniform(0.5, 2.0)), np.float32(rng.uniform(-200, 200))
        a = rng.integers(-30000, 30000, 2000).astype(np.float32) / np.float32(rng.integers(1, 500))
        got = fma_f32(a, b, c)
        assert all(g == exact(x, b, c) for x, g in zip(a, got))
        unfused += int((a * b + c != got).sum())
    assert unfused > 0
