"""Hyper-parameter sweeps on Optuna: each trial is an experiment record; many workers share one study.

Space file (YAML), dotted config keys of the base experiment's config::

    params:
      training.lr: {low: 1.0e-4, high: 1.0e-2, log: true}     # float range (log scale)
      data.batch_size: {low: 2, high: 8, step: 2}             # int range (ints on both ends)
      loss.focal.gamma: {choices: [0.0, 0.5, 2.0]}            # categorical
      model.in_stages: {choices: [[2, 3, 4], [1, 2, 3, 4]]}   # lists are fine as choices
    sampler: tpe        # tpe (default) | random
    pruner: median      # median (default) | none

Trial ``n`` of sweep NAME trains record ``NAME-tNNN`` (the base's config with the trial's values, base =
the base id, hypothesis generated). The trial reports the metric's validation value after each
validation (``val/<protocol>/<metric>``, or the ``train/*`` column) to the pruner, through a Lightning
callback the runner attaches; a pruned trial's record stops early and says so. See ``queue.py`` for
the budget, storage and worker semantics.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

from evdet.experiments.designs.arms import (DesignError, check_loggable_metric, config_of, is_curve_metric, read_metric,
                                            resolve_config_yaml, with_overrides)
from evdet.experiments.designs.queue import (DEFAULT_HEARTBEAT_S, claim_or_surplus, counted_trials, open_storage,
                                             open_study, running_trials, waiting_trials, work, worker_label)
from evdet.experiments.records.metric_keys import higher_is_better, split_metric_key
from evdet.experiments.records.hypotheses import hypothesis_document
from evdet.experiments.records.record import create_experiment, load_experiment, write_status
from evdet.experiments.running.executors import run_record
from evdet.experiments.designs.sweep_results import save_sweep_summary, sweep_summary
from evdet.experiments.designs.sweep_space import load_space




def logged_key(metric: str) -> Optional[str]:
    """The key a metric is logged under during training (``full/AP`` -> ``val/full/AP``), or None."""
    if is_curve_metric(metric):
        return metric
    proto, name = split_metric_key(metric)
    if proto and name in ("AP", "AP50", "AP75", "AP_S", "AP_M", "AP_L", "AP_tiny", "small_AP"):
        return f"val/{proto}/{name}"
    return None


def pruning_callback(trial, key: str):
    """Lightning callback: report ``key`` to the trial after each validation; stop training when pruned."""
    import lightning as L

    class OptunaPruning(L.Callback):
        """Reports the validation metric to an Optuna trial; sets ``pruned_at_step`` and stops when pruned.

        With several seeds the runner trains them in turn with the same callbacks: the first seed's values
        are reported, and once pruned no later seed trains."""

        def __init__(self) -> None:
            self.pruned_at_step: Optional[int] = None
            self._reported: set[int] = set()

        def on_train_start(self, trainer, pl_module) -> None:
            if self.pruned_at_step is not None:
                trainer.should_stop = True

        def on_validation_end(self, trainer, pl_module) -> None:
            if getattr(trainer, "sanity_checking", False) or self.pruned_at_step is not None:
                return
            value = trainer.callback_metrics.get(key)
            step = int(trainer.global_step)
            if value is None or step in self._reported:
                return
            value = float(value)
            if not math.isfinite(value):
                return
            self._reported.add(step)
            trial.report(value, step)
            if trial.should_prune():
                self.pruned_at_step = step
                trainer.should_stop = True

    return OptunaPruning()


def _trial_hypothesis(exp_id: str, name: str, base: str, values: dict, metric: str, direction: str) -> str:
    lines = "\n".join(f"- `{k}` = {v!r}" for k, v in values.items())
    op = ">=" if direction == "maximize" else "<="
    return hypothesis_document(
        exp_id, question=f"Which values of the searched keys give the best {metric}? (sweep `{name}` on `{base}`)",
        hypothesis=f"`{base}` with these values:\n{lines}",
        rationale=f"Trial proposed by the sweep's sampler (`evdet exp sweep {name} --base {base} --metric {metric}`).",
        criteria=f"- {metric} {op} base",
        risks="One seed per trial: the best trial of a sweep is biased upwards (winner's curse); re-run it with seeds.")


@dataclass
class SweepSettings:
    """What ``evdet exp sweep`` was given (every worker of one sweep gets the same)."""

    name: str
    base: str
    space_file: Path
    trials: int
    metric: str
    storage: str
    direction: Optional[str] = None        # "maximize" / "minimize"; default from the metric
    heartbeat_s: int = DEFAULT_HEARTBEAT_S
    poll_s: float = 2.0
    sampler_seed: Optional[int] = None


def _sampler(kind: str, seed: Optional[int]):
    import optuna

    return optuna.samplers.RandomSampler(seed=seed) if kind == "random" else optuna.samplers.TPESampler(seed=seed)


def _pruner(kind: str):
    import optuna

    return optuna.pruners.NopPruner() if kind == "none" else optuna.pruners.MedianPruner(n_startup_trials=2)


def prepare_sweep(root: Path, s: SweepSettings):
    """Check everything (space, metric, storage, study definition) before any training; returns the study."""
    root = Path(root)
    if s.trials < 1:
        raise DesignError(f"--trials {s.trials}: must be at least 1")
    base_cfg = config_of(root, s.base)
    space = load_space(s.space_file, base_cfg)
    base_exp = load_experiment(root, s.base)
    check_loggable_metric(s.metric, base_cfg, [base_exp] if base_exp.state == "completed" else [])
    direction = s.direction or ("maximize" if higher_is_better(split_metric_key(s.metric)[1]) else "minimize")
    if direction not in ("maximize", "minimize"):
        raise DesignError(f"direction {direction!r}: use maximize or minimize")
    storage = open_storage(s.storage, heartbeat_s=s.heartbeat_s)
    signature = {"kind": "sweep", "base": s.base, "metric": s.metric, "direction": direction,
                 "space": space.to_dict()}
    study = open_study(storage, s.name, signature, direction=direction, sampler=_sampler(space.sampler, s.sampler_seed),
                       pruner=_pruner(space.pruner))
    _check_earlier_summary(root, s.name, signature)   # another storage: its study cannot tell
    return study, space, base_cfg


def _check_earlier_summary(root: Path, name: str, signature: dict) -> None:
    """Refuse a sweep whose name already belongs to a sweep of another definition in this experiments root
    (its ``_designs/<name>.json`` and ``<name>-tNNN`` records would be mixed with, or overwritten by, this one)."""
    path = root / "_designs" / f"{name}.json"
    try:
        earlier = json.loads(path.read_text(encoding="utf-8")).get("definition") if path.is_file() else None
    except (OSError, ValueError, AttributeError):
        raise DesignError(f"{path}: exists but is not a readable sweep summary; use another sweep name") from None
    if earlier is not None and earlier != json.loads(json.dumps(signature, sort_keys=True, default=str)):
        raise DesignError(f"{path}: sweep {name!r} was run here with another definition (base, metric or space); "
                          f"use a new sweep name")


def _trial_record(root: Path, s: SweepSettings, exp_id: str, config_yaml: str, values: dict, direction: str) -> None:
    """Create the trial's record, or check that the existing one is this trial's (same resolved config)."""
    path = root / exp_id / "config.yaml"
    if not (root / exp_id).exists():
        create_experiment(root, exp_id, config_yaml,
                          _trial_hypothesis(exp_id, s.name, s.base, values, s.metric, direction),
                          base=s.base, command=f"evdet exp sweep {s.name} --base {s.base} --metric {s.metric}")
    elif not path.is_file() or path.read_text(encoding="utf-8") != config_yaml:
        raise DesignError(f"{root / exp_id}: exists with another config than this trial's "
                          f"({', '.join(f'{k}={v}' for k, v in values.items())}): an earlier sweep {s.name!r} with "
                          f"another space or storage? Use a new sweep name")


def run_sweep(root: Path, s: SweepSettings, *, run_fn: Callable = run_record,
              echo: Callable[[str], None] = print, save_summary: bool = True) -> dict:
    """Work on sweep ``s.name`` until the study holds ``s.trials`` finished trials; returns ``sweep_summary``.

    ``run_fn(root, exp_id, callbacks=...) -> Experiment`` trains one record (tests pass a fake).
    ``save_summary``: write ``<root>/_designs/<name>.json`` and the plots at the end (``save_sweep_summary``).
    """
    import optuna

    root = Path(root)
    study, space, base_cfg = prepare_sweep(root, s)
    key = logged_key(s.metric)

    def objective(trial) -> float:
        claim_or_surplus(study, trial, s.trials)
        values = {p.key: p.suggest(trial) for p in space.params}
        exp_id = trial.user_attrs.get("exp_id") or f"{s.name}-t{trial.number:03d}"
        trial.set_user_attr("exp_id", exp_id)
        trial.set_user_attr("worker", worker_label())
        _trial_record(root, s, exp_id, resolve_config_yaml(with_overrides(base_cfg, values), exp_id), values,
                      study.direction.name.lower())
        echo(f"trial {trial.number}: {exp_id} " + ", ".join(f"{k}={v}" for k, v in values.items()))
        callbacks = [pruning_callback(trial, key)] if key and space.pruner != "none" else []
        exp = run_fn(root, exp_id, callbacks=callbacks)
        pruned_at = next((c.pruned_at_step for c in callbacks if c.pruned_at_step is not None), None)
        if pruned_at is not None:
            write_status(exp.path, exp.state, f"pruned by sweep {s.name} (trial {trial.number}) at step {pruned_at}",
                         pruned_at_step=pruned_at)
            raise optuna.TrialPruned(f"pruned at step {pruned_at}")
        value = read_metric(exp, s.metric)
        trial.set_user_attr("state", exp.state)
        return math.nan if exp.state != "completed" or value is None else value   # nan: FAIL, still counted

    def has_work() -> bool:
        return bool(waiting_trials(study)) or len(counted_trials(study)) < s.trials

    work(study, objective, has_work=has_work,
         finished=lambda: not running_trials(study) and not waiting_trials(study), poll_s=s.poll_s)
    return save_sweep_summary(root, study) if save_summary else sweep_summary(study)
