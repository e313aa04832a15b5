"""build: project content against the model and analyze, determinism, safety of the output dir."""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys

import pytest

from conftest import EXAMPLE, ROOT, run_cli


def _array_bytes(cpp: str, name: str) -> bytes:
    body = re.search(name + r"\[\] = \{(.*?)\};", cpp, re.S).group(1)
    return bytes(int(v, 16) for v in re.findall(r"0x([0-9a-f]{2})", body))


@pytest.mark.parametrize("name", ["plain_cnn", "depthwise", "mbv2_block"])
def test_project_matches_model_and_analysis(tf_models, tmp_path, name):
    from tinydeploy.analyze import arena_with_margin
    from tinydeploy.tflite_model import TFLiteModel

    path, _ = tf_models[name]
    out = tmp_path / "proj"
    run_cli("build", path, "-o", out, "--no-compile", check=0)
    analysis = json.loads((out / "tinydeploy.json").read_text())["analysis"]
    src = out / "src"
    # the model array is the model as deployed, byte for byte, const and aligned: the file's graph with the memory
    # plan in its metadata and the input kept as a second output; with --memory-plan tflm, the file itself
    from tinydeploy.plan import deployed, planned_offsets

    orig = TFLiteModel.from_file(path)
    dep = deployed(orig).model
    data_cpp = (src / "model_data.cpp").read_text()
    assert _array_bytes(data_cpp, "td_model_data") == dep.data == (out / "model.tflite").read_bytes()
    assert [o.opname for o in dep.operators] == [o.opname for o in orig.operators]
    assert dep.outputs == orig.outputs + orig.inputs and planned_offsets(dep.data) and not planned_offsets(orig.data)
    assert "alignas(16) const unsigned char td_model_data[]" in data_cpp
    assert f"td_model_data_len = {len(dep.data)};" in data_cpp
    run_cli("build", path, "-o", tmp_path / "tflm", "--no-compile", "--memory-plan", "tflm", check=0)
    assert _array_bytes((tmp_path / "tflm" / "src" / "model_data.cpp").read_text(), "td_model_data") == path.read_bytes()
    # the resolver registers exactly the model's ops
    ops_h = (src / "model_ops.h").read_text()
    model_ops = TFLiteModel.from_file(path).op_names
    # ops registered through tinydeploy's resolver (AddOwn: MEAN) take its slots, the library's resolver the others
    own = len(re.findall(r"resolver\.AddOwn\(", ops_h))
    assert (f"MicroMutableOpResolver<{len(model_ops)}>" in ops_h if not own
            else f"OpResolver<{max(len(model_ops) - own, 1)}, {own}>" in ops_h)
    assert re.findall(r"kTfLiteError;  // ([A-Z_0-9]+)", ops_h) == model_ops
    # the arena: the planned head with the CMSIS-NN scratch buffers placed (exact) + analyze's 32-bit tail, and the
    # margin on that tail only; with TFLM's planner, analyze's whole figure and the margin on all of it
    def arena(cfg_text):
        return [int(re.search(rf"{k} (\d+)u", cfg_text).group(1)) for k in ("TD_ARENA_NEEDED_BYTES", "TD_ARENA_BYTES")]

    from tinydeploy.analyze.scratch import scratch_by_node
    from tinydeploy.analyze import flash_resident_bytes, shared_builtin_bytes
    from tinydeploy.lifetimes import prepare_bytes
    from tinydeploy.plan import head_with_scratch, planning_bytes

    ar = analysis["arena"]
    scratch = scratch_by_node(dep)
    head = max(head_with_scratch(dep, scratch), planning_bytes(dep, len(scratch)), prepare_bytes(dep, len(scratch)))
    # the default kernels (tinydeploy's) hold the per-channel parameters in flash, and the planned firmware shares equal
    # builtin data: the tail leaves both out
    tail = ar["device_bytes"] - ar["scratch_bytes"] - ar["host_head_bytes"] - flash_resident_bytes(dep, "tinydeploy") \
        - shared_builtin_bytes(dep)
    assert ar["host_head_bytes"] <= head <= ar["host_head_bytes"] + ar["scratch_bytes"] and 0 < tail
    needed, allocated = arena((src / "model_config.h").read_text())
    assert needed == head + tail and allocated == (needed + max(tail // 10, 1024) + 16 + 15) // 16 * 16
    # analyze's verdict counts the arena this build allocates, not the host's figure with a margin on all of it
    assert analysis["arena_need"]["allocated_bytes"] == allocated and analysis["fit"]["ram"]["arena_bytes"] == needed
    assert analysis["fit"]["ram"]["need_bytes"] == allocated + analysis["fit"]["ram"]["firmware_bytes"]
    t_analysis = json.loads((tmp_path / "tflm" / "tinydeploy.json").read_text())["analysis"]
    t_needed, t_allocated = arena((tmp_path / "tflm" / "src" / "model_config.h").read_text())
    assert t_needed == t_analysis["arena"]["device_bytes"] - flash_resident_bytes(orig, "tinydeploy")
    assert t_allocated == arena_with_margin(t_needed)
    ini = (out / "platformio.ini").read_text()
    assert "board = nano33ble" in ini and "platform = nordicnrf52" in ini and "framework = arduino" in ini
    assert re.search(r"lib_deps =\n\s+Arduino_TensorFlowLite=https://\S+\.git#[0-9a-f]{7,40}\n", ini)


def test_golden_vectors_come_from_tflm(example_project):
    """The bundled example's golden vectors are real test images with the TFLM host interpreter's outputs."""
    import numpy as np

    from tinydeploy.tflm_host import reference_outputs

    cfg = (example_project / "src" / "model_config.h").read_text()
    gold = (example_project / "src" / "golden_data.cpp").read_text()
    assert "test-set inputs" in cfg
    nums = lambda name: [int(v) for v in re.search(name + r"\[\] = \{(.*?)\};", gold, re.S).group(1).replace(",", " ").split()]
    n = int(re.search(r"TD_GOLDEN_COUNT (\d+)u", cfg).group(1))
    xin = np.array(nums("td_golden_inputs"), np.int8).reshape(n, 28, 28, 1)
    expected = reference_outputs(EXAMPLE.read_bytes(), xin.reshape(n, 1, 28, 28, 1))
    assert np.array_equal(np.array(nums("td_golden_outputs")).reshape(n, -1), expected.reshape(n, -1))


def test_deterministic(tmp_path):
    digests = []
    for i in range(2):
        out = tmp_path / f"p{i}"
        run_cli("build", "-o", out, "--no-compile", check=0)
        digests.append({p.relative_to(out).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
                        for p in sorted(out.rglob("*")) if p.is_file()})
    assert digests[0] == digests[1]


def test_refuses_non_empty_output_without_force(tmp_path):
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.txt").write_text("my notes")
    r = run_cli("build", "-o", out, "--no-compile")
    assert r.returncode == 2 and "--force" in r.stderr and "Traceback" not in r.stderr
    assert (out / "notes.txt").read_text() == "my notes" and len(list(out.iterdir())) == 1
    run_cli("build", "-o", out, "--no-compile", "--force", check=0)
    assert not (out / "notes.txt").exists() and (out / "platformio.ini").exists()


def test_failed_build_leaves_nothing(tf_models, tmp_path):
    out = tmp_path / "never"
    r = run_cli("build", tf_models["float"][0], "-o", out, "--no-compile")
    assert r.returncode == 2 and not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".never")]


