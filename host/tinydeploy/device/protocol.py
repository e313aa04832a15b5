"""Parser of the firmware's serial output: tinydeploy records (``@TD1 ... *crc``) and MLPerf Tiny
runner lines (``m-...``, ``e-...``). The wire format is documented in docs/protocol.md; the writer is
firmware/td_report.cpp.

The parser takes bytes in any chunking, never raises on what it reads, and accepts a record only
when its CRC-32 matches and its protocol version is known.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from urllib.parse import unquote

PROTOCOL_VERSION = 1
MAX_LINE = 4096  # longer lines are garbage (a record is at most a few hundred bytes)

_RECORD = re.compile(r"^@TD(?P<ver>\d{1,3}) (?P<type>[a-z_]+)(?P<fields>(?: [a-z_][a-z0-9_]*=[^ ]*)*) \*(?P<crc>[0-9a-f]{8})$")


@dataclass
class Record:
    type: str
    fields: dict[str, str]
    version: int
    raw: str

    def int(self, key: str) -> int:
        return int(self.fields[key])

    def ints(self, key: str) -> list[int]:
        v = self.fields.get(key, "")
        return [int(x) for x in v.split(",")] if v else []

    def str(self, key: str) -> str:
        return self.fields[key]

    def to_dict(self) -> dict:
        return {"type": self.type, **self.fields}


@dataclass
class Event:
    """One line from the device: a verified record, a runner line, or something rejected."""

    kind: str  # "record" | "line" | "bad-crc" | "bad-version" | "garbage"
    text: str
    record: Record | None = None


@dataclass
class Parser:
    buffer: bytearray = field(default_factory=bytearray)
    dropping: bool = False  # inside an over-long line

    def feed(self, data: bytes) -> list[Event]:
        events = []
        for b in data:
            if b in (0x0D, 0x00):  # '\r' and '\0' are dropped, as the MLPerf Tiny runner does
                continue
            if b == 0x0A:
                if self.dropping:
                    events.append(Event("garbage", "<line longer than %d bytes>" % MAX_LINE))
                elif self.buffer:
                    events.append(parse_line(bytes(self.buffer)))
                self.buffer.clear()
                self.dropping = False
                continue
            if self.dropping:
                continue
            if len(self.buffer) >= MAX_LINE:
                self.buffer.clear()
                self.dropping = True
                continue
            self.buffer.append(b)
        return events


def parse_line(raw: bytes) -> Event:
    start = raw.rfind(b"@TD")
    if start > 0:  # noise before a record on the same line (a boot banner, line noise): resynchronise
        raw = raw[start:]
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError:
        return Event("garbage", raw.decode("ascii", "replace"))
    if not text.startswith("@TD"):
        if text.startswith(("m-", "e-")) and text.isprintable():
            return Event("line", text)
        return Event("garbage", text)
    m = _RECORD.match(text)
    if not m:
        return Event("garbage", text)
    body = text[: text.rindex(" *")]
    if f"{zlib.crc32(body.encode('ascii')) & 0xFFFFFFFF:08x}" != m["crc"]:
        return Event("bad-crc", text)
    version = int(m["ver"])
    fields = {}
    for item in m["fields"].split():
        key, _, value = item.partition("=")
        fields[key] = unquote(value)
    rec = Record(m["type"], fields, version, text)
    if version != PROTOCOL_VERSION:
        return Event("bad-version", text, rec)
    return Event("record", text, rec)


def encode_record(type_: str, fields: dict, version: int = PROTOCOL_VERSION) -> str:
    """The host-side writer of a record (for documentation examples and tests of the parser)."""
    from urllib.parse import quote

    body = f"@TD{version} {type_}" + "".join(f" {k}={quote(str(v), safe='._:/+-,')}" for k, v in fields.items())
    return f"{body} *{zlib.crc32(body.encode('ascii')) & 0xFFFFFFFF:08x}\n"
