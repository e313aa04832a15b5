"""Output: rich tables and progress for people, JSON for scripts (--json), one place for formatting numbers."""

from __future__ import annotations

import sys

from rich.console import Console

# Wide enough for the tables when output goes to a file or a CI log.
console = Console(highlight=False, width=None if sys.stdout.isatty() else 160)
err_console = Console(stderr=True, highlight=False, width=None if sys.stderr.isatty() else 160)


def humans_to_stderr() -> None:
    """With `--json -`, stdout carries the JSON document alone: what people read goes to stderr."""
    console.file = sys.stderr


def kib(n: int | float | None) -> str:
    if n is None:
        return "-"
    return f"{n / 1024:,.1f} KiB"


def human(n: int | float | None) -> str:
    if n is None:
        return "-"
    for unit, div in (("G", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(n) >= div:
            return f"{n / div:.2f}{unit}"
    return f"{n:,.0f}"


def progress(**kw):
    """A rich progress bar that stays quiet when stderr is not a terminal."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    return Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                    console=err_console, disable=not sys.stderr.isatty(), **kw)


def write_json(path: str | None, obj) -> None:
    """--json FILE: the result as JSON, written atomically; '-' is stdout (which then carries nothing else)."""
    if not path:
        return
    if path == "-":
        import json

        from .fsutil import _json_default

        sys.stdout.write(json.dumps(obj, indent=2, default=_json_default) + "\n")
        return
    from .fsutil import write_json_atomic

    write_json_atomic(path, obj)
