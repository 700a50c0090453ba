"""Run one experiment record: train with the evaluation callback attached, then fill results.json.

The record always says what happened: ``status.json`` goes ``running`` (with pid and a heartbeat
refreshed during training) -> ``completed`` / ``failed`` (exception or divergence stop, message and
``logs/error.txt``) / ``killed`` (Ctrl-C). A process killed hard leaves ``running`` with a dead pid /
stale heartbeat, which ``records.read_status`` reports as killed; ``--resume`` continues from
``checkpoints/last.ckpt``.

results.json holds the LAST validation's results per protocol (``step`` = its global step), the
best-checkpoint tracking, the curves of ``logs/metrics.csv`` and the final monitor values.
"""

from __future__ import annotations

import sys
import time
import traceback
from pathlib import Path
from typing import Optional

from evdet.events.atomic import write_text_atomic
from evdet.experiments.environment import collect_environment
from evdet.experiments.records import (RecordError, atomic_write_json, heartbeat, load_experiment,
                                       read_metrics_csv, write_status)
from evdet.experiments.run_config import RunConfig, load_run_config


def curves_from_csv(csv_path: Path) -> dict:
    """results.json ``curves``: {column: {"step": [...], "value": [...]}} for train/, val/, monitor/ columns."""
    return {k: {"step": s, "value": v} for k, (s, v) in read_metrics_csv(csv_path).items()
            if k.startswith(("train/", "val/", "monitor/"))}


def final_monitors(curves: dict) -> dict:
    """Last logged value of every ``monitor/*`` curve, keyed without the prefix."""
    return {k.split("/", 1)[1]: c["value"][-1] for k, c in curves.items()
            if k.startswith("monitor/") and c["value"]}


def _record_callback(exp_dir: Path, every_s: float, eval_cb, results: dict):
    """Lightning callback keeping the record current during training (heartbeat + latest results)."""
    import lightning as L

    class RecordKeeper(L.Callback):
        """Refresh status.json's heartbeat at most every ``every_s`` seconds; after each validation,
        write its results to results.json (so a run killed later still holds its last evaluation).
        Must come after the evaluation callback in the callback list."""

        def __init__(self) -> None:
            self._last = 0.0

        def on_validation_epoch_end(self, trainer, pl_module) -> None:
            if getattr(trainer, "sanity_checking", False) or not eval_cb.last_results:
                return
            if getattr(trainer, "is_global_zero", True):
                results.update(protocols={p: r.to_dict() for p, r in eval_cb.last_results.items()},
                               step=int(trainer.global_step))
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


def _eval_geometry(cfg: RunConfig):
    """(class map, repr (h, w), source (h, w)) of the run's preprocessed dataset."""
    from evdet.data.classes import KNOWN_CLASS_MAPS, load_class_map
    from evdet.data.sequence import read_preprocess_info

    root = Path(cfg.data.root)
    if not cfg.data.root or not root.is_dir():
        raise RecordError(f"data.root {cfg.data.root!r}: no such preprocessed dataset folder")
    info = read_preprocess_info(root)
    if cfg.data.class_map == "auto":
        class_map = load_class_map(root)
    elif cfg.data.class_map in KNOWN_CLASS_MAPS:
        class_map = KNOWN_CLASS_MAPS[cfg.data.class_map]
    else:
        raise RecordError(f"data.class_map {cfg.data.class_map!r}: use 'auto' or one of {sorted(KNOWN_CLASS_MAPS)}")
    return class_map, tuple(info["repr_hw"]), tuple(info["source_hw"])


