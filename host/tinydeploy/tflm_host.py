"""The real TFLM interpreter on the host (PyPI ``tflite-micro``), run in a child process.

Why a child process: the interpreter is C++ and trusts the flatbuffer; a corrupt model could crash
it. In a child, a crash becomes a clear error instead of killing tinydeploy. It also lets us read
the recording allocator's report, which the C++ side prints to its own stderr.

Two services: ``record_arena`` (the RecordingMicroAllocator's figures) and ``reference_outputs``
(int8 outputs for given int8 inputs, the device's expected results).
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

from .errors import ModelError

_CHILD = r"""
import json, os, sys
import numpy as np
from tflite_micro.python.tflite_micro import runtime
req = json.load(open(sys.argv[1]))
interp = runtime.Interpreter.from_file(req["model"], arena_size=req["arena_size"])
out = {"outputs": []}
if req.get("inputs"):
    arr = np.load(req["inputs"])
    det = interp.get_input_details(0)
    for x in arr:
        interp.set_input(x.reshape(det["shape"]).astype(det["dtype"]), 0)
        interp.invoke()
        out["outputs"].append(interp.get_output(0).reshape(-1).tolist())
with open(req["result"], "w") as f:
    json.dump(out, f)
sys.stdout.flush()
if req.get("record"):
    interp.print_allocations()   # TFLM's MicroPrintf writes to stderr, which the parent captures
"""

_LINE = re.compile(r"'(?P<what>[^']+)' used (?P<used>\d+) bytes with alignment overhead \(requested (?P<req>\d+) bytes for (?P<n>\d+)")
_TOTAL = re.compile(r"Arena allocation (?P<k>total|head|tail) (?P<v>\d+) bytes")

# Bytes per allocation of the pointer-holding structures that the recording allocator reports,
# on the 64-bit host and on the 32-bit Cortex-M4. Derived from the struct layouts in TFLM's
# tensorflow/lite/c/common.h (TF_LITE_STATIC_MEMORY) and micro_allocator.h:
#   TfLiteEvalTensor {void* data; TfLiteIntArray* dims; TfLiteType type}       24 -> 12
#   TfLiteTensor (static memory: type, data, dims, params, allocation_type, bytes,
#                 is_variable, quantization{type, params*})                     64 -> 40
#   NodeAndRegistration {TfLiteNode (4 pointers + builtin/user data pointers),
#                        const TfLiteRegistration*}                            64 -> 32 (pointer-dominated: half)
#   'Persistent TfLiteTensor quantization data' (TfLiteAffineQuantization: two
#    pointers and an int, plus int/float arrays)                              ratio 0.5 (pointer-dominated)
# Everything else (activations in the head, kernels' persistent op data made of int32
# multipliers and shifts, unlisted tail bytes) is counted unchanged, which overestimates slightly.
_RATIO_32_64 = {
    "TfLiteEvalTensor data": 12 / 24,
    "Persistent TfLiteTensor data": 40 / 64,
    "NodeAndRegistration struct": 32 / 64,
    "Persistent TfLiteTensor quantization data": 0.5,
}

CORRECTION_METHOD = (
    "host TFLM (64-bit) recording allocator figures; the pointer-holding structures it lists "
    "(TfLiteEvalTensor 24->12 B, TfLiteTensor 64->40 B, NodeAndRegistration 64->32 B, quantization "
    "structs x0.5) are scaled to their 32-bit sizes; activations and op data are kept as measured"
)


def _run_child(model_bytes: bytes, *, inputs: np.ndarray | None, record: bool, arena_size: int, timeout: float):
    with tempfile.TemporaryDirectory(prefix="tinydeploy-tflm-") as tmp:
        tmp = Path(tmp)
        (tmp / "model.tflite").write_bytes(model_bytes)
        req = {"model": str(tmp / "model.tflite"), "arena_size": int(arena_size), "record": record,
               "result": str(tmp / "result.json"), "inputs": None}
        if inputs is not None:
            np.save(tmp / "inputs.npy", inputs)
            req["inputs"] = str(tmp / "inputs.npy")
        (tmp / "req.json").write_text(json.dumps(req))
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3")
        try:
            proc = subprocess.run([sys.executable, "-c", _CHILD, str(tmp / "req.json")], capture_output=True,
                                  text=True, timeout=timeout, env=env)
        except subprocess.TimeoutExpired:
            raise ModelError(f"the TFLM host interpreter took longer than {timeout:.0f} s on this model",
                             "Check the model, or pass --no-arena to skip the measurement") from None
        if proc.returncode != 0 or not (tmp / "result.json").exists():
            last = (proc.stderr.strip().splitlines() or [f"exit code {proc.returncode}"])[-1]
            if proc.returncode < 0:
                last = f"crashed with signal {-proc.returncode}"
            raise ModelError(f"the TFLM host interpreter could not run this model ({last[:200]})",
                             "The model is corrupt or uses something TFLM does not support; re-export it with `tinydeploy compress`")
        return json.loads((tmp / "result.json").read_text()), proc.stderr


_ARENA_MEMO: dict[str, dict] = {}  # sha256 of a model -> its figures: a process measures each model once


def record_arena(model_bytes: bytes, *, arena_size: int | None = None, timeout: float = 120.0) -> dict:
    """Run the model once through TFLM's recording allocator; return host and 32-bit arena figures (remembered
    for the process, so that the stages of one run that analyze the same model start one interpreter for it)."""
    import copy
    import hashlib

    key = hashlib.sha256(model_bytes).hexdigest()
    if key not in _ARENA_MEMO:
        _ARENA_MEMO[key] = _record_arena(model_bytes, arena_size=arena_size, timeout=timeout)
    return copy.deepcopy(_ARENA_MEMO[key])


def _record_arena(model_bytes: bytes, *, arena_size: int | None, timeout: float) -> dict:
    arena_size = arena_size or max(len(model_bytes) * 4, 64 << 20)
    _, log = _run_child(model_bytes, inputs=None, record=True, arena_size=arena_size, timeout=timeout)
    totals = {m["k"]: int(m["v"]) for m in _TOTAL.finditer(log)}
    if "total" not in totals:
        raise ModelError("the TFLM host interpreter printed no arena figures",
                         "Check that the tflite-micro package is installed (pip install -e .)")
    categories = {}
    saved = 0.0
    for m in _LINE.finditer(log):
        used, n = int(m["used"]), int(m["n"])
        ratio = _RATIO_32_64.get(m["what"], 1.0)
        categories[m["what"]] = {"bytes_host": used, "allocations": n, "ratio_32bit": ratio,
                                 "bytes_32bit": int(round(used * ratio))}
        saved += used - used * ratio
    device = int(totals["total"] - round(saved))
    return {
        "host_total_bytes": totals["total"],
        "host_head_bytes": totals.get("head"),
        "host_tail_bytes": totals.get("tail"),
        "categories": categories,
        "device_bytes": device,
        "method": CORRECTION_METHOD,
    }


def reference_outputs(model_bytes: bytes, inputs: np.ndarray, *, timeout: float = 120.0) -> np.ndarray:
    """The outputs of the real TFLM interpreter for each input (first input/output tensor)."""
    result, _ = _run_child(model_bytes, inputs=inputs, record=False,
                           arena_size=max(len(model_bytes) * 4, 64 << 20), timeout=timeout)
    return np.asarray(result["outputs"])
