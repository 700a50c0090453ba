"""Process liveness (files that name the process writing them: preprocess lock, run status) and worker
processes that die with their parent, even when it is killed with SIGKILL: on Linux the kernel sends them
SIGKILL when it exits (``prctl(PR_SET_PDEATHSIG)``), and a watchdog thread exits a worker whose parent
changed (other systems, or a parent that died before the worker set this up)."""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from typing import Callable

WATCHDOG_PERIOD_S = 0.25     # how often a worker checks that its parent is still there
_PR_SET_PDEATHSIG = 1


def process_alive(pid: int) -> bool:
    """True when a process with id ``pid`` runs on this host (one owned by another user counts; a zombie, dead
    but not yet reaped by its parent, does not)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return not _is_zombie(pid)


def _is_zombie(pid: int) -> bool:
    """State ``Z`` in ``/proc/<pid>/stat`` (Linux; False where /proc is missing)."""
    try:
        stat = open(f"/proc/{pid}/stat", encoding="ascii", errors="replace").read()
    except OSError:
        return False
    return stat.rsplit(")", 1)[-1].split()[:1] == ["Z"]      # the command name in (...) may hold spaces


def die_with_parent(parent_pid: int) -> None:
    """Make this process exit when ``parent_pid`` (its parent) exits, however that dies."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):
            pass                                           # the watchdog below still works
    if os.getppid() != parent_pid:                         # the parent died before prctl
        os._exit(1)

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(WATCHDOG_PERIOD_S)
        os._exit(1)

    threading.Thread(target=watch, name="evdet-parent-watchdog", daemon=True).start()


def run_dying_with_parent(parent_pid: int, target: Callable, *args) -> None:
    """``target(*args)`` in a worker process that ends when ``parent_pid`` does (``die_with_parent``)."""
    die_with_parent(parent_pid)
    target(*args)
