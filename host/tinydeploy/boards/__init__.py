"""Board profiles as data: ``boards/<id>.json``. Add a board by adding a file."""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources

from ..errors import TinyDeployError


def cycles_to_ms(count: int | float, cpu_hz: float) -> float:
    """The one conversion of a count (cycles measured on a board, or instructions taken one per cycle as an
    estimate) to milliseconds at a clock of ``cpu_hz``."""
    return count / cpu_hz * 1e3


@dataclass(frozen=True)
class Board:
    id: str
    name: str
    mcu: str
    core: str
    cpu_mhz: int
    flash_bytes: int
    ram_bytes: int
    bootloader_flash_bytes: int
    reserve_flash_bytes: int
    reserve_ram_bytes: int
    reserve_kind: str
    reserve_method: str
    platformio: dict
    usb: dict
    gcc_flags: tuple[str, ...]
    compile: dict  # defines and language standards of the board's build (PlatformIO's Arduino core)

    @property
    def cpu_hz(self) -> int:
        return self.cpu_mhz * 1_000_000

    def ms(self, count: int | float) -> float:
        """Milliseconds for ``count`` cycles at this board's clock."""
        return cycles_to_ms(count, self.cpu_hz)

    @property
    def app_flash_bytes(self) -> int:
        """Flash left for the model and TFLM after the bootloader and the Arduino core."""
        return self.flash_bytes - self.bootloader_flash_bytes - self.reserve_flash_bytes

    @property
    def app_ram_bytes(self) -> int:
        """RAM left for the tensor arena after the Arduino core."""
        return self.ram_bytes - self.reserve_ram_bytes

    def with_reserve(self, flash: int | None = None, ram: int | None = None) -> "Board":
        from dataclasses import replace

        b = self
        if flash is not None:
            b = replace(b, reserve_flash_bytes=int(flash), reserve_kind="user", reserve_method="set by the user")
        if ram is not None:
            b = replace(b, reserve_ram_bytes=int(ram), reserve_kind="user", reserve_method="set by the user")
        return b

    def to_dict(self) -> dict:
        return {
            "id": self.id, "name": self.name, "mcu": self.mcu, "core": self.core, "cpu_mhz": self.cpu_mhz,
            "flash_bytes": self.flash_bytes, "ram_bytes": self.ram_bytes,
            "bootloader_flash_bytes": self.bootloader_flash_bytes,
            "reserve": {"flash_bytes": self.reserve_flash_bytes, "ram_bytes": self.reserve_ram_bytes,
                        "kind": self.reserve_kind, "method": self.reserve_method},
            "app_flash_bytes": self.app_flash_bytes, "app_ram_bytes": self.app_ram_bytes,
        }


def available() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files(__package__).iterdir() if p.name.endswith(".json"))


def load(board_id: str) -> Board:
    path = resources.files(__package__) / f"{board_id}.json"
    if not path.is_file():
        raise TinyDeployError(f"unknown board {board_id!r}", f"Known boards: {', '.join(available())}")
    d = json.loads(path.read_text())
    r = d["reserve"]
    return Board(
        id=d["id"], name=d["name"], mcu=d["mcu"], core=d["core"], cpu_mhz=d["cpu_mhz"],
        flash_bytes=d["flash_bytes"], ram_bytes=d["ram_bytes"], bootloader_flash_bytes=d["bootloader_flash_bytes"],
        reserve_flash_bytes=r["flash_bytes"], reserve_ram_bytes=r["ram_bytes"], reserve_kind=r["kind"],
        reserve_method=r["method"], platformio=d["platformio"], usb=d["usb"], gcc_flags=tuple(d["gcc_flags"]),
        compile=d["compile"],
    )


def from_args(args) -> Board:
    """The board of a command's --board, with its --reserve-flash/--reserve-ram overrides (each less than the board
    has: a reserve that leaves nothing is a typo, not a budget)."""
    b = load(args.board)
    flash, ram = getattr(args, "reserve_flash", None), getattr(args, "reserve_ram", None)
    if flash is not None and flash >= b.flash_bytes - b.bootloader_flash_bytes:
        raise TinyDeployError(f"--reserve-flash {flash} leaves nothing of the {b.name}'s "
                              f"{b.flash_bytes - b.bootloader_flash_bytes:,} B of flash after the bootloader",
                              f"Pass the Arduino core's own flash in bytes (the profile assumes {b.reserve_flash_bytes:,})")
    if ram is not None and ram >= b.ram_bytes:
        raise TinyDeployError(f"--reserve-ram {ram} leaves nothing of the {b.name}'s {b.ram_bytes:,} B of RAM",
                              f"Pass the Arduino core's own RAM in bytes (the profile assumes {b.reserve_ram_bytes:,})")
    return b.with_reserve(flash, ram)
