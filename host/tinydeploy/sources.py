"""tinydeploy's own sources that are not Python: the firmware's C++ (``firmware/`` at the top of the
repository) and the project templates (``templates/``). ``host/tinydeploy/firmware`` and ``host/tinydeploy/templates``
are links to those folders, so the wheel carries them as the data-only packages ``tinydeploy.firmware`` and
``tinydeploy.templates`` and an editable install finds the checkout's folders the same way."""

from __future__ import annotations

import importlib
from pathlib import Path

from .errors import TinyDeployError


def _package_dir(name: str, probe: str) -> Path:
    try:
        module = importlib.import_module(f"tinydeploy.{name}")
        for entry in getattr(module, "__path__", []):
            if (Path(entry) / probe).is_file():
                return Path(entry)
    except ImportError:
        pass
    raise TinyDeployError(f"tinydeploy's {name}/ files are not installed (tinydeploy.{name} has no {probe})",
                          "Reinstall tinydeploy: pip install . (or pip install -e . from a checkout)")


# The bundled example model that `tinydeploy build` deploys when it is given none.
EXAMPLE_MODEL = Path(__file__).resolve().parent / "examples" / "fashion_cnn_int8.tflite"


def firmware_dir() -> Path:
    return _package_dir("firmware", "td_device.cpp")


def templates_dir() -> Path:
    return _package_dir("templates", "platformio.ini.j2")
