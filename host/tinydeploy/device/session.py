"""A benchmark run over an open link, for every command that reads a firmware's report (`bench` on a board,
`emulate` on QEMU): its options as a type, the run, and the exit policy."""

from __future__ import annotations

from dataclasses import dataclass

from .bench import DeviceErrorWithReport, run_bench
from .link import Link


@dataclass(frozen=True)
class BenchOptions:
    runs: int = 20
    warmup: int = 2
    timeout: float = 120.0
    idle_timeout: float = 10.0
    hello_tries: int = 5
    hello_wait: float = 2.0

    @classmethod
    def from_args(cls, args) -> "BenchOptions":
        return cls(runs=args.runs, warmup=args.warmup, timeout=args.timeout, idle_timeout=args.idle_timeout,
                   hello_tries=args.hello_tries, hello_wait=args.hello_wait)


def bench_link(link: Link, opts: BenchOptions, *, json_path: str | None = None, extra: dict | None = None,
               no_answer_hint: str | None = None) -> dict:
    """The benchmark report over an open link, as a dict; on failure the records read so far go to ``json_path``."""
    from ..console import write_json

    try:
        rep = run_bench(link, runs=opts.runs, warmup=opts.warmup, timeout=opts.timeout, idle_timeout=opts.idle_timeout,
                        hello_tries=opts.hello_tries, hello_wait=opts.hello_wait, no_answer_hint=no_answer_hint)
    except DeviceErrorWithReport as e:
        write_json(json_path, {**e.report.to_dict(), **(extra or {})})  # keep what was read
        raise
    return {**rep.to_dict(), **(extra or {})}


def golden_passed(d: dict) -> bool:
    return all(g["pass"] for g in d.get("golden") or [])


def finish(d: dict, json_path: str | None) -> int:
    """Show a report, write it to ``json_path``; the exit code: 0 when every golden vector passed, else 1."""
    from ..console import write_json
    from .report import render, render_accuracy

    render(d)
    if "accuracy" in d:
        render_accuracy(d["accuracy"])
    write_json(json_path, d)
    return 0 if golden_passed(d) else 1
