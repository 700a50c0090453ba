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

import copy
import sys
import time
import traceback
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from evdet.experiments.records.environment import collect_environment
from evdet.experiments.statistics.intervals import DETECTIONS_FILE, save_validation_detections, seed_summary
from evdet.experiments.records.record import (RecordError, atomic_write_json, heartbeat, load_experiment,
                                       read_metrics_csv, seed_run_dir, write_status)
from evdet.experiments.records.record_lock import RecordLock
from evdet.experiments.records.run_config import RunConfig, config_for_seed, load_run_config, run_seeds
from evdet.utils.atomic import write_text_atomic

PER_CLASS_KEYS = ("AP", "AP50", "precision", "recall")
GROUP_KEYS = ("AP", "AP50")


class AlreadyCompleted(RecordError):
    """``--resume`` of a completed record: nothing to do, results.json left as it is."""


def curves_from_csv(csv_path: Path) -> dict:
    """results.json ``curves``: {column: {"step": [...], "value": [...]}} for train/, val/, monitor/ columns."""
    return {k: {"step": s, "value": v} for k, (s, v) in read_metrics_csv(csv_path).items()
            if k.startswith(("train/", "val/", "monitor/"))}


def final_monitors(curves: dict) -> dict:
    """Last logged value of every ``monitor/*`` curve, keyed without the prefix."""
    return {k.split("/", 1)[1]: c["value"][-1] for k, c in curves.items()
            if k.startswith("monitor/") and c["value"]}


# ---------------------------------------------------------------- aggregation over seeds


def scalar_leaves(block: dict) -> dict[str, Optional[float]]:
    """Metric key (as ``metrics.metric_value`` reads it) -> value, for every scalar of one protocol result."""
    out: dict[str, Optional[float]] = dict((block.get("metrics") or {}).items())
    for name, d in (block.get("per_class") or {}).items():
        out.update({f"per_class.{name}.{k}": d.get(k) for k in PER_CLASS_KEYS if k in (d or {})})
    for name, d in (block.get("groups") or {}).items():
        out.update({f"groups.{name}.{k}": d.get(k) for k in GROUP_KEYS if k in (d or {})})
    return out


def _set_leaf(block: dict, key: str, value: Optional[float]) -> None:
    """Inverse of ``scalar_leaves`` for one key: ``AP`` -> metrics, ``per_class.car.AP`` -> per_class."""
    parts = key.split(".")
    if len(parts) == 1:
        block["metrics"][key] = value
    else:
        block[parts[0]][".".join(parts[1:-1])][parts[-1]] = value


