"""Running PlatformIO (`build` compiles with it, `flash` uploads with it): always with a timeout, and with a clear word when its registry is out of reach.

Offline, PlatformIO retries its registry for about 60 s before failing, so before a command that
needs packages we check that the registry's host resolves and answers, which fails in milliseconds.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from dataclasses import dataclass
from pathlib import Path

from .errors import DeviceError

REGISTRY_HOST = "api.registry.platformio.org"
_SIZE = re.compile(r"^(RAM|Flash):.*used (\d+) bytes from (\d+) bytes", re.M)
_OFFLINE = re.compile(r"HTTPClientError|Could not resolve|Name or service not known|Max retries|ConnectionError|"
                      r"Temporary failure in name resolution|Network is unreachable", re.I)


@dataclass
class PioResult:
    ok: bool
    status: str  # "built" | "offline" | "no-pio" | "failed" | "timeout"
    message: str
    flash_used: int | None = None
    flash_total: int | None = None
    ram_used: int | None = None
    ram_total: int | None = None
    log_tail: str = ""

    def to_dict(self) -> dict:
        return dict(self.__dict__)


def pio_executable() -> str | None:
    return shutil.which("pio") or shutil.which("platformio")


def platform_installed(platform: str) -> bool:
    pdir = Path.home() / ".platformio" / "platforms"
    return pdir.is_dir() and any(p.name.startswith(platform) for p in pdir.iterdir())


def registry_reachable(timeout: float = 3.0) -> bool:
    try:
        with socket.create_connection((REGISTRY_HOST, 443), timeout=timeout):
            return True
    except OSError:
        return False


def parse_sizes(log: str) -> dict:
    out = {}
    for kind, used, total in _SIZE.findall(log):
        out[kind.lower()] = (int(used), int(total))
    return out


def run_build(project: Path, platform: str, *, timeout: float = 900.0) -> PioResult:
    exe = pio_executable()
    if exe is None:
        return PioResult(False, "no-pio", "PlatformIO (pio) is not installed; the project is ready to build: "
                                          "pip install platformio, then pio run -d " + str(project))
    if not platform_installed(platform) and not registry_reachable():
        return PioResult(False, "offline", f"the PlatformIO registry ({REGISTRY_HOST}) is not reachable and the "
                                           f"{platform} platform is not installed; the project is ready to build: "
                                           f"run `pio run -d {project}` when online")
    try:
        proc = subprocess.run([exe, "run", "-d", str(project)], capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        return PioResult(False, "timeout", f"pio run took longer than {timeout:.0f} s; run it yourself: pio run -d {project}")
    log = proc.stdout + proc.stderr
    tail = "\n".join(log.strip().splitlines()[-15:])
    if proc.returncode != 0:
        if _OFFLINE.search(log):
            return PioResult(False, "offline", "PlatformIO could not download packages (registry or git host not "
                                               f"reachable); run `pio run -d {project}` when online", log_tail=tail)
        return PioResult(False, "failed", f"pio run failed (exit {proc.returncode}); see the log above", log_tail=tail)
    sizes = parse_sizes(log)
    fl, ram = sizes.get("flash", (None, None)), sizes.get("ram", (None, None))
    return PioResult(True, "built", "pio run succeeded", fl[0], fl[1], ram[0], ram[1], tail)


def run_upload(project: Path, port: str | None, *, timeout: float = 300.0) -> subprocess.CompletedProcess:
    exe = pio_executable()
    if exe is None:
        raise DeviceError("PlatformIO (pio) is not installed", "pip install platformio")
    cmd = [exe, "run", "-d", str(project), "-t", "upload"]
    if port:
        cmd += ["--upload-port", port]
    try:
        return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise DeviceError(f"pio upload took longer than {timeout:.0f} s",
                          "Double-tap the board's reset button to enter the bootloader and try again") from None
