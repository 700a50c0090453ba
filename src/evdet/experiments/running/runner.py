"""Run one experiment record: one training per seed with the evaluation callback attached, then results.json.

The record always says what happened: ``status.json`` goes ``running`` (with pid, the seed being
trained and a heartbeat refreshed during training) -> ``completed`` / ``failed`` (exception or
divergence stop, message and ``logs/error.txt``) / ``killed`` (Ctrl-C or SIGTERM). A process killed hard leaves
``running`` with a dead pid / stale heartbeat, which ``records.read_status`` reports as killed.

Seeds (config ``seeds``, else ``training.seed``) are trained in order; the first in the record folder,
the others in ``seeds/seed_<s>/`` (``records.seed_run_dir``). ``--resume`` skips the completed seeds,
continues the interrupted one from its ``checkpoints/last.ckpt`` and starts the rest; resuming a
completed record changes nothing (``AlreadyCompleted``).

results.json (schema 2) holds, per seed, the LAST validation's results per protocol (``runs``), and
at the top the mean over the completed seeds (``protocols``; one seed: its results as they are),
``seed_stats`` (n, mean, std, 95% t-interval per metric), the first seed's curves, the monitors
(mean over seeds) and the first seed's best-checkpoint tracking. Each run's last validation
ground truth and detections go to ``<run>/validation/detections.npz`` (bootstrap intervals).
"""

from __future__ import annotations

import sys
import traceback
from pathlib import Path
from typing import Optional, Sequence

from evdet.experiments.records.environment import collect_environment
from evdet.experiments.records.record import RecordError, atomic_write_json, load_experiment, seed_run_dir, write_status
from evdet.experiments.records.record_lock import RecordLock
from evdet.experiments.records.run_config import RunConfig, config_for_seed, load_run_config, run_seeds
from evdet.experiments.records.views import ProtocolView, ResultsView, RunView
from evdet.experiments.running.record_keeping import (curves_from_csv, eval_geometry, evaluation_callback,
                                                      final_monitors, record_callback)
from evdet.experiments.running.seed_aggregate import aggregate_runs
from evdet.experiments.statistics.intervals import DETECTIONS_FILE
from evdet.utils.atomic import write_text_atomic


class AlreadyCompleted(RecordError):
    """``--resume`` of a completed record: nothing to do, results.json left as it is."""


# ---------------------------------------------------------------- the run


def _check_can_run(exp, seeds: tuple[int, ...], resume: bool) -> None:
    """Raise RecordError / AlreadyCompleted when the record cannot (or need not) be run now."""
    exp_dir = exp.path
    if exp.state == "running":
        raise RecordError(f"{exp_dir}: already running (pid {exp.typed_status.pid}); wait, or kill it first")
    if exp.state == "completed":
        if resume:
            raise AlreadyCompleted(f"{exp_dir}: already completed at step {exp.typed_results.step} "
                                   f"(seeds {list(seeds)}); nothing to resume, results.json left unchanged")
        raise RecordError(f"{exp_dir}: already completed; create a new experiment to change anything")
    started = [seed_run_dir(exp_dir, s, i) for i, s in enumerate(seeds)
               if (seed_run_dir(exp_dir, s, i) / "checkpoints" / "last.ckpt").exists()]
    done = list(exp.typed_results.completed_runs)
    if resume and not started and not done:
        raise RecordError(f"{exp_dir}: nothing to resume (no checkpoints/last.ckpt)")
    if (started or done) and not resume:
        first = started[0] / "checkpoints" / "last.ckpt" if started else f"seed {done[0]}"
        raise RecordError(f"{exp_dir}: a previous run left {first}; pass --resume")


def _finish_run(run: dict, run_dir: Path, eval_cb, summary: dict) -> dict:
    """Fill one seed's entry from its training summary and last validation; returns its curves."""
    curves = curves_from_csv(run_dir / "logs" / "metrics.csv")
    protocols = {p: r.to_dict() for p, r in eval_cb.last_results.items()} or run.get("protocols", {})
    for p, block in protocols.items():
        if ProtocolView.from_dict(block).confusion.labels:
            atomic_write_json(run_dir / "confusion_matrices" / f"{p}.json", block["confusion"])
    stop = summary["stopped_reason"]          # fit's summary holds every key (CONTRACTS.md "training")
    diverged = bool(stop) and "DivergenceStop" in str(stop)
    # the evaluation callback names its folders validation/step_<trainer.global_step>
    val_steps = [int(p.name[5:]) for p in (run_dir / "validation").glob("step_*") if p.name[5:].isdigit()]
    run.update(status="failed" if diverged else "completed",
               step=max(val_steps) if val_steps and protocols else int(summary["global_step"]),
               protocols=protocols,
               monitors={**final_monitors(curves), "peak_rss_mb": summary["peak_rss_mb"], "stopped_reason": stop},
               training={k: summary[k] for k in ("global_step", "best_metric", "best_score", "best_step",
                                                     "best_ckpt", "last_ckpt", "wall_s")})
    return curves


