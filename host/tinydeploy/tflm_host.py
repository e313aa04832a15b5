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
if req.get("inputs"):  # one array per input of the model, samples first: npz arrays "0", "1", ...
    arrs = np.load(req["inputs"])
    ins = [arrs[str(k)] for k in range(len(arrs.files))]
    for i in range(len(ins[0])):
        for k, a in enumerate(ins):
            det = interp.get_input_details(k)
            interp.set_input(a[i].reshape(det["shape"]).astype(det["dtype"]), k)
        interp.invoke()
        out["outputs"].append([interp.get_output(k).reshape(-1).tolist() for k in range(req["n_outputs"])])
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


def _arena_size(model_bytes: bytes) -> int:
    """Room enough for any model the host runs: four times its bytes, at least 64 MB."""
    return max(len(model_bytes) * 4, 64 << 20)


def _run_child(model_bytes: bytes, *, inputs: list[np.ndarray] | None, record: bool, arena_size: int, timeout: float,
               n_outputs: int = 1):
    with tempfile.TemporaryDirectory(prefix="tinydeploy-tflm-") as tmp:
        tmp = Path(tmp)
        (tmp / "model.tflite").write_bytes(model_bytes)
        req = {"model": str(tmp / "model.tflite"), "arena_size": int(arena_size), "record": record,
               "result": str(tmp / "result.json"), "inputs": None, "n_outputs": n_outputs}
        if inputs is not None:
            np.savez(tmp / "inputs.npz", **{str(k): a for k, a in enumerate(inputs)})
            req["inputs"] = str(tmp / "inputs.npz")
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
    arena_size = arena_size or _arena_size(model_bytes)
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
    """The outputs of the real TFLM interpreter for each input (first input/output tensor), as the pinned library
    computes them: where the host's TFLM and the pinned one are known to differ (int8 MEAN: int8_means), the model
    runs on the host in segments between those nodes, and each such node is computed as the pinned library does
    (pinned_mean)."""
    from .lifetimes import METADATA_NAME
    from .tflite_model import TFLiteModel

    model = TFLiteModel.from_bytes(model_bytes)
    means = int8_means(model)
    if means:
        return _segmented_outputs(model, means, inputs, timeout)
    if METADATA_NAME in model.metadata:  # planned by tinydeploy: the host's kernels run no node in place
        model_bytes = _without_plan(model_bytes)
    return host_outputs(model_bytes, [inputs], 1, timeout)[0]


def host_outputs(model_bytes: bytes, inputs: list[np.ndarray], n_outputs: int, timeout: float) -> list[np.ndarray]:
    """The host's TFLM on the model as it is: its first n_outputs outputs (each samples x values) for inputs (an array
    per input of the model, samples first)."""
    result, _ = _run_child(model_bytes, inputs=inputs, record=False, arena_size=_arena_size(model_bytes),
                           timeout=timeout, n_outputs=n_outputs)
    return [np.asarray([o[k] for o in result["outputs"]]) for k in range(n_outputs)]


def _without_plan(model_bytes: bytes) -> bytes:
    """The model without its offline memory plan: tinydeploy's may put a depthwise node's output over its input
    (plan.in_place_pairs), which tinydeploy's kernels run right and TFLM's do not; the outputs of a model do not depend
    on where its tensors are."""
    from .lifetimes import METADATA_NAME
    from .tflite_edit import Editor

    ed = Editor(model_bytes)
    ed.drop_metadata(METADATA_NAME)
    return ed.pack()


def int8_means(model) -> list:
    """The int8 MEAN nodes, whose arithmetic the host's current TFLM and the pinned one do not share: the pinned
    library (kernels/internal/reference/reduce.h) divides the sum toward zero where input and output share scale and
    zero point (reference_ops::Mean, static_cast<T>(temp_sum / n)) and else computes in float32
    (QuantizedMeanOrSum: round(sum / n * (s_in / s_out) - zp_in * (s_in / s_out)) + zp_out), where the host's rounds
    and uses integer multipliers; the study's QAT MobileNetV1 on HAM10000 came out 2 off."""
    return [op for op in model.operators if op.opname == "MEAN" and len(op.inputs) >= 2
            and model.tensors[op.inputs[0]].dtype == model.tensors[op.outputs[0]].dtype == "INT8"]


