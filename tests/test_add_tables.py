"""ADD by two tables in flash (host/tinydeploy/analyze/add_tables.py, firmware/kernels/td_kernel_add.cpp), on every
pair of int8 values: a model whose input's two channels are split into the ADD's two inputs, their scales, zero
points and the output's rewritten (TFLM's SPLIT copies bytes, so any quantization of its outputs is valid), run on
128 inputs that hold the 65,536 pairs between them (a = p >> 8, b = p & 255 for p = 0..65535).

Independent references: the host TFLM interpreter (tflite-micro, reference kernels) for the build's Python port of
AddPrepare and of the arithmetic, and the same firmware with TFLM's reference kernels (bench/reference_kernels.cpp)
on the emulated Cortex-M4 for tinydeploy's kernel, exact on every pair."""

from __future__ import annotations

import os
import re

import numpy as np
import pytest

from conftest import ROOT, emulated_outputs, run_cli, without_add_tables

# (name, input scales, output scale, zero points (a, b, out), fused activation (0 none, 1 relu, 3 relu6))
SETTINGS = [
    ("extreme_zero_points", (0.05, 0.02), 0.06, (-128, 127, 10), 0),
    ("scales_apart_relu", (0.5, 0.004), 0.3, (0, -60, -128), 1),  # the relu's range is int8's: SSAT alone
    ("relu6_narrow", (0.03, 0.03), 0.05, (20, -20, -90), 3),  # [-90, 30]: the clamped loop
    ("fine_output", (0.01, 0.08), 0.004, (5, -5, 3), 0),  # most sums saturate
]
SHAPE = (16, 32)  # pixels of two channels: 512 pairs an input (the firmware reports up to 600 outputs), 128 inputs


def _pairs() -> np.ndarray:
    p = np.arange(65536)
    x = np.stack([(p >> 8) - 128, (p & 255) - 128], axis=-1).astype(np.int8)
    return x.reshape(-1, *SHAPE, 2)


