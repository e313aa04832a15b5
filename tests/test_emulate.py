"""The generated firmware, compiled with -Wall against the pinned TFLM (../shared/tflm) and run on QEMU's
emulated Cortex-M4F, driven by `tinydeploy emulate` (bench's own code over socket://).

The reference is independent of the firmware: the outputs of the real TFLM interpreter on the host
(the tflite-micro wheel, current TFLM, reference kernels) for the same int8 inputs.
"""

from __future__ import annotations

import json
import re
import shutil
import time

import numpy as np
import pytest

from conftest import EXAMPLE, emulate, run_cli
from tinydeploy.errors import DeviceError

MODELS = ["example", "plain_cnn", "depthwise", "mbv2_block"]
# The device runs TFLM of 2023 with CMSIS-NN kernels, the host TFLM of 2026 with reference kernels. They
# agree exactly on these models except the depthwise one, where the two TFLM versions round some
# DEPTHWISE_CONV_2D outputs one step apart (the device's reference kernels give the same as its CMSIS-NN
# ones: version drift, not a CMSIS-NN error; field notes).
TOLERANCE = {"depthwise": 1}


@pytest.fixture(scope="session")
def projects(tf_models, tmp_path_factory):
    root = tmp_path_factory.mktemp("emu")
    out = {}
    for name in MODELS:
        model = EXAMPLE if name == "example" else tf_models[name][0]
        out[name] = root / name
        run_cli("build", model, "-o", out[name], "--no-compile", check=0)
    return out


@pytest.fixture(scope="session")
def random_inputs(projects, tmp_path_factory):
    """20 random int8 inputs per model, in the samples format `emulate --accuracy` reads (no labels)."""
    from tinydeploy.tflite_model import TFLiteModel

    d = tmp_path_factory.mktemp("inputs")
    out = {}
    for name, project in projects.items():
        n = TFLiteModel.from_file(project / "model.tflite").input_tensors[0].num_elements
        x = np.random.default_rng(len(name)).integers(-128, 128, size=(20, n)).astype(np.int8)
        np.savez(d / f"{name}.npz", x=x)
        out[name] = (d / f"{name}.npz", x)
    return out


@pytest.fixture(scope="session")
def emulated(projects, random_inputs, tflm_dir):
    """Each project emulated once (the first call also compiles TFLM into the cache)."""
    return {name: emulate(projects[name], tflm_dir, "--runs", "3", "--warmup", "1", "--accuracy", random_inputs[name][0])
            for name in MODELS}


@pytest.mark.parametrize("name", MODELS)
def test_emulated_run_matches_the_host(emulated, random_inputs, projects, name):
    from tinydeploy.tflite_model import TFLiteModel
    from tinydeploy.tflm_host import reference_outputs

    r, d = emulated[name]
    assert r.returncode == 0, r.stdout + r.stderr
    assert d["complete"] and d["target"] == "qemu-mps2-an386" and d["counter"] == "instructions"
    assert d["emulation"]["firmware"]["warnings"] == []  # -Wall: not one warning from the firmware or model sources
    # golden vectors (test-set or random inputs with the host's outputs, compiled into the firmware)
    assert d["golden"] and all(g["pass"] for g in d["golden"])
    # 20 random inputs: the device's raw int8 outputs against the host TFLM interpreter's, computed here
    _, x = random_inputs[name]
    model = TFLiteModel.from_file(projects[name] / "model.tflite")
    host = reference_outputs(model.data, x.reshape((20,) + tuple(model.input_tensors[0].shape))).reshape(20, -1)
    device = np.array(d["accuracy"]["outputs"]["device"], dtype=np.int16)
    assert device.shape == host.shape
    diffs = np.abs(device - host.astype(np.int16)).max(axis=1)
    assert diffs.max() <= TOLERANCE.get(name, 0), diffs
    assert diffs.tolist() == d["accuracy"]["outputs"]["per_input_max_abs_diff"]  # the report says the same
    assert d["accuracy"]["agreement"] >= (0.9 if name in TOLERANCE else 1.0)


