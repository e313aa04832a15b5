"""The pinned TFLM Arduino library, found where the user has it and compiled once into a cache.

Where it comes from, first match wins: ``--tflm DIR``, ``$TINYDEPLOY_TFLM_DIR``, or the project's
``.pio/libdeps/<env>/Arduino_TensorFlowLite`` once ``pio pkg install`` has fetched it.

The library's sources are compiled once per (library contents, compiler, flags) into
``<cache>/tflm-<key>/libtflm.a`` and reused for every model: the linker takes only the kernels a
model's resolver names. Objects are kept as they are made, so an interrupted build resumes.
"""

from __future__ import annotations

import hashlib
import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Callable

from ..errors import TinyDeployError, ToolchainError
from ..fsutil import cache_root, exclusive
from .toolchain import ArmToolchain

LIBRARY_NAME = "Arduino_TensorFlowLite"
ENV_VAR = "TINYDEPLOY_TFLM_DIR"
# Board-specific extras (camera, audio codec, serial test harness, the Arduino DebugLog/Serial glue)
# and test-only code: not part of the runtime a model needs. The emulator's board layer replaces
# system_setup.cpp; the firmware wraps DebugLog (firmware/td_log.h).
EXCLUDED_PARTS = ("peripherals/", "test_over_serial/", "third_party/kissfft/", "experimental/microfrontend/",
                  "micro/system_setup.cpp", "micro/test_helpers.cpp", "micro/test_helper_custom_ops.cpp",
                  "micro/kernels/kernel_runner.cpp", "micro/mock_micro_graph.cpp", "micro/fake_micro_context.cpp")


@dataclass(frozen=True)
class TflmLibrary:
    root: Path  # the library folder: library.properties and src/
    origin: str  # how it was found: "--tflm", "$TINYDEPLOY_TFLM_DIR" or ".pio/libdeps"

    @property
    def src(self) -> Path:
        return self.root / "src"

    @classmethod
    def locate(cls, explicit: str | os.PathLike | None, project: Path | None = None) -> "TflmLibrary":
        if explicit:
            return cls._checked(Path(explicit), "--tflm")
        env = os.environ.get(ENV_VAR)
        if env:
            return cls._checked(Path(env), f"${ENV_VAR}")
        if project is not None:
            for found in sorted((project / ".pio" / "libdeps").glob(f"*/{LIBRARY_NAME}")):
                return cls._checked(found, ".pio/libdeps")
        raise ToolchainError(
            "the TFLite Micro library sources were not found",
            f"Pass --tflm DIR (the {LIBRARY_NAME} folder), set {ENV_VAR}, or run `pio pkg install -d PROJECT` "
            f"so that PROJECT/.pio/libdeps/<env>/{LIBRARY_NAME} exists")

    @classmethod
    def _checked(cls, root: Path, origin: str) -> "TflmLibrary":
        if not (root / "src" / "tensorflow" / "lite" / "micro" / "micro_interpreter.h").is_file():
            # the user named a folder that is not the library: bad input (exit 2), not a missing tool
            what = "does not exist" if not root.exists() else "is not a directory" if not root.is_dir() else \
                f"is not the {LIBRARY_NAME} library (no src/tensorflow/lite/micro/micro_interpreter.h)"
            raise TinyDeployError(f"{root} ({origin}) {what}",
                                  "Point it at the folder that holds library.properties and src/")
        return cls(root.resolve(), origin)

    def sources(self) -> list[Path]:
        """The .c and .cpp files of the runtime, in a stable order."""
        out = []
        for p in sorted(self.src.rglob("*")):
            rel = p.relative_to(self.src).as_posix()
            if p.suffix in (".c", ".cpp") and not any(part in rel for part in EXCLUDED_PARTS):
                out.append(p)
        return out

    def reads_macro(self, name: str) -> bool:
        """Whether any source or header of the library names the macro NAME (a define it cannot name cannot change
        it)."""
        return name in _identifiers(self.src)

    def fingerprint(self) -> str:
        """sha256 over every file under src/ (names and contents)."""
        h = hashlib.sha256()
        for p in sorted(self.src.rglob("*")):
            if p.is_file():
                h.update(p.relative_to(self.src).as_posix().encode() + b"\0")
                h.update(hashlib.sha256(p.read_bytes()).digest())
        return h.hexdigest()


@lru_cache(maxsize=4)
def _identifiers(src: Path) -> frozenset[str]:
    """Every identifier in the library's sources and headers."""
    words: set[str] = set()
    for p in src.rglob("*"):
        if p.suffix in (".h", ".hpp", ".c", ".cc", ".cpp", ".inc"):
            words.update(re.findall(r"[A-Za-z_][A-Za-z0-9_]*", p.read_text(errors="replace")))
    return frozenset(words)


