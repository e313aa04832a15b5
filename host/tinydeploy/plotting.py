"""What the study and the search both draw: the Pareto front of (cost, accuracy) points and a figure saved as PNG."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Sequence

from .fsutil import write_bytes_atomic


def pareto(points: Sequence[tuple[float, float]]) -> list[int]:
    """Indices of the points (cost, accuracy) that no other point beats (lower cost and higher accuracy are
    better), cheapest first; of identical points, the first."""
    idx = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1], i))
    front, best = [], float("-inf")
    for i in idx:
        if points[i][1] > best:
            front.append(i)
            best = points[i][1]
    return front


def save_png(fig, path: Path) -> str:
    """Write a matplotlib figure as PNG atomically and close it; returns the file name."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    write_bytes_atomic(path, buf.getvalue())
    return path.name
