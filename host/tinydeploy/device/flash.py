"""`tinydeploy flash`: upload a generated project with PlatformIO.

The Nano 33 BLE enters its bootloader on a 1200-baud touch of the sketch port, re-enumerates with
another product id (and often another port name), and PlatformIO's ``wait_for_upload_port`` follows
it. We find the board before and after, so that the user learns which port to bench.
"""

from __future__ import annotations

from pathlib import Path

from .. import platformio as pio
from ..boards import load
from ..errors import DeviceError, TinyDeployError
from .ports import find_board, list_ports


def flash(project: Path, port: str | None, board_id: str = "nano33ble") -> dict:
    project = Path(project)
    if not (project / "platformio.ini").exists():
        raise TinyDeployError(f"{project} is not a PlatformIO project (no platformio.ini)",
                              "Pass the directory written by `tinydeploy build`")
    if port is None:
        port = find_board(board_id)
    if pio.pio_executable() is None:
        raise DeviceError("PlatformIO (pio) is not installed", "pip install platformio")
    r = pio.run_build(project, load(board_id).platformio["platform"])
    if not r.ok:
        raise DeviceError(f"cannot build {project}: {r.message}", "Fix the build first (pio run -d PROJECT)")
    proc = pio.run_upload(project, port)
    log = proc.stdout + proc.stderr
    if proc.returncode != 0:
        if "No such file" in log or "could not open port" in log or "Couldn't find a board" in log:
            raise DeviceError(f"upload to {port} failed: the board did not answer",
                              "Double-tap the reset button (the LED pulses in bootloader mode) and run flash again")
        raise DeviceError(f"upload failed (pio exit {proc.returncode})", "See `pio run -t upload -d PROJECT` for the full log")
    after = [p.to_dict() for p in list_ports() if p.board == board_id]
    return {"project": str(project), "port": port, "ports_after": after, "log_tail": "\n".join(log.splitlines()[-10:])}
