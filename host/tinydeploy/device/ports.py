"""Serial ports, and which of them is a known board (by USB vendor and product id, from boards/*.json)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import DeviceError


@dataclass
class Port:
    device: str
    description: str
    vid: int | None
    pid: int | None
    serial_number: str | None
    board: str | None  # board id when recognised
    mode: str | None  # "sketch" | "bootloader" | ...

    def to_dict(self) -> dict:
        return {**self.__dict__, "vid": None if self.vid is None else f"0x{self.vid:04x}",
                "pid": None if self.pid is None else f"0x{self.pid:04x}"}


def _known_ids() -> dict[tuple[int, int], tuple[str, str]]:
    from .. import boards

    ids = {}
    for bid in boards.available():
        b = boards.load(bid)
        vid = int(b.usb["vid"], 16)
        for pid, mode in b.usb["pids"].items():
            ids[(vid, int(pid, 16))] = (bid, mode)
    return ids


def list_ports() -> list[Port]:
    from serial.tools import list_ports as lp

    known = _known_ids()
    out = []
    for p in sorted(lp.comports(), key=lambda p: p.device):
        board, mode = known.get((p.vid, p.pid), (None, None)) if p.vid is not None else (None, None)
        out.append(Port(p.device, p.description or "", p.vid, p.pid, p.serial_number, board, mode))
    return out


def find_board(board_id: str = "nano33ble", *, mode: str | None = None) -> str:
    """The port of the one connected board of this kind; a clear error for none or several."""
    found = [p for p in list_ports() if p.board == board_id and (mode is None or (p.mode or "").startswith(mode))]
    if not found:
        raise DeviceError(f"no {board_id} board found on any serial port",
                          "Connect it by USB (a data cable), or pass --port; if it does not show up, double-tap its reset button")
    if len(found) > 1:
        raise DeviceError(f"{len(found)} {board_id} boards found ({', '.join(p.device for p in found)})", "Choose one with --port")
    return found[0].device
