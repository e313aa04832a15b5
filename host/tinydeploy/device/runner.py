"""Host side of the MLPerf Tiny runner's commands: stream inputs to the firmware (``db load N%``,
``db HEX%`` in 31-byte chunks), run ``infer 1 0%``, read ``m-results-[...]``. Used for on-device
accuracy over a test set; the standard EEMBC/MLPerf runner can drive the same firmware."""

from __future__ import annotations

import re

import numpy as np

from ..errors import DeviceError
from .link import Link

_RESULTS = re.compile(r"^m-results-\[([^]]+)\]$")
CHUNK = 31  # bytes per "db HEX%" command, as the runner sends them


def _reply(link: Link, timeout: float) -> list[str]:
    lines = []
    for ev in link.events(timeout=timeout, idle_timeout=timeout):
        if ev.kind == "line":
            if ev.text.startswith("e-"):
                raise DeviceError(f"the firmware answered {ev.text}", "Check that the inputs match the model's input size")
            if ev.text == "m-ready":
                return lines
            lines.append(ev.text)
    return lines


def infer_one(link: Link, x: np.ndarray, *, timeout: float = 30.0) -> np.ndarray:
    data = np.asarray(x, dtype=np.int8).reshape(-1).tobytes()
    link.send(f"db load {len(data)}")
    _reply(link, 5.0)
    for i in range(0, len(data), CHUNK):
        link.send("db " + data[i:i + CHUNK].hex())
        _reply(link, 5.0)
    link.send("infer 1 0")
    for line in _reply(link, timeout):
        m = _RESULTS.match(line)
        if m:
            return np.array([float(v) for v in m.group(1).split(",")])
    raise DeviceError("the firmware sent no m-results line for infer", "Rebuild and flash the firmware with this tinydeploy")


def device_accuracy(link: Link, x: np.ndarray, y: np.ndarray, progress=None) -> dict:
    preds = []
    for i in range(len(x)):
        preds.append(int(np.argmax(infer_one(link, x[i]))))
        if progress:
            progress(i + 1)
    preds = np.array(preds)
    y = np.asarray(y).reshape(-1)
    return {"n": int(len(y)), "accuracy": float((preds == y).mean()) if len(y) else None, "predictions": preds.tolist()}
