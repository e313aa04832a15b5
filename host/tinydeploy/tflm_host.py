"""The real TFLM interpreter on the host (PyPI ``tflite-micro``), run in a child process.

Why a child process: the interpreter is C++ and trusts the flatbuffer; a corrupt model could crash
it. In a child, a crash becomes a clear error instead of killing tinydeploy. It also lets us read
the recording allocator's report, which the C++ side prints to its own stderr.

Two services: ``record_arena`` (the RecordingMicroAllocator's figures, as the host counts them) and ``reference_outputs``
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

# Bytes per allocation of the interpreter's structures as the recording allocator lists them on the host (the
# tflite-micro wheel: 64-bit, built with TF_LITE_STATIC_MEMORY; tests/test_interpreter_structs.py checks them against
# its report). analyze scales them to the device's (tflm_runtime.json's interpreter_structs).
HOST_BYTES = {"TfLiteEvalTensor": 24, "TfLiteTensor": 64, "NodeAndRegistration": 64}


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
    categories = {m["what"]: {"bytes_host": int(m["used"]), "allocations": int(m["n"])} for m in _LINE.finditer(log)}
    return {
        "host_total_bytes": totals["total"],
        "host_head_bytes": totals.get("head"),
        "host_tail_bytes": totals.get("tail"),
        "categories": categories,
    }


def reference_outputs(model_bytes: bytes, inputs: np.ndarray, *, timeout: float = 120.0) -> np.ndarray:
    """The outputs of the real TFLM interpreter for each input (first input/output tensor)."""
    result, _ = _run_child(model_bytes, inputs=inputs, record=False,
                           arena_size=max(len(model_bytes) * 4, 64 << 20), timeout=timeout)
    return np.asarray(result["outputs"])
