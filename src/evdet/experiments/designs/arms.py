"""Shared parts of designed experiments (ablate, bisect, sweep): changed keys, arm configs, records, metrics.

A design arm is an ordinary experiment record whose config is a base config with some keys taken
from another config. Arms are content-addressed: before creating a record, the design looks for an
existing record under the same root whose config (ignoring ``name``) is identical and reuses it, so
a design that is run again (after an interruption, or a second design that needs the same arm)
never re-runs finished work::

    <root>/<ID>/            ordinary records (hypothesis.md generated from the design, config.yaml resolved)
    <root>/_designs/<name>.json   summary of each ablation / bisection (written at its end, atomic)

Runs go through an executor (``evdet.experiments.running.executors``: ``LocalExecutor`` here, or the
Optuna trial queue ``designs.queue.QueueExecutor`` that any number of workers share); each record is
trained under its run lock, so two workers never train one record at once.
"""

from __future__ import annotations

import copy
import hashlib
import json
import math
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

from evdet.experiments.analysis.config_diff import flatten, load_config_tree
from evdet.experiments.records.metric_keys import metric_value, split_metric_key
from evdet.experiments.records.record import (Experiment, RecordError, atomic_write_json, create_experiment,
                                              list_experiments, read_metrics_csv)
from evdet.experiments.running.executors import record_state
from evdet.experiments.statistics import policy as interval_policy
from evdet.experiments.statistics.intervals import (CONFIDENCE, METHOD_NONE, Difference, IntervalError, seed_values,
                                                    welch_interval)

# keys that never count as a change between two configs: the record name and the seed(s), whose
# differences are noise, not effects
IGNORED_KEYS = ("name", "seeds", "training.seed")
CURVE_PREFIXES = ("train/", "val/", "monitor/")
LOGGED_EVAL_METRICS = ("AP", "AP50", "AP75", "AP_S", "AP_M", "AP_L", "AP_tiny", "small_AP")
TRAIN_COLUMNS = ("train/loss", "train/iou", "train/obj", "train/cls", "train/num_fg", "train/lr", "val/loss")
MONITORS = ("loss_cv", "peak_rss_mb", "cuda_max_mem_mb", "stopped_reason")
_ABSENT = "<absent>"


class DesignError(ValueError):
    """A design cannot be built or run (bad ids, metric, nothing changed, GOOD not better than BAD...)."""


# ---------------------------------------------------------------- config arithmetic
def changed_keys(old: dict, new: dict, ignore: Sequence[str] = IGNORED_KEYS) -> list[str]:
    """Flattened dotted keys whose values differ between two config trees (sorted; ``ignore`` left out)."""
    fo, fn = flatten(old), flatten(new)
    return sorted(k for k in set(fo) | set(fn)
                  if k not in ignore and fo.get(k, _ABSENT) != fn.get(k, _ABSENT))


