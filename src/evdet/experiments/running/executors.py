"""Executors: how records are brought to a terminal state (completed / failed).

One interface, ``Executor.run(exp_ids, stop_at_first=...)``, with three implementations:
``LocalExecutor`` (here: one record after another in this process), the Optuna trial queue
(``evdet.experiments.designs.queue.QueueExecutor``: fixed trials on RDB storage that any number of
workers share) and ``run_in_processes`` (here: N spawned worker processes, the small-object matrix).
Every one of them trains a record through ``run_record`` or the runner, both under the record's run
lock (``records.record_lock``), so any two workers exclude each other on one record.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Optional, Protocol, Sequence

from evdet.experiments.records.record import DEFAULT_STALE_AFTER_S, Experiment, RecordError, load_experiment
from evdet.experiments.records.record_lock import RecordLock

TERMINAL_STATES = ("completed", "failed")


def record_state(root: Path, exp_id: str) -> str:
    """State of a record from its status.json alone (a dead ``running`` reads ``killed``); cheap to poll."""
    from evdet.experiments.records.record import read_status, record_dir
    from evdet.experiments.records.views import StatusView

    exp_dir = record_dir(root, exp_id)
    if not exp_dir.is_dir():
        raise RecordError(f"{exp_dir}: no such experiment")
    return StatusView.from_dict(read_status(exp_dir)).state


class Executor(Protocol):
    """Brings records to a terminal state (completed / failed)."""

    def run(self, exp_ids: Sequence[str], *, stop_at_first: Optional[Callable[[str], bool]] = None) -> None:
        ...


def run_record(root: Path, exp_id: str, *, progress: bool = False, callbacks: Sequence = (),
               poll_s: float = 2.0, stale_after_s: float = DEFAULT_STALE_AFTER_S) -> Experiment:
    """Train record ``exp_id`` unless it already finished; resume a killed one; wait for one running elsewhere.

    Returns the record after it reached completed / failed (a failed training does not raise).
    """
    from evdet.experiments.running.runner import run_experiment

    exp_dir = Path(root) / exp_id
    while True:
        if record_state(root, exp_id) in TERMINAL_STATES:
            return load_experiment(root, exp_id)
        lock = RecordLock(exp_dir, stale_after_s=stale_after_s)
        if record_state(root, exp_id) == "running" or not lock.try_acquire():
            time.sleep(poll_s)       # another live process trains it: wait for it
            continue
        try:
            exp = load_experiment(root, exp_id)
            if exp.state in TERMINAL_STATES:   # finished between the check and the lock
                return exp
            resume = any(exp.path.rglob("checkpoints/last.ckpt")) or bool(exp.typed_results.completed_runs)
            try:
                run_experiment(root, exp_id, resume=resume, progress=progress, extra_callbacks=list(callbacks),
                               command=f"evdet exp run {exp_id}{' --resume' if resume else ''} --root {root}")
            except (RecordError, KeyboardInterrupt):
                raise
            except Exception:  # noqa: BLE001 - the record says failed (message + logs/error.txt): a bad arm
                pass
            return load_experiment(root, exp_id)
        finally:
            lock.release()


class LocalExecutor:
    """Runs records one after another in this process (``stop_at_first`` ends the batch early)."""

    def __init__(self, root: Path, *, progress: bool = False, echo: Callable[[str], None] = print) -> None:
        self.root, self.progress, self.echo = Path(root), progress, echo
        self.trained: list[str] = []

    def run(self, exp_ids: Sequence[str], *, stop_at_first: Optional[Callable[[str], bool]] = None) -> None:
        for exp_id in exp_ids:
            if record_state(self.root, exp_id) not in TERMINAL_STATES:
                self.echo(f"training {exp_id}")
                self.trained.append(exp_id)
                run_record(self.root, exp_id, progress=self.progress)
            if stop_at_first is not None and stop_at_first(exp_id):
                return


def run_in_processes(target: Callable, args: tuple, workers: int, *, progress_line: Callable[[], str],
                     echo: Callable[[str], None] = print, every_s: float = 60.0, name: str = "worker",
                     stagger_s: float = 2.0) -> list[str]:
    """Run ``target(*args, threads)`` in ``workers`` spawned processes side by side, each with
    cores / workers torch threads; echo ``progress_line()`` every ``every_s`` seconds while any runs.

    Returns the names of the processes that exited with an error.
    """
    import multiprocessing as mp
    import os

    from evdet.utils.processes import run_dying_with_parent

    ctx = mp.get_context("spawn")
    threads = max(1, (os.cpu_count() or 1) // workers)     # the cores shared out, not oversubscribed
    # each worker dies with this process (a kill -9 of it leaves no orphan training: utils.processes)
    procs = [ctx.Process(target=run_dying_with_parent, args=(os.getpid(), target, *args, threads), name=f"{name}-{i}")
             for i in range(workers)]
    for proc in procs:
        proc.start()
        time.sleep(stagger_s)                    # stagger: each takes the next free record
    last = time.monotonic()
    while any(proc.is_alive() for proc in procs):
        time.sleep(1.0)
        if time.monotonic() - last >= every_s:
            last = time.monotonic()
            try:
                echo(progress_line())
            except (OSError, ValueError):        # a record being rewritten (RecordError is a ValueError)
                pass
    for proc in procs:
        proc.join()
    return [p.name for p in procs if p.exitcode]
