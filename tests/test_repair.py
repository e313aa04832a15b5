"""Models as TensorFlow's converter writes them by default (per-channel Dense weights), and models without
conv biases, deploy: build rewrites the layers the pinned TFLM gets wrong, and the rewrite is exact.

The references are independent of the rewrite: the TFLM host interpreter's outputs of the ORIGINAL model,
and the TensorFlow converter's own output."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from conftest import emulate, emulated_outputs, run_cli


def _stock_convert(model, shape, rng) -> bytes:
    """TF 2.21's converter with its default settings for full-integer int8, nothing else."""
    import tensorflow as tf

    def rep():
        for _ in range(16):
            yield [rng.random((1, *shape), dtype=np.float32)]

    c = tf.lite.TFLiteConverter.from_keras_model(model)
    c.optimizations = [tf.lite.Optimize.DEFAULT]
    c.representative_dataset = rep
    c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    c.inference_input_type = c.inference_output_type = tf.int8
    return c.convert()


def _without_conv_biases(data: bytes) -> bytes:
    """The same model with the (zero) bias inputs of its CONV_2D and DEPTHWISE_CONV_2D removed, as some
    exporters write convolutions without bias; written with the schema's object API (not the code under test)."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as S

    m = S.ModelT.InitFromPackedBuf(bytearray(data), 0)
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in m.operatorCodes]
    stripped = 0
    for op in m.subgraphs[0].operators:
        if codes[op.opcodeIndex] in (S.BuiltinOperator.CONV_2D, S.BuiltinOperator.DEPTHWISE_CONV_2D):
            bias = m.subgraphs[0].tensors[op.inputs[2]]
            if not np.asarray(m.buffers[bias.buffer].data).any():  # use_bias=False: the converter wrote zeros
                op.inputs = np.array([op.inputs[0], op.inputs[1], -1], np.int32)
                stripped += 1
    assert stripped == 2
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    return bytes(b.Output())


@pytest.fixture(scope="session")
def stock_models(tmp_path_factory):
    """name -> (path, input shape) for models converted with the stock converter settings."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    from tinydeploy.compress.tfenv import import_tf

    _, keras = import_tf()
    keras.utils.set_random_seed(3)
    L = keras.layers
    rng = np.random.default_rng(3)
    d = tmp_path_factory.mktemp("stock")
    specs = {}
    specs["plain_fc"] = keras.Sequential([L.Input((24, 24, 1)), L.Conv2D(8, 3, activation="relu"), L.MaxPool2D(),
                                          L.Flatten(), L.Dense(16, activation="relu"), L.Dense(10, activation="softmax")])
    specs["depthwise_fc_no_bias"] = keras.Sequential([
        L.Input((24, 24, 3)), L.Conv2D(8, 3, strides=2, padding="same", activation="relu", use_bias=False),
        L.DepthwiseConv2D(3, padding="same", activation="relu", use_bias=False), L.Conv2D(16, 1, activation="relu"),
        L.AveragePooling2D(), L.Flatten(), L.Dense(4, use_bias=False, activation="softmax")])
    inp = L.Input((24, 24, 3))
    x = L.Conv2D(16, 3, strides=2, padding="same", activation="relu6")(inp)
    y = L.Conv2D(48, 1, activation="relu6")(x)
    y = L.DepthwiseConv2D(3, padding="same", activation="relu6")(y)
    y = L.Conv2D(16, 1)(y)
    x = L.GlobalAveragePooling2D()(L.Add()([x, y]))
    specs["mbv2_block_fc"] = keras.Model(inp, L.Dense(5, activation="softmax")(x))
    specs["uneven_fc"] = keras.Sequential([L.Input((12, 12, 1)), L.Conv2D(4, 3, activation="relu"), L.Flatten(),
                                           L.Dense(12)])
    out = {}
    for name, m in specs.items():
        m.set_weights([rng.normal(0, 0.3, size=w.shape).astype(np.float32) for w in m.get_weights()])
        if name == "uneven_fc":  # per-channel scales 100x apart: the first scale alone is far off for most channels
            w, b = m.layers[-1].get_weights()
            m.layers[-1].set_weights([w * np.geomspace(0.01, 1.0, w.shape[1]).astype(np.float32), b])
        shape = tuple(m.input_shape[1:])
        p = d / f"{name}.tflite"
        p.write_bytes(_stock_convert(m, shape, rng))
        out[name] = (p, shape)
    nb = d / "conv_no_bias.tflite"
    nb.write_bytes(_without_conv_biases(out["depthwise_fc_no_bias"][0].read_bytes()))
    out["conv_no_bias"] = (nb, out["depthwise_fc_no_bias"][1])
    return out


# The host interpreter itself crashes on a DEPTHWISE_CONV_2D without bias, so conv_no_bias is compared with the
# model it was made from: the same weights with the converter's zero biases, the same arithmetic.
REFERENCE = {"conv_no_bias": "depthwise_fc_no_bias"}

