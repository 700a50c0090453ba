"""Training the small-object matrix: seed-major, resumable, several workers sharing one work folder.

Each record is trained under its run lock (``records.record_lock``, through the runner), so a
record another worker (or a design) is running is skipped; ``train_parallel`` runs the workers
with ``running.executors.run_in_processes``.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Optional

from evdet.studies.study_plan import MatrixPlan


def record_checkpoint(work: Path, record_id: str) -> Path:
    """The first-seed checkpoint of a record (what ``{record:<id>}`` in a variant's overrides means)."""
    return (work / "experiments" / record_id / "checkpoints" / "last.ckpt").resolve()


def _has_progress(exp) -> bool:
    runs = exp.typed_results.runs.values()
    return any(r.status in ("completed", "running", "killed", "failed") for r in runs) \
        or any(exp.path.rglob("last.ckpt"))


def _seeds_done(exp) -> int:
    return len(exp.typed_results.completed_runs)


def train_records(plan: MatrixPlan, work: Path, echo: Callable[[str], None] = print,
                  progress: bool = True) -> dict[str, str]:
    """Train every record that is not completed, seed-major (every record's first seed, then every
    record's second, ...), the costliest first within a seed; returns {id: outcome}.

    Records held by another process (the record's run lock, or status ``running``) are skipped, so several
    workers can share one work folder.
    """
    from evdet.experiments.records.record import load_experiment
    from evdet.experiments.records.record_lock import RecordLock

    root = work / "experiments"
    outcome = {}
    waits = any(plan.variant(v).needs() for v in plan.variants)
    passes = len(plan.seeds) + (1 if waits else 0)     # a record that waited for another catches up at the end
    order = sorted(plan.variants, key=lambda v: -plan.variant(v).cost)      # stable: ties keep plan order
    for p in range(passes):
        for vid in order:
            exp = load_experiment(root, vid)
            if exp.state == "completed":
                outcome[vid] = "completed"
                continue
            if _seeds_done(exp) > p:                 # seed-major: every record gets its (p+1)-th seed first
                continue
            why = _not_now(plan, work, exp)
            if why is not None:
                outcome[vid] = why
                echo(f"{vid}: {why}; skipped{' for now' if why.startswith('waiting') else ''}")
                continue
            lock = RecordLock(exp.path)
            if exp.state == "running" or not lock.try_acquire():
                outcome[vid] = "running in another process"
                echo(f"{vid}: {outcome[vid]}; skipped")
                continue
            try:
                outcome[vid] = _train_next_seed(plan, root, vid, p, passes, echo, progress)
            finally:
                lock.release()
    return outcome


def _not_now(plan: MatrixPlan, work: Path, exp) -> Optional[str]:
    """Why a record is not trained in this pass (``waiting for ...`` the records it needs, or ``failed:``
    its record's message: not retried), else None."""
    from evdet.experiments.records.record import load_experiment

    missing = [n for n in plan.variant(exp.id).needs() if not record_checkpoint(work, n).exists()
               or _seeds_done(load_experiment(work / "experiments", n)) == 0]
    if missing:                              # e.g. a distillation student waits for its teacher
        return f"waiting for {', '.join(missing)}"
    if exp.state == "failed":                # diverged or crashed: its record says why
        return f"failed: {exp.typed_status.message}"
    return None


def _train_next_seed(plan: MatrixPlan, root: Path, vid: str, p: int, passes: int, echo: Callable[[str], None],
                     progress: bool) -> str:
    """Train the next seed of record ``vid`` (its run lock held by the caller); returns the outcome."""
    from evdet.experiments.records.record import RecordError, load_experiment
    from evdet.experiments.running.runner import run_experiment

    try:
        exp = load_experiment(root, vid)     # fresh, now that it is ours
        if exp.state == "completed" or _seeds_done(exp) > p:
            return exp.state
        resume = _has_progress(exp)
        echo(f"{vid}: training {len(plan.seeds)} seed(s) x {plan.max_steps} steps"
             + (" (resuming)" if resume else "") + f", pass {p + 1}/{passes}")
        command = f"evdet exp run {vid}{' --resume' if resume else ''} --root {root}"
        res = run_experiment(root, vid, resume=resume, progress=progress, command=command, max_new_seeds=1)
        return str(res.get("status"))
    except RecordError as err:
        echo(f"{vid}: not run: {err}")
        return f"not run: {err}"
    except Exception as err:  # one failed variant must not stop the others; its record says why
        outcome = f"failed: {type(err).__name__}: {err}"[:300]
        echo(f"{vid}: {outcome}")
        return outcome


def _train_worker(plan: MatrixPlan, work: Path, threads: int) -> None:
    import torch

    torch.set_num_threads(threads)
    train_records(plan, work, echo=lambda m: print(m, flush=True), progress=False)


def progress_line(plan: MatrixPlan, work: Path) -> str:
    """``runs done x/N; <id> seed s step k/M, ...``: where the matrix stands (from the records)."""
    from evdet.experiments.records.record import load_experiment

    root = work / "experiments"
    done, running = 0, []
    for vid in plan.variants:
        if not (root / vid / "results.json").exists():
            continue
        exp = load_experiment(root, vid)
        done += _seeds_done(exp)
        st = exp.typed_status
        if st.state == "running":
            running.append(f"{vid} seed {'?' if st.seed is None else st.seed} step {st.step}/{plan.max_steps}")
    return f"matrix: runs done {done}/{len(plan.variants) * len(plan.seeds)}" + \
        ("; " + ", ".join(running) if running else "")


def train_parallel(plan: MatrixPlan, work: Path, workers: int, echo: Callable[[str], None] = print,
                   every_s: float = 60.0) -> None:
    """``workers`` processes train the records side by side (``running.executors.run_in_processes``:
    each takes a different variant under its run lock, with cores / workers torch threads); the
    parent echoes :func:`progress_line` every ``every_s`` seconds."""
    from evdet.experiments.running.executors import run_in_processes

    bad = run_in_processes(_train_worker, (plan, work), workers, progress_line=lambda: progress_line(plan, work),
                           echo=echo, every_s=every_s, name="matrix-worker")
    if bad:
        echo(f"matrix: worker(s) {bad} exited with an error; rerun to resume")