def run_experiment(root: Path, exp_id: str, *, resume: bool = False, progress: bool = True,
                   heartbeat_s: float = 30.0, command: Optional[str] = None) -> dict:
    """Train experiment ``exp_id`` under ``root`` and record everything; returns the results document.

    Raises:
        RecordError: the record cannot run (already running / completed, missing checkpoint for resume).
        Any training error, after the record was marked failed.
    """
    exp = load_experiment(Path(root), exp_id)
    exp_dir = exp.path
    if exp.state == "running":
        raise RecordError(f"{exp_dir}: already running (pid {exp.status.get('pid')}); wait, or kill it first")
    if exp.state == "completed" and not resume:
        raise RecordError(f"{exp_dir}: already completed; create a new experiment to change anything")
    has_last = (exp_dir / "checkpoints" / "last.ckpt").exists()
    if resume and not has_last:
        raise RecordError(f"{exp_dir}: nothing to resume (no checkpoints/last.ckpt)")
    if has_last and not resume:
        raise RecordError(f"{exp_dir}: a previous run left checkpoints/last.ckpt; pass --resume")
    cfg = load_run_config([exp_dir / "config.yaml"], use_default=False)
    cmd = command or f"run_experiment({str(root)!r}, {exp_id!r}, resume={resume})  # argv: {' '.join(sys.argv)}"
    old_cmd = (exp_dir / "command.txt").read_text() if (exp_dir / "command.txt").exists() else ""
    write_text_atomic(exp_dir / "command.txt", old_cmd + cmd.rstrip("\n") + "\n")

    results = dict(exp.results)
    results.update(status="running", class_names=list(results.get("class_names") or []))
    write_status(exp_dir, "running", "resumed" if resume else "training", resumed=resume)
    try:
        class_map, repr_hw, source_hw = _eval_geometry(cfg)
        results["class_names"] = list(class_map.names)
        atomic_write_json(exp_dir / "results.json", results)
        from evdet.evaluation.callback import EvaluationCallback
        from evdet.training.fit import fit

        atomic_write_json(exp_dir / "environment.json", collect_environment(cfg.training.seed, cwd=Path.cwd()))
        eval_cb = EvaluationCallback(cfg.eval.protocols, class_names=class_map, height=repr_hw[0],
                                     width=repr_hw[1], source_hw=source_hw, out_dir=exp_dir,
                                     groups=list(cfg.eval.groups) or None, pr_confidence=cfg.eval.pr_confidence)
        summary = fit(cfg.data, cfg.model, cfg.loss, cfg.training, exp_dir,
                      callbacks=[eval_cb, _record_callback(exp_dir, heartbeat_s, eval_cb, results)], resume=resume,
                      progress=progress)
    except KeyboardInterrupt:
        results["status"] = "killed"
        atomic_write_json(exp_dir / "results.json", results)
        write_status(exp_dir, "killed", "interrupted (KeyboardInterrupt); resume with --resume")
        raise
    except BaseException as err:
        write_text_atomic(exp_dir / "logs" / "error.txt", traceback.format_exc())
        results["status"] = "failed"
        atomic_write_json(exp_dir / "results.json", results)
        write_status(exp_dir, "failed", f"{type(err).__name__}: {err}"[:500])
        raise

    curves = curves_from_csv(exp_dir / "logs" / "metrics.csv")
    protocols = {p: r.to_dict() for p, r in eval_cb.last_results.items()}
    for p, block in protocols.items():
        if block.get("confusion"):
            atomic_write_json(exp_dir / "confusion_matrices" / f"{p}.json", block["confusion"])
    diverged = bool(summary.get("stopped_reason")) and "DivergenceStop" in str(summary["stopped_reason"])
    state = "failed" if diverged else "completed"
    # the evaluation callback names its folders validation/step_<trainer.global_step>
    val_steps = [int(p.name[5:]) for p in (exp_dir / "validation").glob("step_*") if p.name[5:].isdigit()]
    results.update(
        status=state, step=max(val_steps) if val_steps and protocols else int(summary["global_step"]),
        protocols=protocols, curves=curves,
        monitors={**final_monitors(curves), "peak_rss_mb": summary.get("peak_rss_mb"),
                  "stopped_reason": summary.get("stopped_reason")},
        training={k: summary.get(k) for k in ("global_step", "best_metric", "best_score", "best_step",
                                              "best_ckpt", "last_ckpt", "wall_s")})
    atomic_write_json(exp_dir / "results.json", results)
    message = summary.get("stopped_reason") or f"finished {summary['global_step']} steps"
    write_status(exp_dir, state, str(message), stop_reason=summary.get("stopped_reason"),
                 step=int(summary["global_step"]))
    return results
