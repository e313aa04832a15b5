"""SIGTERM and SIGHUP end a command the way Ctrl-C does: as an exception that unwinds the stack, so that every
``with`` block on the way out runs (QEMU and compiler processes are ended, temporary directories removed, staged
outputs dropped), and the CLI exits with 128 + the signal's number (143, 129)."""

from __future__ import annotations

import contextlib
import signal
import threading


class Interrupted(KeyboardInterrupt):
    """A termination signal, raised in the main thread. A KeyboardInterrupt, so code that cleans up after Ctrl-C
    cleans up after it too, and ``except Exception`` does not swallow it."""

    def __init__(self, signum: int):
        self.signum = signum
        self.name = signal.Signals(signum).name
        super().__init__(self.name)


HANDLED = (signal.SIGTERM, signal.SIGHUP)


@contextlib.contextmanager
def signals_as_exceptions():
    """Within the block, SIGTERM and SIGHUP raise Interrupted once; a repeat while cleaning up is ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    raised = []

    def handler(signum, frame):
        if raised:
            return
        raised.append(signum)
        raise Interrupted(signum)

    old = {s: signal.signal(s, handler) for s in HANDLED}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
