"""C source text from Python values: byte arrays, identifiers, string literals. Deterministic."""

from __future__ import annotations

import re

import numpy as np

_C_KEYWORDS = frozenset(
    "auto break case char const continue default do double else enum extern float for goto if inline int long "
    "register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while "
    "class namespace template typename public private protected virtual new delete this true false bool".split()
)


def c_identifier(name: str, fallback: str = "model") -> str:
    """A valid C/C++ identifier made from ``name`` (non-identifier characters become '_')."""
    ident = re.sub(r"[^A-Za-z0-9_]", "_", name).strip("_") or fallback
    ident = re.sub(r"_+", "_", ident)
    if ident[0].isdigit():
        ident = f"m_{ident}"
    if ident in _C_KEYWORDS:
        ident += "_"
    return ident


def c_string(text: str) -> str:
    """Escape ``text`` for the inside of a C string literal (ASCII only; others as octal escapes)."""
    out = []
    for b in text.encode("utf-8"):
        c = chr(b)
        if c in '"\\':
            out.append("\\" + c)
        elif 0x20 <= b < 0x7F and c != "?":  # '?' avoided: trigraphs
            out.append(c)
        else:
            out.append(f"\\{b:03o}")
    return "".join(out)


def c_comment(text: str) -> str:
    """Text safe inside a // comment (no newlines, no trailing backslash)."""
    return re.sub(r"[\x00-\x1f\x7f\\]", "?", text)


def byte_array(data: bytes, per_line: int = 12, indent: str = "    ") -> str:
    """``0x1c, 0x00, ...`` lines for an unsigned char array initializer."""
    hexes = [f"0x{b:02x}" for b in data]
    return "\n".join(indent + ", ".join(hexes[i:i + per_line]) + "," for i in range(0, len(hexes), per_line))


def int_array(values, per_line: int = 16, indent: str = "    ") -> str:
    """``-3, 17, ...`` lines for an integer array initializer (int8 to int32 values)."""
    vals = [str(int(v)) for v in np.asarray(values, dtype=np.int64).reshape(-1)]
    if not vals:
        return indent + "0,  // empty"
    return "\n".join(indent + ", ".join(vals[i:i + per_line]) + "," for i in range(0, len(vals), per_line))
