"""The generated firmware on an emulated Cortex-M4 (QEMU mps2-an386), compiled against the pinned TFLM."""

from __future__ import annotations


def why_not_emulated(tflm: str | None) -> str | None:
    """Why latencies cannot be emulated here (the toolchain or the TFLM library is missing or wrong), or None."""
    from ..errors import TinyDeployError
    from .tflm_library import TflmLibrary
    from .toolchain import APT_PACKAGES, emulator_available

    if not emulator_available():
        return f"the emulator is not installed (apt-get install {APT_PACKAGES})"
    try:
        TflmLibrary.locate(tflm)
    except TinyDeployError as e:
        return str(e)
    return None
