"""One exclusive lock file per guarded folder (a record, a preprocessing output): O_EXCL, pid inside.

File format: first line ``<pid> <host>``, then one ``<pid>`` per line for helper processes that
joined the holder (preprocessing workers, ``FileLock.add_pid``). A first line without a host is
read as this host. A lock is stale, and is taken over, when

- its host is this one and none of its processes lives (the main one first; helpers of a dead main
  process get ``survivor_wait_s`` to exit, then the lock is refused while any of them lives);
- its host is another one and the file is older than ``stale_after_s``;
- it is empty (created, pid not yet written) and older than ``FRESH_S``.

Taking a stale lock over goes through ``<lock>.break`` (O_EXCL too), so two processes that both
find it stale cannot both take it. ``reentrant=True``: a lock already held by this very process is
entered again without error (and left in place on exit), so a caller may hold a record's lock
around a call that takes it too (the matrix around the runner).
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from evdet.utils.processes import process_alive

FRESH_S = 5.0        # an empty lock file younger than this belongs to a process starting up
NO_EXPIRY = float("inf")


@dataclass(frozen=True)
class Holder:
    """Who holds a lock: ``pids[0]`` the main process, the others its helpers; ``age_s`` of the file."""

    pids: tuple[int, ...]
    host: str
    age_s: float

    @property
    def local(self) -> bool:
        return self.host == socket.gethostname()

    def describe(self) -> str:
        where = "" if self.local else f" on {self.host}"
        return f"process {self.pids[0]}{where}" if self.pids else "a process starting up"


class LockHeld(RuntimeError):
    """The lock is held by a live process: ``holder`` says which (None: one that is starting up)."""

    def __init__(self, path: Path, holder: Optional[Holder], message: str) -> None:
        super().__init__(message)
        self.path, self.holder = path, holder


def read_holder(path: Path) -> Optional[Holder]:
    """The holder named in lock file ``path`` (None: no file, or nothing readable in it yet)."""
    try:
        text = path.read_text()
        age_s = time.time() - path.stat().st_mtime
    except OSError:
        return None
    lines = text.split("\n")
    first = lines[0].split()
    try:
        pids = tuple(int(x) for x in [first[0], *(line.strip() for line in lines[1:] if line.strip())])
    except (IndexError, ValueError):
        return Holder(pids=(), host=socket.gethostname(), age_s=age_s)
    return Holder(pids=pids, host=first[1] if len(first) > 1 else socket.gethostname(), age_s=age_s)


class FileLock:
    """Exclusive lock file (context manager). ``acquire`` raises ``LockHeld`` naming the live holder.

    ``what`` names the guarded thing in messages (e.g. ``"record runs/x"``).
    """

    def __init__(self, path: Path, *, what: str = "", stale_after_s: float = NO_EXPIRY,
                 survivor_wait_s: float = 0.0, reentrant: bool = False) -> None:
        self.path = Path(path)
        self.what = what or str(self.path.parent)
        self.stale_after_s, self.survivor_wait_s, self.reentrant = stale_after_s, survivor_wait_s, reentrant
        self._owned = False

    def __enter__(self) -> "FileLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()

    def acquire(self) -> "FileLock":
        for _ in range(3):
            try:
                self._create()
            except FileExistsError:
                holder = read_holder(self.path)
                if holder is None:
                    continue                             # removed meanwhile: try again
                if self.reentrant and holder.local and holder.pids[:1] == (os.getpid(),):
                    return self                          # ours already: an outer caller releases it
                self._refuse_if_live(holder)
                self._break(holder)
                continue
            self._owned = True
            return self
        raise LockHeld(self.path, None, f"{self.path}: {self.what} is being locked by another process; retry")

    def _create(self) -> None:
        """Create the lock file with its holder line in one step (a hard link of a written temp file), so
        that a competitor never reads an empty lock. Raises FileExistsError when it exists."""
        tmp = self.path.with_name(f"{self.path.name}.{os.getpid()}.{time.monotonic_ns()}.tmp")
        tmp.write_text(f"{os.getpid()} {socket.gethostname()}\n")
        try:
            os.link(tmp, self.path)
        finally:
            tmp.unlink(missing_ok=True)

    def release(self) -> None:
        if self._owned:
            self.path.unlink(missing_ok=True)
            self._owned = False

    def add_pid(self, pid: int) -> None:
        """Name a helper process of the holder in the lock file (one line, appended)."""
        with open(self.path, "a") as fh:
            fh.write(f"{pid}\n")

    def _refuse_if_live(self, holder: Holder) -> None:
        """Raise ``LockHeld`` when ``holder`` still counts as alive (see the module docstring)."""
        if not holder.pids:
            if holder.age_s < FRESH_S:
                raise LockHeld(self.path, None, f"{self.path}: another process is starting on {self.what}; "
                                                "wait for it")
            return
        if not holder.local:
            if holder.age_s <= self.stale_after_s:
                raise LockHeld(self.path, holder, f"{self.path}: {self.what} is held by {holder.describe()}; "
                                                  "wait for it")
            return
        if process_alive(holder.pids[0]):
            raise LockHeld(self.path, holder, f"{self.path}: {self.what} is held by {holder.describe()}; "
                                              "wait for it or kill it")
        deadline = time.monotonic() + self.survivor_wait_s
        alive = [p for p in holder.pids[1:] if process_alive(p)]
        while alive and time.monotonic() < deadline:
            time.sleep(0.05)
            alive = [p for p in alive if process_alive(p)]
        if alive:
            raise LockHeld(self.path, holder, f"{self.path}: helper process(es) {alive} of the dead "
                                              f"{holder.describe()} still work on {self.what}; stop them or "
                                              "wait, then retry")

    def _break(self, stale: Holder) -> None:
        """Remove a stale lock file, unless another process replaced it meanwhile."""
        guard = self.path.with_name(self.path.name + ".break")
        try:
            fd = os.open(guard, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            try:
                if time.time() - guard.stat().st_mtime > FRESH_S:
                    guard.unlink(missing_ok=True)            # left by a breaker that died
            except OSError:
                pass
            time.sleep(0.01)
            return
        os.close(fd)
        try:
            now = read_holder(self.path)
            if now is not None and (now.pids, now.host) == (stale.pids, stale.host) \
                    and abs(now.age_s - stale.age_s) < 1.0:
                self.path.unlink(missing_ok=True)
        finally:
            guard.unlink(missing_ok=True)
