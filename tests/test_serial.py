"""bench over a real pseudo-terminal pair, with the firmware's own command processor, report writer
and statistics compiled for the host on the device side (tests/native/host_device.cpp)."""

from __future__ import annotations

import json
import socket
import threading

import numpy as np
import pytest

from conftest import EXAMPLE, compile_host_device, run_cli
from tinydeploy.device.protocol import _RECORD
from tinydeploy.errors import DeviceError


def bench(port, tmp_path, *extra):
    out = tmp_path / "bench.json"
    r = run_cli("bench", "--port", port, "--runs", "7", "--warmup", "1", "--idle-timeout", "3", "--timeout", "20",
                "--json", out, *extra, timeout=90)
    return r, (json.loads(out.read_text()) if out.exists() else None)


def test_good_run(pty_device, tmp_path):
    dev = pty_device()
    r, d = bench(dev.path, tmp_path)
    assert r.returncode == 0, r.stderr
    assert d["complete"] and d["error"] is None
    assert d["device"]["model"] == "fashion_cnn_int8" and d["device"]["board"] == "nano33ble"
    assert len(d["runs"]) == 7 and d["latency"]["runs"] == 7
    cyc = sorted(x["cycles"] for x in d["runs"])
    assert d["latency"]["cycles"]["median"] == cyc[3] and d["latency"]["cycles"]["max"] == cyc[-1]
    assert d["latency"]["cycles"]["p90"] == cyc[6]  # nearest rank: ceil(0.9 * 7) = 7th
    assert [o["tag"] for o in d["ops"]] == ["CONV_2D", "FULLY_CONNECTED", "SOFTMAX"]
    assert len(d["golden"]) == 3 and all(g["pass"] and g["max_diff"] == 0 for g in d["golden"])
    assert d["arena"]["allocated"] > d["arena"]["needed"] > 0
    assert "latency over 7 runs" in r.stdout and "golden vectors: 3/3" in r.stdout


def test_per_op_times_without_warmup(pty_device, tmp_path):
    """With no warm-up the profiler has seen no Invoke() when the bench starts; op records must still come."""
    dev = pty_device()
    out = tmp_path / "b.json"
    run_cli("bench", "--port", dev.path, "--runs", "3", "--warmup", "0", "--json", out, check=0, timeout=60)
    assert [o["tag"] for o in json.loads(out.read_text())["ops"]] == ["CONV_2D", "FULLY_CONNECTED", "SOFTMAX"]


@pytest.mark.parametrize("fault,needle,code", [
    ("silent", "no answer to td-hello", 3),
    ("vanish", "vanished", 3),
    ("reset", "no data from", 3),
    ("alloc", "AllocateTensors() failed", 3),
])
def test_failures_keep_records(pty_device, tmp_path, fault, needle, code):
    dev = pty_device("--fault", fault, "--after", "600")
    r, d = bench(dev.path, tmp_path, "--hello-tries", "2", "--hello-wait", "0.5")
    assert r.returncode == code, r.stdout + r.stderr
    assert needle in r.stderr and "Traceback" not in r.stderr and r.stderr.strip().count("\n") == 0
    if fault == "silent":
        assert "after 2 tries" in r.stderr
    if fault in ("vanish", "reset", "alloc"):
        assert d is not None and d["complete"] is False and d["error"]
        assert d["device"] is not None  # the hello record read before the failure is kept
    if fault == "alloc":
        assert d["arena"]["used"] == 0 and d["arena"]["needed"] > 0


def test_garbage_between_records_is_rejected_but_run_completes(pty_device, tmp_path):
    dev = pty_device("--fault", "garbage")
    r, d = bench(dev.path, tmp_path)
    assert r.returncode == 0, r.stderr
    assert d["complete"] and len(d["rejected_lines"]) > 5


def test_bad_checksum_is_never_accepted(pty_device, tmp_path):
    dev = pty_device("--fault", "badcrc", "--after", "3")  # the 3rd record written: the arena record
    r, d = bench(dev.path, tmp_path)
    assert r.returncode == 3 and "valid records" in r.stderr
    bad = [x["text"] for x in d["rejected_lines"] if x["kind"] == "bad-crc"]
    assert len(bad) == 1 and len(d["records"]) == 16  # 17 sent, the corrupted one rejected
    # the corrupted record's content is not among the accepted ones
    m = _RECORD.match(bad[0])
    corrupted = {"type": m["type"], **dict(kv.split("=", 1) for kv in m["fields"].split())}
    assert corrupted not in d["records"]


def test_wrong_protocol_version(pty_device, example_project, tmp_path):
    binary = compile_host_device(example_project, tmp_path / "dev_v2", ["-DTD_PROTOCOL_VERSION=2"])
    dev = pty_device(binary=binary)
    r, _ = bench(dev.path, tmp_path)
    assert r.returncode == 3 and "protocol version 2" in r.stderr and "Rebuild and flash" in r.stderr


