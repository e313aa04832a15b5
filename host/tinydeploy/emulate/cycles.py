"""Estimated Cortex-M4 cycles beside the emulator's exact instruction counts.

QEMU counts instructions; the field publishes cycles, and on a Cortex-M4 loads, multiple transfers and taken
branches take more than one. ``cycles_plugin.c`` is a QEMU TCG plugin (plugin API v1, which QEMU 7.2 loads) that
gives every executed instruction the Cortex-M4 Technical Reference Manual's timing and logs the running totals at
every call of the firmware's counter function (``td::board_counter``, which the firmware's profiler and latency
timer read). ``estimate()`` finds the last profiled inference in that log (its per-op instruction counts must
equal the firmware's own, to the counter's 40-instruction tick) and returns each op's cycles and the inference's.

The plugin is compiled once with the host's C compiler into the cache; without one, emulate runs without the estimate
and says so.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from ..errors import ToolchainError
from ..fsutil import cache_root, write_bytes_atomic

SOURCE = Path(__file__).with_name("cycles_plugin.c")
COUNTER_SYMBOL = "_ZN2td13board_counterEv"  # td::board_counter(), firmware/td_board.h
TICK = 40  # instructions per tick of the emulated counter (mps2_an386.json): the firmware's counts are this coarse
METHOD = ("estimate, not a measurement: the Cortex-M4 Technical Reference Manual's instruction timings (ARM DDI 0439B, "
          "table 3-1) summed over the emulated instruction stream by a QEMU TCG plugin: data processing and "
          "(DSP) multiplies 1, LDR/STR 2 or 1 when pipelined after another, LDRD/STRD 3, LDM/STM/PUSH/POP 1+N, a taken "
          "branch 1+P with P = 2, SDIV 7, VDIV/VSQRT 14; flash wait states, cache, bus contention and interlocks between "
          "dependent instructions are not modelled")


def build_plugin() -> Path:
    """The plugin's shared object, compiled once per source into the cache."""
    src = SOURCE.read_bytes()
    out = cache_root() / f"cycles-plugin-{hashlib.sha256(src).hexdigest()[:12]}.so"
    if out.is_file():
        return out
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        raise ToolchainError("no host C compiler to build the cycle-estimate plugin", "Install one with `apt-get install gcc`")
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".build.so")
    r = subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(tmp), str(SOURCE)], capture_output=True, text=True)
    if r.returncode != 0:
        tmp.unlink(missing_ok=True)
        first = (r.stderr.strip().splitlines() or ["no output"])[0]
        raise ToolchainError(f"the cycle-estimate plugin does not compile: {first}", "Check the host's C compiler (gcc)")
    write_bytes_atomic(out, tmp.read_bytes())
    tmp.unlink(missing_ok=True)
    return out


def counter_address(elf: Path) -> int:
    """The address of the firmware's counter function, from the ELF's symbols."""
    nm = shutil.which("arm-none-eabi-nm")
    if nm is None:
        raise ToolchainError("arm-none-eabi-nm is not installed", "Install it with `apt-get install binutils-arm-none-eabi`")
    for line in subprocess.run([nm, str(elf)], capture_output=True, text=True, check=True).stdout.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == COUNTER_SYMBOL:
            return int(parts[0], 16)
    raise ToolchainError(f"{elf} has no {COUNTER_SYMBOL}", "Rebuild the project with this tinydeploy (tinydeploy build --force)")


@dataclass
class CycleProbe:
    """The plugin's arguments for one QEMU run, and where its log goes."""

    plugin: Path
    mark: int
    log: Path
    profile: Path | None = None  # also each translated block's instructions and executions, written at QEMU's exit

    @classmethod
    def for_elf(cls, elf: Path, log: Path, profile: Path | None = None) -> "CycleProbe":
        return cls(build_plugin(), counter_address(elf), log, profile)

    def qemu_args(self) -> tuple[str, ...]:
        extra = f",profile={self.profile}" if self.profile else ""
        return ("-plugin", f"{self.plugin},mark={self.mark:x},out={self.log}{extra}")

    def entries(self) -> list[tuple[int, int]]:
        """(instructions, cycles) so far at each call of the counter."""
        if not self.log.is_file():
            return []
        out = []
        for line in self.log.read_text().splitlines():
            a, _, b = line.partition(" ")
            if a.isdigit() and b.strip().isdigit():
                out.append((int(a), int(b)))
        return out


def estimate(entries: list[tuple[int, int]], ops: list[dict]) -> dict | None:
    """Per-op and per-inference cycle estimates of the last profiled inference, or None when the log has no run of
    counter calls whose instruction deltas are the firmware's per-op counts (``ops``: the bench's, tag and counts)."""
    n = len(ops)
    if n == 0 or len(entries) < 2 * n + 2:
        return None
    want = [int(o["cycles"]) for o in ops]  # the firmware's per-op counts (instructions on the emulator)
    # op k's begin and end are consecutive calls, ops one after another; the latency timer's calls frame them
    for j in range(len(entries) - 2 * n - 1, 0, -1):
        if all(abs((entries[j + 2 * k + 1][0] - entries[j + 2 * k][0]) - want[k]) <= TICK for k in range(n)):
            first, last = entries[j - 1], entries[j + 2 * n]
            # instructions_exact: the plugin's count between the op's two counter calls, to the instruction (the
            # counter's own call between them included, the same for every op and build)
            per_op = [{"index": k, "tag": ops[k].get("tag"), "instructions": want[k],
                       "instructions_exact": entries[j + 2 * k + 1][0] - entries[j + 2 * k][0],
                       "cycles": entries[j + 2 * k + 1][1] - entries[j + 2 * k][1]} for k in range(n)]
            insns, cycles = last[0] - first[0], last[1] - first[1]
            return {"method": METHOD, "instructions_per_inference": insns, "cycles_per_inference": cycles,
                    "cycles_per_instruction": round(cycles / insns, 3) if insns else None, "ops": per_op}
    return None
