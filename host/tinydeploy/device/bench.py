"""`tinydeploy bench`: ask the firmware for its benchmark report and verify it.

Handshake: ``td-hello%`` (repeated until answered, since the board may still be enumerating), then
``td-bench RUNS WARMUP%``. Records are verified (CRC, protocol version, count) and kept as they
arrive, so a failure still leaves what was read in the JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import DeviceError
from .link import Link
from .protocol import PROTOCOL_VERSION, Record


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

    def to_dict(self) -> dict:
        hello, arena, summary = self.one("hello"), self.one("arena"), self.one("summary")
        cpu_hz = int(hello.fields.get("cpu_hz", 0)) if hello else 0
        # Firmware before protocol field `counter` counted cycles; an emulator counts instructions.
        counter = hello.fields.get("counter", "cycles") if hello else "cycles"
        emulated = counter == "instructions"
        runs = [{"cycles": r.int("cycles"), "us": r.int("us")} for r in self.of("run")]
        d = {
            "schema": "tinydeploy.bench/1",
            "port": self.port,
            "complete": self.one("done") is not None and self.error is None,
            "error": self.error,
            "device": hello.fields if hello else None,
            "target": hello.fields.get("target", hello.fields.get("board")) if hello else None,
            "counter": counter,
            "ms_kind": (ESTIMATE_METHOD.format(mhz=cpu_hz / 1e6) if emulated else "measured") if hello else None,
            "arena": {k: int(v) for k, v in arena.fields.items()} if arena else None,
            "runs": runs,
            "latency": None,
            "ops": [{"index": r.int("i"), "tag": r.str("tag"), "cycles": r.int("cycles"),
                     "ms": (r.int("cycles") / cpu_hz * 1e3) if cpu_hz else None} for r in self.of("op")],
            "golden": [{"index": r.int("i"), "max_diff": r.int("max_diff"), "tolerance": r.int("tol"),
                        "pass": r.str("pass") == "1", "output": r.ints("out")} for r in self.of("golden")],
            "errors": [r.fields for r in self.of("error")],
            "rejected_lines": self.rejected,
            "records": [r.to_dict() for r in self.records],
        }
        if summary:
            s = {k: int(v) for k, v in summary.fields.items()}
            counts = {"median": s["cyc_med"], "p90": s["cyc_p90"], "min": s["cyc_min"], "max": s["cyc_max"]}
            if emulated:  # micros() is emulated time there: the board's ms come from the count, as an estimate
                ms = {k: v / cpu_hz * 1e3 for k, v in counts.items()} if cpu_hz else None
            else:
                ms = {"median": s["us_med"] / 1e3, "p90": s["us_p90"] / 1e3, "min": s["us_min"] / 1e3, "max": s["us_max"] / 1e3}
            d["latency"] = {"runs": s["runs"], "warmup": s["warmup"], "ms": ms, "cycles": counts,
                            "golden_pass": s["golden_pass"], "golden_total": s["golden_total"]}
            if emulated:
                d["latency"]["instructions"] = counts
        return d


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


def handshake(link: Link, *, attempts: int = 5, reply_timeout: float = 2.0) -> Record:
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
    raise DeviceError(f"no answer to td-hello from {link.name} after {attempts} tries",
                      "Is the tinydeploy firmware flashed? Run `tinydeploy flash PROJECT`, or press reset")


def run_bench(link: Link, *, runs: int = 20, warmup: int = 2, timeout: float = 120.0, idle_timeout: float = 10.0,
              hello_tries: int = 5, hello_wait: float = 2.0) -> BenchReport:
    report = BenchReport(port=link.name)
    try:
        handshake(link, attempts=hello_tries, reply_timeout=hello_wait)
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
