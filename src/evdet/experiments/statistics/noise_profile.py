"""Noise profiles: how far one recipe's metrics move from seed to seed on one dataset (an A/A design).

``evdet exp noise RECIPE --seeds N`` (``designs.noise.measure_noise``) trains the recipe N times, changing only the training seed,
and stores each metric's seed standard deviation (sample SD, ddof 1, N - 1 degrees of freedom) as
a profile (``<root>/_noise/<name>.json``; evdet ships the demo recipe's in
``evdet/configs/noise/``). A one-seed comparison whose base record matches a profile, recipe and
data, gets an interval that includes that training noise (``statistics.policy``).

What must match:
- the recipe: the base record's resolved config equals the profile's, key by key, except the
  keys that name a run rather than a recipe (``IGNORED_KEYS``: name, seeds, training seed, data
  root); a key only one side has must hold the current default (a switch added later), unless the
  current code no longer knows it (a key removed since);
- the data: the SHA-1 of the validation ground truth both were scored on (every sequence of the
  saved ``validation/detections.npz``, in order, with the class names), for the base and the
  other record alike.

Profile JSON (schema 1)::

    {"schema": 1, "name": "demo", "record": "noise_demo", "seeds": [0, 1, 2, 3, 4, 5],
     "recipe_fingerprint": "<sha1>", "data_fingerprint": "<sha1>", "config": {dotted key: value},
     "metrics": {"full/groups.small_road_users.AP": {"sd": 0.012, "mean": 0.04, "values": [...]}, ...},
     "provenance": {"commit": ..., "machine": ..., "date": ...}}
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Optional, Sequence

import numpy as np

from evdet.experiments.records.metric_keys import ALIASES, split_metric_key
from evdet.experiments.records.record import Experiment, atomic_write_json
from evdet.experiments.records.views import results_view
from evdet.experiments.statistics.intervals import (DETECTIONS_FILE, detection_files, load_validation_detections,
                                                    run_results)

SCHEMA = 1
PROFILE_DIR = "_noise"                      # inside an experiments root
SHIPPED_DIR = Path(__file__).resolve().parents[2] / "configs" / "noise"
IGNORED_KEYS = ("name", "seeds", "training.seed", "data.root")


class ProfileError(ValueError):
    """A noise profile cannot be built or read (names the file or record and the problem)."""


@dataclass(frozen=True)
class NoiseProfile:
    """Seed SD per metric of one recipe on one dataset (see module doc)."""

    name: str
    seeds: tuple[int, ...]
    recipe_fingerprint: str
    data_fingerprint: str
    config: dict
    metrics: dict
    path: Optional[Path] = None

    @property
    def n(self) -> int:
        return len(self.seeds)

    def sd(self, metric: str, protocol: Optional[str]) -> Optional[float]:
        """Seed SD of ``metric`` (``proto/name`` or ``name`` under ``protocol``), None if not profiled."""
        entry = self.metrics.get(canonical_metric(metric, protocol))
        return None if entry is None else entry.get("sd")


def canonical_metric(metric: str, protocol: Optional[str]) -> str:
    """``full/small_AP`` -> ``full/groups.small_road_users.AP``; ``AP`` with protocol ``full`` -> ``full/AP``."""
    proto, name = split_metric_key(metric)
    return f"{proto or protocol}/{ALIASES.get(name, name)}"


def flat_config(cfg: dict, prefix: str = "") -> dict[str, Any]:
    """Dotted keys of a nested config (lists as JSON-able lists), without ``IGNORED_KEYS``."""
    out: dict[str, Any] = {}
    for k, v in cfg.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict):
            out.update(flat_config(v, key + "."))
        elif key not in IGNORED_KEYS:
            out[key] = list(v) if isinstance(v, tuple) else v
    return out


def recipe_fingerprint(flat: dict) -> str:
    """SHA-1 of the sorted dotted config (after ``flat_config``)."""
    return hashlib.sha1(json.dumps(flat, sort_keys=True, default=str).encode()).hexdigest()


def _defaults() -> dict:
    from evdet.experiments.records.run_config import load_run_config, run_config_to_dict

    return flat_config(run_config_to_dict(load_run_config()))


def config_differences(profile_cfg: dict, exp_cfg: dict, defaults: Optional[dict] = None) -> list[str]:
    """Keys whose values differ. A key one side lacks is compared with the current default (a switch
    added since); a key that one side holds and the current code no longer knows (removed since, so
    it changes nothing now) is left out."""
    defaults = _defaults() if defaults is None else defaults
    out = []
    for key in sorted(set(profile_cfg) | set(exp_cfg)):
        if key not in defaults and (key not in profile_cfg or key not in exp_cfg):
            continue
        if profile_cfg.get(key, defaults.get(key)) != exp_cfg.get(key, defaults.get(key)):
            out.append(key)
    return out


def data_fingerprint(exp: Experiment) -> Optional[str]:
    """SHA-1 of the validation ground truth of ``exp``'s first evaluated run (None without saved detections)."""
    files = detection_files(exp)
    if not files:
        return None
    data = load_validation_detections(files[0])
    h = hashlib.sha1()
    h.update(json.dumps([list(data.names), list(data.eval_kwargs.get("class_names", []))]).encode())
    for gt in data.gts:
        h.update(np.ascontiguousarray(gt).tobytes())
        h.update(b"|")
    return h.hexdigest()


