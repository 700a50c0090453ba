"""The search space of a sweep: a YAML of ``key: {type, low, high, ...}`` checked against the base config."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional, Sequence

from evdet.experiments.analysis.config_diff import flatten
from evdet.experiments.designs.arms import DesignError, resolve_config_yaml, with_overrides


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