EXPECTED_GAPS = {
    "plain_fc": {"per-channel-fully-connected"},
    "depthwise_fc_no_bias": {"per-channel-fully-connected"},
    "mbv2_block_fc": {"per-channel-fully-connected"},
    "uneven_fc": {"per-channel-fully-connected"},
    "conv_no_bias": {"per-channel-fully-connected", "conv-without-bias", "depthwise-without-bias"},
}


def _buffer_starts(data: bytes) -> list[int]:
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as S

    m = S.Model.GetRootAs(bytearray(data), 0)
    starts = []
    for i in range(m.BuffersLength()):
        b = m.Buffers(i)
        o = flatbuffers.number_types.UOffsetTFlags.py_type(b._tab.Offset(4))
        if o and b.DataLength():
            starts.append(b._tab.Vector(o))
    return starts


@pytest.mark.parametrize("name", sorted(EXPECTED_GAPS))
def test_rewrite_is_exact_on_the_host_interpreter(stock_models, name):
    from tinydeploy.analyze import REPAIRABLE_GAP, analyze
    from tinydeploy.boards import load
    from tinydeploy.repair import repair
    from tinydeploy.tflite_model import TFLiteModel
    from tinydeploy.tflm_host import reference_outputs

    path, shape = stock_models[name]
    model = TFLiteModel.from_file(path)
    # unrepaired, analyze names each gap; repaired, nothing is left and the model fits
    unrepaired = analyze(model, load("nano33ble"), measure_arena=False)
    assert {i.code for i in unrepaired.support_issues} == ({REPAIRABLE_GAP} if EXPECTED_GAPS[name] else set())
    r = repair(model)
    assert {x.gap for x in r.repairs} == EXPECTED_GAPS[name]
    a = analyze(r.model, load("nano33ble"))
    assert a.support_issues == [] and a.fit.fits is True
    dep = r.model
    # nothing the pinned TFLM gets wrong is left
    for op in dep.operators:
        assert op.opname != "FULLY_CONNECTED" or not dep.tensors[op.inputs[1]].quantization.per_channel
        if op.opname in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            assert len(op.inputs) == 3 and op.inputs[2] >= 0
    assert all(s % 16 == 0 for s in _buffer_starts(dep.data))  # weights and biases 16-byte aligned
    x = np.random.default_rng(7).integers(-128, 128, size=(300, 1, *shape)).astype(np.int8)
    reference = stock_models[REFERENCE.get(name, name)][0].read_bytes()
    before, after = reference_outputs(reference, x), reference_outputs(dep.data, x)
    assert before.shape == after.shape and np.array_equal(before, after)


def test_analyze_and_build_accept_stock_models(stock_models, tmp_path):
    path, _ = stock_models["plain_fc"]
    r = run_cli("analyze", path, "--json", tmp_path / "a.json")
    assert r.returncode == 0, r.stderr
    assert "will be rewritten exactly by `tinydeploy build`" in r.stdout and "verdict: fits" in r.stdout
    d = json.loads((tmp_path / "a.json").read_text())
    assert [x["gap"] for x in d["repairs"]] == ["per-channel-fully-connected"] * 2
    r = run_cli("build", path, "-o", tmp_path / "p", "--no-compile")
    assert r.returncode == 0, r.stderr
    meta = json.loads((tmp_path / "p" / "tinydeploy.json").read_text())
    assert "FULLY_CONNECTED" not in meta["ops"] and "CONV_2D" in meta["ops"]


@pytest.fixture(scope="session")
def emulated_stock(stock_models, tflm_dir, tmp_path_factory):
    d = tmp_path_factory.mktemp("stock_emu")
    out = {}
    for name, (path, shape) in stock_models.items():
        project = d / name
        run_cli("build", path, "-o", project, "--no-compile", check=0)
        x = np.random.default_rng(11).integers(-128, 128, size=(20, int(np.prod(shape)))).astype(np.int8)
        np.savez(d / f"{name}.npz", x=x)
        out[name] = (*emulate(project, tflm_dir, "--runs", "1", "--warmup", "0", "--accuracy", d / f"{name}.npz"), x)
    return out


# The device's TFLM (2023) and the host's (2026) round some DEPTHWISE_CONV_2D outputs one step apart.
DRIFT = {"depthwise_fc_no_bias": 1, "conv_no_bias": 1, "mbv2_block_fc": 1}