def flat_metrics(doc: dict) -> dict[str, float]:
    """``proto/metric path`` -> value of every numeric metric, group and per-class entry of one run."""
    out: dict[str, float] = {}

    def put(key: str, v: Optional[float]) -> None:
        if v is not None and math.isfinite(v):
            out[key] = float(v)

    for proto, block in results_view(doc).protocols.items():
        for name, v in block.metrics.items():
            put(f"{proto}/{name}", v)
        for part, entries in (("groups", block.groups), ("per_class", block.per_class)):
            for entry_name, entry in entries.items():
                for k, v in entry.numbers().items():
                    put(f"{proto}/{part}.{entry_name}.{k}", v)
    return out


def build_profile(exps: Experiment | Sequence[Experiment], name: str) -> dict:
    """The profile document of a finished A/A design: one record with >= 2 evaluated seeds, or several
    records of one recipe and one dataset (their seeds pooled; each seed counted once).

    Raises:
        ProfileError: fewer than two evaluated seeds, records of different recipes or data, or no saved
            validation detections.
    """
    from evdet.utils.provenance import provenance

    exps = [exps] if isinstance(exps, Experiment) else list(exps)
    exp = exps[0]
    runs = [r for e in exps for r in run_results(e)]
    if len({int(s) for s, _, _ in runs}) != len(runs):
        raise ProfileError(f"{', '.join(e.id for e in exps)}: a seed appears twice")
    if len(runs) < 2:
        raise ProfileError(f"{exp.path}: a noise profile needs >= 2 evaluated seeds, found {len(runs)}")
    fingerprint = data_fingerprint(exp)
    if fingerprint is None:
        raise ProfileError(f"{exp.path}: no saved {DETECTIONS_FILE} to fingerprint the data")
    for other in exps[1:]:
        if data_fingerprint(other) != fingerprint or config_differences(flat_config(exp.config),
                                                                         flat_config(other.config)):
            raise ProfileError(f"{other.path}: another recipe or dataset than {exp.path}")
    per_run = [flat_metrics(doc) for _, doc, _ in runs]
    keys = sorted(set.intersection(*(set(m) for m in per_run)))
    metrics = {}
    for k in keys:
        vals = [m[k] for m in per_run]
        metrics[k] = {"sd": float(np.std(vals, ddof=1)), "mean": float(np.mean(vals)), "values": vals}
    cfg = flat_config(exp.config)
    return {"schema": SCHEMA, "name": name, "record": " + ".join(e.id for e in exps),
            "seeds": [int(s) for s, _, _ in runs],
            "recipe_fingerprint": recipe_fingerprint(cfg), "data_fingerprint": fingerprint, "config": cfg,
            "metrics": metrics, "provenance": provenance()}


def write_profile(doc: dict, path: Path) -> Path:
    atomic_write_json(path, doc)
    return path


def load_profile(path: Path) -> NoiseProfile:
    """Read a profile JSON; errors name the file."""
    try:
        d = json.loads(Path(path).read_text())
        return NoiseProfile(d["name"], tuple(d["seeds"]), d["recipe_fingerprint"], d["data_fingerprint"],
                            d["config"], d["metrics"], Path(path))
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ProfileError(f"{path}: not a noise profile ({err})") from None


def profile_dirs(exp: Experiment) -> list[Path]:
    """Where profiles for ``exp`` are looked for: ``<its root>/_noise/``, then the shipped ones."""
    return [exp.path.parent / PROFILE_DIR, SHIPPED_DIR]


def load_profiles(dirs: Iterable[Path]) -> list[NoiseProfile]:
    out = []
    for d in dirs:
        for p in sorted(Path(d).glob("*.json")) if Path(d).is_dir() else ():
            out.append(load_profile(p))
    return out


def matching_profile(base: Experiment, others: Sequence[Experiment],
                     profiles: Sequence[NoiseProfile]) -> Optional[NoiseProfile]:
    """The first profile whose recipe matches ``base`` and whose data matches ``base`` and ``others``."""
    if not profiles:
        return None
    data = {data_fingerprint(e) for e in (base, *others)}
    if len(data) != 1 or None in data:
        return None
    cfg, defaults = flat_config(base.config), _defaults()
    for p in profiles:
        if p.data_fingerprint in data and not config_differences(p.config, cfg, defaults):
            return p
    return None
