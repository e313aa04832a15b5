"""The offline memory plan: placements checked against their definition on random lifetimes, exact on chains; planned
models run by the real TFLM host interpreter (which honours the plan) with outputs identical to the unplanned
models' and the input never overwritten; the emulated firmware loads the input once and infers on it again and
again, where a firmware that trusted an unkept input computes on garbage."""

from __future__ import annotations

import numpy as np
import pytest

from tinydeploy.plan import ALIGN, Buffer, PlanError, check, lower_bound, place


def _overlapping_pairs_disjoint(buffers, offsets) -> bool:
    """The definition, independently of plan.check: buffers live at the same time share no byte."""
    for i, a in enumerate(buffers):
        for b in buffers[i + 1:]:
            live_together = not (a.last < b.first or b.last < a.first)
            oa, ob = offsets[a.tensor], offsets[b.tensor]
            if live_together and not (oa + a.size <= ob or ob + b.size <= oa):
                return False
    return True


def _random_buffers(rng, n, chain: bool):
    out = []
    for t in range(n):
        size = int(rng.integers(1, 40)) * ALIGN
        if chain:  # tensor t is made by operator t and read by operator t + 1
            out.append(Buffer(t, size, t, t + 1))
        else:
            first = int(rng.integers(0, 12))
            out.append(Buffer(t, size, first, first + int(rng.integers(0, 5))))
    return out


def test_placements_against_their_definition():
    rng = np.random.default_rng(11)
    for trial in range(200):
        chain = trial % 2 == 0
        bufs = _random_buffers(rng, int(rng.integers(1, 14)), chain)
        pinned = []
        if trial % 4 == 0:  # the kept input: live throughout, below everything
            end = max(b.last for b in bufs)
            pinned = [Buffer(99, 7 * ALIGN, 0, end)]
            bufs = pinned + bufs
        offsets, head, method = place(bufs, pinned, shuffles=8)
        assert _overlapping_pairs_disjoint(bufs, offsets)
        assert all(offsets[b.tensor] % ALIGN == 0 for b in bufs)
        assert head == max(offsets[b.tensor] + b.size for b in bufs) >= lower_bound(bufs)
        if chain:  # exact: no plan needs less than the most bytes live at once
            assert method == "chain (exact)" and head == lower_bound(bufs)
        if pinned:
            assert offsets[99] == 0


def test_the_check_refuses_overlapping_live_tensors():
    bufs = [Buffer(0, 32, 0, 2), Buffer(1, 32, 1, 3), Buffer(2, 32, 3, 4)]
    check(bufs, {0: 0, 1: 32, 2: 0})  # 0 and 2 never live together: they may share
    with pytest.raises(PlanError, match="tensors 0 and 1"):
        check(bufs, {0: 0, 1: 16, 2: 64})
    with pytest.raises(PlanError, match="aligned"):
        check(bufs, {0: 0, 1: 40, 2: 0})


def _tflm_run(data: bytes, x: np.ndarray, outputs: int):
    from tflite_micro.python.tflite_micro import runtime

    interp = runtime.Interpreter.from_bytes(data, arena_size=16 << 20)
    got = []
    for xi in x:
        interp.set_input(xi, 0)
        interp.invoke()
        got.append([interp.get_output(k).copy() for k in range(outputs)])
    return got


