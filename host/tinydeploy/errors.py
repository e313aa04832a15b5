"""One error type for everything a user can get wrong, with the next step to take.

The CLI prints ``str(error)`` on one line and exits with ``error.exit_code``; no traceback.
"""

from __future__ import annotations

EXIT_DOES_NOT_FIT = 1  # analyze: the model is valid but does not fit the board
EXIT_BAD_INPUT = 2  # bad model, missing file, wrong option
EXIT_DEVICE = 3  # serial/device/PlatformIO/toolchain trouble
EXIT_INTERNAL = 4  # a bug in tinydeploy (one line; TINYDEPLOY_DEBUG=1 shows the traceback)


class TinyDeployError(Exception):
    """A user-facing error: what is wrong, and what to do about it."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, what: str, hint: str = "", *, exit_code: int | None = None):
        self.what = what
        self.hint = hint
        if exit_code is not None:
            self.exit_code = exit_code
        super().__init__(self.__str__())

    def __str__(self) -> str:
        text = self.what.rstrip(".")
        if self.hint:
            text += f". {self.hint.rstrip('.')}."
        else:
            text += "."
        return " ".join(text.split())  # always one line


class ModelError(TinyDeployError):
    """The .tflite file is missing, corrupt, or not what the board can run."""


class DatasetError(TinyDeployError):
    """A dataset is missing or malformed."""


class DeviceError(TinyDeployError):
    """Serial port, protocol, or PlatformIO trouble."""

    exit_code = EXIT_DEVICE


class ToolchainError(TinyDeployError):
    """A compiler, emulator or library that a command needs is missing or failed."""

    exit_code = EXIT_DEVICE