def run_experiment(root: Path, exp_id: str, *, resume: bool = False, progress: bool = True,
                   heartbeat_s: float = 30.0, command: Optional[str] = None,
                   extra_callbacks: Sequence = (), max_new_seeds: Optional[int] = None,
                   trusted: bool = False) -> dict:
    """Train experiment ``exp_id`` under ``root`` (one run per seed, in order); returns the results document.

    ``trusted``: a resume may unpickle arbitrary objects in last.ckpt (``--trusted``); by default it is
    read weights-only, so a planted checkpoint cannot run code.

    The record's run lock (``records.record_lock``) is taken before anything is written: of two
    processes starting one record, one trains and the other gets ``RecordBusy`` naming it.

    ``max_new_seeds``: train at most this many unfinished seeds in this call; when seeds remain, the
    record is left ``partial`` (resume with ``resume=True``), e.g. for a seed-major experiment matrix.

    ``extra_callbacks``: Lightning callbacks attached after the evaluation and record callbacks (they see
    the validation metrics), e.g. the sweep's pruning callback (experiments/designs/sweep.py).

    Raises:
        AlreadyCompleted: ``resume`` of a completed record (nothing was changed).
        RecordBusy: another live process runs the record.
        RecordError: the record cannot run (already running / completed, missing checkpoint for resume).
        Any training error, after the record was marked failed.
    """
    exp_dir = load_experiment(Path(root), exp_id).path
    with RecordLock(exp_dir):
        exp = load_experiment(Path(root), exp_id)          # fresh, now that no one else can start it
        cfg = load_run_config([exp_dir / "config.yaml"], use_default=False)
        seeds = run_seeds(cfg)
        _check_can_run(exp, seeds, resume)
        cmd = command or f"run_experiment({str(root)!r}, {exp_id!r}, resume={resume})  # argv: {' '.join(sys.argv)}"
        old_cmd = (exp_dir / "command.txt").read_text() if (exp_dir / "command.txt").exists() else ""
        write_text_atomic(exp_dir / "command.txt", old_cmd + cmd.rstrip("\n") + "\n")
        results = dict(exp.results)            # the document written back (load_results filled its fields)
        results.update(schema_version=2, status="running", seeds=list(seeds),
                       class_names=list(exp.typed_results.class_names))
        results["runs"] = {k: dict(v) for k, v in results["runs"].items()}
        write_status(exp_dir, "running", "resumed" if resume else "training", resumed=resume)
        return _train_seeds(exp_dir, cfg, seeds, results, resume=resume, progress=progress,
                            heartbeat_s=heartbeat_s, extra_callbacks=extra_callbacks, max_new_seeds=max_new_seeds,
                            trusted=trusted)


def _train_seeds(exp_dir: Path, cfg: RunConfig, seeds: tuple[int, ...], results: dict, *, resume: bool,
                 progress: bool, heartbeat_s: float, extra_callbacks: Sequence,
                 max_new_seeds: Optional[int], trusted: bool = False) -> dict:
    """Train the unfinished seeds in order, keeping results.json / status.json current; returns results."""
    from lightning.pytorch.utilities.exceptions import SIGTERMException

    runs = results["runs"]
    run_key, run, trained, partial = None, {}, 0, False
    try:
        class_map = eval_geometry(cfg)[0]
        results["class_names"] = list(class_map.names)
        atomic_write_json(exp_dir / "results.json", results)
        for index, seed in enumerate(seeds):
            if str(seed) in ResultsView.from_dict(results).completed_runs:
                continue
            if max_new_seeds is not None and trained >= max_new_seeds:
                partial = True
                break
            run_key = str(seed)
            run = runs.setdefault(run_key, {})
            _train_seed(exp_dir, cfg, seeds, index, results, run, resume=resume, progress=progress,
                        heartbeat_s=heartbeat_s, extra_callbacks=extra_callbacks, trusted=trusted)
            trained += 1
            if run["status"] == "failed":
                break
    except (KeyboardInterrupt, SIGTERMException) as err:   # interrupted, not failed: resumable
        if run_key is not None:
            run["status"] = "killed"
        results["status"] = "killed"
        atomic_write_json(exp_dir / "results.json", results)
        how = "Ctrl-C" if isinstance(err, KeyboardInterrupt) else "SIGTERM"
        write_status(exp_dir, "killed", f"interrupted ({how}); resume with --resume")
        raise
    except BaseException as err:
        if run_key is not None:
            run["status"] = "failed"
        results["status"] = "failed"
        _record_failure(exp_dir, results, err, traceback.format_exc())
        raise
    return _finish_record(exp_dir, seeds, results, run_key, partial)


