"""The kernels' fast requantization (firmware/kernels/td_kernel_util.h: SMMLAR, the accumulator's sign, a shift)
against TFLM's own MultiplyByQuantizedMultiplier from the pinned library's headers, compiled for the host
(tests/native/requant_main.cpp): every rounding tie is where a plausible shortcut goes wrong, and random inputs to the
kernels almost never land on one, so the device tests alone could not catch it. A mutation (the sign term dropped) is
caught too."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from conftest import FIRMWARE, ROOT

KERNELS = FIRMWARE / "kernels"


def _build(tflm_dir, kernels_dir, out):
    if shutil.which("g++") is None:
        pytest.fail("g++ is required (apt-get install g++)")
    src = tflm_dir / "src"
    subprocess.run(["g++", "-std=c++17", "-O2", "-Wall", "-Werror", f"-I{kernels_dir}", f"-I{src}",
                    f"-I{src / 'third_party' / 'gemmlowp'}", f"-I{src / 'third_party' / 'flatbuffers' / 'include'}",
                    str(ROOT / "tests" / "native" / "requant_main.cpp"), "-o", str(out)], check=True)
    return subprocess.run([str(out)], capture_output=True, text=True, timeout=300)


def test_fast_requantization_equals_tflm_on_every_tie(tflm_dir, tmp_path):
    r = _build(tflm_dir, KERNELS, tmp_path / "requant")
    assert r.returncode == 0, r.stdout
    assert "identical to TFLM" in r.stdout and "identical to MakeRequantWide" in r.stdout


def _build_mutated(tflm_dir, tmp_path, old, new):
    """The native check built against a copy of the kernels whose td_kernel_util.h has ``old`` replaced by ``new``."""
    broken = tmp_path / "kernels"
    shutil.copytree(KERNELS, broken)
    util = broken / "td_kernel_util.h"
    text = util.read_text()
    mutated = text.replace(old, new)
    assert mutated != text
    util.write_text(mutated)
    return _build(tflm_dir, broken, tmp_path / "requant")


def test_a_requantization_without_the_sign_term_is_caught(tflm_dir, tmp_path):
    r = _build_mutated(tflm_dir, tmp_path, "(dsp::smmlar(acc2, mult, add) + (acc2 >> 31)) >> right",
                       "dsp::smmlar(acc2, mult, add) >> right")
    assert r.returncode == 1 and "mismatch" in r.stdout


def test_a_shortcut_beyond_its_bound_is_caught(tflm_dir, tmp_path):
    """MakeRequant's 32-bit shortcut taken for bounds up to 2^31 (where the 64-bit form finds the fast form inexact):
    the comparison with MakeRequantWide fails."""
    r = _build_mutated(tflm_dir, tmp_path, "kShortcutBound = 1 << 29;", "kShortcutBound = (1u << 31) - 1;")
    assert r.returncode == 1 and "differs from MakeRequantWide" in r.stdout
