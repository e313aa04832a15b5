"""Per-channel requantization parameters in flash (`build --kernels tinydeploy`): the build's multipliers and shifts
(host/tinydeploy/analyze/requant.py) against TFLM's own QuantizeMultiplier compiled from the pinned library, on
rounding ties and edges where a plausible reimplementation goes wrong; on the emulated Cortex-M4, the arena of a
model whose parameters are in flash is smaller than the library kernels' by at least those parameters, its outputs
are the host's, and a project whose parameters do not belong to its model refuses to start (one line, the channel)."""

from __future__ import annotations

import json
import math
import shutil
import subprocess

import numpy as np
import pytest

from conftest import ROOT, run_cli

EXAMPLE = ROOT / "host" / "tinydeploy" / "examples" / "fashion_cnn_int8.tflite"


def _tflm_quantize_multiplier(tflm_dir, tmp_path, values):
    if shutil.which("g++") is None:
        pytest.fail("g++ is required (apt-get install g++)")
    src = tflm_dir / "src"
    exe = tmp_path / "qm"
    subprocess.run(["g++", "-std=c++17", "-O1", f"-I{src}", f"-I{src / 'third_party' / 'gemmlowp'}",
                    str(ROOT / "tests" / "native" / "quantize_multiplier_main.cpp"),
                    str(src / "tensorflow" / "lite" / "kernels" / "internal" / "quantization_util.cpp"), "-o", str(exe)],
                   check=True, capture_output=True, text=True)
    r = subprocess.run([str(exe)], input="".join(f"{float(v).hex()}\n" for v in values), capture_output=True,
                       text=True, check=True, timeout=60)
    return [tuple(int(t) for t in line.split()) for line in r.stdout.splitlines()]


def _values():
    rng = np.random.default_rng(7)
    f32 = lambda a: a.astype(np.float32).astype(np.float64)  # noqa: E731  (scales are float32 in a .tflite)
    # real multipliers as models make them: input_scale * filter_scale / output_scale, each a float32
    real = list(f32(rng.uniform(1e-3, 0.1, 3000)) * f32(rng.lognormal(-6, 2, 3000)) / f32(rng.uniform(1e-3, 0.2, 3000)))
    ties = []  # q * 2^31 exactly k + 1/2: half away from zero (std::round), not half to even
    for k in [2**30, 2**30 + 1, 2**30 + 2, 1717986918, 2**31 - 2, 2**31 - 1]:
        for e in (-20, -5, 0, 3):
            ties.append(math.ldexp(k + 0.5, e - 31))
    edges = [0.0, 1.0, 0.5, 2.0**-31, 2.0**-32, 2.0**-33, 0.75 * 2.0**-31, 1.0 - 2.0**-33, 1.0 - 2.0**-32,
             math.ldexp(2**31 - 0.5, -31), 1e-12, 3.0, 1e3, 2.0**30]
    return real, ties, edges


def test_build_multipliers_equal_tflms_quantize_multiplier(tflm_dir, tmp_path):
    from tinydeploy.analyze.requant import quantize_multiplier

    real, ties, edges = _values()
    values = real + ties + edges
    want = _tflm_quantize_multiplier(tflm_dir, tmp_path, values)
    got = [quantize_multiplier(v) for v in values]
    diff = [(v, g, w) for v, g, w in zip(values, got, want) if g != w]
    assert not diff, f"{len(diff)} of {len(values)} differ, first: {diff[0]}"
    # the cases can fail an implementation: Python's round (half to even) instead of TFLM's differs on the ties
    def half_even(x):
        q, shift = math.frexp(x)
        return round(q * (1 << 31)), shift
    tie_want = want[len(real):len(real) + len(ties)]
    assert any(half_even(v) != w for v, w in zip(ties, tie_want))


