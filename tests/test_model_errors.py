"""Bad model files: one-line errors, exit code 2, never a traceback (including fuzzed bytes)."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from conftest import EXAMPLE, run_cli


@pytest.mark.parametrize("content,needle", [
    (None, "does not exist"),
    (b"", "is empty"),
    (b"\x89HDF\r\n\x1a\n" + b"\0" * 64, "Keras HDF5"),
    (b"hello, this is not a model at all", "not a TFLite flatbuffer"),
])
def test_bad_files(tmp_path, content, needle):
    p = tmp_path / "m.tflite"
    if content is not None:
        p.write_bytes(content)
    r = run_cli("analyze", p)
    assert r.returncode == 2
    assert needle in r.stderr and r.stderr.count("\n") == 1 and "Traceback" not in r.stderr


def test_truncated(tmp_path):
    data = EXAMPLE.read_bytes()
    p = tmp_path / "t.tflite"
    p.write_bytes(data[: len(data) // 3])
    r = run_cli("analyze", p)
    assert r.returncode == 2 and ("corrupt" in r.stderr or "truncated" in r.stderr)
    assert "Traceback" not in r.stderr


_DATA = EXAMPLE.read_bytes()


def _weight_region() -> tuple[int, int]:
    """Where the example's largest weight buffer lies in the file (changing bytes there keeps the model valid)."""
    from tinydeploy.tflite_model import TFLiteModel

    m = TFLiteModel.from_bytes(_DATA)
    t = max((t for t in m.tensors if t.is_constant and t.dtype == "INT8"), key=lambda t: t.nbytes)
    start = _DATA.find(t.data[:64])
    assert start > 0
    return start, start + t.nbytes


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.integers(0, len(_DATA) - 1), st.integers(0, 255)), min_size=1, max_size=8),
       st.one_of(st.just(len(_DATA)), st.integers(8, len(_DATA))))
@example(edits=[(237, 1)], length=40512)  # a metadata name that is not UTF-8 (found by this test: an internal error)
def test_mutated_models_never_traceback(tmp_path, edits, length):
    """Mutate bytes of a valid model (full length or truncated); analyze ends with a result or a one-line error."""
    from tinydeploy.cli import main

    data = bytearray(_DATA[:length])
    for pos, val in edits:
        if pos < len(data):
            data[pos] = val
    p = tmp_path / "fuzz.tflite"
    p.write_bytes(bytes(data))
    code = main(["analyze", str(p), "--json", str(tmp_path / "out.json")])  # an internal error would be exit 4
    assert code in (0, 1, 2)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.data())
def test_mutated_weights_reach_the_tflm_run(tmp_path, data):
    """Full-length files whose weight bytes change stay valid models: analyze runs them through the TFLM host
    interpreter (the arena is measured), so the fuzzing above does reach that stage with valid structure."""
    import json

    from tinydeploy.cli import main

    lo, hi = _weight_region()
    buf = bytearray(_DATA)
    for pos in data.draw(st.lists(st.integers(lo, hi - 1), min_size=1, max_size=50)):
        buf[pos] = data.draw(st.integers(0, 255))
    p = tmp_path / "w.tflite"
    p.write_bytes(bytes(buf))
    out = tmp_path / "w.json"
    assert main(["analyze", str(p), "--json", str(out)]) == 0
    assert json.loads(out.read_text())["arena"]["device_bytes"] > 0
