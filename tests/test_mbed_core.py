"""A generated project's sources, compiled as the board's own build compiles them: against the real Arduino mbed core
headers (../shared/arduino-mbed-core/, never copied here) with the Nano 33 BLE variant's flags and defines, the project's
build_flags after them (PlatformIO's order), and the pinned TFLM library's Arduino files beside them. No error, and no
warning from tinydeploy's own files. Compiling only: the core's libmbed.a is not there to link."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import ROOT, missing, run_cli

CORE = ROOT.parent / "shared" / "arduino-mbed-core"


def _recipe(board, project: Path, tflm: Path) -> list[str]:
    """platform.txt's recipe.cpp.o.pattern for the board's variant (the core's README gives it)."""
    from tinydeploy.emulate.firmware import read_project_flags

    v = CORE / "variants" / board.compile["mbed_variant"]
    core = CORE / "cores" / "arduino"
    flags = read_project_flags(project)
    build_flags = [*(f"-D{d}" for d in flags.defines), *([flags.optimize] if flags.optimize else []),
                   *(f"-I{i}" for i in flags.includes)]
    return ["arm-none-eabi-g++", "-c", "-Wall", "-Wextra", "-nostdlib", f"@{v / 'defines.txt'}", f"@{v / 'cxxflags.txt'}",
            *board.gcc_flags, *(f"-D{d}" for d in board.compile["defines"]), *build_flags,
            f"-I{project / 'src'}", f"-I{tflm / 'src'}", f"-I{v}", f"-I{core}", f"-I{core / 'api' / 'deprecated'}",
            f"-I{core / 'api' / 'deprecated-avr-comp'}", *(f"-I{CORE / 'libraries' / lib}" for lib in ("Wire", "SPI")),
            f"-iprefix{core}/", f"@{v / 'includes.txt'}"]


def test_the_board_profile_has_the_variants_code_generation_flags():
    from tinydeploy.boards import load

    board = load("nano33ble")
    if not CORE.is_dir():
        missing(f"the Arduino mbed core headers are not at {CORE}")
    variant = (CORE / "variants" / board.compile["mbed_variant"] / "cxxflags.txt").read_text().split()
    assert set(board.compile["codegen"]) <= set(variant) and "-funsigned-char" in board.compile["codegen"]
    assert set(board.gcc_flags) <= set(variant) and board.compile["optimize"] in variant
    assert f"-std={board.compile['cxx_std']}" in variant
    assert set(board.compile["warnings"]) <= set(variant)


def test_generated_sources_compile_against_the_real_core_warning_free(tmp_path, tflm_dir, tf_models):
    from tinydeploy.boards import load

    if not CORE.is_dir():
        missing(f"the Arduino mbed core headers are not at {CORE}")
    if shutil.which("arm-none-eabi-g++") is None:
        missing("arm-none-eabi-g++ is required (apt-get install gcc-arm-none-eabi)")
    board = load("nano33ble")
    # the bundled example and a depthwise model (another op set in model_ops.h), and with tinydeploy's kernels the
    # example and a MobileNetV2 block (depthwise, a residual ADD: its tables in model_params.cpp)
    projects = []
    for name, model, kernels in (("example", None, "cmsis-nn"), ("depthwise", tf_models["depthwise"][0], "cmsis-nn"),
                                 ("example-td", None, "tinydeploy"),
                                 ("mbv2-td", tf_models["mbv2_block"][0], "tinydeploy")):
        out = tmp_path / name
        run_cli("build", *([model] if model else []), "-o", out, "--no-compile", "--kernels", kernels, check=0)
        projects.append(out)
    assert (projects[2] / "src" / "td_kernel_matmul.cpp").is_file()  # the kernels' sources are in the project
    assert "AddOpData(" in (projects[3] / "src" / "model_params.cpp").read_text()
    lib = [tflm_dir / "src" / "tensorflow" / "lite" / "micro" / f for f in ("debug_log.cpp", "system_setup.cpp")]
    lib += sorted((tflm_dir / "src" / "peripherals").glob("*.cpp"))
    units = [(_recipe(board, project, tflm_dir), project, s) for project in projects
             for s in sorted((project / "src").glob("*.cpp")) + (lib if project is projects[0] else [])]
    assert all(sum(u[1] is p for u in units) >= 9 for p in projects)

    def run(args):
        return subprocess.run(args, capture_output=True)

    # A source another project already has with the same preprocessed text (line markers aside) and flags gives the
    # same diagnostics: the four projects share most of their files, so each text is compiled once (on every core).
    with ThreadPoolExecutor(os.cpu_count() or 1) as pool:
        pre = list(pool.map(run, ([*cmd, "-E", "-P", str(s), "-o", "-"] for cmd, _, s in units)))
        for (_, _, s), r in zip(units, pre):
            assert r.returncode == 0, f"{s.name}: {r.stderr.decode()[-2000:]}"
        first = {}
        for u, r in zip(units, pre):
            first.setdefault(hashlib.sha256(r.stdout).digest(), u)
        distinct = list(first.values())
        assert len(distinct) >= 30
        for (_, project, s), r in zip(distinct, pool.map(
                run, ([*cmd, str(s), "-o", str(tmp_path / f"{project.name}-{s.stem}.o")] for cmd, project, s in distinct))):
            err = r.stderr.decode()
            assert r.returncode == 0, f"{s.name}: {err[-2000:]}"
            ours = [l for l in err.splitlines() if "warning:" in l and re.search(r"/(src|firmware)/td_|/src/(main|model_|golden_)", l)]
            assert not ours, f"{s.name}: {ours}"
    for project in projects:
        cmd = _recipe(board, project, tflm_dir)
        # the flags really reached the compiler: plain char is unsigned on this board
        probe = tmp_path / "probe.cpp"
        probe.write_text('#include "Arduino.h"\nstatic_assert((char)-1 > 0, "char is unsigned here");\n'
                         'static_assert(ARDUINO == 10810, "the core version define");\n')
        r = subprocess.run([*cmd, str(probe), "-o", str(tmp_path / "probe.o")], capture_output=True, text=True)
        assert r.returncode == 0, r.stderr[-2000:]