def test_wrong_port(tmp_path):
    r, _ = bench("/dev/does-not-exist", tmp_path)
    assert r.returncode == 3 and "cannot open serial port" in r.stderr and "Traceback" not in r.stderr


def test_busy_port(pty_device, tmp_path):
    import serial

    dev = pty_device()
    holder = serial.Serial(dev.path, exclusive=True)
    try:
        r, _ = bench(dev.path, tmp_path)
    finally:
        holder.close()
    assert r.returncode == 3 and "busy" in r.stderr


def test_socket_url(host_device, tmp_path):
    """--url socket://: the same device code behind a TCP socket on loopback."""
    import subprocess

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]

    def serve():
        conn, _ = srv.accept()
        p = subprocess.Popen([str(host_device)], stdin=conn.fileno(), stdout=conn.fileno())
        p.wait(timeout=60)
        conn.close()

    t = threading.Thread(target=serve, daemon=True)
    t.start()
    r = run_cli("bench", "--url", f"socket://127.0.0.1:{port}", "--runs", "3", "--json", "-", timeout=60)
    srv.close()
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["latency"]["runs"] == 3  # --json -: the document alone on stdout
    assert "latency over 3 runs" in r.stderr


def test_mlperf_runner_commands_and_accuracy(pty_device, tmp_path):
    """The MLPerf Tiny commands over the pty: name, profile, db load / db HEX in 31-byte chunks, infer."""
    from tinydeploy.device.link import Link
    from tinydeploy.device.runner import _reply, accuracy_report, infer_exact, infer_one

    dev = pty_device()
    with np.load(EXAMPLE.with_name("fashion_cnn_int8.samples.npz")) as z:
        x, y = z["x"][:4], z["y"][:4]
    with Link.open(port=dev.path) as link:
        link.send("name")
        assert _reply(link, 5) == ["m-name-dut-[tinydeploy]"]
        link.send("profile")
        assert _reply(link, 5) == ["m-profile-[tinydeploy-0.1.0]", "m-model-[fashion_cnn_int8]"]
        link.send("nonsense")
        with pytest.raises(DeviceError, match="Unknown command: nonsense"):
            _reply(link, 5)
        scores = infer_one(link, x[0])
        assert scores.shape == (10,) and abs(scores.sum() - 1.0) < 0.05  # dequantized softmax
        out, count = infer_exact(link, x[0])  # td-infer: the raw int8 outputs, the same scores
        assert np.allclose((out.astype(np.float32) + 128) / 256, scores, atol=1e-6) and count > 0
        link.send("infer 0 0")  # out of bounds: refused, and the next reply is not shifted by it
        with pytest.raises(DeviceError, match="infer N W takes"):
            _reply(link, 5)
        acc = accuracy_report(link, x, y)
    assert acc["device"]["n"] == 4 and len(acc["device"]["predictions"]) == 4


@pytest.mark.parametrize("shift,passes", [(0, True), (1, True), (2, False)])
def test_golden_tolerance(pty_device, tmp_path, shift, passes):
    """Device outputs one step from the host's pass (tolerance 1), two steps fail with exit 1."""
    dev = pty_device("--shift", str(shift))
    r, d = bench(dev.path, tmp_path)
    assert r.returncode == (0 if passes else 1), r.stderr
    assert {g["max_diff"] for g in d["golden"]} == {shift}
    assert all(g["pass"] is passes for g in d["golden"])


def test_ports_lists_without_error():
    r = run_cli("ports", "--json", "-")
    assert r.returncode == 0 and isinstance(json.loads(r.stdout), list)


def test_bench_accuracy_reports_host_accuracy_and_agreement(pty_device, tmp_path):
    """Samples carry the TFLM host interpreter's predictions (compress writes them): bench compares with them."""
    from tinydeploy.samples import Samples
    from tinydeploy.tflm_host import reference_outputs

    s = Samples.load(EXAMPLE.with_name("fashion_cnn_int8.samples.npz"), 6)
    x = s.int8_inputs()
    host = reference_outputs(EXAMPLE.read_bytes(), x.reshape(6, 1, 28, 28, 1)).argmax(axis=1)
    Samples(x, s.y, host).save(tmp_path / "s.npz")
    dev = pty_device()
    r, d = bench(dev.path, tmp_path, "--accuracy", tmp_path / "s.npz")
    assert r.returncode == 0, r.stderr
    a = d["accuracy"]
    assert a["host"]["accuracy"] == pytest.approx(float((host == s.y).mean()))
    assert a["agreement"] == pytest.approx(float((np.array(a["device"]["predictions"]) == host).mean()))
    # uint8 images where int8 inputs are needed: refused in one line before the device is asked, never wrapped
    Samples(np.full((2, 28, 28, 1), 200, np.uint8), np.zeros(2, np.int64)).save(tmp_path / "img.npz")
    r, _ = bench(dev.path, tmp_path, "--accuracy", tmp_path / "img.npz")
    assert r.returncode == 2 and "uint8 images" in r.stderr and r.stderr.strip().count("\n") == 0
