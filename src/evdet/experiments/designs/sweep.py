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
from typing import Any, Callable, Literal, Optional, Sequence

from evdet.experiments.analysis.config_diff import flatten
from evdet.experiments.designs.arms import (DesignError, check_loggable_metric, config_of, is_curve_metric, read_metric,
                                            resolve_config_yaml, with_overrides)
from evdet.experiments.designs.queue import (DEFAULT_HEARTBEAT_S, claim_or_surplus, counted_trials, open_storage,
                                             open_study, running_trials, waiting_trials, work, worker_label)
from evdet.experiments.records.metric_keys import higher_is_better, split_metric_key
from evdet.experiments.records.hypotheses import hypothesis_document
from evdet.experiments.records.record import create_experiment, load_experiment, write_status
from evdet.experiments.running.executors import run_record

SAMPLERS = ("tpe", "random")
PRUNERS = ("median", "none")


class SpaceError(DesignError):
    """The space file is invalid (names the file, the key and the problem)."""


@dataclass(frozen=True)
class Param:
    """One searched key: a float / int range or categorical choices."""

    key: str
    kind: Literal["float", "int", "categorical"]
    low: Optional[float] = None
    high: Optional[float] = None
    log: bool = False
    step: Optional[float] = None
    choices: tuple = ()

    def to_dict(self) -> dict:
        if self.kind == "categorical":
            return {"choices": [list(c) if isinstance(c, tuple) else c for c in self.choices]}
        out: dict[str, Any] = {"type": self.kind, "low": self.low, "high": self.high, "log": self.log}
        if self.step is not None:
            out["step"] = self.step
        return out

    def suggest(self, trial) -> Any:
        """Value for this trial (categorical choices that are lists travel as their JSON text)."""
        if self.kind == "float":
            return trial.suggest_float(self.key, self.low, self.high, log=self.log, step=self.step)
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), log=self.log,
                                     step=int(self.step or 1))
        labels = [json.dumps(c) if isinstance(c, (list, tuple)) else c for c in self.choices]
        label = trial.suggest_categorical(self.key, labels)
        return json.loads(label) if isinstance(label, str) and label.startswith("[") else label


@dataclass(frozen=True)
class Space:
    params: tuple[Param, ...]
    sampler: str = "tpe"
    pruner: str = "median"

    def to_dict(self) -> dict:
        return {"params": {p.key: p.to_dict() for p in self.params}, "sampler": self.sampler,
                "pruner": self.pruner}


def _number(source: str, where: str, value: Any) -> float:
    if isinstance(value, bool):
        raise SpaceError(f"{source}: {where} is {value!r}, expected a number")
    try:
        number = float(value)     # YAML reads 1e-4 (no dot) as a string
    except (TypeError, ValueError):
        raise SpaceError(f"{source}: {where} is {value!r}, expected a number") from None
    if not math.isfinite(number):
        raise SpaceError(f"{source}: {where} is {value!r}, expected a finite number")
    return number


def _close_keys(key: str, known: Sequence[str]) -> str:
    import difflib

    near = difflib.get_close_matches(key, known, n=3)
    return f"; did you mean {', '.join(near)}?" if near else ""


