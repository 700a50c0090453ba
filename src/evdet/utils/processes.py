"""Process liveness, for files that name the process writing them (preprocess lock, run status)."""

from __future__ import annotations

import os


def process_alive(pid: int) -> bool:
    """True when a process with id ``pid`` exists on this host (one owned by another user counts)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
