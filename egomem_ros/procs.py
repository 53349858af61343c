"""Helpers for the worker processes that run models beside a node or a CLI command."""
from __future__ import annotations

import signal


def ignore_interrupts() -> None:
    """In a worker: Ctrl-C goes to the whole process group, but the parent decides how to stop (it
    finishes its work and shuts the pool down), so the worker must not die with a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
