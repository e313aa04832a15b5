"""The firmware sources that do not need TFLM compile warning-free with the host g++ and with
arm-none-eabi-g++ for the Cortex-M4F (Debian's gcc-arm-none-eabi), together with a generated
project's model sources."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from conftest import FIRMWARE, compile_host_device

SOURCES = ["td_device.cpp", "td_report.cpp", "td_stats.cpp", "td_log.cpp", "td_board_arduino.cpp"]
GENERATED = ["model_data.cpp", "golden_data.cpp"]
ARM = ["arm-none-eabi-g++", "-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard", "-mthumb", "-std=gnu++11",
       "-Os", "-fno-exceptions", "-fno-rtti", "-Wall", "-Werror"]


@pytest.mark.parametrize("compiler", ["host", "arm"])
def test_compiles(example_project, tmp_path, compiler):
    cmd = ARM if compiler == "arm" else ["g++", "-std=c++11", "-Wall", "-Wextra", "-Werror"]
    if shutil.which(cmd[0]) is None:
        pytest.fail(f"{cmd[0]} is required (apt-get install {'gcc-arm-none-eabi' if compiler == 'arm' else 'g++'})")
    src = example_project / "src"
    files = [FIRMWARE / s for s in SOURCES] + [src / g for g in GENERATED]
    objs = []
    for f in files:
        o = tmp_path / (f.stem + ".o")
        r = subprocess.run([*cmd, f"-I{src}", f"-I{FIRMWARE}", "-c", str(f), "-o", str(o)], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        objs.append(o)
    # td_model_info.h (header only) against the generated model_config.h
    r = subprocess.run([*cmd, f"-I{src}", f"-I{FIRMWARE}", "-fsyntax-only", "-x", "c++", str(FIRMWARE / "td_model_info.h")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    if compiler == "arm":
        size = subprocess.run(["arm-none-eabi-size", *map(str, objs)], capture_output=True, text=True, check=True)
        assert "td_device.o" in size.stdout


def test_protocol_version_flag_compiles(example_project, tmp_path):
    compile_host_device(example_project, tmp_path / "dev_v2", ["-DTD_PROTOCOL_VERSION=2"])
