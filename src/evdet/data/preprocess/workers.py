"""Processes of a preprocessing run: the output lock, and worker processes that die with the run.

One run writes into an output folder at a time. ``<dst>/.preprocess.lock`` (``evdet.utils.lock``)
holds the main process id on its first line and each worker's id on the lines after it (a worker
adds itself when it starts). A later run takes the lock over only when none of them is alive: it waits briefly for
workers of a killed run to go, and refuses while any remains, so two runs never write the same
``<seq>.tmp`` folder.

Workers die with the main process, even when it is killed with SIGKILL: on Linux the kernel
sends them SIGKILL when it exits (``prctl(PR_SET_PDEATHSIG)``), and a watchdog thread in each
worker exits it when its parent process changes (other systems, or a parent that died before the
worker set this up).
"""

from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Callable

from evdet.data.preprocess.inputs import PreprocessError
from evdet.utils.lock import FileLock, LockHeld
from evdet.utils.processes import die_with_parent

LOCK_NAME = ".preprocess.lock"
SURVIVOR_WAIT_S = 10.0       # how long a new run waits for the workers of a killed one to exit


class OutputLock(FileLock):
    """Exclusive use of an output folder by one run (context manager; see the module docstring).

    Raises ``PreprocessError`` (one line, naming the live process) when another run holds it.
    """

    def __init__(self, dst: Path, survivor_wait_s: float = SURVIVOR_WAIT_S):
        super().__init__(Path(dst) / LOCK_NAME, what=f"output folder {dst}", survivor_wait_s=survivor_wait_s)

    def acquire(self) -> "OutputLock":
        try:
            super().acquire()
        except LockHeld as err:
            raise PreprocessError(str(err)) from None
        return self


def _init_worker(lock_path: str, parent_pid: int) -> None:
    """Worker start-up: die with the main process, then add this worker to the lock file."""
    die_with_parent(parent_pid)
    with open(lock_path, "a") as fh:
        fh.write(f"{os.getpid()}\n")


def run_tasks(tasks: list, work: Callable, workers: int, lock: OutputLock,
              on_done: Callable[[object, dict | None, BaseException | None], None],
              progress: bool) -> None:
    """Run ``work(task)`` for every task, in ``workers`` processes (1 = in this one).

    ``on_done(task, result, error)`` runs in this process after each task; an ``OSError`` or
    ``ValueError`` of a task is passed on as ``error``, any other exception stops the run.
    """
    from tqdm import tqdm

    bar = tqdm(total=len(tasks), desc="preprocess", unit="seq", disable=not progress)
    try:
        if workers <= 1 or len(tasks) <= 1:
            for task in tasks:
                try:
                    result = work(task)
                except (OSError, ValueError) as err:
                    on_done(task, None, err)
                else:
                    on_done(task, result, None)
                bar.update()
            return
        with ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=get_context("spawn"),
                                 initializer=_init_worker, initargs=(str(lock.path), os.getpid())) as pool:
            futures = {pool.submit(work, task): task for task in tasks}
            for future in as_completed(futures):
                err = future.exception()
                if err is not None and not isinstance(err, (OSError, ValueError)):
                    raise err
                on_done(futures[future], None if err else future.result(), err)
                bar.update()
    finally:
        bar.close()
