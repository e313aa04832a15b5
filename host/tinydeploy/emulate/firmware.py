"""Compile a generated PlatformIO project's sources for the emulated Cortex-M4 and link them with TFLM.

The project's ``src/`` compiles unchanged: the emulator's board layer (``firmware/emulator/``) brings
start-up code, a small Arduino API and the timer; the project's own ``build_flags`` (``-D``, ``-O``,
``-Wl,``) are read from its platformio.ini, so that the emulated build is configured like the board's.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import subprocess
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Callable

from ..boards import Board
from ..errors import ModelError, ToolchainError
from ..sources import firmware_dir
from . import objcache
from .tflm_library import CompileFlags, TflmLibrary, build_archive, compile_parallel
from .toolchain import ArmToolchain


@dataclass(frozen=True)
class EmulatedTarget:
    id: str
    name: str
    machine: str
    core: str
    qemu_args: tuple[str, ...]
    ns_per_instruction: int
    instructions_per_tick: int
    firmware_dir: str
    board_sources: tuple[str, ...]
    linker_script: str
    defines: tuple[str, ...]
    link_flags: tuple[str, ...]
    source: str

    @classmethod
    def load(cls) -> "EmulatedTarget":
        return _load_target()


@lru_cache(maxsize=1)
def _load_target() -> EmulatedTarget:
    d = json.loads((resources.files(__package__) / "mps2_an386.json").read_text())
    return EmulatedTarget(**{k: tuple(v) if isinstance(v, list) else v for k, v in d.items()})


@dataclass(frozen=True)
class ProjectFlags:
    """What a project's platformio.ini build_flags set."""

    defines: tuple[str, ...] = ()
    optimize: str | None = None
    includes: tuple[Path, ...] = ()
    link: tuple[str, ...] = ()


def read_project_flags(project: Path) -> ProjectFlags:
    ini = project / "platformio.ini"
    if not ini.is_file():
        raise ModelError(f"{project} is not a project written by `tinydeploy build`: platformio.ini is missing",
                         "Run `tinydeploy build MODEL.tflite -o DIR` first")
    cp = configparser.ConfigParser(interpolation=None, inline_comment_prefixes=(";",))
    try:
        cp.read(ini)
    except configparser.Error as e:
        raise ModelError(f"cannot read {ini} ({str(e).splitlines()[0]})", "Regenerate the project with `tinydeploy build`") from None
    env = next((s for s in cp.sections() if s.startswith("env:")), None)
    tokens = shlex.split(cp.get(env, "build_flags", fallback="")) if env else []
    defines, includes, link, optimize = [], [], [], None
    it = iter(tokens)
    for t in it:
        if t.startswith("-D"):
            defines.append(t[2:])
        elif t == "-I":
            includes.append(project / next(it, "."))
        elif t.startswith("-I"):
            includes.append(project / t[2:])
        elif re.fullmatch(r"-O[0-3sgz]?", t):
            optimize = t
        elif t.startswith("-Wl,"):
            link.append(t)
    return ProjectFlags(tuple(defines), optimize, tuple(includes), tuple(link))


@dataclass(frozen=True)
class FirmwareImage:
    elf: Path
    text_bytes: int  # code and constants (the model included): flash
    data_bytes: int  # initialized RAM (also stored in flash)
    bss_bytes: int  # zeroed RAM: the tensor arena, buffers, the profiler
    warnings: tuple[str, ...] = field(default=())

    @property
    def flash_bytes(self) -> int:
        return self.text_bytes + self.data_bytes

    @property
    def ram_bytes(self) -> int:
        return self.data_bytes + self.bss_bytes

    def to_dict(self) -> dict:
        return {"elf": str(self.elf), "text_bytes": self.text_bytes, "data_bytes": self.data_bytes,
                "bss_bytes": self.bss_bytes, "flash_bytes": self.flash_bytes, "ram_bytes": self.ram_bytes,
                "warnings": list(self.warnings)}


def _sizes(tc: ArmToolchain, elf: Path) -> tuple[int, int, int]:
    out = subprocess.run([tc.size, "-A", str(elf)], capture_output=True, text=True, check=True).stdout
    sec = {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\.\S+)\s+(\d+)\s+\d+", out, re.M)}
    text = sum(sec.get(s, 0) for s in (".text", ".ARM.extab", ".ARM.exidx", ".preinit_array", ".init_array", ".fini_array"))
    return text, sec.get(".data", 0), sec.get(".bss", 0)


def _compile_all(tc, flags, todo, includes, extra, jobs, progress):
    """Compile (source, object) pairs, JOBS at a time, each through the object cache; results in TODO's order."""
    if progress:
        progress(0, len(todo))
    results = compile_parallel(lambda item: objcache.compile_cached(tc, flags, *item, includes, extra=extra)[0], todo,
                               jobs=jobs, progress=progress)
    objcache.prune()
    return results