@pytest.mark.parametrize("name", ["plain_cnn", "depthwise", "mbv2_block"])
def test_planned_models_in_the_tflm_host_interpreter(tf_models, name):
    from tinydeploy import tflm_host
    from tinydeploy.analyze import analyze
    from tinydeploy.boards import load
    from tinydeploy.plan import deployed, planned_offsets
    from tinydeploy.tflite_model import TFLiteModel

    model = TFLiteModel.from_file(tf_models[name][0])
    # the plan the library's kernels get (no node in place: TFLM's kernels write an output while they read the input)
    off, unplanned = deployed(model, "offline", "cmsis-nn"), deployed(model, "tflm")
    p = off.plan
    assert p is not None and unplanned.plan is None and off.model.outputs[1] == off.model.inputs[0]
    # the plan is in the model as written, and TFLM places the activations exactly where it says
    got = planned_offsets(off.model.data)
    assert [got[t] for t in sorted(p.offsets)] == [p.offsets[t] for t in sorted(p.offsets)]
    assert sum(o >= 0 for o in got) == len(p.offsets)
    assert tflm_host.record_arena(off.model.data)["host_head_bytes"] == p.head_bytes
    # analyze: the bound, the kept input, and the firmware's RAM without a copy of the input
    a_off = analyze(off.model, load("nano33ble"))
    a_tflm = analyze(unplanned.model, load("nano33ble"))
    assert a_off.memory["input_kept"] and not a_tflm.memory["input_kept"]
    assert p.lower_bound_bytes == a_off.memory["lower_bound_input_kept_bytes"] <= p.head_bytes
    assert a_tflm.fit.firmware_bytes - a_off.fit.firmware_bytes == model.input_tensors[0].nbytes
    if name != "mbv2_block":  # chains: exact
        assert p.method == "chain (exact)" and p.head_bytes == p.lower_bound_bytes
    # outputs identical to the unplanned model's; the kept input (output 1) unchanged after every inference
    shape = model.input_tensors[0].shape
    x = np.random.default_rng(2).integers(-128, 128, (20, *shape)).astype(np.int8)
    planned, plain = _tflm_run(off.model.data, x, 2), _tflm_run(unplanned.model.data, x, 1)
    for xi, (o, kept), (want,) in zip(x, planned, plain):
        assert np.array_equal(o, want) and np.array_equal(kept, xi)


def test_the_firmware_infers_again_on_the_input_it_loaded_once(tf_models, tmp_path, tflm_dir):
    """The planned firmware keeps no copy: `db load` writes the input tensor, and three `td-infer` on it give the
    host's outputs each time. The same firmware flag on a model TFLM plans itself (the input's memory reused by later
    layers) gives other outputs from the second inference on: the test sees what it is there to see."""
    from conftest import run_cli

    from tinydeploy.device.link import Link
    from tinydeploy.device.runner import infer_exact
    from tinydeploy import tflm_host
    from tinydeploy.boards import load
    from tinydeploy.emulate.firmware import emulate_project
    from tinydeploy.emulate.qemu import QemuSession
    from tinydeploy.plan import deployed
    from tinydeploy.tflite_model import TFLiteModel

    path = tf_models["plain_cnn"][0]
    model = TFLiteModel.from_file(path)
    x = np.random.default_rng(4).integers(-128, 128, (2, *model.input_tensors[0].shape)).astype(np.int8)
    want = tflm_host.reference_outputs(deployed(model, "tflm").model.data, x).astype(np.int8)

    def runs(project):
        image, _ = emulate_project(project, tflm=str(tflm_dir), board=load("nano33ble"))
        got = []
        with QemuSession(image.elf) as q, Link.open(url=q.url) as link:
            for xi in x:
                first, _ = infer_exact(link, xi.reshape(-1))  # loads, then infers
                again = []
                for _ in range(2):  # no new load: the same input tensor
                    link.send("td-infer")
                    again.append(_result(link))
                got.append([first, *again])
        return got

    planned = tmp_path / "planned"
    run_cli("build", path, "-o", planned, "--no-compile", check=0, timeout=300)
    for w, g in zip(want, runs(planned)):
        assert all(np.array_equal(o, w) for o in g)
    # the mutation: a firmware that keeps no copy, on a model whose input TFLM may overwrite
    broken = tmp_path / "broken"
    run_cli("build", path, "-o", broken, "--no-compile", "--memory-plan", "tflm", check=0, timeout=300)
    cfg = broken / "src" / "model_config.h"
    cfg.write_text(cfg.read_text().replace("#define TD_INPUT_KEPT 0", "#define TD_INPUT_KEPT 1"))
    got = runs(broken)
    assert all(np.array_equal(g[0], w) for g, w in zip(got, want))  # the first inference reads the loaded input
    assert any(not np.array_equal(g[1], w) for g, w in zip(got, want))  # then it is gone