def test_the_shortcut_range_holds_exactly_inside_its_bounds():
    """analyze/requant.py's shortcut_range at the edges of td_kernel_util.h's bounds: a right shift of 1 to 23, a
    multiplier >= 0, |bias| + 255 * 128 * products < 2^29, the output zero point in [-128, 128]; the range from the
    first channel beyond them to one past the last."""
    from tinydeploy.analyze.requant import shortcut_range

    room = (1 << 29) - 255 * 128 * 9
    ok = dict(multipliers=[1 << 30], shifts=[-1], biases=[room - 1], products=9, output_zp=128)
    assert shortcut_range(**ok) == (0, 0)
    assert shortcut_range(**{**ok, "biases": [-(room - 1)], "shifts": [-23], "output_zp": -128}) == (0, 0)
    for change in ({"biases": [room]}, {"biases": [-room]}, {"shifts": [0]}, {"shifts": [-24]}, {"shifts": [1]},
                   {"multipliers": [-1]}, {"output_zp": 129}, {"output_zp": -129}, {"products": 1 << 15}):
        assert shortcut_range(**{**ok, **change}) == (0, 1), change
    # one channel outside among others: the range is that channel; two: from the first to one past the last
    assert shortcut_range([1 << 30] * 5, [-1, -24, -1, -1, -1], [0] * 5, 9, 0) == (1, 2)
    assert shortcut_range([1 << 30] * 5, [-1, -24, -1, -1, -1], [0, 0, 0, room, 0], 9, 0) == (1, 4)
    # the zero point outside its range puts every channel in it
    assert shortcut_range([1 << 30] * 5, [-1] * 5, [0] * 5, 9, 129) == (0, 5)


@pytest.fixture(scope="module")
def example_builds(tmp_path_factory):
    d = tmp_path_factory.mktemp("flash")
    out = {}
    for kernels in ("tinydeploy", "cmsis-nn"):
        out[kernels] = d / kernels
        run_cli("build", EXAMPLE, "-o", out[kernels], "--no-compile", "--kernels", kernels, check=0)
    return out


def _emulate(project, tflm_dir):
    r = run_cli("emulate", project, "--tflm", tflm_dir, "--runs", "1", "--json", "-", timeout=600)
    return r, (json.loads(r.stdout) if r.stdout.strip().startswith("{") else None)


def test_parameters_in_flash_leave_the_arena_and_outputs_stay_the_hosts(example_builds, tflm_dir):
    from tinydeploy.analyze.requant import OP_DATA_CONV_BYTES, channel_params, own_loops_take, params_bytes
    from tinydeploy.tflite_model import TFLiteModel

    model = TFLiteModel.from_file(example_builds["tinydeploy"] / "model.tflite")
    params = channel_params(model)
    text = (example_builds["tinydeploy"] / "src" / "model_params.cpp").read_text()
    assert len(params) >= 2 and all(f"{{{p.output_tensor}, {p.channels}, " in text for p in params)
    assert "{-1, 0, nullptr, nullptr, {}}" in (example_builds["cmsis-nn"] / "src" / "model_params.cpp").read_text()
    used = {}
    for kernels, project in example_builds.items():
        r, d = _emulate(project, tflm_dir)
        assert r.returncode == 0, r.stderr
        assert d["golden"] and all(g["pass"] for g in d["golden"])
        used[kernels] = d["memory"]["arena_used_bytes"]
    # the library's kernels keep 2 x 4 B a channel (16-byte aligned) and op data per node; tinydeploy's loops keep
    # neither (the op data in flash); the nodes the CMSIS-NN function runs keep op data no larger than the library's
    own = [p for p in params if own_loops_take(model, model.operators[p.operator])]
    assert own and f"OwnLoopsOpData({', '.join(map(str, own[0].padding))}, " in text
    assert used["tinydeploy"] <= used["cmsis-nn"] - params_bytes(params) - OP_DATA_CONV_BYTES * len(own), used


