"""Streaming inputs to the firmware the way the MLPerf Tiny runner does (``db load N%``, then
``db HEX%`` in 31-byte chunks), then either the runner's ``infer 1 0%`` (dequantized scores in an
``m-results-[...]`` line) or tinydeploy's ``td-infer%`` (the raw int8 outputs and the counter's reading,
in a checksummed ``result`` record). The standard EEMBC/MLPerf runner can drive the same firmware."""

from __future__ import annotations

import re

import numpy as np

from ..errors import DeviceError
from .link import Link

_RESULTS = re.compile(r"^m-results-\[([^]]+)\]$")
CHUNK = 31  # bytes per "db HEX%" command, as the runner sends them


def _until_ready(link: Link, timeout: float) -> list:
    """Every event of one reply, up to its m-ready: read whole before anything raises, so that the next
    command's reply starts clean."""
    events = []
    for ev in link.events(timeout=timeout, idle_timeout=timeout):
        if ev.kind == "line" and ev.text == "m-ready":
            break
        events.append(ev)
    return events


def _reply(link: Link, timeout: float) -> list[str]:
    """The lines of one reply; an e-[...] line raises."""
    lines = [ev.text for ev in _until_ready(link, timeout) if ev.kind == "line"]
    error = next((l for l in lines if l.startswith("e-")), None)
    if error:
        raise DeviceError(f"the firmware answered {error}", "Check that the inputs match the model's input size")
    return lines


def load_input(link: Link, x: np.ndarray) -> None:
    data = np.asarray(x, dtype=np.int8).reshape(-1).tobytes()
    link.send(f"db load {len(data)}")
    _reply(link, 5.0)
    for i in range(0, len(data), CHUNK):
        link.send("db " + data[i:i + CHUNK].hex())
        _reply(link, 5.0)


def infer_one(link: Link, x: np.ndarray, *, timeout: float = 30.0) -> np.ndarray:
    """The MLPerf Tiny runner's way: the dequantized output scores."""
    load_input(link, x)
    link.send("infer 1 0")
    for line in _reply(link, timeout):
        m = _RESULTS.match(line)
        if m:
            return np.array([float(v) for v in m.group(1).split(",")])
    raise DeviceError("the firmware sent no m-results line for infer", "Rebuild and flash the firmware with this tinydeploy")


def infer_exact(link: Link, x: np.ndarray, *, timeout: float = 30.0) -> tuple[np.ndarray, int]:
    """One inference with ``td-infer``: the device's int8 outputs and its counter's reading (cycles or instructions)."""
    load_input(link, x)
    link.send("td-infer")
    for ev in _until_ready(link, timeout):
        if ev.kind == "record" and ev.record.type == "result":
            return np.array(ev.record.ints("out"), dtype=np.int8), ev.record.int("cycles")
        if ev.kind == "record" and ev.record.type == "error":
            raise DeviceError(f"the firmware reported {ev.record.str('code')}: {ev.record.str('detail')}",
                              "See the firmware's report with `tinydeploy bench`")
        if ev.kind == "line" and ev.text.startswith("e-"):
            raise DeviceError(f"the firmware answered {ev.text}", "Rebuild and flash the firmware with this tinydeploy")
    raise DeviceError("no result record for td-infer", "Rebuild and flash the firmware with this tinydeploy")


def device_outputs(link: Link, x: np.ndarray, progress=None) -> tuple[np.ndarray, list[int]]:
    """The device's int8 outputs for every input in ``x``, and its count for each."""
    outs, counts = [], []
    for i in range(len(x)):
        o, c = infer_exact(link, x[i])
        outs.append(o)
        counts.append(c)
        if progress:
            progress(i + 1)
    return np.stack(outs) if outs else np.zeros((0, 0), np.int8), counts


def accuracy_report(link: Link, x: np.ndarray, y: np.ndarray | None, *, host_outputs: np.ndarray | None = None,
                    host_pred: np.ndarray | None = None, progress=None) -> dict:
    """Run every input on the device; compare with the labels and, when given, the host's outputs or predictions."""
    outs, counts = device_outputs(link, x, progress)
    pred = outs.argmax(axis=1) if len(outs) else np.zeros(0, int)  # int8 order = score order (scale > 0)
    y = None if y is None else np.asarray(y).reshape(-1)

    def acc(p):
        return float((np.asarray(p) == y).mean()) if y is not None and len(y) else None

    if host_outputs is not None:
        host_outputs = np.asarray(host_outputs, dtype=np.int8).reshape(outs.shape)
        host_pred = host_outputs.argmax(axis=1)
    d = {"device": {"n": int(len(x)), "accuracy": acc(pred), "predictions": pred.tolist(), "counts": counts},
         "host": {"n": int(len(x)), "accuracy": acc(host_pred) if host_pred is not None else None},
         "agreement": float((pred == np.asarray(host_pred).reshape(-1)).mean()) if host_pred is not None else None}
    if host_outputs is not None:
        diff = np.abs(outs.astype(np.int16) - host_outputs.astype(np.int16)).max(axis=1)
        d["outputs"] = {"identical": int((diff == 0).sum()), "max_abs_diff": int(diff.max()) if len(diff) else 0,
                        "per_input_max_abs_diff": diff.tolist(), "device": outs.tolist()}
    return d