def fma_f32(a: np.ndarray, b: np.float32, c: np.float32) -> np.ndarray:
    """a * b + c for float32 a, b, c with one rounding to float32 (ties to even), as VFMA.F32 computes it: the
    product is exact in float64 (24 + 24 bits), the sum rounds once there (its error found exactly by TwoSum), and
    rounding that to float32 is right except where the float64 sum lies exactly halfway between two float32 values,
    where the error's sign decides."""
    p = np.asarray(a, np.float32).astype(np.float64) * np.float64(b)
    c64 = np.float64(c)
    t = p + c64
    bb = t - p
    err = (p - (t - bb)) + (c64 - bb)  # p + c == t + err exactly
    f = t.astype(np.float32)
    up = np.nextafter(f, np.float32(np.inf)).astype(np.float64)
    down = np.nextafter(f, np.float32(-np.inf)).astype(np.float64)
    f64 = f.astype(np.float64)
    above, below = t == (f64 + up) / 2, t == (f64 + down) / 2  # t a midpoint, rounded to even (f)
    f = np.where(above & (err > 0), up, np.where(below & (err < 0), down, f64)).astype(np.float32)
    return f


def pinned_mean(model, op, x: np.ndarray) -> np.ndarray:
    """The pinned TFLM's int8 MEAN of x (samples, *input shape), shaped as the output tensor: the int8 values summed
    over the axes, then either divided toward zero (same quantization in and out) or, in float32 as the board's
    compiler makes it (GCC contracts `mean * scale + bias` into one VFMA.F32 on the Cortex-M4F: td_kernel_mean.cpp's
    Output compiles to the same), round(fma(sum / n, scale, bias)) + zp_out, clamped (std::round: halves away from
    zero)."""
    xt, yt = model.tensors[op.inputs[0]], model.tensors[op.outputs[0]]
    rank = len(xt.shape)
    axes = sorted({int(a) % rank for a in np.frombuffer(model.tensors[op.inputs[1]].data, "<i4")})
    s = x.astype(np.int64).sum(axis=tuple(1 + a for a in axes)).reshape(len(x), -1)
    n = int(np.prod([x.shape[1 + a] for a in axes]))
    (s_in,), (z_in,) = xt.quantization.scales, xt.quantization.zero_points
    (s_out,), (z_out,) = yt.quantization.scales, yt.quantization.zero_points
    if s_in == s_out and z_in == z_out:
        q = np.sign(s) * (np.abs(s) // n)  # C's division of int32s: toward zero
    else:
        scale = np.float32(s_in) / np.float32(s_out)
        bias = np.float32(-z_in) * scale
        r = fma_f32(s.astype(np.float32) / np.float32(n), scale, bias).astype(np.float64)
        q = np.clip(np.sign(r) * np.floor(np.abs(r) + 0.5) + z_out, -128, 127)
    return q.astype(np.int8).reshape((len(x), *yt.shape))


def _segmented_outputs(model, means: list, inputs: np.ndarray, timeout: float) -> np.ndarray:
    """The model's first output for each input: the operators between the int8 MEAN nodes run on the host's TFLM
    as models of their own (the tensors they read from before as their inputs, those read after as their outputs),
    each MEAN by pinned_mean."""
    from .tflite_edit import Editor

    values = {model.inputs[0]: np.asarray(inputs)}
    cuts = [op.index for op in means]
    start = 0
    for end in [*cuts, len(model.operators)]:
        ops = model.operators[start:end]
        if ops:
            produced = {t for op in ops for t in op.outputs}
            reads = [t for op in ops for t in op.inputs
                     if t >= 0 and t not in produced and not model.tensors[t].is_constant]
            seg_in = list(dict.fromkeys(reads))
            later = {t for op in model.operators[end:] for t in op.inputs} | set(model.outputs)
            seg_out = [t for op in ops for t in op.outputs if t in later]
            ed = Editor(model.data)
            ed.g.operators = ed.g.operators[start:end]
            ed.g.inputs = np.asarray(seg_in, np.int32)
            ed.g.outputs = np.asarray(seg_out, np.int32)
            ed.m.metadata = None  # an offline plan of the whole model (and maybe nodes in place)
            outs = host_outputs(ed.pack(), [values[t] for t in seg_in], len(seg_out), timeout)
            for t, o in zip(seg_out, outs):
                values[t] = o.reshape((len(inputs), *model.tensors[t].shape))
        if end < len(model.operators):
            op = model.operators[end]
            values[op.outputs[0]] = pinned_mean(model, op, values[op.inputs[0]])
        start = end + 1
    return values[model.outputs[0]].reshape(len(inputs), -1)
