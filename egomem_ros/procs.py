"""Helpers for the processes egomem runs: the node and CLI processes, and the workers that run models
beside them."""
from __future__ import annotations

import os
import signal
import threading
import time


def private_files() -> None:
    """Every file this process creates is its user's alone (0600, folders 0700): the memory holds face and
    voice templates, and the spool, the report and the output bags hold what people said. Called first by
    `egomem` and by every node; a user who wants to share an output bag changes its mode afterwards."""
    os.umask(0o077)


def ignore_interrupts() -> None:
    """In a worker: Ctrl-C goes to the whole process group, but the parent decides how to stop (it
    finishes its work and shuts the pool down), so the worker must not die with a traceback."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def exit_with_parent(period_s: float = 0.5) -> None:
    """In a worker: end when the parent process is gone (SIGKILLed, OOM-killed).

    A pool worker blocks on its task queue, which it holds both ends of, so it never sees EOF and
    would live on adopted by PID 1 with the models in memory. A daemon thread notices the new parent
    pid instead; PR_SET_PDEATHSIG is not used because it fires when the creating *thread* exits
    (a ROS executor thread), not the process.
    """
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(period_s)
        os._exit(1)

    threading.Thread(target=watch, name="exit-with-parent", daemon=True).start()


def init_worker() -> None:
    """What every model worker process does first."""
    ignore_interrupts()
    exit_with_parent()
