"""The interpreter's own structures (tflm_runtime.json's interpreter_structs): their sizes on the device, compiled with
the board's flags against the pinned library's headers, and on the host, as the tflite-micro wheel's recording
allocator reports them; analyze.device_arena scales the host's figures by the two."""

from __future__ import annotations

import json

from conftest import EXAMPLE, ROOT, arm_syntax_check, sizes_source


def _runtime() -> dict:
    return json.loads((ROOT / "host" / "tinydeploy" / "analyze" / "tflm_runtime.json").read_text())


def _facts() -> dict:
    return _runtime()["interpreter_structs"]


def test_device_sizes_are_the_pinned_librarys_as_the_board_compiles_it(tflm_dir, tmp_path):
    facts = _facts()
    src = sizes_source(tmp_path, "tensorflow/lite/micro/micro_allocator.h",
                       {facts["types"][k]: n for k, n in facts["device_bytes"].items()})
    defines = [f"-D{d}" for d in _runtime()["defines"]]  # a generated project's build_flags
    assert "-DTF_LITE_STATIC_MEMORY" in defines
    r = arm_syntax_check(tflm_dir, src, defines)
    assert r.returncode == 0, r.stderr
    # the check fails where the sizes are not these: without TF_LITE_STATIC_MEMORY (the Arduino core's flags alone)
    assert arm_syntax_check(tflm_dir, src).returncode != 0


def test_the_host_recording_counts_each_structure_at_the_host_size_and_scales_it_to_the_devices():
    from tinydeploy import tflm_host
    from tinydeploy.analyze import device_arena
    from tinydeploy.analyze.runtime import pinned
    from tinydeploy.tflite_model import TFLiteModel

    facts = _facts()
    model = TFLiteModel.from_file(EXAMPLE)
    rec = device_arena(tflm_host.record_arena(model.data), pinned())
    counts = {"TfLiteEvalTensor": len(model.tensors), "NodeAndRegistration": len(model.operators),
              "TfLiteTensor": len(model.inputs) + len(model.outputs)}
    for key, host in tflm_host.HOST_BYTES.items():
        c = rec["categories"][facts["recorded_as"][key]]
        assert c["allocations"] == counts[key], key
        assert c["bytes_host"] == c["allocations"] * host, key
        assert c["bytes_32bit"] == c["allocations"] * facts["device_bytes"][key], key
