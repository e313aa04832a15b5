"""A serial link to the firmware: open by port or URL (pyserial's serial_for_url), send commands the
way the MLPerf Tiny runner does, and read lines with deadlines. Every failure is a DeviceError."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from ..errors import DeviceError, TinyDeployError
from .protocol import Parser


def _no_delay(port) -> None:
    """Commands go out in two small writes (text, then '%'): on a TCP link (socket://, rfc2217://), Nagle's
    algorithm would hold the second one back for a delayed ACK, about 40 ms per command."""
    import socket

    sock = getattr(port, "_socket", None)
    if isinstance(sock, socket.socket) and sock.family in (socket.AF_INET, socket.AF_INET6):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


@dataclass
class Link:
    serial: object  # serial.Serial or a URL handler
    name: str
    parser: Parser = field(default_factory=Parser)

    @classmethod
    def open(cls, port: str | None = None, url: str | None = None, baudrate: int = 115200) -> "Link":
        import serial

        if url is not None and "://" not in url:
            raise TinyDeployError(f"--url {url} is not a serial port or pyserial URL (no scheme)",
                                  "Use socket://HOST:PORT, rfc2217://HOST:PORT or loop://, or --port for a local port")
        target = url or port
        if not target:
            from .ports import find_board

            target = find_board()
        # A local port is opened exclusively (a second program on it would steal bytes); URL handlers
        # (socket://, rfc2217://, loop://) do not take the option.
        exclusive = {} if "://" in target else {"exclusive": True}
        try:
            s = serial.serial_for_url(target, baudrate=baudrate, timeout=0.05, write_timeout=2, **exclusive)
        except ValueError as e:  # an unknown URL scheme or a malformed URL: the user's input, not the device
            raise TinyDeployError(f"{target} is not a serial port or pyserial URL ({e})",
                                  "Use a port such as /dev/ttyACM0, or socket://HOST:PORT, rfc2217://HOST:PORT, loop://") from None
        except (serial.SerialException, OSError) as e:
            msg = str(e)
            if "busy" in msg.lower() or "lock" in msg.lower():
                raise DeviceError(f"serial port {target} is busy", "Close the other program using it (serial monitor, pio device monitor)") from None
            if "No such file" in msg or "could not open port" in msg:
                raise DeviceError(f"cannot open serial port {target}", "Check the port with `tinydeploy ports`; connect the board") from None
            raise DeviceError(f"cannot open {target} ({msg})", "Check the port or URL") from None
        _no_delay(s)
        return cls(s, target)

    def close(self) -> None:
        try:
            self.serial.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def send(self, command: str) -> None:
        """Send a command: the text, then '%', in two writes (as the MLPerf Tiny runner does)."""
        import serial

        try:
            self.serial.write(command.encode("ascii"))
            self.serial.write(b"%")
            self.serial.flush()
        except (serial.SerialException, OSError) as e:
            raise DeviceError(f"writing to {self.name} failed ({e})", "The board may have been unplugged or reset; reconnect it") from None

    def drain(self, seconds: float = 0.1) -> None:
        """Discard what is waiting (a boot banner, the end of an old reply)."""
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self._read_chunk()
        self.parser = Parser()

    def _read_chunk(self) -> bytes:
        import serial

        try:
            # read(n) waits for n bytes or the timeout: ask for what is waiting (at least one byte), so a
            # short reply returns as soon as it is in, not after the 50 ms timeout.
            return self.serial.read(min(max(1, self.serial.in_waiting), 65536))
        except (serial.SerialException, OSError) as e:
            raise DeviceError(f"serial port {self.name} vanished ({e})", "The board was unplugged or reset; reconnect it and run again") from None

    def events(self, *, timeout: float, idle_timeout: float):
        """Yield events until ``timeout`` passes in total or ``idle_timeout`` passes with nothing received.

        Ends by raising DeviceError("silence" or "timeout"); the caller stops iterating when done.
        """
        start = last = time.monotonic()
        while True:
            chunk = self._read_chunk()
            now = time.monotonic()
            if chunk:
                last = now
                yield from self.parser.feed(chunk)
            elif now - last > idle_timeout:
                raise DeviceError(f"no data from {self.name} for {idle_timeout:.0f} s",
                                  "Is the tinydeploy firmware flashed? Run `tinydeploy flash PROJECT`, or press reset",
                                  ) from None
            if now - start > timeout:
                raise DeviceError(f"no complete reply from {self.name} within {timeout:.0f} s",
                                  "Increase --timeout for slow models, or check the firmware")