@pytest.mark.parametrize("name", sorted(EXPECTED_GAPS))
def test_device_computes_what_the_host_computes_for_the_original(emulated_stock, stock_models, name):
    from tinydeploy.tflite_model import TFLiteModel
    from tinydeploy.tflm_host import reference_outputs

    r, d, x = emulated_stock[name]
    assert r.returncode == 0, r.stdout + r.stderr
    assert d["golden"] and all(g["pass"] for g in d["golden"])  # golden outputs: the original model's, on the host
    path, shape = stock_models[REFERENCE.get(name, name)]
    host = reference_outputs(TFLiteModel.from_file(path).data, x.reshape(20, 1, *shape)).reshape(20, -1)
    device = np.array(d["accuracy"]["outputs"]["device"], dtype=np.int16)
    diff = np.abs(device - host).max()
    assert diff <= DRIFT.get(name, 0), (name, diff)


def test_unrewritten_per_channel_dense_is_wrong_on_the_device(stock_models, tflm_dir, tmp_path):
    """The gap is real: the same uneven model, deployed without the rewrite, gives other outputs on the device."""
    from tinydeploy.analyze import analyze
    from tinydeploy.boards import load
    from tinydeploy.emulate.firmware import emulate_project
    from tinydeploy.generate.golden import make_golden
    from tinydeploy.generate.project import build_context, render_project
    from tinydeploy.tflite_model import TFLiteModel
    from tinydeploy.tflm_host import reference_outputs

    path, shape = stock_models["uneven_fc"]
    model = TFLiteModel.from_file(path)
    from dataclasses import replace

    from tinydeploy.analyze.runtime import pinned

    # the original bytes and ops: analyzed by a runtime that knows of no gap, so nothing stops the deployment
    a = analyze(model, load("nano33ble"), runtime=replace(pinned(), known_gaps=()))
    ctx = build_context(model, a, make_golden(model, count=1), [], name="raw", command="test")
    render_project(ctx, tmp_path / "raw", force=False, metadata={}, model_data=model.data)
    image, _ = emulate_project(tmp_path / "raw", tflm=str(tflm_dir), board=load("nano33ble"))
    x = np.random.default_rng(5).integers(-128, 128, size=(10, int(np.prod(shape)))).astype(np.int8)
    device = emulated_outputs(image.elf, x)
    host = reference_outputs(model.data, x.reshape(10, 1, *shape)).reshape(10, -1)
    assert np.abs(device.astype(np.int16) - host).max() > 1


def test_model_too_big_exits_1_from_analyze_and_build(tmp_path):
    """A 40 MB VGG16 at 64x64: the same one-line verdict and exit 1 from both commands."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    from tinydeploy.compress.quantize import convert
    from tinydeploy.compress.tfenv import import_tf

    _, keras = import_tf()
    vgg = keras.applications.VGG16(weights=None, input_shape=(64, 64, 3), classes=10)
    path = tmp_path / "vgg16.tflite"
    path.write_bytes(convert(vgg, "int8", np.random.default_rng(0).integers(0, 256, (2, 64, 64, 3), dtype=np.uint8), 2))
    assert path.stat().st_size > 35_000_000
    a = run_cli("analyze", path, timeout=600)
    b = run_cli("build", path, "-o", tmp_path / "p", "--no-compile", timeout=600)
    for r in (a, b):
        assert r.returncode == 1, r.stderr
        line = r.stderr.strip()
        assert line.count("\n") == 0 and "does not fit the Arduino Nano 33 BLE Sense (flash over by" in line
        assert "width multiplier" in line and "unstructured pruning leaves" in line
    assert a.stderr == b.stderr
    assert not (tmp_path / "p").exists()


def test_softmax_scale_below_tflm_limit_is_named_not_a_crash(stock_models, tmp_path):
    """TFLM aborts in SOFTMAX's Prepare when input scale x beta x 2^26 <= 1 (the untrained MobileNetV2 1.0 of
    the study had 7.8e-9): analyze says so in one line, instead of 'crashed with signal 6'."""
    import flatbuffers
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as S

    from tinydeploy.errors import ModelError
    from tinydeploy.tflm_host import record_arena

    m = S.ModelT.InitFromPackedBuf(bytearray(stock_models["plain_fc"][0].read_bytes()), 0)
    g = m.subgraphs[0]
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in m.operatorCodes]
    softmax = next(op for op in g.operators if codes[op.opcodeIndex] == S.BuiltinOperator.SOFTMAX)
    g.tensors[softmax.inputs[0]].quantization.scale = np.array([1e-9], np.float32)
    b = flatbuffers.Builder(1024)
    b.Finish(m.Pack(b), file_identifier=b"TFL3")
    path = tmp_path / "tiny_softmax_scale.tflite"
    path.write_bytes(bytes(b.Output()))
    with pytest.raises(ModelError, match="signal 6"):  # the real interpreter does abort on it
        record_arena(path.read_bytes())
    r = run_cli("analyze", path)
    assert r.returncode == 2 and "Traceback" not in r.stderr and r.stderr.strip().count("\n") == 0
    assert "SOFTMAX (op" in r.stderr and "below what TFLM's int8 softmax accepts" in r.stderr
    assert "Train the model, or calibrate it" in r.stderr
