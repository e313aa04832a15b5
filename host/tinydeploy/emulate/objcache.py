"""Compiled firmware objects kept by what the compiler sees, so a source compiles once for every project it is in.

A firmware source's object depends on the compiler, its code-generation flags and the source after preprocessing
(every header it includes, every define): the key is a hash of exactly those. The defines themselves are not in it:
what they do is in the preprocessed text, so a project-wide define a source does not read (the model's operator
count, TD_MAX_OPS, differs from model to model) does not compile every kernel again. Most of a project's sources (the
kernels, the runtime glue) are the same in every project and take seconds each against TFLM's headers, while
preprocessing takes a fraction of a second. `__FILE__` is made relative to the source's folder
(`-fmacro-prefix-map`), so the same file in two projects preprocesses the same. A compile that printed anything
(a warning) is not kept: its messages name the project it came from and must be seen where they arise.

Objects live in ``<cache>/objects/``, written atomically; the least recently used are removed past
``MAX_OBJECTS``."""

from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

from ..fsutil import cache_root
from .tflm_library import compile_one
from .toolchain import ArmToolchain

MAX_OBJECTS = 400


def _root() -> Path:
    return cache_root() / "objects"


def compile_cached(tc: ArmToolchain, flags, source: Path, obj: Path, includes: list[Path],
                   extra: tuple[str, ...] = ()) -> tuple[subprocess.CompletedProcess, bool]:
    """Compile SOURCE into OBJ, or copy the object kept for the same preprocessed input: (result, from the cache)."""
    compiler = tc.gcc if source.suffix == ".c" else tc.gxx
    # __FILE__ relative: its effect is in the preprocessed text, so the map itself stays out of the key
    mapped = (*extra, f"-fmacro-prefix-map={source.parent}/=")
    pre = subprocess.run([compiler, *flags.for_source(source), *mapped, *(f"-I{i}" for i in includes), "-E", "-P",
                          str(source)], capture_output=True)
    if pre.returncode != 0:  # let the compile say what is wrong
        key = None
    else:
        h = hashlib.sha256()
        codegen = [f for f in flags.for_source(source) if not f.startswith(("-D", "-U"))]
        for part in (tc.version, compiler, source.suffix, *codegen, *extra):
            h.update(part.encode() + b"\0")
        h.update(pre.stdout)
        key = h.hexdigest()
        kept = _root() / key[:2] / f"{key}.o"
        if kept.is_file():
            tmp = obj.with_name(f"{obj.name}.{os.getpid()}.tmp")
            tmp.write_bytes(kept.read_bytes())
            os.replace(tmp, obj)
            os.utime(kept)  # recently used
            return subprocess.CompletedProcess([], 0, "", ""), True
    r = compile_one(tc, flags, source, obj, includes, extra=mapped)
    if key is not None and r.returncode == 0 and not r.stderr.strip():
        kept.parent.mkdir(parents=True, exist_ok=True)
        tmp = kept.with_name(f"{kept.name}.{os.getpid()}.{id(obj)}.tmp")
        tmp.write_bytes(obj.read_bytes())
        os.replace(tmp, kept)  # complete or absent, also with two builds at once
    return r, False


def prune(limit: int = MAX_OBJECTS) -> None:
    """Remove the least recently used objects past LIMIT."""
    root = _root()
    if not root.is_dir():
        return
    objs = sorted(root.glob("*/*.o"), key=lambda p: p.stat().st_mtime if p.exists() else 0)
    for p in objs[:max(0, len(objs) - limit)]:
        p.unlink(missing_ok=True)
