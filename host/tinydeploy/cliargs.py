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