def test_depthwise_in_place_on_the_firmware(tf_models, tmp_path, tflm_dir, monkeypatch):
    """With tinydeploy's kernels the plan puts the MobileNetV2 block's depthwise output over its input (the node
    reads each group of channels whole before writing: analyze.requant.depthwise_in_place), 8 KB below the lower
    bound; the firmware built from it gives the host's outputs for the unplanned model on 20 random inputs. The same
    model on the host's TFLM, whose kernel writes an output while its input is still read, does not: the plan really
    overlaps them."""
    from conftest import run_cli

    from tinydeploy import tflm_host
    from tinydeploy.boards import load
    from tinydeploy.device.link import Link
    from tinydeploy.device.runner import infer_exact
    from tinydeploy.emulate.firmware import emulate_project
    from tinydeploy.emulate.qemu import QemuSession
    from tinydeploy.plan import deployed, lifetimes, live_bytes, planned_offsets
    from tinydeploy.tflite_model import TFLiteModel

    path = tf_models["mbv2_block"][0]
    model = TFLiteModel.from_file(path)
    mine, library = deployed(model), deployed(model, "offline", "cmsis-nn")
    p = mine.plan
    dw = next(op for op in mine.model.operators if op.opname == "DEPTHWISE_CONV_2D")
    assert p.in_place == ((dw.inputs[0], dw.outputs[0]),)
    offsets = planned_offsets(mine.model.data)
    assert offsets[dw.inputs[0]] == offsets[dw.outputs[0]]
    # the head: the most bytes live at an operator with the pair counted once (the project layer's, now), 8 KB below
    # the bound and the plan without it
    buffers = lifetimes(mine.model, keep_input=True)
    live = live_bytes(buffers, len(mine.model.operators))
    live[dw.index + 1] -= model.tensors[dw.outputs[0]].nbytes
    assert p.head_bytes == max(live) <= p.lower_bound_bytes - 8192 and library.plan.head_bytes == p.lower_bound_bytes
    shape = model.input_tensors[0].shape
    x = np.random.default_rng(7).integers(-128, 128, (20, *shape)).astype(np.int8)
    want = tflm_host.reference_outputs(deployed(model, "tflm").model.data, x).astype(np.int8)
    on_host = _tflm_run(mine.model.data, x, 1)
    assert any(not np.array_equal(o, w.reshape(o.shape)) for (o,), w in zip(on_host, want))
    # the host reference (golden vectors, emulate --accuracy) of the deployed model leaves the plan out: in segments
    # around its MEAN, and in one piece where there is no MEAN to cut at (the host's MEAN then, as the host's TFLM
    # computes it on the unplanned model)
    assert np.array_equal(tflm_host.reference_outputs(mine.model.data, x).astype(np.int8), want)
    monkeypatch.setattr(tflm_host, "int8_means", lambda m: [])
    plain = _tflm_run(deployed(model, "tflm").model.data, x, 1)
    whole = tflm_host.reference_outputs(mine.model.data, x).astype(np.int8)
    assert all(np.array_equal(w.reshape(o.shape), o) for w, (o,) in zip(whole, plain))
    project = tmp_path / "in_place"
    run_cli("build", path, "-o", project, "--no-compile", check=0, timeout=300)
    image, _ = emulate_project(project, tflm=str(tflm_dir), board=load("nano33ble"))
    with QemuSession(image.elf) as q, Link.open(url=q.url) as link:
        for xi, w in zip(x, want):
            got, _ = infer_exact(link, xi.reshape(-1))
            assert np.array_equal(np.asarray(got, np.int8).reshape(-1), w.reshape(-1))


