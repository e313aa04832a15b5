"""Atomic file output: nothing half-written, nothing of the user's overwritten without --force."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path

from .errors import TinyDeployError


def cache_root() -> Path:
    """Where tinydeploy keeps what it can make again (the compiled TFLM library, decoded datasets):
    $TINYDEPLOY_CACHE, else $XDG_CACHE_HOME/tinydeploy, else ~/.cache/tinydeploy."""
    base = os.environ.get("TINYDEPLOY_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "tinydeploy")
    return Path(base)


@contextlib.contextmanager
def exclusive(path: str | os.PathLike):
    """Hold an advisory lock on PATH (created if absent) for the block: processes making the same cached thing (the
    compiled TFLM library) wait for the first one and use its result instead of making it again at the same time.
    Without fcntl (not POSIX), no lock: each process makes its own, atomically, as before."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - POSIX everywhere tinydeploy runs
        yield
        return
    with open(path, "a") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


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


def _nearest_existing(path: Path) -> Path:
    p = path
    while not p.exists() and p != p.parent:
        p = p.parent
    return p


def _require_writable(directory: Path, what: str) -> None:
    """Create and remove a file in ``directory`` (what root cannot do either: a read-only or virtual file system)."""
    try:
        fd, probe = tempfile.mkstemp(prefix=".tinydeploy-probe.", dir=directory)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise TinyDeployError(f"{what} cannot be written: {directory} is not writable ({e.strerror or e})",
                              "Choose a path in a directory you can write") from None


def check_writable_file(path: str | os.PathLike, what: str = "output file") -> Path:
    """A file path that can be written: not a directory, under a writable directory (missing parents are made
    when the file is written). Checked before any work, so that a run never fails at its last step."""
    path = Path(path)
    if path.is_dir():
        raise TinyDeployError(f"{what} {path} is a directory", "Name a file, e.g. DIR/result.json")
    parent = _nearest_existing(path.absolute().parent)
    if not parent.is_dir():
        raise TinyDeployError(f"{what} {path}: {parent} is a file, not a directory", "Choose another path")
    _require_writable(parent, f"{what} {path}")
    return path


def check_output_file(path: str | os.PathLike, force: bool) -> Path:
    """Refuse to overwrite an existing file unless ``force``; refuse a path that cannot be written."""
    path = check_writable_file(path)
    if path.exists() and not force:
        raise TinyDeployError(f"{path} already exists", "Choose another path or pass --force to overwrite it")
    return path


def _refuse_unsafe(dest: Path, inputs) -> None:
    """Directories that no --force may replace: the root, the home directory, the current directory or any of its
    ancestors, and any directory that holds one of the command's inputs."""
    real = dest.resolve()
    home = Path.home().resolve()
    if real == real.parent or real == home or Path.cwd().resolve().is_relative_to(real):
        where = "the root directory" if real == real.parent else "your home directory" if real == home else \
            "the current directory" if real == Path.cwd().resolve() else "a parent of the current directory"
        raise TinyDeployError(f"output directory {dest} is {where}, which tinydeploy never replaces (not even with "
                              f"--force)", "Name a new directory for the output with -o, e.g. -o out")
    for i in inputs:
        if i is not None and Path(i).exists() and Path(i).resolve().is_relative_to(real):
            raise TinyDeployError(f"output directory {dest} holds the input {i}, which replacing it would delete "
                                  f"(not even --force does that)", "Name another directory for the output with -o")


def check_output_dir(dest: str | os.PathLike, force: bool, *, inputs=(), foreign=None) -> Path:
    """The one output-directory guard, checked before any work.

    Refused always: a path that is a file, the root, the home or current directory or one of its ancestors, a
    directory holding one of ``inputs``, and one whose parent cannot be written. Refused without ``force``: a
    non-empty directory, unless ``foreign`` (a function of the directory: what in it is not a previous run's own
    output, or None) finds nothing there that is not its command's own.
    """
    dest = Path(dest)
    if dest.exists() and not dest.is_dir():
        raise TinyDeployError(f"{dest} exists and is not a directory", "Choose another output directory with -o")
    _refuse_unsafe(dest, inputs)
    _require_writable(_nearest_existing(dest.absolute().parent), f"output directory {dest}")
    if dest.is_dir() and not force:
        found = next((p.name for p in sorted(dest.iterdir())), None) if foreign is None else foreign(dest)
        if found is not None:
            raise TinyDeployError(f"output directory {dest} is not empty (it holds {found})",
                                  "Choose another directory with -o, or pass --force to replace it")
    return dest


class StagedDirectory:
    """Build a directory next to its destination, then swap it in whole.

    A non-empty destination is refused without ``force``; with ``force`` the old directory is
    replaced only after the new one is complete, so an error never leaves half a project behind.
    """

    def __init__(self, dest: str | os.PathLike, force: bool, *, inputs=()):
        self.dest = check_output_dir(dest, force, inputs=inputs).resolve()  # only the output itself is ever renamed
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
