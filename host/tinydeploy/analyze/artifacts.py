"""What the analyze stage hands to the others (build, study, the CLI), as frozen types; JSON only at the edges
(``to_dict``), with the same keys the ``--json`` output has always had."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from .layers import OpStats


@dataclass(frozen=True)
class ArenaFigure:
    """The tensor arena from the TFLM host interpreter's recording allocator, corrected to the 32-bit device."""

    host_total_bytes: int
    host_head_bytes: int | None
    host_tail_bytes: int | None
    categories: dict  # allocation kind -> {bytes_host, allocations, ratio_32bit, bytes_32bit}
    device_bytes: int  # the 32-bit figure, plus scratch_bytes
    method: str
    scratch_bytes: int = 0  # the largest scratch buffer a CMSIS-NN kernel asks for (analyze/scratch.py), included

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class ArenaNeed:
    """The arena a build with ``kernels`` allocates by default for the model, from the host's figure (ArenaFigure):
    with an offline plan the head exact (``planned``) and the margin on the estimated tail only, else the margin on
    the whole; the bytes the kernels keep in flash instead (``flash_bytes``) left out of the tail."""

    kernels: str
    planned: bool
    head_bytes: int  # the offline plan with the CMSIS-NN scratch buffers placed, or TFLM's planning space (planned)
    tail_bytes: int  # the estimated rest (planned), less flash_bytes
    flash_bytes: int
    needed_bytes: int  # what the runtime needs, by the estimate
    allocated_bytes: int  # with the margin: what build allocates

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class FlashEstimate:
    model_bytes: int
    framework_bytes: int
    kernel_bytes: dict  # op name -> assumed kernel code size
    total_bytes: int
    method: str
    kind: str = "estimate"
    # tinydeploy's kernels' constants the build writes (model_params.cpp: per-channel parameters, ADD tables)
    constants_bytes: int = 0

    def to_dict(self) -> dict:
        return {"kind": self.kind, "model_bytes": self.model_bytes, "framework_bytes": self.framework_bytes,
                "kernel_bytes": dict(self.kernel_bytes), "constants_bytes": self.constants_bytes,
                "total_bytes": self.total_bytes, "method": self.method}


@dataclass(frozen=True)
class Budget:
    need_bytes: int | None  # None: not known (the arena was not measured)
    available_bytes: int

    @property
    def ok(self) -> bool:
        return self.need_bytes is None or self.need_bytes <= self.available_bytes

    @property
    def headroom_bytes(self) -> int | None:
        return None if self.need_bytes is None else self.available_bytes - self.need_bytes


@dataclass(frozen=True)
class FitVerdict:
    flash: Budget
    ram: Budget
    arena_bytes: int | None
    firmware_bytes: int
    firmware_kind: str
    firmware_method: str
    margin: str
    peak_op: OpStats | None
    largest_weights: tuple[OpStats, ...]

    @property
    def fits(self) -> bool | None:
        """True or False; None when flash fits but the RAM need is not known."""
        if self.ram.need_bytes is None:
            return None if self.flash.ok else False
        return self.flash.ok and self.ram.ok

    def overruns(self) -> dict[str, int]:
        """Bytes by which the model exceeds each budget, only for those it exceeds."""
        return {name: -b.headroom_bytes for name, b in (("flash", self.flash), ("RAM", self.ram)) if not b.ok}

    def to_dict(self) -> dict:
        return {
            "fits": self.fits,
            "flash": {"need_bytes": self.flash.need_bytes, "available_bytes": self.flash.available_bytes,
                      "headroom_bytes": self.flash.headroom_bytes, "ok": self.flash.ok, "kind": "estimate"},
            "ram": {"need_bytes": self.ram.need_bytes, "arena_bytes": self.arena_bytes,
                    "available_bytes": self.ram.available_bytes, "firmware_bytes": self.firmware_bytes,
                    "firmware_kind": self.firmware_kind, "firmware_method": self.firmware_method,
                    "headroom_bytes": self.ram.headroom_bytes, "ok": self.ram.ok, "margin": self.margin},
            "peak_activation_op": self.peak_op.to_dict() if self.peak_op else None,
            "largest_weights": [o.to_dict() for o in self.largest_weights],
        }