def _numeric(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def aggregate_runs(results: dict) -> None:
    """Fill ``protocols``, ``seed_stats``, ``monitors`` and ``step`` of ``results`` from its ``runs``.

    Aggregates the completed runs (while none is completed, the runs with results). One run: its
    results as they are. Several: the first run's documents with every scalar replaced by the mean
    over seeds and ``seed_aggregate`` naming the seeds (confusion, counts, curves are the first run's).
    """
    order = [str(s) for s in results.get("seeds", [])]
    runs = [results["runs"][k] for k in order if k in results.get("runs", {})]
    evaluated = [r for r in runs if r.get("protocols")]
    chosen = [r for r in evaluated if r.get("status") == "completed"] or evaluated
    if not chosen:
        return
    seeds = [r["seed"] for r in chosen]
    stats: dict = {"seeds": seeds, "protocols": {}, "monitors": {}}
    protocols = copy.deepcopy(chosen[0]["protocols"])
    for p, block in protocols.items():
        leaves = [scalar_leaves(r["protocols"].get(p, {})) for r in chosen]
        stats["protocols"][p] = {}
        for key in leaves[0]:
            values = [lv.get(key) for lv in leaves]
            summary = seed_summary([v for v in values if _numeric(v)])
            stats["protocols"][p][key] = {**summary.to_dict(), "values": values}
            if len(chosen) > 1:
                _set_leaf(block, key, summary.mean)
        if len(chosen) > 1:
            block["seed_aggregate"] = {"seeds": seeds, "statistic": "mean",
                                       "first_seed_only": ["confusion", "counts", "pr_curves"]}
    monitors = dict(chosen[0].get("monitors") or {})
    for name, v in list(monitors.items()):
        values = [(r.get("monitors") or {}).get(name) for r in chosen]
        if all(_numeric(x) for x in values):
            summary = seed_summary(values)
            stats["monitors"][name] = {**summary.to_dict(), "values": values}
            monitors[name] = summary.mean
        elif len(chosen) > 1:
            monitors[name] = [x for x in values if x is not None] or None
    results.update(protocols=protocols, seed_stats=stats, monitors=monitors,
                   step=min(int(r.get("step", 0)) for r in chosen))


# ---------------------------------------------------------------- evaluation and record keeping


def _eval_geometry(cfg: RunConfig):
    """(class map, repr (h, w), source (h, w), preprocess info) of the run's preprocessed dataset."""
    from evdet.data.preprocessed import read_preprocess_info
    from evdet.evaluation.dataset import dataset_class_map

    root = Path(cfg.data.root)
    if not cfg.data.root or not root.is_dir():
        raise RecordError(f"data.root {cfg.data.root!r}: no such preprocessed dataset folder")
    info = read_preprocess_info(root)
    try:
        class_map = dataset_class_map(root, cfg.data.class_map)      # 'auto' (the dataset's) or a known name
    except ValueError as err:
        raise RecordError(str(err)) from None
    return class_map, tuple(info["repr_hw"]), tuple(info["source_hw"]), info


def _evaluation_callback(cfg: RunConfig, run_dir: Path):
    """The validation's EvaluationCallback (same protocol arguments as ``evaluate_checkpoint``)."""
    from evdet.evaluation.callback import EvaluationCallback

    class_map = _eval_geometry(cfg)[0]
    return EvaluationCallback.for_dataset(cfg.data.root, cfg.eval, representation=cfg.data.representation,
                                          class_map=class_map, out_dir=run_dir)


def _eval_kwargs(eval_cb) -> dict:
    """Keyword arguments of ``evaluate`` (all but the protocol) that the callback uses, as JSON."""
    cm = eval_cb.class_names
    names = list(getattr(cm, "names", cm))
    groups = eval_cb.groups
    return {"height": eval_cb.height, "width": eval_cb.width, "class_names": names,
            "class_groups": {g: list(m) for g, m in (getattr(cm, "groups", None) or {}).items()},
            "source_hw": list(eval_cb.source_hw) if eval_cb.source_hw is not None else None,
            "groups": (dict(groups) if isinstance(groups, dict) else list(groups)) if groups else None,
            "pr_confidence": eval_cb.pr_confidence, "confusion_iou": eval_cb.confusion_iou,
            "label_rate_hz": eval_cb.label_rate_hz, "scoring": eval_cb.scoring}


def _bbox_array(value) -> np.ndarray:
    """A BBOX array sorted by t from an array or a list of per-frame arrays."""
    from evdet.data.labels import BBOX_DTYPE

    if isinstance(value, (list, tuple)):
        value = np.concatenate(value) if len(value) else np.zeros(0, dtype=BBOX_DTYPE)
    arr = np.asarray(value)
    return arr[np.argsort(arr["t"], kind="stable")] if len(arr) else np.zeros(0, dtype=BBOX_DTYPE)


def save_module_detections(pl_module, eval_cb, path: Path) -> Path:
    """Save the module's current validation GT and detections (sequence order of the callback)."""
    names, gts, dts = eval_cb.last_inputs          # exactly what the callback evaluated
    return save_validation_detections(path, names, [_bbox_array(g) for g in gts], [_bbox_array(d) for d in dts],
                                      _eval_kwargs(eval_cb))


def _record_callback(exp_dir: Path, every_s: float, eval_cb, results: dict, run_key: str, run_dir: Path):
    """Lightning callback keeping the record current during training (heartbeat + latest results)."""
    import lightning as L

    class RecordKeeper(L.Callback):
        """Refresh status.json's heartbeat at most every ``every_s`` seconds; after each validation,
        write its results into the run's entry of results.json and its detections to
        ``validation/detections.npz`` (so a run killed later still holds its last evaluation).
        Must come after the evaluation callback in the callback list."""

        def __init__(self) -> None:
            self._last = 0.0

        def on_validation_epoch_end(self, trainer, pl_module) -> None:
            if getattr(trainer, "sanity_checking", False) or not eval_cb.last_results:
                return
            if not getattr(trainer, "is_global_zero", True):
                return
            save_module_detections(pl_module, eval_cb, run_dir / "validation" / DETECTIONS_FILE)
            results["runs"][run_key].update(protocols={p: r.to_dict() for p, r in eval_cb.last_results.items()},
                                            step=int(trainer.global_step))
            aggregate_runs(results)
            atomic_write_json(exp_dir / "results.json", results)

        def _beat(self, trainer) -> None:
            now = time.monotonic()
            if now - self._last >= every_s and getattr(trainer, "is_global_zero", True):
                self._last = now
                heartbeat(exp_dir, step=int(trainer.global_step))

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            self._beat(trainer)

        def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
            self._beat(trainer)

    return RecordKeeper()


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
        if block.get("confusion"):
            atomic_write_json(run_dir / "confusion_matrices" / f"{p}.json", block["confusion"])
    diverged = bool(summary.get("stopped_reason")) and "DivergenceStop" in str(summary["stopped_reason"])
    # the evaluation callback names its folders validation/step_<trainer.global_step>
    val_steps = [int(p.name[5:]) for p in (run_dir / "validation").glob("step_*") if p.name[5:].isdigit()]
    run.update(status="failed" if diverged else "completed",
               step=max(val_steps) if val_steps and protocols else int(summary["global_step"]),
               protocols=protocols,
               monitors={**final_monitors(curves), "peak_rss_mb": summary.get("peak_rss_mb"),
                         "stopped_reason": summary.get("stopped_reason")},
               training={k: summary.get(k) for k in ("global_step", "best_metric", "best_score", "best_step",
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
        results = dict(exp.results)
        results.update(schema_version=2, status="running", seeds=list(seeds),
                       class_names=list(results.get("class_names") or []))
        results["runs"] = {k: dict(v) for k, v in (results.get("runs") or {}).items()}
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
        class_map = _eval_geometry(cfg)[0]
        results["class_names"] = list(class_map.names)
        atomic_write_json(exp_dir / "results.json", results)
        for index, seed in enumerate(seeds):
            if (runs.get(str(seed)) or {}).get("status") == "completed":
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
    eval_cb = _evaluation_callback(cfg_seed, run_dir)
    keeper = _record_callback(exp_dir, heartbeat_s, eval_cb, results, str(seed), run_dir)
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
    runs = results["runs"]
    failed = [r for r in runs.values() if r.get("status") == "failed"]
    state = "failed" if failed else "partial" if partial else "completed"
    aggregate_runs(results)
    results["status"] = state
    atomic_write_json(exp_dir / "results.json", results)
    if state == "partial":
        done = sum(r.get("status") == "completed" for r in runs.values())
        write_status(exp_dir, "partial", f"{done} of {len(seeds)} seeds done; resume to train the rest")
        return results
    last = runs.get(run_key or str(seeds[-1])) or {}
    stop = (last.get("monitors") or {}).get("stopped_reason")
    message = stop or (f"finished {len(seeds)} seed(s) x {last.get('training', {}).get('global_step')} steps"
                       if len(seeds) > 1 else f"finished {last.get('training', {}).get('global_step')} steps")
    write_status(exp_dir, state, str(message), stop_reason=stop,
                 step=int((last.get("training") or {}).get("global_step") or 0))
    return results