def test_parameters_of_another_model_refuse_to_start(example_builds, tflm_dir, tmp_path):
    project = tmp_path / "wrong"
    shutil.copytree(example_builds["tinydeploy"], project)
    src = project / "src" / "model_params.cpp"
    text = src.read_text()
    first = text.index("kMultiplier0[")
    start = text.index("    ", first) + 4
    end = text.index(",", start)
    value = int(text[start:end])
    src.write_text(text[:start] + str(value + 1) + text[end:])  # one channel's multiplier off by one
    r, _ = _emulate(project, tflm_dir)
    assert r.returncode == 3 and "AllocateTensors() failed" in r.stderr, r.stderr
    assert "channel 0: multiplier/shift in flash" in r.stderr and "rebuild it" in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr


@pytest.mark.parametrize("field", ["activation maximum", "shortcut range"])
def test_op_data_of_another_model_refuses_to_start(example_builds, tflm_dir, tmp_path, field):
    """The op data in flash (padding, zero points, activation range, the channels that may fall outside the
    requantization's shortcut) is checked against what TFLM's Prepare and the firmware's FindShortcutRange compute on
    the device: one node's activation maximum off by one, or its range's end, stops AllocateTensors() with one line."""
    project = tmp_path / "wrong_op"
    shutil.copytree(example_builds["tinydeploy"], project)
    src = project / "src" / "model_params.cpp"
    text = src.read_text()
    call = text.index("OwnLoopsOpData(")
    end = text.index(")", call)
    args = text[call + len("OwnLoopsOpData("):end].split(", ")
    if field == "shortcut range":
        assert args[-2:] == ["0", "0"]  # the example's channels all take the shortcut
        args[-1] = "1"
    else:
        args[-3] = str(int(args[-3]) - 1)
    src.write_text(text[:call] + "OwnLoopsOpData(" + ", ".join(args) + text[end:])
    r, _ = _emulate(project, tflm_dir)
    assert r.returncode == 3 and "AllocateTensors() failed" in r.stderr, r.stderr
    assert "op data in flash differs from TFLM's Prepare" in r.stderr and "rebuild it" in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "Traceback" not in r.stderr


def test_the_cmsis_function_no_node_needs_is_not_linked(example_builds, tflm_dir, tmp_path):
    """Every CONV_2D node of the example runs tinydeploy's loops, so its project builds with -DTD_CMSIS_CONV=0, and
    the firmware is smaller than the same project with the CMSIS-NN convolution linked, by at least that function's
    own code (arm_convolve_wrapper_s8 and arm_convolve_s8 are in the one and not the other)."""
    from tinydeploy.boards import load
    from tinydeploy.emulate.firmware import build_firmware
    from tinydeploy.emulate.tflm_library import TflmLibrary

    ini = example_builds["tinydeploy"] / "platformio.ini"
    assert "    -DTD_CMSIS_CONV=0\n" in ini.read_text() and "TD_CMSIS_DEPTHWISE" not in ini.read_text()
    linked = tmp_path / "linked"
    shutil.copytree(example_builds["tinydeploy"], linked)
    (linked / "platformio.ini").write_text(ini.read_text().replace("    -DTD_CMSIS_CONV=0\n", ""))
    board, lib = load("nano33ble"), TflmLibrary.locate(str(tflm_dir))
    images = {k: build_firmware(p, lib, board, out_dir=tmp_path / f"e-{k}")
              for k, p in (("left_out", example_builds["tinydeploy"]), ("linked", linked))}
    symbols = {k: subprocess.run(["arm-none-eabi-nm", str(im.elf)], check=True, capture_output=True, text=True).stdout
               for k, im in images.items()}
    for fn in ("arm_convolve_wrapper_s8", "arm_convolve_s8"):
        assert f" {fn}\n" in symbols["linked"] and f" {fn}\n" not in symbols["left_out"], fn
    assert images["left_out"].text_bytes < images["linked"].text_bytes
