"""Helper processes that end with the process that started them, however it ends (even ``kill -9``)."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

#: prctl(2) option: the signal the kernel sends this process when its parent thread ends.
_PR_SET_PDEATHSIG = 1


def die_with_parent(parent: int) -> None:
    """Kill this process with SIGKILL as soon as ``parent`` (its parent process) is gone.

    On Linux the kernel does it (``prctl(PR_SET_PDEATHSIG)``), also while this process is busy in native code
    that holds the GIL (ANTs); elsewhere a watchdog thread polls the parent process id.

    Args:
        parent: The process id of the parent that started this one; a parent already dead when this runs
            ends this process at once.
    """
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    else:  # pragma: no cover - only Linux runs the tests
        threading.Thread(target=_watch, args=(parent,), daemon=True, name="btk-end-with-parent").start()
    if os.getppid() != parent:  # the parent died before the kernel was told
        os.kill(os.getpid(), signal.SIGKILL)


def _watch(parent: int) -> None:  # pragma: no cover - only Linux runs the tests
    while os.getppid() == parent:
        time.sleep(0.2)
    os.kill(os.getpid(), signal.SIGKILL)