def _record_failure(exp_dir: Path, results: dict, err: BaseException, trace: str) -> None:
    """Mark the record failed: status.json first (the small file that says the run is over), then
    results.json, then logs/error.txt; a write that fails too (a full disk) does not stop the others."""
    writes = ((exp_dir / "status.json", lambda: write_status(exp_dir, "failed", f"{type(err).__name__}: {err}"[:500])),
              (exp_dir / "results.json", lambda: atomic_write_json(exp_dir / "results.json", results)),
              (exp_dir / "logs" / "error.txt", lambda: write_text_atomic(exp_dir / "logs" / "error.txt", trace)))
    for path, write in writes:
        try:
            write()
        except OSError as failed:          # e.g. ENOSPC: keep going, the training error is what is raised
            print(f"warning: {path}: not written ({failed})", file=sys.stderr)


def _train_seed(exp_dir: Path, cfg: RunConfig, seeds: tuple[int, ...], index: int, results: dict, run: dict, *,
                resume: bool, progress: bool, heartbeat_s: float, extra_callbacks: Sequence,
                trusted: bool = False) -> None:
    """Train seed ``seeds[index]`` into ``run`` (its entry of ``results['runs']``) and aggregate."""
    from evdet.training.fit import fit

    seed = seeds[index]
    run_dir = seed_run_dir(exp_dir, seed, index)
    seed_resume = (run_dir / "checkpoints" / "last.ckpt").exists()
    run.update(seed=int(seed), dir="." if index == 0 else str(run_dir.relative_to(exp_dir)),
               status="running", detections=f"validation/{DETECTIONS_FILE}")
    atomic_write_json(exp_dir / "results.json", results)
    write_status(exp_dir, "running", f"seed {seed} ({index + 1} of {len(seeds)})"
                 + (" resumed" if seed_resume else ""), resumed=resume, seed=int(seed))
    cfg_seed = config_for_seed(cfg, seed)
    atomic_write_json(run_dir / "environment.json", collect_environment(seed, cwd=Path.cwd(), seeds=seeds))
    eval_cb = evaluation_callback(cfg_seed, run_dir)
    keeper = record_callback(exp_dir, heartbeat_s, eval_cb, results, str(seed), run_dir)
    summary = fit(cfg_seed.data, cfg_seed.model, cfg_seed.loss, cfg_seed.training, run_dir,
                  callbacks=[eval_cb, keeper, *extra_callbacks], resume=seed_resume, progress=progress,
                  trusted=trusted)
    curves = _finish_run(run, run_dir, eval_cb, summary)
    if index == 0:
        results.update(curves=curves, training=run["training"])
    aggregate_runs(results)
    atomic_write_json(exp_dir / "results.json", results)


def _finish_record(exp_dir: Path, seeds: tuple[int, ...], results: dict, run_key: Optional[str],
                   partial: bool) -> dict:
    """Final results.json and status (completed / failed / partial) after the seeds of this call."""
    runs = ResultsView.from_dict(results).runs
    failed = any(r.status == "failed" for r in runs.values())
    state = "failed" if failed else "partial" if partial else "completed"
    aggregate_runs(results)
    results["status"] = state
    atomic_write_json(exp_dir / "results.json", results)
    if state == "partial":
        done = sum(r.completed for r in runs.values())
        write_status(exp_dir, "partial", f"{done} of {len(seeds)} seeds done; resume to train the rest")
        return results
    last = runs.get(run_key or str(seeds[-1])) or RunView()
    stop, steps = last.stopped_reason, last.training.global_step
    message = stop or (f"finished {len(seeds)} seed(s) x {steps} steps" if len(seeds) > 1 else f"finished {steps} steps")
    write_status(exp_dir, state, str(message), stop_reason=stop, step=int(steps or 0))
    return results