def build_firmware(project: Path, lib: TflmLibrary, board: Board, *, out_dir: Path | None = None,
                   extra_sources: tuple[Path, ...] = (), jobs: int | None = None,
                   progress: Callable[[str, int, int], None] | None = None) -> FirmwareImage:
    """Compile PROJECT/src with the emulator's board layer, link with the cached TFLM archive."""
    tc = ArmToolchain.find()
    target = EmulatedTarget.load()
    cpu = board.gcc_flags
    tc.check_newlib(cpu)
    src = project / "src"
    if not (src / "model_config.h").is_file():
        raise ModelError(f"{project} is not a project written by `tinydeploy build`: src/model_config.h is missing",
                         "Run `tinydeploy build MODEL.tflite -o DIR` first")
    pflags = read_project_flags(project)
    # the board's own flags (its core's variant files, boards/<id>.json); the project's build_flags come after them.
    # PlatformIO compiles the library with the project's build_flags too: the defines the library reads go to its
    # archive (TF_LITE_STATIC_MEMORY), the others (TD_MAX_OPS, which differs from model to model) would only compile
    # the same library again
    lib_defines = tuple(d for d in pflags.defines if lib.reads_macro(d.split("=", 1)[0]))
    lib_flags = CompileFlags(cpu=cpu, defines=(*board.compile["defines"], *lib_defines), c_std=board.compile["c_std"],
                             cxx_std=board.compile["cxx_std"], optimize=pflags.optimize or board.compile["optimize"],
                             common=(*board.compile["codegen"], "-fno-common"))
    archive = build_archive(lib, tc, lib_flags, jobs=jobs,
                            progress=(lambda d, n: progress("compiling TFLM (once, then cached)", d, n)) if progress else None)
    board_dir = firmware_dir() / target.firmware_dir
    app_flags = CompileFlags(cpu=cpu, defines=(*board.compile["defines"], *target.defines, *pflags.defines),
                             c_std=lib_flags.c_std, cxx_std=lib_flags.cxx_std, optimize=lib_flags.optimize,
                             common=lib_flags.common)
    out = out_dir or project / ".emulator"
    out.mkdir(parents=True, exist_ok=True)
    sources = sorted(src.glob("*.cpp")) + [board_dir / s for s in target.board_sources] + list(extra_sources)
    includes = [src, *pflags.includes, board_dir, lib.src]
    objs = [out / (s.stem + ".o") for s in sources]
    results = _compile_all(tc, app_flags, list(zip(sources, objs)), includes, tuple(board.compile["warnings"]),
                           jobs, (lambda d, n: progress("compiling the firmware", d, n)) if progress else None)
    warnings = []
    for s, r in zip(sources, results):
        if r.returncode != 0:
            first = next((l for l in r.stderr.splitlines() if "error" in l), r.stderr.strip()[:300])
            raise ToolchainError(f"{s.name} does not compile for the emulated Cortex-M4: {first}",
                                 "Regenerate the project with this tinydeploy (tinydeploy build --force)")
        warnings += [l for l in r.stderr.splitlines() if "warning:" in l]
    elf = out / "firmware.elf"
    tmp = out / f"firmware.elf.{os.getpid()}.tmp"
    link_flags = [*target.link_flags, *pflags.link, f"-T{board_dir / target.linker_script}", f"-Wl,-Map={out / 'firmware.map'}"]
    r = subprocess.run([tc.gxx, *cpu, *link_flags, *map(str, objs), str(archive), "-lm", "-o", str(tmp)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        tmp.unlink(missing_ok=True)
        first = next((l for l in r.stderr.splitlines() if "undefined reference" in l or "error" in l or "overflow" in l),
                     r.stderr.strip()[:300])
        raise ToolchainError(f"linking the emulated firmware failed: {first}",
                             "Regenerate the project with this tinydeploy (tinydeploy build --force)")
    os.replace(tmp, elf)
    text, data, bss = _sizes(tc, elf)
    return FirmwareImage(elf, text, data, bss, tuple(warnings))


def emulate_project(project: Path, *, tflm: str | None, board: Board, jobs: int | None = None,
                    extra_sources: tuple[Path, ...] = (), progress=None):
    """Build the emulated firmware for PROJECT with BOARD's flags; returns (FirmwareImage, TflmLibrary)."""
    lib = TflmLibrary.locate(tflm, project)
    image = build_firmware(project, lib, board, jobs=jobs, extra_sources=extra_sources, progress=progress)
    return image, lib
