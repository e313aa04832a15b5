"""Shared builtin data (firmware/td_builtin_data.h, with the offline plan): nodes whose parsed options are equal share
one struct in the arena. The facts analyze counts it with (tflm_runtime.json's shared_builtin_data) against the pinned
library's headers and the firmware's own list; on the emulated Cortex-M4, a model with repeated layers saves at
least what analyze counts and its outputs stay the host's; a firmware that shared structs which differ is caught."""

from __future__ import annotations

import json
import re
import shutil


from conftest import ROOT, arm_syntax_check, emulate, random_int8_model, run_cli, sizes_source

SOURCE = ROOT / "firmware" / "td_builtin_data.cpp"


def _facts() -> dict:
    runtime = json.loads((ROOT / "host" / "tinydeploy" / "analyze" / "tflm_runtime.json").read_text())
    return runtime["shared_builtin_data"]


def test_struct_sizes_are_the_pinned_librarys(tflm_dir, tmp_path):
    facts = _facts()
    src = sizes_source(tmp_path, "tensorflow/lite/core/c/builtin_op_data.h",
                       {facts["structs"][op]: n for op, n in facts["struct_bytes"].items()})
    r = arm_syntax_check(tflm_dir, src)
    assert r.returncode == 0, r.stderr
    # the check itself fails on a wrong size
    src.write_text(src.read_text().replace("== 24,", "== 28,"))
    assert arm_syntax_check(tflm_dir, src).returncode != 0


def test_the_shared_ops_are_the_firmwares():
    text = SOURCE.read_text()
    body = text[text.index("kReadOnly[] = {"):text.index("};", text.index("kReadOnly[] = {"))]
    assert re.findall(r"BuiltinOperator_(\w+)", body) == _facts()["ops"]
    assert set(_facts()["struct_bytes"]) <= set(_facts()["ops"])


def _repeated_model(keras):
    """A small net whose convolutions and depthwise convolutions repeat their options, beside ones that differ."""
    L = keras.layers
    layers = [L.Input((24, 24, 3)), L.Conv2D(8, 3, strides=2, padding="same", activation="relu")]
    for _ in range(6):
        layers += [L.DepthwiseConv2D(3, padding="same", activation="relu"), L.Conv2D(8, 1, activation="relu")]
    layers += [L.DepthwiseConv2D(3, strides=2, padding="same", activation="relu"), L.Conv2D(16, 1),
               L.GlobalAveragePooling2D(), L.Dense(4, activation="softmax")]
    return keras.Sequential(layers)


def _arena_used(project, tflm_dir):
    r, d = emulate(project, tflm_dir, "--runs", "1")
    assert r.returncode == 0, r.stderr
    assert d["golden"] and all(g["pass"] for g in d["golden"]), d["golden"]
    return d["memory"]["arena_used_bytes"]


def test_shared_structs_save_what_analyze_counts_and_outputs_stay_the_hosts(tflm_dir, tmp_path):
    from tinydeploy.analyze import shared_builtin_bytes
    from tinydeploy.tflite_model import TFLiteModel

    model = tmp_path / "repeated.tflite"
    model.write_bytes(random_int8_model(_repeated_model, (24, 24, 3), seed=5, weight_std=0.3))
    project = tmp_path / "shared"
    run_cli("build", model, "--board", "nano33ble", "-o", project, "--no-compile", check=0)
    config = project / "src" / "model_config.h"
    assert "#define TD_SHARE_BUILTIN_DATA 1" in config.read_text()
    counted = shared_builtin_bytes(TFLiteModel.from_file(project / "model.tflite"))
    assert counted > 100  # 6 + 1 depthwise, 1 + 6 + 1 convolutions: ten repeats of a 24-28 B struct, 8 headers more
    shared = _arena_used(project, tflm_dir)

    apart = tmp_path / "apart"
    shutil.copytree(project, apart)
    cfg = apart / "src" / "model_config.h"
    cfg.write_text(cfg.read_text().replace("#define TD_SHARE_BUILTIN_DATA 1", "#define TD_SHARE_BUILTIN_DATA 0"))
    own = _arena_used(apart, tflm_dir)
    # analyze's count is a floor of the saving (its other ops counted as headers only), up to 16 B of alignment
    assert own - shared >= counted - 16, (own, shared, counted)

    # a firmware that took structs of the same op and size whatever their bytes gives the stride-1 depthwise
    # convolutions the stride-2 one's options (or the reverse): its outputs are not the host's, or it does not start;
    # so for the structs in flash (kFlashBuiltinData), and for those shared in the arena (with the flash table empty)
    for name, good, bad, empty in (
            ("flash", "f->size == size && memcmp(f->data, *builtin_data, size) == 0", "f->size == size", False),
            ("arena", "s->size == size && memcmp(s->bytes(), *builtin_data, size) == 0", "s->size == size", True)):
        broken = tmp_path / f"broken-{name}"
        shutil.copytree(project, broken)
        src = broken / "src" / "td_builtin_data.cpp"
        text = src.read_text()
        assert good in text
        src.write_text(text.replace(good, bad))
        if empty:
            params = broken / "src" / "model_params.cpp"
            table = params.read_text()
            start = table.index("const FlashBuiltin kFlashBuiltinData[] = {\n")
            end = table.index("    {-1, nullptr, 0},", start)
            params.write_text(table[:start] + "const FlashBuiltin kFlashBuiltinData[] = {\n" + table[end:])
        r, d = emulate(broken, tflm_dir, "--runs", "1")
        assert r.returncode != 0 or not all(g["pass"] for g in d["golden"]), (name, d and d["golden"])
