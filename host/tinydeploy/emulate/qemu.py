"""Run a firmware image on QEMU's mps2-an386 with its UART on a local TCP socket.

QEMU listens on 127.0.0.1 and starts the CPU once the host connects (``server=on,wait=on``), so the
firmware's first byte is never lost; the host then talks to it through pyserial's ``socket://`` URL
with the same code that talks to a board over USB.
"""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path

from ..errors import ToolchainError
from .firmware import EmulatedTarget
from .toolchain import find_qemu


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class QemuSession:
    """``with QemuSession(elf) as q: Link.open(url=q.url)``; QEMU is stopped on exit, whatever happened."""

    def __init__(self, elf: Path, target: EmulatedTarget | None = None, *, start_timeout: float = 10.0):
        self.elf = Path(elf)
        self.target = target or EmulatedTarget.load()
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen | None = None
        self.port: int | None = None

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def command(self, port: int) -> list[str]:
        return [find_qemu(), "-M", self.target.machine, "-display", "none", "-monitor", "none",
                "-kernel", str(self.elf), "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on", *self.target.qemu_args]

    def __enter__(self) -> "QemuSession":
        try:
            return self._start()
        except BaseException:  # a signal while QEMU starts: __exit__ will not run, so end it here
            self._stop()
            raise

    def _start(self) -> "QemuSession":
        last = ""
        for _ in range(3):  # another program may take the free port between our probe and QEMU's bind
            port = _free_port()
            self.proc = subprocess.Popen(self.command(port), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                         stderr=subprocess.PIPE)
            if self._wait_listening(port):
                self.port = port
                return self
            last = self._stop()
            if "in use" not in last:
                break
        raise ToolchainError(f"qemu-system-arm did not start: {last.strip().splitlines()[-1] if last.strip() else 'no output'}",
                             "Check that qemu-system-arm (Debian's qemu-system-arm 7.2 or later) runs")

    def _wait_listening(self, port: int) -> bool:
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            # A probe connection would be taken as the serial client: look at the listening sockets instead.
            if _listening(port):
                return True
            time.sleep(0.02)
        return False

    def _stop(self) -> str:
        err = ""
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            try:
                _, err = self.proc.communicate(timeout=5)
            except subprocess.TimeoutExpired:
                pass
            self.proc = None
        return (err or b"").decode(errors="replace") if isinstance(err, bytes) else (err or "")

    def __exit__(self, *exc) -> None:
        self._stop()


def _listening(port: int) -> bool:
    """Whether something listens on 127.0.0.1:port, read from /proc/net/tcp (no connection is made)."""
    want = f"0100007F:{port:04X}"
    try:
        with open("/proc/net/tcp") as f:
            return any(line.split()[1] == want and line.split()[3] == "0A" for line in f.readlines()[1:])
    except OSError:
        time.sleep(0.3)  # no procfs: give QEMU a moment
        return True