def test_c_identifiers_and_strings(tmp_path):
    from tinydeploy.generate.carray import c_identifier, c_string

    assert c_identifier("my-model v2.1") == "my_model_v2_1"
    assert c_identifier("3layers") == "m_3layers"
    assert c_identifier("int") == "int_"
    assert c_string('a"b\\c\nd?') == 'a\\"b\\\\c\\012d\\077'
    weird = tmp_path / "we ird-näme.tflite"
    weird.write_bytes(EXAMPLE.read_bytes())
    out = tmp_path / "w"
    run_cli("build", weird, "-o", out, "--no-compile", check=0)
    assert '#define TD_MODEL_NAME "we_ird_n_me"' in (out / "src" / "model_config.h").read_text()


def test_build_without_model_is_tf_free(tmp_path):
    # its speed (< 3 s) is measured by bench/cli_speed.py, not asserted in a timed test
    p = subprocess.run([sys.executable, "-X", "importtime", "-m", "tinydeploy", "build", "--board", "nano33ble",
                        "-o", str(tmp_path / "x")], capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]
    assert not any(l.split("|")[-1].strip().startswith(("tensorflow", "tf_keras")) for l in p.stderr.splitlines()
                   if l.startswith("import time:"))
    # offline here: it says so in one line and leaves the project ready
    assert "not compiled" in p.stdout or "pio run" in p.stdout


def test_root_reference_project_is_current(tmp_path):
    """firmware/example_model/ (used by the root platformio.ini) is what build renders for the example."""
    out = tmp_path / "ref"
    run_cli("build", "-o", out, "--no-compile", check=0)
    for f in ("model_config.h", "model_ops.h", "model_data.cpp", "golden_data.cpp", "model_params.cpp"):
        expected = (out / "src" / f).read_text()
        assert (ROOT / "firmware" / "example_model" / f).read_text() == expected, f
