"""Children that end with their parent.

`liveblog serve` starts an embedded redis-server and, with --workers, uvicorn's worker
processes. If serve is killed outright (kill -9, the OOM killer), nothing runs its clean-up:
without this, the workers would go on serving the port (and the redis-server holding the
data directory), and the same command could not start again ("Address already in use")
until someone found them.
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int | None = None) -> None:
    """Have the kernel send this process SIGTERM when its parent dies (Linux only).

    `parent`: the pid this process was started by; if that one has already gone (it died
    before the request was made), terminate now.
    """
    if sys.platform != "linux":
        return
    ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if parent is not None and os.getppid() != parent:
        os.kill(os.getpid(), signal.SIGTERM)


def end_with_supervisor() -> None:
    """In a worker process of `serve --workers N`, end when serve itself ends."""
    parent = multiprocessing.parent_process()
    if parent is not None:  # None: this is the process that was started, not a worker
        die_with_parent(parent.pid)