def test_a_depthwise_node_in_place_that_needs_several_bands_is_refused(tmp_path, tflm_dir, monkeypatch):
    """A plan that put a depthwise output over its input where the planes take the map in several bands (a 40x40
    map: each band would overwrite input rows the next reads) would compute wrong outputs; the kernel refuses to run
    it, and the firmware reports the failed inference (the build never plans one: here its rule is forced)."""
    from conftest import emulate, random_int8_model

    from tinydeploy.analyze import requant
    from tinydeploy.boards import load
    from tinydeploy.deploy.pipeline import BuildRequest, build_project
    from tinydeploy.tflite_model import TFLiteModel

    def build(keras):
        return keras.Sequential([keras.layers.Input((40, 40, 8)), keras.layers.Conv2D(8, 1),
                                 keras.layers.DepthwiseConv2D(3, padding="same"), keras.layers.Conv2D(4, 1),
                                 keras.layers.GlobalAveragePooling2D(), keras.layers.Dense(3)])

    path = tmp_path / "dw40.tflite"
    path.write_bytes(random_int8_model(build, (40, 40, 8), seed=3, weight_std=0.3))
    model = TFLiteModel.from_file(path)
    dw = next(op for op in model.operators if op.opname == "DEPTHWISE_CONV_2D")
    assert requant.own_loops_take(model, dw) and not requant.depthwise_in_place(model, dw)
    monkeypatch.setattr(requant, "depthwise_in_place", lambda m, op: op.opname == "DEPTHWISE_CONV_2D")
    built = build_project(BuildRequest(path, load("nano33ble"), tmp_path / "forced"))
    assert len(built.deployed.plan.in_place) == 1
    r, _ = emulate(built.path, tflm_dir, "--runs", "1")
    assert r.returncode != 0 and "Node DEPTHWISE_CONV_2D (number 1) failed to invoke" in r.stderr, r.stderr


def _result(link):
    from tinydeploy.device.runner import _until_ready

    for ev in _until_ready(link, 30.0):
        if ev.kind == "record" and ev.record.type == "result":
            return np.array(ev.record.ints("out"), dtype=np.int8)
    raise AssertionError("no result record")


def test_a_small_head_leaves_room_for_the_nodes_prepare(tmp_path, tflm_dir):
    """A pointwise layer of 256 channels on a 1x1 map: its head is 1 KB, but preparing it takes the filter's and the
    bias's per-channel zero points as temporary int arrays (1 KB each, twice for the filter) in the arena's free space.
    The default arena and the measured one leave room for that (lifetimes.prepare_bytes): the firmware starts and its
    outputs are the host's; an arena sized for the head and the tail alone does not start (the test sees what it
    guards against)."""
    import re

    from conftest import emulate, random_int8_model, run_cli

    def build(keras):
        return keras.Sequential([keras.layers.Input((1, 1, 256)), keras.layers.Conv2D(256, 1, activation="relu6")])

    path = tmp_path / "pw256.tflite"
    path.write_bytes(random_int8_model(build, (1, 1, 256), seed=6, weight_std=0.2))
    for arena in ("host", "measured"):
        project = tmp_path / arena
        run_cli("build", path, "-o", project, "--no-compile", "--arena", arena, check=0, timeout=600)
        r, d = emulate(project, tflm_dir, "--runs", "1")
        assert r.returncode == 0, r.stderr
        assert d["golden"] and all(g["pass"] for g in d["golden"])
    # the same firmware with the arena the head and the tail alone need (what the device reports using) + 256 B
    cfg = project / "src" / "model_config.h"
    used = d["memory"]["arena_used_bytes"]
    cfg.write_text(re.sub(r"#define TD_ARENA_BYTES \d+u", f"#define TD_ARENA_BYTES {used + 256}u", cfg.read_text()))
    r, d = emulate(project, tflm_dir, "--runs", "1")
    assert r.returncode != 0 and "temp" in r.stderr, r.stderr
