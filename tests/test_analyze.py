"""analyze: MACs against an independent Keras count, arena against the tflite-micro interpreter's own
recording, the int8 and support checks, the verdict, and speed without TensorFlow."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from conftest import EXAMPLE, run_cli

MODELS = ["plain_cnn", "depthwise", "mbv2_block"]


def recorded_arena_total(path) -> int:
    """What tflite-micro's RecordingMicroAllocator prints, read here without tinydeploy's code."""
    code = ("from tflite_micro.python.tflite_micro import runtime\n"
            f"i = runtime.Interpreter.from_file({str(path)!r}, arena_size=1 << 24)\n"
            "i.print_allocations()\n")
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return int(re.search(r"Arena allocation total (\d+) bytes", p.stdout + p.stderr).group(1))


@pytest.mark.parametrize("name", MODELS)
def test_analyze_json_matches_tflm_and_keras(tf_models, tmp_path, name):
    path, keras_macs = tf_models[name]
    out = tmp_path / "a.json"
    run_cli("analyze", path, "--board", "nano33ble", "--json", out, check=0)
    a = json.loads(out.read_text())
    assert a["totals"]["macs"] == keras_macs
    # analyze reports the model as `build` deploys it: with its offline memory plan, the input kept
    from tinydeploy.plan import deployed
    from tinydeploy.tflite_model import TFLiteModel

    dep = tmp_path / "deployed.tflite"
    d = deployed(TFLiteModel.from_file(path))
    dep.write_bytes(d.model.data)
    assert a["arena"]["host_total_bytes"] == recorded_arena_total(dep) and a["memory"]["input_kept"]
    # the head at least the bound, less what a depthwise node in place shares with its input (plan.in_place_pairs:
    # the MobileNetV2 block's)
    shared = sum(d.model.tensors[y].nbytes for _, y in d.plan.in_place)
    assert bool(shared) == (name == "mbv2_block")
    assert a["arena"]["host_head_bytes"] >= a["memory"]["lower_bound_input_kept_bytes"] - shared
    assert a["memory"]["lower_bound_input_kept_bytes"] >= a["memory"]["lower_bound_bytes"]
    # the 32-bit figure is smaller (pointer-holding structures halve) but never below the activations; the device's
    # estimate adds the largest scratch buffer a CMSIS-NN kernel asks for (the host's reference kernels ask for none)
    ar, mem = a["arena"], a["memory"]
    assert ar["scratch_bytes"] == mem["largest_scratch_bytes"] and ar["scratch_bytes"] % 16 == 0
    assert mem["lower_bound_input_kept_bytes"] <= mem["lower_bound_with_scratch_bytes"] <= \
        mem["lower_bound_input_kept_bytes"] + mem["largest_scratch_bytes"]
    # TFLM's head with the scratch buffers placed: the plan's without any, never below what is live with them
    from tinydeploy.analyze.scratch import scratch_by_node
    from tinydeploy.plan import head_with_scratch, planned_offsets

    d = deployed(TFLiteModel.from_file(path)).model
    scratch = scratch_by_node(d)
    assert head_with_scratch(d, {}) == ar["host_head_bytes"]
    assert head_with_scratch(d, scratch) >= mem["lower_bound_with_scratch_bytes"] - shared
    big = {0: 1 << 20}  # a buffer no gap holds goes above every tensor live at its operator
    offsets = planned_offsets(d.data)
    top = max(offsets[i] + d.tensors[i].nbytes for i in (*d.operators[0].inputs, *d.operators[0].outputs)
              if i >= 0 and offsets[i] >= 0)
    assert top + (1 << 20) <= head_with_scratch(d, big) <= ar["host_head_bytes"] + (1 << 20)
    assert ar["host_head_bytes"] <= ar["device_bytes"] - ar["scratch_bytes"] < ar["host_total_bytes"]
    assert a["int8"]["ok"] and a["support"]["ok"] and a["fit"]["fits"] is True
    assert a["flash"]["kind"] == "estimate" and a["flash"]["total_bytes"] > path.stat().st_size
    ops = {o["op"] for o in a["ops"]}
    assert {"CONV_2D", "FULLY_CONNECTED"} <= ops
    if name == "mbv2_block":
        assert {"ADD", "DEPTHWISE_CONV_2D", "MEAN"} <= ops


def test_params_match_keras(tf_models):
    from tinydeploy import boards
    from tinydeploy.analyze import analyze
    from tinydeploy.tflite_model import TFLiteModel

    path, _ = tf_models["plain_cnn"]
    a = analyze(TFLiteModel.from_file(path), boards.load("nano33ble"), measure_arena=False)
    # plain_cnn (32x32x3): conv 3*3*3*8+8, conv 3*3*8*16+16 (-> 8x8x16), dense (8*8*16)*10+10
    assert a.total_params == (3 * 3 * 3 * 8 + 8) + (3 * 3 * 8 * 16 + 16) + (8 * 8 * 16 * 10 + 10)


def test_float_model_is_refused_with_one_line(tf_models):
    path, _ = tf_models["float"]
    p = run_cli("analyze", path)
    assert p.returncode == 2
    err = p.stderr.strip()
    assert "\n" not in err and "not a full-integer int8 model" in err and "tinydeploy compress" in err
    assert "Traceback" not in p.stderr
    p = run_cli("analyze", path, "--allow-float", "--json", "-")
    assert p.returncode in (0, 1), p.stderr
    assert json.loads(p.stdout)["int8"]["ok"] is False


def test_does_not_fit_exits_1(tf_models):
    path, _ = tf_models["plain_cnn"]
    p = run_cli("analyze", path, "--reserve-ram", str(256 * 1024 - 1000), "--json", "-")
    assert p.returncode == 1
    fit = json.loads(p.stdout)["fit"]
    assert fit["fits"] is False and fit["ram"]["ok"] is False and fit["ram"]["headroom_bytes"] < 0


def test_per_channel_dense_on_a_vector_input_is_rewritten(tmp_path):
    """TF's default per-channel Dense on a plain vector input (no image before it): analyze says build will
    rewrite it, and the rewritten model computes the same outputs in the host TFLM interpreter."""
    import os

    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import numpy as np

    from tinydeploy.compress.tfenv import import_tf
    from tinydeploy.tflm_host import reference_outputs

    tf, keras = import_tf()
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.layers.Input((8,)), keras.layers.Dense(4), keras.layers.Softmax()])
    c = tf.lite.TFLiteConverter.from_keras_model(m)
    c.optimizations = [tf.lite.Optimize.DEFAULT]
    c.representative_dataset = lambda: ([np.random.rand(1, 8).astype(np.float32)] for _ in range(8))
    c.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    c.inference_input_type = c.inference_output_type = tf.int8
    p = tmp_path / "pc.tflite"
    p.write_bytes(c.convert())
    out = tmp_path / "a.json"
    r = run_cli("analyze", p, "--json", out)
    assert r.returncode == 0, r.stderr
    assert "FULLY_CONNECTED (op 0)" in r.stdout and "will be rewritten exactly" in r.stdout
    d = json.loads(out.read_text())
    assert [x["gap"] for x in d["repairs"]] == ["per-channel-fully-connected"]
    assert d["op_types"] == ["RESHAPE", "CONV_2D", "SOFTMAX"]

    from tinydeploy.repair import repair
    from tinydeploy.tflite_model import TFLiteModel

    model = TFLiteModel.from_file(p)
    deployed = repair(model).model
    x = np.random.default_rng(0).integers(-128, 128, size=(200, 1, 8)).astype(np.int8)
    assert np.array_equal(reference_outputs(model.data, x), reference_outputs(deployed.data, x))


def test_analyze_does_not_import_tensorflow():
    # its speed (< 2 s) is measured by bench/cli_speed.py, not asserted in a timed test
    p = subprocess.run([sys.executable, "-X", "importtime", "-m", "tinydeploy", "analyze", str(EXAMPLE)],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr[-2000:]
    imported = {line.split("|")[-1].strip() for line in p.stderr.splitlines() if line.startswith("import time:")}
    assert not any(m == "tensorflow" or m.startswith("tensorflow.") or m.startswith("tf_keras") for m in imported)
    assert "tflite" in imported  # sanity: the importtime output was read


def test_int32_shape_arithmetic_is_not_a_type_issue():
    """Keras's Reshape converts to SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE on int32 (MobileNetV1's head)."""
    import os

    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    import numpy as np

    from tinydeploy.analyze import check_types
    from tinydeploy.compress.quantize import convert
    from tinydeploy.compress.tfenv import import_tf
    from tinydeploy.tflite_model import TFLiteModel

    _, keras = import_tf()
    L = keras.layers
    m = keras.Sequential([L.Input((16, 16, 1)), L.Conv2D(8, 3, strides=2), L.GlobalAveragePooling2D(keepdims=True),
                          L.Conv2D(4, 1), L.Reshape((4,)), L.Activation("softmax")])
    rng = np.random.default_rng(0)
    m.set_weights([rng.normal(0, 0.2, w.shape) for w in m.get_weights()])
    model = TFLiteModel.from_bytes(convert(m, "int8", rng.integers(0, 256, (8, 16, 16, 1), dtype=np.uint8), 8))
    assert {"SHAPE", "STRIDED_SLICE", "PACK"} <= set(model.op_names)
    assert check_types(model) == []


def test_op_table_is_generated_from_the_pinned_header(tflm_dir):
    """tflm_runtime.json's ops are exactly what the pinned library's MicroMutableOpResolver can register."""
    from tinydeploy.analyze.runtime import pinned
    from tinydeploy.analyze.tflm_ops import RESOLVER, read_library, resolver_ops

    table = read_library(tflm_dir)
    rt = pinned()
    assert rt.ops == table["ops"] and sorted(rt.cmsis_nn) == table["cmsis_nn"]
    # builtins the hand-kept 2022 table lacked
    assert {"DIV", "SLICE", "SUM", "MIRROR_PAD", "LOG_SOFTMAX", "SQUARED_DIFFERENCE"} <= set(rt.ops)
    assert rt.ops["CONV_2D"] == "AddConv2D" and "CUSTOM" not in rt.ops
    # the parser follows the header: an op renamed there changes the table
    text = (tflm_dir / RESOLVER).read_text().replace("BuiltinOperator_DIV,", "BuiltinOperator_DIVIDE,")
    assert "DIV" not in resolver_ops(text) and resolver_ops(text)["DIVIDE"] == "AddDiv"


@pytest.mark.parametrize("app_ram", [22_500, 21_000])
def test_the_study_judges_fit_as_analyze_and_build_do(app_ram):
    """The study's rows say `fits` for the model as `build` deploys it (its offline plan, no copy of the input), the
    verdict `tinydeploy analyze` prints. With the example's RAM budget between the planned need (21.5 KB) and TFLM's
    own planner's (23.5 KB), judging the model as given would say it does not fit."""
    from dataclasses import replace

    from tinydeploy.analyze import analyze
    from tinydeploy.boards import load
    from tinydeploy.repair import repair
    from tinydeploy.sources import EXAMPLE_MODEL
    from tinydeploy.study.grid import _analysis_fields
    from tinydeploy.tflite_model import TFLiteModel

    from conftest import run_cli

    base = load("nano33ble")
    board = replace(base, reserve_ram_bytes=base.ram_bytes - app_ram)
    data = EXAMPLE_MODEL.read_bytes()
    row = _analysis_fields(board, "example", "int8", data)
    cli = run_cli("analyze", EXAMPLE_MODEL, "--board", "nano33ble", "--reserve-ram", base.ram_bytes - app_ram)
    assert cli.returncode in (0, 1), cli.stderr
    assert row["fits"] == (cli.returncode == 0) == (app_ram == 22_500)
    assert (row["does_not_fit_by"] == "") == row["fits"] and row["fit_rule"] == "deployed"
    if row["fits"]:  # the budget discriminates: the model as given, with TFLM's planner, would not fit it
        assert analyze(repair(TFLiteModel.from_bytes(data, source="x")).model, board).fit.fits is False
    else:
        assert row["does_not_fit_by"].startswith("RAM +")