def _parse_param(source: str, key: str, spec: Any, base_flat: dict) -> Param:
    where = f"params.{key}"
    if key not in base_flat:
        raise SpaceError(f"{source}: {where}: unknown config key{_close_keys(key, list(base_flat))}")
    if not isinstance(spec, dict):
        raise SpaceError(f"{source}: {where}: expected a mapping with low/high or choices")
    unknown = set(spec) - {"type", "low", "high", "log", "step", "choices"}
    if unknown:
        raise SpaceError(f"{source}: {where}: unknown field(s) {sorted(unknown)}")
    current = base_flat[key]
    if "choices" in spec:
        choices = spec["choices"]
        if not isinstance(choices, list) or not choices:
            raise SpaceError(f"{source}: {where}.choices: expected a non-empty list")
        return Param(key, "categorical", choices=tuple(tuple(c) if isinstance(c, list) else c for c in choices))
    if "low" not in spec or "high" not in spec:
        raise SpaceError(f"{source}: {where}: needs low and high (a range) or choices")
    low, high = _number(source, f"{where}.low", spec["low"]), _number(source, f"{where}.high", spec["high"])
    log = bool(spec.get("log", False))
    step = _number(source, f"{where}.step", spec["step"]) if spec.get("step") is not None else None
    kind = spec.get("type")
    if kind is None:
        raw = (spec["low"], spec["high"], spec.get("step", 1))
        kind = "int" if all(isinstance(v, int) and not isinstance(v, bool) for v in raw) else "float"
    if kind not in ("int", "float"):
        raise SpaceError(f"{source}: {where}.type is {kind!r}, expected int or float (or give choices)")
    if isinstance(current, bool) or not isinstance(current, (int, float)) and current is not None:
        raise SpaceError(f"{source}: {where}: config value {current!r} is not a number; use choices")
    if kind == "float" and isinstance(current, int) and not isinstance(current, bool):
        raise SpaceError(f"{source}: {where}: the config key holds an integer ({current}); use integer low/high")
    if not low < high:
        raise SpaceError(f"{source}: {where}: impossible range, low {low:g} must be below high {high:g}")
    if log and low <= 0:
        raise SpaceError(f"{source}: {where}: a log range needs low > 0 (got {low:g})")
    if step is not None and (step <= 0 or step > high - low):
        raise SpaceError(f"{source}: {where}.step {step:g}: must be > 0 and at most high - low ({high - low:g})")
    if log and step is not None:
        raise SpaceError(f"{source}: {where}: log and step cannot be combined")
    return Param(key, kind, low=low, high=high, log=log, step=step)


def load_space(path: Path, base_config: dict) -> Space:
    """Read and check a space file against the base config (every value is tried through the config schema).

    Raises:
        SpaceError: unknown keys, impossible ranges, values the config rejects (one line, naming file and key).
    """
    import yaml

    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpaceError(f"{path}: no such space file") from None
    except (yaml.YAMLError, UnicodeDecodeError) as err:
        raise SpaceError(f"{path}: invalid YAML ({str(err).splitlines()[0]})") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("params"), dict) or not doc["params"]:
        raise SpaceError(f"{path}: expected a mapping with a non-empty 'params' mapping")
    unknown = set(doc) - {"params", "sampler", "pruner"}
    if unknown:
        raise SpaceError(f"{path}: unknown top-level field(s) {sorted(unknown)}; use params, sampler, pruner")
    sampler, pruner = str(doc.get("sampler", "tpe")), str(doc.get("pruner", "median"))
    if sampler not in SAMPLERS:
        raise SpaceError(f"{path}: sampler {sampler!r} is not one of {list(SAMPLERS)}")
    if pruner not in PRUNERS:
        raise SpaceError(f"{path}: pruner {pruner!r} is not one of {list(PRUNERS)}")
    flat = flatten(base_config)
    params = tuple(_parse_param(str(path), str(k), v, flat) for k, v in doc["params"].items())
    for p in params:   # every end of every range and every choice must be a valid config
        values = list(p.choices) if p.kind == "categorical" else [p.low, p.high]
        for v in values:
            v = int(v) if p.kind == "int" else list(v) if isinstance(v, tuple) else v
            try:
                resolve_config_yaml(with_overrides(base_config, {p.key: v}), "space_check")
            except ValueError as err:
                raise SpaceError(f"{path}: params.{p.key}: value {v!r} rejected by the config "
                                 f"({str(err).splitlines()[0]})") from None
    return Space(params=params, sampler=sampler, pruner=pruner)


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


