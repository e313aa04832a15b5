"""The report parser on random and mutated streams: no exception, and no record with a bad checksum."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tinydeploy.device.protocol import Parser, encode_record, parse_line

GOOD = [
    encode_record("hello", {"proto": 1, "fw": "0.1.0", "board": "nano33ble", "model": "m"}),
    encode_record("run", {"i": 3, "cycles": 123456, "us": 1929}),
    encode_record("op", {"i": 0, "tag": "CONV_2D", "cycles": 5000}),
    encode_record("golden", {"i": 0, "max_diff": 0, "tol": 1, "pass": 1, "out": "-128,5,127"}),
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.binary(max_size=300), max_size=20))
def test_random_chunks_never_raise(chunks):
    p = Parser()
    for c in chunks:
        for ev in p.feed(c):
            assert ev.kind in ("record", "line", "bad-crc", "bad-version", "garbage")


@settings(max_examples=500, deadline=None)
@given(st.sampled_from(GOOD), st.integers(0, 200), st.integers(1, 255))
def test_mutated_record_is_never_accepted_changed(line, pos, delta):
    raw = bytearray(line.encode()[:-1])  # without the newline
    pos %= len(raw)
    raw[pos] = (raw[pos] + delta) % 256
    ev = parse_line(bytes(raw))
    if ev.kind == "record":
        # a one-byte change can only be accepted if the CRC still matched, which CRC-32 rules out
        raise AssertionError(f"accepted a mutated record: {bytes(raw)!r}")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.sampled_from(GOOD), min_size=1, max_size=6), st.data())
def test_any_chunking_gives_the_same_records(lines, data):
    stream = "".join(lines).encode()
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    p = Parser()
    events = []
    prev = 0
    for c in cuts + [len(stream)]:
        events += p.feed(stream[prev:c])
        prev = c
    assert [e.text + "\n" for e in events if e.kind == "record"] == lines


@pytest.fixture(scope="module")
def firmware_crc(tmp_path_factory):
    """The firmware's own crc32_update (firmware/td_report.cpp), compiled for the host."""
    import shutil
    import subprocess

    from conftest import FIRMWARE, ROOT

    if shutil.which("g++") is None:
        pytest.fail("g++ is required (apt-get install g++)")
    exe = tmp_path_factory.mktemp("crc") / "crc"
    subprocess.run(["g++", "-std=c++11", "-O1", "-Wall", "-Werror", f"-I{FIRMWARE}", str(ROOT / "tests" / "native" / "crc_main.cpp"),
                    str(FIRMWARE / "td_report.cpp"), "-o", str(exe)], check=True, capture_output=True)
    return exe


@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(min_size=0, max_size=5000))
def test_firmware_crc_equals_zlib_on_random_data(firmware_crc, data):
    import subprocess
    import zlib

    out = subprocess.run([str(firmware_crc)], input=data, capture_output=True, check=True).stdout.decode().strip()
    assert int(out, 16) == zlib.crc32(data)