def _set_path(tree: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    node = tree
    for p in parts[:-1]:
        node = node.setdefault(p, {})
    if value is _ABSENT:
        node.pop(parts[-1], None)
    else:
        node[parts[-1]] = copy.deepcopy(value)


def apply_keys(base: dict, source: dict, keys: Iterable[str]) -> dict:
    """Copy of config tree ``base`` with the values of ``keys`` taken from ``source`` (absent: removed)."""
    out = copy.deepcopy(base)
    flat = flatten(source)
    for k in keys:
        _set_path(out, k, flat.get(k, _ABSENT))
    return out


def with_overrides(tree: dict, values: dict[str, Any]) -> dict:
    """Copy of ``tree`` with dotted ``key: value`` pairs set."""
    out = copy.deepcopy(tree)
    for k, v in values.items():
        _set_path(out, k, v)
    return out


def config_digest(tree: dict) -> str:
    """sha1 of a config tree without its ``name`` (two records with equal digests ran the same thing)."""
    flat = {k: v for k, v in flatten(tree).items() if k != "name"}
    return hashlib.sha1(json.dumps(flat, sort_keys=True, default=str).encode()).hexdigest()


def resolve_config_yaml(tree: dict, exp_id: str) -> str:
    """Validated, fully resolved YAML of ``tree`` named ``exp_id`` (unknown keys / bad values: ConfigError)."""
    import yaml

    from evdet.experiments.records.run_config import dump_run_config, load_run_config

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(yaml.safe_dump(tree, sort_keys=False))
        cfg = load_run_config([path], [f"name={exp_id}"], use_default=False)
    return dump_run_config(cfg)


def config_of(root: Path, exp_id: str) -> dict:
    """The config tree of experiment ``exp_id`` (errors name the file)."""
    try:
        return load_config_tree(exp_id, Path(root))
    except ValueError as err:
        raise DesignError(str(err)) from None


# ---------------------------------------------------------------- records
@dataclass(frozen=True)
class Arm:
    """One run a design needs: a config tree, the id it gets if it must be created, and why."""

    exp_id: str
    config: dict
    hypothesis: str
    base: Optional[str]
    command: str = ""


class RecordIndex:
    """Existing records under ``root`` by config digest (content addressing of design arms)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.refresh()

    def refresh(self) -> None:
        self._by_digest: dict[str, list[str]] = {}
        for exp in list_experiments(self.root):
            if exp.config:
                self._by_digest.setdefault(config_digest(exp.config), []).append(exp.id)

    def find(self, tree: dict) -> Optional[str]:
        """Id of a record with the same config; completed ones first, then any."""
        ids = self._by_digest.get(config_digest(tree), [])
        if not ids:
            return None
        states = {i: record_state(self.root, i) for i in ids}
        for wanted in ("completed", "failed", "running", "killed", "created"):
            for i in ids:
                if states[i] == wanted:
                    return i
        return ids[0]

    def ensure(self, arm: Arm) -> str:
        """Id of a record running ``arm.config``: an existing equal one, else a new record ``arm.exp_id``.

        Configs are compared resolved (as the record would store them), so 50 and 50.0 are the same.
        """
        import yaml

        yaml_text = resolve_config_yaml(arm.config, arm.exp_id)
        resolved = yaml.safe_load(yaml_text)
        found = self.find(resolved)
        if found is not None:
            return found
        try:
            create_experiment(self.root, arm.exp_id, yaml_text, arm.hypothesis, base=arm.base,
                              command=arm.command)
        except RecordError:
            # another worker created it meanwhile (same id, same config): reuse it; a different config
            # under that id is a real clash. Its config.yaml may still be being written: wait for it.
            for _ in range(50):
                if (self.root / arm.exp_id / "config.yaml").exists():
                    break
                time.sleep(0.1)
            existing = config_of(self.root, arm.exp_id)
            if config_digest(existing) != config_digest(resolved):
                raise DesignError(f"{self.root / arm.exp_id}: exists with a different config; "
                                  "choose another --name") from None
        self._by_digest.setdefault(config_digest(resolved), []).append(arm.exp_id)
        return arm.exp_id


# ---------------------------------------------------------------- metrics
def is_curve_metric(metric: str) -> bool:
    """True for metrics read from ``logs/metrics.csv`` columns (``train/loss``, ``val/full/AP``...)."""
    return metric.startswith(CURVE_PREFIXES)


def read_metric(exp: Experiment, metric: str) -> Optional[float]:
    """Final value of ``metric`` for one record (None when not logged or NaN).

    ``train/*``, ``val/*``, ``monitor/*``: last logged value of that metrics.csv column; everything
    else as ``rank`` / ``verdict`` read it (``full/AP``, ``prophesee/small_AP``, ``monitors.loss_cv``).
    """
    if is_curve_metric(metric):
        finals = curve_finals(exp, metric)
        value = sum(finals) / len(finals) if finals else None   # mean over seed runs
    else:
        value = metric_value(exp.typed_results, metric)
    return None if value is None or not math.isfinite(value) else value


def curve_finals(exp: Experiment, column: str) -> list[float]:
    """Last logged value of a metrics.csv column in each seed run (the record's own curves when it has one run)."""
    from evdet.experiments.records.record import run_dirs

    folders = list(run_dirs(exp).values())
    if not folders:
        curve = exp.typed_results.curves.get(column)
        values = curve.value if curve else read_metrics_csv(exp.metrics_csv).get(column, ([], []))[1]
        return [float(values[-1])] if values else []
    finals = []
    for d in folders:
        values = read_metrics_csv(d / "logs" / "metrics.csv").get(column, ([], []))[1]
        if values:
            finals.append(float(values[-1]))
    return finals


def arm_values(exp: Experiment, metric: str) -> list[float]:
    """The metric of each seed run of an arm (curve metrics: last logged value per run)."""
    if is_curve_metric(metric):
        return curve_finals(exp, metric)
    return [v for v in seed_values(exp, metric) if v is not None and math.isfinite(v)]


def effect(base: Experiment, other: Experiment, metric: str) -> Difference:
    """Interval of ``other - base`` on ``metric`` (the one interval policy, ``statistics.policy``; curve
    metrics: Welch over seeds)."""
    if not is_curve_metric(metric):
        try:
            return interval_policy.difference(base, other, metric)
        except IntervalError as err:
            a, b = arm_values(base, metric), arm_values(other, metric)
            point = sum(b) / len(b) - sum(a) / len(a) if a and b else None
            return Difference(point, None, None, METHOD_NONE, len(a), len(b), CONFIDENCE, str(err))
    a, b = arm_values(base, metric), arm_values(other, metric)
    if not a or not b:
        return Difference(None, None, None, METHOD_NONE, len(a), len(b), CONFIDENCE,
                          f"{base.id if not a else other.id} has no value for {metric}")
    if len(a) >= 2 and len(b) >= 2:
        mean, low, high, dof = welch_interval(a, b)
        return Difference(mean, low, high, "welch-t over seeds", len(a), len(b), CONFIDENCE,
                          f"{dof:.1f} degrees of freedom", dof=dof, covers_training_noise=True)
    return Difference(sum(b) / len(b) - sum(a) / len(a), None, None, METHOD_NONE, len(a), len(b), CONFIDENCE,
                      "one seed: a training curve has no evaluation data to resample")


def check_loggable_metric(metric: str, config: dict, finished: Sequence[Experiment] = ()) -> None:
    """Fail early when no run of ``config`` would log ``metric``.

    Accepted: a metrics.csv column some finished record logs, a known training column (``train/loss``...),
    ``val/<protocol>/<AP...>`` and ``<protocol>/<metric>`` for a protocol in ``eval.protocols``
    (AP family, small_AP, ``per_class.<c>.<m>``, ``groups.<g>.<m>``), ``monitors.<name>``.
    Raises:
        DesignError: naming the metric and what is available.
    """
    protocols = list((config.get("eval") or {}).get("protocols") or [])
    for exp in finished:
        if read_metric(exp, metric) is not None:
            return
    if is_curve_metric(metric):
        if metric in TRAIN_COLUMNS or metric.startswith("monitor/"):
            return
        parts = metric.split("/")
        if len(parts) == 3 and parts[0] == "val" and parts[1] in protocols and parts[2] in LOGGED_EVAL_METRICS:
            return
        raise DesignError(f"metric {metric!r}: no run logs it; logged columns are {list(TRAIN_COLUMNS)} and "
                          f"val/<protocol>/<{'|'.join(LOGGED_EVAL_METRICS)}> for protocols {protocols}")
    if metric.startswith("monitors."):
        if metric.split(".", 1)[1] in MONITORS:
            return
        raise DesignError(f"metric {metric!r}: unknown monitor; known: {['monitors.' + m for m in MONITORS]}")
    proto, name = split_metric_key(metric)
    proto = proto or (protocols[0] if protocols else None)
    if proto not in protocols:
        raise DesignError(f"metric {metric!r}: protocol {proto!r} is not evaluated by these runs "
                          f"(eval.protocols = {protocols})")
    head = name.split(".", 1)[0]
    if name in LOGGED_EVAL_METRICS or (head in ("per_class", "groups") and name.count(".") == 2):
        return
    raise DesignError(f"metric {metric!r}: unknown metric {name!r}; use one of {list(LOGGED_EVAL_METRICS)}, "
                      "per_class.<class>.AP, groups.<group>.AP, monitors.<name> or a metrics.csv column "
                      "such as train/loss")


def write_design_summary(root: Path, name: str, doc: dict) -> Path:
    """``<root>/_designs/<name>.json`` (atomic)."""
    return atomic_write_json(Path(root) / "_designs" / f"{name}.json", doc)