@pytest.fixture(scope="module")
def split_add(tmp_path_factory):
    """The SPLIT + ADD model (converted once), and a function that writes it with a setting's quantization."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    from tinydeploy.compress.quantize import convert
    from tinydeploy.compress.tfenv import import_tf
    from tinydeploy.tflite_edit import Editor

    tf, keras = import_tf()
    L = keras.layers
    x = L.Input((*SHAPE, 2))
    a, b = L.Lambda(lambda t: tf.split(t, 2, axis=-1))(x)
    rep = np.random.default_rng(0).integers(0, 256, (32, *SHAPE, 2), dtype=np.uint8)
    base = convert(keras.Model(x, L.Add()([a, b])), "int8", rep, 32)
    d = tmp_path_factory.mktemp("add_tables")

    def write(name, scales, out_scale, zero_points, activation):
        ed = Editor(base)
        code = ed.S.BuiltinOperator.ADD
        (op,) = [o for o in ed.g.operators if ed.m.operatorCodes[o.opcodeIndex].builtinCode == code]
        for t, s, z in zip((*op.inputs, *op.outputs), (*scales, out_scale), zero_points):
            ed.g.tensors[int(t)].quantization = ed.quant([s], [z])
        op.builtinOptions.fusedActivationFunction = activation
        path = d / f"{name}.tflite"
        path.write_bytes(ed.pack())
        return path

    return write


def _tables(path):
    from tinydeploy.analyze.add_tables import add_tables
    from tinydeploy.tflite_model import TFLiteModel

    (t,) = add_tables(TFLiteModel.from_file(path), "tinydeploy")
    return t


@pytest.mark.slow
@pytest.mark.parametrize("setting", SETTINGS, ids=[s[0] for s in SETTINGS])
def test_the_tables_give_the_host_tflms_add_on_every_pair(split_add, setting):
    from tinydeploy.tflm_host import reference_outputs

    path = split_add(*setting)
    x = _pairs()
    host = reference_outputs(path.read_bytes(), x).reshape(-1)
    a, b = x[..., 0].reshape(-1), x[..., 1].reshape(-1)
    t = _tables(path)
    assert (t.data.activation != (-128, 127)) == (setting[0] == "relu6_narrow")  # the cases are what they say
    assert np.array_equal(t.data.reference(a, b), host)  # the port of AddPrepare and of the arithmetic
    t1, t2 = np.asarray(t.table1), np.asarray(t.table2)
    fast = np.clip((t1[a.astype(int) + 128] + t2[b.astype(int) + 128]) >> 16, *t.data.activation)
    assert np.array_equal(fast, host)
    assert len(np.unique(host)) > 50


def test_tables_that_cannot_be_exact_are_not_written():
    """Where no pair of tables with 16 fraction bits fits an int32 (an output scale 300 times finer than the
    inputs'), the build writes none, and the node runs the exact per-call tables on the device."""
    from tinydeploy.analyze.add_tables import add_data, fused_tables

    assert fused_tables(add_data((0.65, 0.82, 0.0027), (-98, 93, -107), 0)) is None
    assert fused_tables(add_data((0.05, 0.02, 0.06), (-128, 127, 10), 0)) is not None


def _build(path, tmp_path, name, tflm_dir, *, reference=False, edit=None):
    from tinydeploy.boards import load
    from tinydeploy.emulate.firmware import build_firmware
    from tinydeploy.emulate.tflm_library import TflmLibrary

    project = tmp_path / name
    run_cli("build", path, "-o", project, "--no-compile", "--kernels", "cmsis-nn" if reference else "tinydeploy",
            check=0)
    if edit:
        edit(project)
    extra = (ROOT / "bench" / "reference_kernels.cpp",) if reference else ()
    return project, build_firmware(project, TflmLibrary.locate(str(tflm_dir)), load("nano33ble"),
                                   out_dir=tmp_path / f"e-{name}", extra_sources=extra).elf


def _outputs(elf):
    x = _pairs()
    return np.asarray(emulated_outputs(elf, x.reshape(len(x), -1))).reshape(-1)


@pytest.mark.slow
@pytest.mark.parametrize("setting", SETTINGS[1:3], ids=[s[0] for s in SETTINGS[1:3]])
def test_add_with_tables_is_exact_on_every_pair_on_the_device(split_add, tflm_dir, tmp_path, setting):
    """tinydeploy's ADD (the tables' loop in assembly, and the clamped loop for relu6) against the firmware with TFLM's
    reference kernels, all 65,536 pairs; and the per-call tables' path (no tables written) on the same pairs."""
    path = split_add(*setting)
    ours, elf = _build(path, tmp_path, "ours", tflm_dir)
    assert re.search(r"\{\d+, AddOpData\(", (ours / "src" / "model_params.cpp").read_text())
    _, ref_elf = _build(path, tmp_path, "ref", tflm_dir, reference=True)
    want = _outputs(ref_elf)
    assert np.array_equal(_outputs(elf), want)
    x = _pairs()
    assert np.array_equal(_tables(path).data.reference(x[..., 0].reshape(-1), x[..., 1].reshape(-1)), want)
    if setting[0] == "scales_apart_relu":
        _, plain = _build(path, tmp_path, "plain", tflm_dir, edit=without_add_tables)
        assert np.array_equal(_outputs(plain), want)


@pytest.mark.slow
def test_a_wrong_table_shift_would_be_caught(split_add, tflm_dir, tmp_path):
    """The comparison can fail: the assembly's SSAT shifting by 15 instead of the tables' 16 differs."""
    path = split_add(*SETTINGS[1])

    def mutate(project):
        src = project / "src" / "td_kernel_add.cpp"
        text = src.read_text()
        assert text.count("asr #16") == 2
        src.write_text(text.replace("asr #16", "asr #15"))

    _, elf = _build(path, tmp_path, "broken", tflm_dir, edit=mutate)
    x = _pairs()
    want = _tables(path).data.reference(x[..., 0].reshape(-1), x[..., 1].reshape(-1))
    assert not np.array_equal(_outputs(elf), want)


@pytest.mark.slow
def test_tables_of_another_model_stop_the_firmware_with_one_line(split_add, tflm_dir, tmp_path):
    """model_params.cpp's op data differs from what AddPrepare computes (the project was edited, or belongs to another
    model): the firmware refuses to start, with one line, instead of adding by the wrong tables."""
    path = split_add(*SETTINGS[1])
    project = tmp_path / "p"
    run_cli("build", path, "-o", project, "--no-compile", check=0)
    src = project / "src" / "model_params.cpp"
    text = src.read_text()
    edited = re.sub(r"AddOpData\((-?\d+),", lambda m: f"AddOpData({int(m.group(1)) + 1},", text, count=1)
    assert edited != text
    src.write_text(edited)
    r = run_cli("emulate", project, "--tflm", tflm_dir, "--runs", "1", timeout=600)
    assert r.returncode == 3 and "ADD tables in flash" in r.stderr and "rebuild it" in r.stderr, r.stderr
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr
