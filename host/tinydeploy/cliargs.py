"""Argument types shared by the stages' command lines: a bad value is argparse's one-line usage error, exit 2."""

from __future__ import annotations


def bounded_int(lo: int, hi: int):
    """An argparse type: an integer in [lo, hi] (argparse turns the ValueError into a one-line usage error, exit 2)."""
    def parse(text: str) -> int:
        v = int(text)
        if not lo <= v <= hi:
            raise ValueError(text)
        return v

    parse.__name__ = f"integer from {lo} to {hi}"
    return parse


def bounded_float(lo: float, hi: float):
    """An argparse type: a finite number in [lo, hi]."""
    def parse(text: str) -> float:
        v = float(text)
        if not lo <= v <= hi:  # NaN fails this too
            raise ValueError(text)
        return v

    parse.__name__ = f"number from {lo:g} to {hi:g}"
    return parse


def add_bench_options(b) -> None:
    """The options of a benchmark run, shared by `bench` (a board) and `emulate`; bounds are the firmware's."""
    b.add_argument("--runs", type=bounded_int(1, 100), default=20, help="timed inferences (default 20, 1 to 100)")
    b.add_argument("--warmup", type=bounded_int(0, 1000), default=2, help="warm-up inferences (default 2, at most 1000)")
    b.add_argument("--timeout", type=bounded_float(0.1, 86_400), default=120.0,
                   help="seconds for the whole report (default 120)")
    b.add_argument("--idle-timeout", type=bounded_float(0.1, 3_600), default=10.0,
                   help="seconds of silence that end the report (default 10)")
    b.add_argument("--hello-tries", type=bounded_int(1, 100), default=5,
                   help="td-hello attempts before giving up (default 5; a board may still be enumerating)")
    b.add_argument("--hello-wait", type=bounded_float(0.05, 60), default=2.0,
                   help="seconds to wait for each td-hello answer (default 2)")
    b.add_argument("--accuracy", metavar="SAMPLES.npz", help="also stream these test inputs (x, y) and report on-device accuracy")
    b.add_argument("--limit", type=bounded_int(1, 100000), default=200, help="at most this many --accuracy samples (default 200)")
