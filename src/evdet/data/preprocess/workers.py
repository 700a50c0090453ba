"""Processes of a preprocessing run: the output lock, and worker processes that die with the run.

One run writes into an output folder at a time. ``<dst>/.preprocess.lock`` holds the main process
id on its first line and each worker's id on the lines after it (a worker adds itself when it
starts). A later run takes the lock over only when none of them is alive: it waits briefly for
workers of a killed run to go, and refuses while any remains, so two runs never write the same
``<seq>.tmp`` folder.

Workers die with the main process, even when it is killed with SIGKILL: on Linux the kernel
sends them SIGKILL when it exits (``prctl(PR_SET_PDEATHSIG)``), and a watchdog thread in each
worker exits it when its parent process changes (other systems, or a parent that died before the
worker set this up).
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor, as_completed
from multiprocessing import get_context
from pathlib import Path
from typing import Callable

from evdet.data.preprocess.inputs import PreprocessError
from evdet.utils.processes import process_alive

LOCK_NAME = ".preprocess.lock"
SURVIVOR_WAIT_S = 10.0       # how long a new run waits for the workers of a killed one to exit
WATCHDOG_PERIOD_S = 0.25     # how often a worker checks that its parent is still there
FRESH_LOCK_S = 5.0           # an empty lock file younger than this belongs to a run starting up
_PR_SET_PDEATHSIG = 1


class OutputLock:
    """Exclusive use of an output folder by one run (context manager; see the module docstring)."""

    def __init__(self, dst: Path, survivor_wait_s: float = SURVIVOR_WAIT_S):
        self.path = Path(dst) / LOCK_NAME
        self.survivor_wait_s = survivor_wait_s

    def __enter__(self) -> "OutputLock":
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                self._check_previous_run()
                self.path.unlink(missing_ok=True)          # stale: its processes are gone
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(f"{os.getpid()}\n")
            return self
        raise PreprocessError(f"{self.path}: cannot take the output lock")

    def __exit__(self, *exc) -> None:
        self.path.unlink(missing_ok=True)

    def _check_previous_run(self) -> None:
        """Raise if the run named in the lock file still lives; wait for its stray workers."""
        pids = read_lock_pids(self.path)
        if not pids and _age_s(self.path) < FRESH_LOCK_S:
            raise PreprocessError(f"{self.path}: another run is starting to write into "
                                  f"{self.path.parent}; wait for it")
        if pids and process_alive(pids[0]):
            raise PreprocessError(f"{self.path}: {self.path.parent} is being written by process "
                                  f"{pids[0]}; wait for it or remove the lock if that is wrong")
        deadline = time.monotonic() + self.survivor_wait_s
        alive = [p for p in pids[1:] if process_alive(p)]
        while alive and time.monotonic() < deadline:
            time.sleep(0.05)
            alive = [p for p in alive if process_alive(p)]
        if alive:
            raise PreprocessError(f"{self.path}: worker process(es) {alive} of an earlier, killed run "
                                  f"still write into {self.path.parent}; stop them or wait, then rerun")


def _age_s(path: Path) -> float:
    try:
        return time.time() - path.stat().st_mtime
    except OSError:
        return float("inf")


def read_lock_pids(path: Path) -> list[int]:
    """Process ids in a lock file: the main process first, then its workers ([] if unreadable)."""
    try:
        return [int(line) for line in path.read_text().split()]
    except (OSError, ValueError):
        return []


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
