"""The shared work queue of sweeps and designed experiments: an Optuna study in an RDB storage.

Every worker runs the same command against the same storage URL (SQLite file for one machine,
PostgreSQL for several) and the same experiments folder (shared file system across machines).

- Storage: ``RDBStorage`` with a heartbeat. A worker that dies leaves its trial RUNNING with a
  stale heartbeat; the next worker that looks (``fail_stale_trials``) marks it FAIL and
  ``RetryHeartbeatStaleTrialCallback`` enqueues a copy (same params, same ``exp_id`` user attribute),
  whose worker resumes the record from ``checkpoints/last.ckpt``. Nothing is silently lost.
- Budget: a study of ``n`` trials counts every trial except surplus ones and FAIL trials that
  were retried. A worker starts a trial only while fewer than ``n`` count (or a retry waits); a
  trial created in a race beyond the budget (its rank among counted trials >= n) is told PRUNED
  with user attribute ``surplus`` and does not run. Workers leave when nothing is left to run or
  running, so they stop together.
- Designed experiments enqueue fixed trials (user attribute ``exp_id``): any worker trains them.
  Workers that queue one record at the same moment leave two trials for it: the lower-numbered
  live one owns it, the other ends at once as surplus.
- SQLite ignores ``SELECT ... FOR UPDATE``, so two workers may pop the same queued trial; the record
  is still trained once (the second worker waits for it) and the second worker's late result is
  dropped. PostgreSQL locks the row.
- A study remembers what it is (user attribute ``evdet``: kind, base, metric, direction, space);
  opening it with anything different is an error, so two different sweeps never share a name.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

from evdet.experiments.designs.arms import DesignError, read_metric
from evdet.experiments.running.executors import TERMINAL_STATES, record_state, run_record

DEFAULT_HEARTBEAT_S = 30
MAX_RETRY = 3
_CREATION_RACE = ("UNIQUE constraint", "already exists", "duplicate key", "database is locked")


class QueueError(DesignError):
    """The storage cannot be reached, or a study of that name exists with another definition."""


def redact_url(url: str) -> str:
    """The URL without its password (for messages)."""
    return re.sub(r"//([^:/@]+):[^@]*@", r"//\1:***@", url)


def postgres_driver_url(url: str) -> str:
    """``postgresql://`` with an explicit driver: SQLAlchemy 2.1 defaults to psycopg 3, evdet installs psycopg2."""
    import importlib.util

    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix) and importlib.util.find_spec("psycopg") is None:
            return "postgresql+psycopg2://" + url[len(prefix):]
    return url


def open_storage(url: str, *, heartbeat_s: int = DEFAULT_HEARTBEAT_S, grace_s: Optional[int] = None,
                 create: bool = True):
    """An Optuna RDB storage with heartbeats and retry of trials whose worker died.

    Args:
        url: ``sqlite:///path/to/sweeps.db`` (one machine) or ``postgresql://user:pw@host/db`` (several).
        create: a missing SQLite file is created (a new sweep); False refuses it (reading a sweep's status).
        heartbeat_s: seconds between a running trial's heartbeats; a trial is stale after ``grace_s``
            (default 2 x heartbeat_s) without one.
    Raises:
        QueueError: unsupported scheme, missing SQLite folder, or a server that cannot be reached.
    """
    import optuna

    shown = redact_url(url)
    if url.startswith("sqlite:///"):
        path = Path(url[len("sqlite:///"):])
        if not path.parent.is_dir():
            raise QueueError(f"storage {shown}: folder {path.parent} does not exist")
        if not create and not path.is_file():
            raise QueueError(f"storage {shown}: no such database file {path} (a sweep writes it when it starts)")
        engine_kwargs: dict[str, Any] = {"connect_args": {"timeout": 60}}
    elif url.startswith(("postgresql://", "postgresql+psycopg2://", "postgresql+psycopg://", "postgres://")):
        url = postgres_driver_url(url)
        engine_kwargs = {"connect_args": {"connect_timeout": 10}, "pool_pre_ping": True}
    else:
        raise QueueError(f"storage {shown}: use sqlite:///FILE.db or postgresql://USER:PASSWORD@HOST/DB")
    for attempt in range(5):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(
                    url, engine_kwargs=engine_kwargs, heartbeat_interval=int(heartbeat_s),
                    grace_period=int(grace_s) if grace_s else None,
                    heartbeat_stale_trial_callback=optuna.storages.RetryHeartbeatStaleTrialCallback(
                        max_retry=MAX_RETRY))
        except Exception as err:  # noqa: BLE001 - sqlalchemy / driver errors of many kinds
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            # workers that start together race to create the tables of a new database: try again
            if attempt < 4 and any(s in reason for s in _CREATION_RACE):
                time.sleep(0.5 * (attempt + 1))
                continue
            raise QueueError(f"storage {shown}: cannot connect ({reason})") from None
    raise AssertionError("unreachable")


def open_study(storage, name: str, signature: dict, *, direction: str = "maximize", sampler=None, pruner=None):
    """Create or load study ``name``; a study that exists must have been made with the same ``signature``.

    Raises:
        QueueError: naming the fields that differ.
    """
    import optuna

    signature = json.loads(json.dumps(signature, sort_keys=True, default=str))
    study = optuna.create_study(study_name=name, storage=storage, direction=direction, sampler=sampler,
                                pruner=pruner, load_if_exists=True)
    existing = study.user_attrs.get("evdet")
    if existing is None:
        study.set_user_attr("evdet", signature)
    elif existing != signature:
        fields = sorted(k for k in set(existing) | set(signature) if existing.get(k) != signature.get(k))
        detail = "; ".join(f"{k}: {existing.get(k)!r} there, {signature.get(k)!r} here" for k in fields)
        raise QueueError(f"study {name!r} already exists with a different {', '.join(fields)} ({detail}); "
                         "use another name")
    return study


