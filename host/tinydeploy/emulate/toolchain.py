"""The programs the emulated build needs: Debian's arm-none-eabi GCC (with newlib) and qemu-system-arm.

Each is looked up on PATH; a missing one is a one-line ToolchainError naming the Debian package.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from functools import lru_cache

from ..errors import ToolchainError

APT_PACKAGES = "gcc-arm-none-eabi libnewlib-arm-none-eabi libstdc++-arm-none-eabi-newlib qemu-system-arm"


def _require(name: str, package: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise ToolchainError(f"{name} is not installed",
                             f"Install it with `apt-get install {package}` (all the emulator needs: {APT_PACKAGES})")
    return path


@dataclass(frozen=True)
class ArmToolchain:
    gcc: str
    gxx: str
    ar: str
    size: str
    version: str  # first line of `arm-none-eabi-gcc --version`: part of every cache key

    @classmethod
    def find(cls) -> "ArmToolchain":
        return _find_arm()

    def check_newlib(self, cpu_flags: tuple[str, ...]) -> None:
        """Fail early, in one line, when newlib or libstdc++ for the target is missing."""
        for lib, package in (("libc_nano.a", "libnewlib-arm-none-eabi"), ("libstdc++_nano.a", "libstdc++-arm-none-eabi-newlib")):
            out = subprocess.run([self.gxx, *cpu_flags, f"-print-file-name={lib}"], capture_output=True, text=True).stdout.strip()
            if "/" not in out:
                raise ToolchainError(f"{lib} for the Cortex-M4 is not installed", f"Install it with `apt-get install {package}`")


@lru_cache(maxsize=1)
def _find_arm() -> ArmToolchain:
    gxx = _require("arm-none-eabi-g++", "gcc-arm-none-eabi")
    gcc = _require("arm-none-eabi-gcc", "gcc-arm-none-eabi")
    version = subprocess.run([gcc, "--version"], capture_output=True, text=True).stdout.splitlines()[0].strip()
    return ArmToolchain(gcc=gcc, gxx=gxx, ar=_require("arm-none-eabi-ar", "binutils-arm-none-eabi"),
                        size=_require("arm-none-eabi-size", "binutils-arm-none-eabi"), version=version)


def find_qemu() -> str:
    return _require("qemu-system-arm", "qemu-system-arm")


def emulator_available() -> bool:
    """True when the compiler, newlib and QEMU are all installed (the TFLM sources are asked for separately)."""
    try:
        tc = ArmToolchain.find()
        find_qemu()
        tc.check_newlib(("-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=softfp"))
    except ToolchainError:
        return False
    return True