@pytest.mark.parametrize("name", MODELS)
def test_instruction_counts_are_exact_and_per_op_times_add_up(emulated, name):
    _, d = emulated[name]
    runs = [x["cycles"] for x in d["runs"]]
    assert len(runs) == 3 and min(runs) > 100_000
    assert max(runs) - min(runs) <= 40 * 4, runs  # repeatable to a few timer ticks (40 instructions each)
    per_op = sum(o["cycles"] for o in d["ops"])
    assert 0.95 * d["latency"]["instructions"]["median"] <= per_op <= d["latency"]["instructions"]["median"]
    assert all(o["cycles"] > 0 for o in d["ops"] if o["tag"] in ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED"))
    # the board estimate is labelled, with its method, and derived from the counts
    assert d["ms_kind"].startswith("estimate") and "64 MHz" in d["ms_kind"]
    assert d["latency"]["ms"]["median"] == pytest.approx(d["latency"]["instructions"]["median"] / 64e6 * 1e3)
    # the arena the device reports after AllocateTensors with the real kernels
    assert 0 < d["arena"]["used"] <= d["arena"]["allocated"]
    # analyze's RAM verdict counts the arena this default build allocates (with its kernels' parameters and op data in
    # flash) and an estimate of the rest, within 1 % of the linked firmware's RAM (before: the host figure with a
    # margin on all of it, 40 % over on a MobileNet)
    m = d["memory"]
    assert m["analyze"]["ram_need_bytes"] - m["analyze"]["firmware_bytes"] == m["arena_allocated_bytes"]
    assert abs(m["analyze"]["ram_need_bytes"] - m["firmware_ram_bytes"]) <= 0.01 * m["firmware_ram_bytes"], m


def test_terminal_says_counts_are_emulated_instructions(emulated, projects, tflm_dir):
    r, _ = emulated["example"]
    assert "emulated" in r.stdout and "instructions" in r.stdout and "not board cycles" in r.stdout
    assert "ms (estimate)" in r.stdout
    r = run_cli("emulate", projects["example"], "--tflm", tflm_dir, "--runs", "1", "--json", "-")
    assert r.returncode == 0 and json.loads(r.stdout)["counter"] == "instructions"  # only JSON on stdout
    assert "not board cycles" in r.stderr


def _shrink_arena(project, dest, nbytes):
    shutil.copytree(project, dest)
    cfg = dest / "src" / "model_config.h"
    text, n = re.subn(r"#define TD_ARENA_BYTES \d+u", f"#define TD_ARENA_BYTES {nbytes}u", cfg.read_text())
    assert n == 1
    cfg.write_text(text)
    shutil.rmtree(dest / ".emulator", ignore_errors=True)
    return dest


def test_too_small_arena_is_a_clean_alloc_error_and_nothing_unasked(projects, tflm_dir, tmp_path):
    from tinydeploy.emulate.firmware import emulate_project
    from tinydeploy.emulate.qemu import QemuSession
    from tinydeploy.device.link import Link

    from tinydeploy.boards import load

    project = _shrink_arena(projects["example"], tmp_path / "small", 4096)
    image, _ = emulate_project(project, tflm=str(tflm_dir), board=load("nano33ble"))
    with QemuSession(image.elf) as q, Link.open(url=q.url) as link:
        # The firmware has booted and failed AllocateTensors: TFLM logged "Failed to resize buffer", and not
        # one byte of it may reach the port before the host asks.
        unasked = b""
        end = time.monotonic() + 2.0
        while time.monotonic() < end:
            unasked += link.serial.read(4096)
        assert unasked == b""
        link.send("infer 1 0")  # the MLPerf runner's command gets an error record and m-ready, no crash
        lines = []
        for ev in link.events(timeout=10, idle_timeout=5):
            lines.append(ev)
            if ev.kind == "line" and ev.text == "m-ready":
                break
        errs = [e.record for e in lines if e.kind == "record" and e.record.type == "error"]
        assert errs and errs[0].str("code") == "alloc" and "Failed to resize buffer" in errs[0].str("detail")
    r, d = emulate(project, tflm_dir, "--runs", "2")
    assert r.returncode == 3 and "AllocateTensors() failed" in r.stderr and "Failed to resize buffer" in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
    assert d["arena"]["used"] == 0 and d["complete"] is False


def test_firmware_rejects_bad_and_unbounded_arguments(emulated, projects, tflm_dir):
    from tinydeploy.emulate.qemu import QemuSession
    from tinydeploy.device.link import Link
    from tinydeploy.device.runner import _reply

    elf = projects["example"] / ".emulator" / "firmware.elf"
    with QemuSession(elf) as q, Link.open(url=q.url) as link:
        for bad in ("infer 999999999999 0", "infer 2000000 0", "infer 1 5000", "infer -1", "infer 1 2 3", "infer x"):
            link.send(bad)
            with pytest.raises(DeviceError, match=r"infer N W takes 1 <= N <= 1000000"):
                _reply(link, 10)
        link.send("infer 2 1")  # a good one still works afterwards
        reply = _reply(link, 30)
        assert reply[0] == "m-warmup-start-1" and reply[-1].startswith("m-results-[")
        for bad in ("td-bench 0 0", "td-bench 101", "td-bench 5 x", "td-bench 5 1001"):
            link.send(bad)
            recs = []
            for ev in link.events(timeout=10, idle_timeout=5):
                if ev.kind == "record":
                    recs.append(ev.record)
                if ev.kind == "line" and ev.text == "m-ready":
                    break
            assert [x.type for x in recs] == ["error", "done"] and recs[0].str("code") == "args", bad
            assert recs[0].str("detail") == "td-bench N W takes 1 <= N <= 100 and 0 <= W <= 1000"
            assert recs[1].int("records") == 2


def test_missing_tflm_sources_is_one_line(projects, tmp_path):
    r = run_cli("emulate", projects["example"], env={"TINYDEPLOY_TFLM_DIR": ""})
    assert r.returncode == 3, r.stderr
    assert "--tflm" in r.stderr and "TINYDEPLOY_TFLM_DIR" in r.stderr and ".pio/libdeps" in r.stderr
    assert r.stderr.strip().count("\n") == 0
    r = run_cli("emulate", projects["example"], "--tflm", tmp_path)
    assert r.returncode == 2 and "is not the Arduino_TensorFlowLite library" in r.stderr


def test_bad_bench_arguments_are_usage_errors(projects, tflm_dir):
    r = run_cli("emulate", projects["example"], "--tflm", tflm_dir, "--runs", "0")
    assert r.returncode == 2 and "--runs" in r.stderr


@pytest.mark.parametrize("name", ["example", "mbv2_block"])
def test_build_arena_measured(projects, tflm_dir, tmp_path, name):
    """--arena measured sizes the arena from the device's own arena_used_bytes(): at most 1.05x of it, and enough."""
    model = projects[name] / "model.tflite"
    out = tmp_path / name
    run_cli("build", model, "-o", out, "--no-compile", "--arena", "measured", "--tflm", tflm_dir, check=0, timeout=900)
    cfg = (out / "src" / "model_config.h").read_text()
    allocated = int(re.search(r"#define TD_ARENA_BYTES (\d+)u", cfg).group(1))
    r, d = emulate(out, tflm_dir, "--runs", "1", "--warmup", "0")
    assert r.returncode == 0, r.stderr
    used = d["arena"]["used"]
    assert used > 0 and d["arena"]["allocated"] == allocated
    assert used <= allocated <= 1.05 * used
    assert "arena_used_bytes() measured" in cfg


def test_build_arena_measured_holds_tflms_planning_space(tflm_dir, tmp_path):
    """A model of small activations and many tensors (fully connected layers of 16 units) needs more free arena while
    TFLM plans its head (an AllocationInfo per tensor, the greedy planner's arrays per buffer) than the head itself,
    which arena_used_bytes() does not count: the measured arena holds it, so AllocateTensors() does not fail with
    "Too many buffers"."""
    import os

    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    from tinydeploy.compress.quantize import convert
    from tinydeploy.compress.tfenv import import_tf
    from tinydeploy.plan import planning_bytes
    from tinydeploy.tflite_model import TFLiteModel

    _, keras = import_tf()
    keras.utils.set_random_seed(3)
    L = keras.layers
    m = keras.Sequential([L.Input((32,)), *[L.Dense(16, activation="relu") for _ in range(6)], L.Dense(10)])
    rep = np.random.default_rng(3).normal(size=(16, 32)).astype(np.float32)
    path = tmp_path / "fc.tflite"
    path.write_bytes(convert(m, "int8", rep, 16))
    model = TFLiteModel.from_file(path)
    assert planning_bytes(model) > 2 * sum(t.nbytes for t in model.tensors if not t.is_constant)
    for plan in ("tflm", "offline"):
        out = tmp_path / plan
        run_cli("build", path, "-o", out, "--no-compile", "--arena", "measured", "--memory-plan", plan, "--tflm",
                tflm_dir, check=0, timeout=900)
        r, d = emulate(out, tflm_dir, "--runs", "1", "--warmup", "0")
        assert r.returncode == 0, r.stderr
        assert 0 < d["arena"]["used"] <= d["arena"]["allocated"]