def worker_label() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def counted_trials(study) -> list:
    """Trials that use the budget: all but surplus ones and FAIL trials that a retry replaced."""
    trials = study.get_trials(deepcopy=False)
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    return [t for t in trials if not t.user_attrs.get("surplus") and t.number not in retried]


def waiting_trials(study) -> list:
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.WAITING,))


def running_trials(study) -> list:
    from optuna.trial import TrialState

    return study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))


def claim_or_surplus(study, trial, n_trials: Optional[int]) -> None:
    """Raise TrialPruned (marked ``surplus``) for a trial beyond the budget or a fixed-trial study's race."""
    import optuna

    fixed_only = n_trials is None
    if fixed_only and trial.user_attrs.get("exp_id") is None:
        trial.set_user_attr("surplus", True)
        raise optuna.TrialPruned("surplus: created in a race for a fixed trial")
    if not fixed_only:
        rank = sum(1 for t in counted_trials(study) if t.number < trial.number)
        if rank >= n_trials:
            trial.set_user_attr("surplus", True)
            raise optuna.TrialPruned(f"surplus: the study already has {n_trials} trials")


def work(study, objective: Callable, *, has_work: Callable[[], bool], finished: Callable[[], bool],
         poll_s: float = 2.0) -> None:
    """Run trials while ``has_work()``, then wait (failing stale trials) until ``finished()``."""
    import optuna

    while True:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        if has_work():
            try:
                study.optimize(objective, n_trials=1, catch=(), gc_after_trial=False)
            except (ValueError, optuna.exceptions.UpdateFinishedTrialError) as err:
                # SQLite has no row locks: two workers can pop the same queued trial. Both run it (the
                # record is trained once: the second waits for the first), the second cannot tell it.
                if not isinstance(err, optuna.exceptions.UpdateFinishedTrialError) and \
                        not str(err).startswith("Cannot tell a"):
                    raise
            continue
        if finished():
            return
        time.sleep(poll_s)


class QueueExecutor:
    """Trains design records as fixed trials of study ``study_name``: every worker with the same command helps.

    ``stop_at_first`` is ignored: all records given to ``run`` are trained (in parallel by the workers).
    """

    def __init__(self, root: Path, storage_url: str, study_name: str, signature: dict, *,
                 metric: Optional[str] = None, heartbeat_s: int = DEFAULT_HEARTBEAT_S, poll_s: float = 2.0,
                 echo: Callable[[str], None] = print, run_fn: Callable = run_record) -> None:
        self.root, self.metric, self.echo, self.poll_s, self.run_fn = Path(root), metric, echo, poll_s, run_fn
        self.storage = open_storage(storage_url, heartbeat_s=heartbeat_s)
        self.study = open_study(self.storage, study_name, {"kind": "design", **signature})
        self.trained: list[str] = []

    def _objective(self, trial) -> float:
        import optuna

        claim_or_surplus(self.study, trial, None)
        exp_id = trial.user_attrs["exp_id"]
        # workers that enqueue at the same moment may queue one record twice: the lowest-numbered live
        # trial of a record owns it, the others end at once as surplus
        owner = min((t.number for t in self.study.get_trials(deepcopy=False)
                     if t.user_attrs.get("exp_id") == exp_id and not t.user_attrs.get("surplus")
                     and t.state != optuna.trial.TrialState.FAIL), default=trial.number)
        if owner < trial.number:
            trial.set_user_attr("surplus", True)
            raise optuna.TrialPruned(f"surplus: trial {owner} owns {exp_id}")
        trial.set_user_attr("worker", worker_label())
        before = record_state(self.root, exp_id)
        if before not in TERMINAL_STATES:
            self.echo(f"training {exp_id} (trial {trial.number})")
            self.trained.append(exp_id)
        exp = self.run_fn(self.root, exp_id)
        trial.set_user_attr("state", exp.state)
        value = read_metric(exp, self.metric) if self.metric else 0.0
        return math.nan if exp.state != "completed" or value is None else value   # nan: Optuna marks FAIL

    def _pending(self, exp_ids: Sequence[str]) -> list[str]:
        return [i for i in exp_ids if record_state(self.root, i) not in TERMINAL_STATES]

    def _enqueue_missing(self, exp_ids: Sequence[str]) -> None:
        queued = {t.user_attrs.get("exp_id") for t in waiting_trials(self.study) + running_trials(self.study)}
        for exp_id in self._pending(exp_ids):
            state = record_state(self.root, exp_id)
            if exp_id not in queued and state != "running":
                self.study.enqueue_trial({}, user_attrs={"exp_id": exp_id})

    def run(self, exp_ids: Sequence[str], *, stop_at_first: Optional[Callable[[str], bool]] = None) -> None:
        exp_ids = list(dict.fromkeys(exp_ids))

        def has_work() -> bool:
            self._enqueue_missing(exp_ids)
            return bool(waiting_trials(self.study))

        work(self.study, self._objective, has_work=has_work, finished=lambda: not self._pending(exp_ids),
             poll_s=self.poll_s)
