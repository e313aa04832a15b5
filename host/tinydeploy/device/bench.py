"""`tinydeploy bench`: ask the firmware for its benchmark report and verify it.

Handshake: ``td-hello%`` (repeated until answered, since the board may still be enumerating), then
``td-bench RUNS WARMUP%``. Records are verified (CRC, protocol version, count) and kept as they
arrive, so a failure still leaves what was read in the JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..boards import cycles_to_ms
from ..errors import DeviceError
from .link import Link
from .protocol import PROTOCOL_VERSION, Record


SUMMARY_FIELDS = {"median": "med", "p90": "p90", "min": "min", "max": "max"}  # statistic -> summary record suffix


@dataclass(frozen=True)
class Latency:
    """The summary record: counts per inference (cycles on a board, instructions on the emulator) and ms."""

    runs: int
    warmup: int
    counter: str  # "cycles" | "instructions"
    counts: dict  # median, p90, min, max
    ms: dict | None  # measured on a board; on the emulator an estimate from the counts (ESTIMATE_METHOD)
    golden_pass: int
    golden_total: int

    def to_dict(self) -> dict:
        d = {"runs": self.runs, "warmup": self.warmup, "ms": self.ms, "cycles": self.counts,
             "golden_pass": self.golden_pass, "golden_total": self.golden_total}
        if self.counter == "instructions":
            d["instructions"] = self.counts
        return d


@dataclass
class BenchReport:
    port: str
    records: list[Record] = field(default_factory=list)
    rejected: list[dict] = field(default_factory=list)
    error: str | None = None

    def of(self, type_: str) -> list[Record]:
        return [r for r in self.records if r.type == type_]

    def one(self, type_: str) -> Record | None:
        rs = self.of(type_)
        return rs[-1] if rs else None

    @property
    def cpu_hz(self) -> int:
        hello = self.one("hello")
        return int(hello.fields.get("cpu_hz", 0)) if hello else 0

    @property
    def counter(self) -> str:
        """What the counts count. Firmware before protocol field `counter` counted cycles; an emulator counts
        instructions."""
        hello = self.one("hello")
        return hello.fields.get("counter", "cycles") if hello else "cycles"

    @property
    def emulated(self) -> bool:
        return self.counter == "instructions"

    @property
    def arena(self) -> dict | None:
        arena = self.one("arena")
        return {k: int(v) for k, v in arena.fields.items()} if arena else None

    @property
    def latency(self) -> Latency | None:
        summary = self.one("summary")
        if summary is None:
            return None
        s = {k: int(v) for k, v in summary.fields.items()}
        counts = {k: s[f"cyc_{f}"] for k, f in SUMMARY_FIELDS.items()}
        if self.emulated:  # micros() is emulated time there: the board's ms come from the count, as an estimate
            ms = {k: cycles_to_ms(v, self.cpu_hz) for k, v in counts.items()} if self.cpu_hz else None
        else:
            ms = {k: s[f"us_{f}"] / 1e3 for k, f in SUMMARY_FIELDS.items()}
        return Latency(s["runs"], s["warmup"], self.counter, counts, ms, s["golden_pass"], s["golden_total"])

    def op_counts(self) -> list[tuple[str, int]]:
        """(op tag, count) in graph order."""
        return [(r.str("tag"), r.int("cycles")) for r in self.of("op")]

    def golden(self) -> list[dict]:
        return [{"index": r.int("i"), "max_diff": r.int("max_diff"), "tolerance": r.int("tol"),
                 "pass": r.str("pass") == "1", "output": r.ints("out")} for r in self.of("golden")]

    def to_dict(self) -> dict:
        hello = self.one("hello")
        cpu_hz, lat = self.cpu_hz, self.latency
        return {
            "schema": "tinydeploy.bench/1",
            "port": self.port,
            "complete": self.one("done") is not None and self.error is None,
            "error": self.error,
            "device": hello.fields if hello else None,
            "target": hello.fields.get("target", hello.fields.get("board")) if hello else None,
            "counter": self.counter,
            "ms_kind": (ESTIMATE_METHOD.format(mhz=cpu_hz / 1e6) if self.emulated else "measured") if hello else None,
            "arena": self.arena,
            "runs": [{"cycles": r.int("cycles"), "us": r.int("us")} for r in self.of("run")],
            "latency": lat.to_dict() if lat else None,
            "ops": [{"index": r.int("i"), "tag": r.str("tag"), "cycles": r.int("cycles"),
                     "ms": cycles_to_ms(r.int("cycles"), cpu_hz) if cpu_hz else None} for r in self.of("op")],
            "golden": self.golden(),
            "errors": [r.fields for r in self.of("error")],
            "rejected_lines": self.rejected,
            "records": [r.to_dict() for r in self.records],
        }


# How an emulated run's instruction counts become milliseconds on the board.
ESTIMATE_METHOD = ("estimate: emulated instructions / {mhz:g} MHz, taking one instruction per clock cycle; "
                   "the board needs more cycles than instructions (multi-cycle loads, multiplies, branches, "
                   "flash wait states), so real times are longer")


class ProtocolVersionError(DeviceError):
    """The firmware writes records of another protocol version: retrying cannot help."""


def _check_version(ev) -> None:
    if ev.kind == "bad-version":
        raise ProtocolVersionError(f"the firmware speaks report protocol version {ev.record.version}, this tinydeploy "
                                   f"reads version {PROTOCOL_VERSION}",
                                   "Rebuild and flash the firmware with this tinydeploy (tinydeploy build, tinydeploy flash)")


NO_ANSWER_HINT = "Is the tinydeploy firmware flashed? Run `tinydeploy flash PROJECT`, or press reset"


def handshake(link: Link, *, attempts: int = 5, reply_timeout: float = 2.0, no_answer_hint: str | None = None) -> Record:
    """Send td-hello% until the firmware answers with a hello record."""
    for _ in range(attempts):
        link.send("td-hello")
        try:
            for ev in link.events(timeout=reply_timeout, idle_timeout=reply_timeout):
                _check_version(ev)
                if ev.kind == "record" and ev.record.type == "hello":
                    # the m-ready that follows is discarded by run_bench's drain
                    return ev.record
        except ProtocolVersionError:
            raise
        except DeviceError:
            continue  # silence or a timeout: the board may still be enumerating; ask again
    raise DeviceError(f"no answer to td-hello from {link.name} after {attempts} tries", no_answer_hint or NO_ANSWER_HINT)


def run_bench(link: Link, *, runs: int = 20, warmup: int = 2, timeout: float = 120.0, idle_timeout: float = 10.0,
              hello_tries: int = 5, hello_wait: float = 2.0, no_answer_hint: str | None = None) -> BenchReport:
    report = BenchReport(port=link.name)
    try:
        handshake(link, attempts=hello_tries, reply_timeout=hello_wait, no_answer_hint=no_answer_hint)
        link.drain(0.2)
        link.send(f"td-bench {int(runs)} {int(warmup)}")
        for ev in link.events(timeout=timeout, idle_timeout=idle_timeout):
            _check_version(ev)
            if ev.kind in ("bad-crc", "garbage"):
                report.rejected.append({"kind": ev.kind, "text": ev.text[:200]})
                continue
            if ev.kind == "line":
                if ev.text.startswith("e-"):
                    raise DeviceError(f"the firmware answered {ev.text}", "Rebuild and flash the firmware with this tinydeploy")
                continue
            rec = ev.record
            if rec.type == "hello" and report.records:
                raise DeviceError("the device restarted its report in the middle (reset or brown-out?)",
                                  "Check the USB cable and power, then run again")
            report.records.append(rec)
            if rec.type == "done":
                break  # the m-ready that follows is not needed
        done = report.one("done")
        if done.int("records") != len(report.records):
            raise DeviceError(f"the report has {len(report.records)} valid records of {done.int('records')} sent "
                              f"({len(report.rejected)} lines rejected: bad checksum or garbage)",
                              "A noisy link: check the cable and run again")
        err = report.one("error")
        if err:
            raise DeviceError(_device_error_text(err), _device_error_hint(err))
    except DeviceError as e:
        report.error = str(e)
        raise DeviceErrorWithReport(e, report) from None
    return report


def _device_error_text(err: Record) -> str:
    code = err.fields.get("code")
    if code == "alloc":
        return f"the firmware's AllocateTensors() failed: {err.fields.get('detail', '')}"
    return f"the firmware reported an error: {code} ({err.fields.get('detail', '')})"


def _device_error_hint(err: Record) -> str:
    if err.fields.get("code") == "alloc":
        return "Rebuild with a larger arena: the measured need is in the arena record (see --json)"
    return "See the firmware's report in --json"


class DeviceErrorWithReport(DeviceError):
    """A DeviceError that carries the records already read."""

    def __init__(self, error: DeviceError, report: BenchReport):
        self.report = report
        super().__init__(error.what, error.hint, exit_code=error.exit_code)