def save_sweep_summary(root: Path, study) -> dict:
    """Write ``<root>/_designs/<study>.json`` (kind "sweep") and its history / importances PNGs for the report."""
    from evdet.experiments.designs.arms import write_design_summary

    summary = sweep_summary(study)
    pngs = plot_sweep(study, Path(root) / "_designs")
    write_design_summary(root, study.study_name, {"kind": "sweep", **summary,
                                                  "plots": {k: p.name for k, p in pngs.items()}})
    return summary


def sweep_summary(study, top: int = 5) -> dict:
    """Trial counts by state, the best trials (value, record, params) and Optuna's parameter importances."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    counts: dict[str, int] = {}
    for t in trials:
        label = "SURPLUS" if t.user_attrs.get("surplus") else t.state.name
        counts[label] = counts.get(label, 0) + 1
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    best = sorted(done, key=lambda t: t.value, reverse=study.direction.name == "MAXIMIZE")[:top]
    importances, why = None, ""
    if len(done) >= 2:
        try:
            importances = dict(_importances(study))
        except (RuntimeError, ValueError, ZeroDivisionError) as err:
            why = str(err).splitlines()[0]
    else:
        why = "fewer than 2 completed trials"
    return {"study": study.study_name, "direction": study.direction.name.lower(),
            "definition": study.user_attrs.get("evdet", {}), "counts": counts,
            "best": [{"number": t.number, "value": t.value, "exp_id": t.user_attrs.get("exp_id"),
                      "params": t.params} for t in best],
            "importances": importances, "importances_note": why}


def _importances(study) -> dict:
    import warnings

    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return optuna.importance.get_param_importances(study)


def load_sweep(storage_url: str, name: str):
    """An existing sweep study (QueueError when storage or study is missing)."""
    import optuna

    from evdet.experiments.designs.queue import QueueError, redact_url

    storage = open_storage(storage_url, create=False)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise QueueError(f"storage {redact_url(storage_url)}: no study {name!r}; studies: {names}") from None


def sweep_pngs(study) -> dict[str, bytes]:
    """PNG bytes of Optuna's optimisation history and (with >= 2 completed trials) parameter importances."""
    import io
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as ovm

    plots = {"history": ovm.plot_optimization_history}
    if sweep_summary(study)["importances"]:
        plots["importances"] = ovm.plot_param_importances
    out = {}
    for kind, fn in plots.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ax = fn(study)
        fig = ax.figure
        fig.set_size_inches(7, 4)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, dpi=100, format="png")
        plt.close(fig)
        out[kind] = buf.getvalue()
    return out


def plot_sweep(study, out_dir: Path) -> dict[str, Path]:
    """Write ``<study>_history.png`` and ``<study>_importances.png`` under ``out_dir`` (atomic)."""
    from evdet.utils.atomic import write_bytes_atomic

    return {kind: write_bytes_atomic(Path(out_dir) / f"{study.study_name}_{kind}.png", png)
            for kind, png in sweep_pngs(study).items()}


def sweep_report_html(study) -> str:
    """A self-contained HTML section (best trials, importances, both plots embedded) for the experiment report."""
    import base64
    import html

    summary = sweep_summary(study)
    defn = summary["definition"]
    rows = "".join(f"<tr><td>{b['number']}</td><td>{b['value']:.6g}</td><td>{html.escape(str(b['exp_id']))}</td>"
                   f"<td>{html.escape(json.dumps(b['params']))}</td></tr>" for b in summary["best"])
    imgs = "".join(f'<img alt="{kind}" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
                   for kind, png in sweep_pngs(study).items())
    counts = ", ".join(f"{k.lower()} {v}" for k, v in sorted(summary["counts"].items()))
    return (f"<section><h2>Sweep {html.escape(summary['study'])}</h2>"
            f"<p>{html.escape(summary['direction'])} {html.escape(str(defn.get('metric')))} from base "
            f"{html.escape(str(defn.get('base')))}; trials: {html.escape(counts)}</p>"
            f"<table><tr><th>trial</th><th>value</th><th>record</th><th>params</th></tr>{rows}</table>{imgs}</section>")
