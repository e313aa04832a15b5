"""plan/fold.py: a Keras Reshape converted with an unknown batch size (SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE) folded
into one RESHAPE with a constant shape before the offline plan, and a RESHAPE into a SOFTMAX that keeps the last axis
dropped: the same outputs on the host TFLM, fewer nodes and tensors, and the device running the folded model against
the original model's golden outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import emulate, random_int8_model, run_cli

pytestmark = pytest.mark.slow  # converts a model with TensorFlow

CHAIN = ("SHAPE", "STRIDED_SLICE", "PACK")


def _head(keras):
    """A MobileNet's head in small: global pooling kept 4-D, a 1x1 classifier, Reshape to the classes, softmax."""
    L = keras.layers
    return keras.Sequential([L.Input((6, 6, 3)), L.Conv2D(8, 3, activation="relu"),
                             L.GlobalAveragePooling2D(keepdims=True), L.Conv2D(5, 1), L.Reshape((5,)), L.Softmax()])


def _flat_head(keras):
    """The classifier on a 2x2 map flattened: Reshape to 20 values (the last axis changes: 5 -> 20), softmax."""
    L = keras.layers
    return keras.Sequential([L.Input((6, 6, 3)), L.Conv2D(8, 3, strides=2, activation="relu"), L.Conv2D(5, 1),
                             L.Reshape((20,)), L.Softmax()])


@pytest.fixture(scope="module")
def chain_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("fold") / "head.tflite"
    path.write_bytes(random_int8_model(_head, (6, 6, 3), seed=3, weight_std=0.3))
    return path


@pytest.fixture(scope="module")
def flat_model(tmp_path_factory):
    path = tmp_path_factory.mktemp("fold") / "flat.tflite"
    path.write_bytes(random_int8_model(_flat_head, (6, 6, 3), seed=4, weight_std=0.3))
    return path


def test_a_reshape_into_softmax_keeping_the_last_axis_is_dropped(chain_model):
    """1x1x1x5 -> RESHAPE -> 1x5 -> SOFTMAX: the SOFTMAX reads the classifier's output itself, its output (the
    graph's) takes the shape 1x1x1x5, the RESHAPE and its two tensors go; the outputs are the same values."""
    from tinydeploy.plan.fold import fold_shapes
    from tinydeploy.tflite_model import TFLiteModel
    from tinydeploy.tflm_host import reference_outputs

    model = TFLiteModel.from_file(chain_model)
    names = [op.opname for op in model.operators]
    f = fold_shapes(model)
    assert [op.opname for op in f.model.operators] == [n for n in names if n not in (*CHAIN, "RESHAPE")]
    assert (f.reshapes, f.reshapes_dropped, f.ops_removed) == (1, 1, 4)
    assert f.tensors_removed == 7  # the chain's 5 (see below), the RESHAPE's output and its constant shape
    softmax = f.model.operators[-1]
    conv_out = f.model.operators[-2].outputs[0]
    assert softmax.inputs == (conv_out,) or list(softmax.inputs) == [conv_out]
    assert tuple(f.model.output_tensors[0].shape) == (1, 1, 1, 5) == tuple(f.model.tensors[conv_out].shape)
    x = np.random.default_rng(0).integers(-128, 128, size=(20, 6, 6, 3), dtype=np.int8)
    want, got = reference_outputs(model.data, x), reference_outputs(f.model.data, x)
    assert np.array_equal(got.reshape(20, -1), want.reshape(20, -1)) and len(np.unique(want)) > 5


def test_a_computed_reshape_folds_to_a_constant_and_the_outputs_stay_the_same(flat_model):
    from tinydeploy.plan.fold import fold_shapes
    from tinydeploy.tflite_model import TFLiteModel
    from tinydeploy.tflm_host import reference_outputs

    model = TFLiteModel.from_file(flat_model)
    names = [op.opname for op in model.operators]
    assert all(n in names for n in CHAIN)  # the converter wrote the chain this fold is for
    f = fold_shapes(model)
    folded = [op.opname for op in f.model.operators]
    assert folded == [n for n in names if n not in CHAIN]  # the RESHAPE stays: it changes the last axis (5 -> 20)
    assert (f.reshapes, f.reshapes_dropped, f.ops_removed) == (1, 0, 3)
    assert f.tensors_removed == len(model.tensors) - len(f.model.tensors)
    assert f.tensors_removed == 5  # SHAPE's output, STRIDED_SLICE's 3 constants and output, PACK's constant and output,
    # less the constant shape added
    reshape = next(op for op in f.model.operators if op.opname == "RESHAPE")
    shape_t = f.model.tensors[reshape.inputs[1]]
    assert shape_t.is_constant
    assert np.frombuffer(shape_t.data, "<i4").tolist() == list(f.model.tensors[reshape.outputs[0]].shape)
    x = np.random.default_rng(0).integers(-128, 128, size=(20, 6, 6, 3), dtype=np.int8)
    want, got = reference_outputs(model.data, x), reference_outputs(f.model.data, x)
    assert np.array_equal(got, want) and len(np.unique(want)) > 5
    # a model without such a chain (or a RESHAPE to drop) is returned as it is
    assert fold_shapes(f.model).model is f.model


def test_a_shape_another_op_or_output_reads_stays(chain_model):
    """The chain's ops are dropped only where nothing reads their outputs: with SHAPE's output also a graph output,
    SHAPE stays (and the outputs, renumbered, are still the same tensors)."""
    from tinydeploy.plan.fold import fold_shapes
    from tinydeploy.tflite_edit import Editor
    from tinydeploy.tflite_model import TFLiteModel

    model = TFLiteModel.from_file(chain_model)
    shape_out = next(op for op in model.operators if op.opname == "SHAPE").outputs[0]
    ed = Editor(model.data)
    ed.g.outputs = np.asarray([*ed.g.outputs, shape_out], np.int32)
    both = TFLiteModel.from_bytes(ed.pack(), source="both")
    f = fold_shapes(both)
    assert [op.opname for op in f.model.operators].count("SHAPE") == 1
    assert not {"STRIDED_SLICE", "PACK"} & {op.opname for op in f.model.operators}
    assert [f.model.tensors[i].name for i in f.model.outputs] == [both.tensors[i].name for i in both.outputs]


def test_the_build_deploys_the_folded_model_and_the_device_matches_the_original(chain_model, tflm_dir, tmp_path):
    """`tinydeploy build` (offline plan) deploys the folded model: its metadata says what was folded, the firmware
    runs 4 nodes, not 8, and its outputs match the golden outputs the host computed from the model as given."""
    project = tmp_path / "p"
    run_cli("build", chain_model, "-o", project, "--no-compile", check=0)
    meta = json.loads((project / "tinydeploy.json").read_text())
    assert meta["memory_plan"]["folded"] == {"reshapes": 1, "reshapes_dropped": 1, "ops_removed": 4,
                                             "tensors_removed": 7}
    r, result = emulate(project, tflm_dir, "--runs", "1")
    assert r.returncode == 0, r.stderr
    assert [op["tag"] for op in result["ops"]] == ["CONV_2D", "MEAN", "CONV_2D", "SOFTMAX"]
    assert result["golden"] and all(g["pass"] for g in result["golden"])