@dataclass(frozen=True)
class CompileFlags:
    """Everything that changes an object file, beside its source."""

    cpu: tuple[str, ...]
    defines: tuple[str, ...]
    c_std: str
    cxx_std: str
    optimize: str = "-O2"
    common: tuple[str, ...] = ("-ffunction-sections", "-fdata-sections", "-fno-common")
    cxx_only: tuple[str, ...] = ("-fno-rtti", "-fno-exceptions", "-fno-threadsafe-statics")

    def for_source(self, path: Path) -> list[str]:
        lang = [f"-std={self.c_std}"] if path.suffix == ".c" else [f"-std={self.cxx_std}", *self.cxx_only]
        # -pipe: no temporary files between the compiler's stages, so none is left when a signal ends a build
        return [*self.cpu, self.optimize, *lang, *self.common, *(f"-D{d}" for d in self.defines), "-pipe"]

    def key(self) -> str:
        return repr(self)


def compile_one(tc: ArmToolchain, flags: CompileFlags, source: Path, obj: Path, includes: list[Path],
                extra: tuple[str, ...] = ()) -> subprocess.CompletedProcess:
    compiler = tc.gcc if source.suffix == ".c" else tc.gxx
    cmd = [compiler, *flags.for_source(source), *extra, *(f"-I{i}" for i in includes), "-c", str(source), "-o", str(obj)]
    return subprocess.run(cmd, capture_output=True, text=True)


def compile_parallel(work: Callable, todo: list, *, jobs: int | None = None, done: int = 0, total: int | None = None,
                     progress: Callable[[int, int], None] | None = None) -> list:
    """work(item) for every item, JOBS at a time (default: the cores), results in TODO's order; progress(done, total)
    after each. On Ctrl-C or a termination signal the compilers running finish (their outputs are atomic) and none
    starts."""
    total = len(todo) + done if total is None else total
    pool = ThreadPoolExecutor(max_workers=jobs or os.cpu_count() or 2)
    results = []
    try:
        for r in pool.map(work, todo):
            results.append(r)
            done += 1
            if progress:
                progress(done, total)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
    return results


def build_archive(lib: TflmLibrary, tc: ArmToolchain, flags: CompileFlags, *, jobs: int | None = None,
                  progress: Callable[[int, int], None] | None = None) -> Path:
    """Compile the library into ``libtflm.a`` in the cache (or return the cached one)."""
    key = hashlib.sha256(f"{lib.fingerprint()}|{tc.version}|{flags.key()}".encode()).hexdigest()[:20]
    out_dir = cache_root() / f"tflm-{key}"
    archive = out_dir / "libtflm.a"
    if archive.is_file():
        return archive
    out_dir.mkdir(parents=True, exist_ok=True)
    # one process compiles it on every core while others needing it wait (two emulated builds started together, the
    # test workers): not every source twice at once
    with exclusive(out_dir / ".lock"):
        if archive.is_file():
            return archive
        return _compile_archive(lib, tc, flags, out_dir, archive, jobs=jobs, progress=progress)


def _compile_archive(lib: TflmLibrary, tc: ArmToolchain, flags: CompileFlags, out_dir: Path, archive: Path, *,
                     jobs: int | None, progress: Callable[[int, int], None] | None) -> Path:
    obj_dir = out_dir / "obj"
    obj_dir.mkdir(parents=True, exist_ok=True)
    sources = lib.sources()
    objs = [obj_dir / (s.relative_to(lib.src).as_posix().replace("/", "__") + ".o") for s in sources]
    todo = [(s, o) for s, o in zip(sources, objs) if not o.is_file()]
    done = len(sources) - len(todo)
    if progress:
        progress(done, len(sources))

    def work(item):
        s, o = item
        tmp = o.with_suffix(f".o.{os.getpid()}.tmp")
        r = compile_one(tc, flags, s, tmp, [lib.src])
        if r.returncode != 0:
            tmp.unlink(missing_ok=True)
            return s, r.stderr
        os.replace(tmp, o)  # an object is either complete or absent
        return s, None

    results = compile_parallel(work, todo, jobs=jobs, done=done, total=len(sources), progress=progress)
    failures = [(s, err) for s, err in results if err is not None]
    if failures:
        s, err = failures[0]
        first = next((l for l in err.splitlines() if "error" in l), err.strip()[:300])
        raise ToolchainError(f"{len(failures)} TFLM source(s) failed to compile, first {s.relative_to(lib.src)}: {first}",
                             f"Check that {lib.root} is the pinned {LIBRARY_NAME} library")
    tmp_archive = out_dir / f"libtflm.a.{os.getpid()}.tmp"
    tmp_archive.unlink(missing_ok=True)
    r = subprocess.run([tc.ar, "rcs", str(tmp_archive), *map(str, objs)], capture_output=True, text=True)
    if r.returncode != 0:
        raise ToolchainError(f"arm-none-eabi-ar failed: {r.stderr.strip()[:300]}", "Check the disk space of the cache folder")
    os.replace(tmp_archive, archive)
    return archive
