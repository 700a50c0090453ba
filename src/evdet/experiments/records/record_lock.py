"""The run lock of a record: ``<record>/.run.lock`` (``evdet.utils.lock``; pid and host inside).

The runner takes it before it writes anything into the record, so of two processes starting the
same record exactly one trains; the other gets ``RecordBusy`` naming the holder. Callers that
choose a record and then run it (the matrix, the designs) hold it around the runner: the lock is
re-entrant within one process.
"""

from __future__ import annotations

from pathlib import Path

from evdet.experiments.records.record import DEFAULT_STALE_AFTER_S, RecordError
from evdet.utils.lock import FileLock, LockHeld

RUN_LOCK = ".run.lock"


class RecordBusy(RecordError):
    """Another live process runs (or is starting) this record."""


class RecordLock(FileLock):
    """``<exp_dir>/.run.lock``; a lock of another host is stale after ``stale_after_s`` seconds."""

    def __init__(self, exp_dir: Path, *, stale_after_s: float = DEFAULT_STALE_AFTER_S) -> None:
        super().__init__(Path(exp_dir) / RUN_LOCK, what=f"record {Path(exp_dir).name}",
                         stale_after_s=stale_after_s, reentrant=True)

    def acquire(self) -> "RecordLock":
        try:
            super().acquire()
        except LockHeld as err:
            raise RecordBusy(str(err)) from None
        return self

    def try_acquire(self) -> bool:
        """Take the lock if it is free or stale; False when a live process holds it."""
        try:
            self.acquire()
        except RecordBusy:
            return False
        return True
