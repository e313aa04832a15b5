"""Atomic file output: nothing half-written, nothing of the user's overwritten without --force."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from .errors import TinyDeployError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def default_mode(directory: bool = False) -> int:
    """What open()/mkdir() would give under the user's umask (mkstemp and mkdtemp give 0600/0700)."""
    return (0o777 if directory else 0o666) & ~_umask()


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same directory and a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, default_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def write_json_atomic(path: str | os.PathLike, obj) -> Path:
    return write_text_atomic(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def _json_default(o):
    import numpy as np

    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serializable: {type(o).__name__}")


def check_output_file(path: str | os.PathLike, force: bool) -> Path:
    """Refuse to overwrite an existing file unless ``force``."""
    path = Path(path)
    if path.exists() and not force:
        raise TinyDeployError(f"{path} already exists", "Choose another path or pass --force to overwrite it")
    return path


def check_output_dir(dest: str | os.PathLike, force: bool) -> Path:
    """Refuse an output directory that is a file, or that is not empty, unless ``force`` (before any work)."""
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise TinyDeployError(f"{dest} exists and is not a directory", "Choose another output directory with -o")
    if dest.is_dir() and any(dest.iterdir()) and not force:
        raise TinyDeployError(f"output directory {dest} is not empty",
                              "Choose another directory with -o, or pass --force to replace it")
    return dest


class StagedDirectory:
    """Build a directory next to its destination, then swap it in whole.

    A non-empty destination is refused without ``force``; with ``force`` the old directory is
    replaced only after the new one is complete, so an error never leaves half a project behind.
    """

    def __init__(self, dest: str | os.PathLike, force: bool):
        self.dest = check_output_dir(dest, force)
        self.dest.parent.mkdir(parents=True, exist_ok=True)
        self.tmp = Path(tempfile.mkdtemp(prefix=f".{self.dest.name}.", dir=self.dest.parent))
        os.chmod(self.tmp, default_mode(directory=True))

    def __enter__(self) -> Path:
        return self.tmp

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None:
            shutil.rmtree(self.tmp, ignore_errors=True)
            return False
        old = None
        if self.dest.exists():
            old = self.dest.with_name(f".{self.dest.name}.old-{os.getpid()}")
            os.replace(self.dest, old)
        os.replace(self.tmp, self.dest)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
        return False
