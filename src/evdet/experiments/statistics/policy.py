"""The one interval policy: which interval a metric or a difference gets, for every door.

``exp verdict``, ``exp rank``, ``exp compare``, the matrix tables, the designs and the HTML report
all ask :func:`difference` (and :func:`value` for one record's metric); the same pair of records
and metric therefore gets the same interval, with the same method, everywhere. In order:

1. **Pooled over a design** (``METHOD_POOLED``): both records belong to one pool, a file
   ``<root>/_pools/<name>.json`` (``{"records": [ids]}``; the small-object matrix writes one) that
   says they share one recipe, and one pool record holds >= 2 seeds. The seed variance is pooled
   over the pool's records (one-way ANOVA contrast, ``intervals.pooled_interval``).
2. **Welch over seeds** (``METHOD_WELCH``): both records hold >= 2 evaluated seeds.
3. **Bootstrap + noise profile** (``METHOD_PROFILE``): fewer seeds, a paired bootstrap over the
   evaluation data is possible, and a noise profile (``noise_profile``) matches the base record's
   recipe and both records' data. The training noise the bootstrap cannot see is added from the
   profile's seed SD ``s`` (k profile seeds): on each side of the estimate ``d`` the half-width is
   ``sqrt(h_boot^2 + h_seed^2)``, ``h_boot`` = the bootstrap interval's half-width on that side,
   ``h_seed = t_{(1+c)/2, k-1} * s * sqrt(1/n_base + 1/n_other)`` (for one record's value:
   ``sqrt(1/n)``). The two sources are independent (the seeds were all scored on the same data, the
   bootstrap resamples the data), so their variances add.
4. **Bootstrap alone** (``METHOD_BOOT_SEQ`` / ``METHOD_BOOT_BLOCK``): evaluation noise only.
   Its ``covers_training_noise`` is False: the doors call a difference outside it *beyond
   evaluation noise* and keep *helps*, *hurts*, *supported* and *rejected* for intervals that cover
   training noise (1-3); a verdict on it is *inconclusive*.
5. No interval (``METHOD_NONE``), with the reason.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Optional, Sequence

from evdet.experiments.records.metric_keys import headline_protocol, split_metric_key
from evdet.experiments.records.record import Experiment
from evdet.experiments.statistics import intervals as iv
from evdet.experiments.statistics.intervals import CONFIDENCE, N_BOOT, RNG_SEED, Difference, IntervalError
from evdet.experiments.statistics.noise_profile import (NoiseProfile, load_profiles, matching_profile,
                                                        profile_dirs)

METHOD_PROFILE = "paired bootstrap + seed SD of noise profile"
POOL_DIR = "_pools"


@dataclass(frozen=True)
class IntervalPolicy:
    """Settings of the policy. ``profiles`` None: look in each record's ``<root>/_noise/`` and the
    shipped profiles; ``pools`` None: read ``<root>/_pools/*.json``."""

    confidence: float = CONFIDENCE
    n_boot: int = N_BOOT
    rng_seed: int = RNG_SEED
    profiles: Optional[tuple[NoiseProfile, ...]] = None
    pools: Optional[tuple[tuple[str, ...], ...]] = None
    progress: bool = False
    _cache: dict = field(default_factory=dict, compare=False, repr=False)


def write_pool(root: Path, name: str, record_ids: Sequence[str]) -> Path:
    """Declare that ``record_ids`` share one recipe (their seed variance may be pooled)."""
    from evdet.experiments.records.record import atomic_write_json

    return atomic_write_json(Path(root) / POOL_DIR / f"{name}.json", {"name": name, "records": list(record_ids)})


def _pool_of(policy: IntervalPolicy, exps: Sequence[Experiment]) -> Optional[list[Experiment]]:
    """The records of the pool holding every record of ``exps`` (all under one root), or None."""
    from evdet.experiments.records.record import load_experiment

    root = exps[0].path.parent
    pools = policy.pools
    if pools is None:
        pools = tuple(tuple(json.loads(p.read_text()).get("records", []))
                      for p in sorted((root / POOL_DIR).glob("*.json")))
    ids = {e.id for e in exps}
    for pool in pools:
        if ids <= set(pool):
            key = ("pool", str(root), pool)
            if key not in policy._cache:
                policy._cache[key] = [load_experiment(root, i) for i in pool if (root / i).exists()]
            return policy._cache[key]
    return None


def _pooled(policy: IntervalPolicy, base: Optional[Experiment], other: Experiment, metric: str,
            protocol: Optional[str]) -> Optional[Difference]:
    members = _pool_of(policy, [other] if base is None else [base, other])
    if members is None:
        return None
    proto = split_metric_key(metric)[0] or protocol
    groups = {e.id: [v for v in iv.seed_values(e, metric, proto) if v is not None] for e in members}
    a = None if base is None else groups.get(base.id, [])
    try:
        mean, low, high, dof = iv.pooled_interval(a, groups.get(other.id, []), list(groups.values()),
                                                  policy.confidence)
    except IntervalError:
        return None
    k = sum(len(g) >= 2 for g in groups.values())
    return Difference(mean, low, high, iv.METHOD_POOLED, 0 if a is None else len(a), len(groups[other.id]),
                      policy.confidence, f"{dof} degrees of freedom from {k} records with >= 2 seeds",
                      dof=float(dof), covers_training_noise=True)


def _profiles(policy: IntervalPolicy, exp: Experiment) -> tuple[NoiseProfile, ...]:
    if policy.profiles is not None:
        return policy.profiles
    key = ("profiles", str(exp.path.parent))
    if key not in policy._cache:
        policy._cache[key] = tuple(load_profiles(profile_dirs(exp)))
    return policy._cache[key]


def _with_profile(d: Difference, profile: NoiseProfile, metric: str, protocol: Optional[str],
                  n_base: int, n_other: int) -> Optional[Difference]:
    """The bootstrap interval ``d`` widened by the profile's seed SD (module doc, step 3)."""
    from scipy.stats import t as student_t

    sd = profile.sd(metric, protocol)
    if sd is None or profile.n < 2 or not d.has_interval:
        return None
    inv_n = 1 / n_other + (1 / n_base if n_base else 0.0)
    h_seed = float(student_t.ppf(0.5 + d.confidence / 2, profile.n - 1)) * sd * math.sqrt(inv_n)
    low = d.mean - math.hypot(d.mean - d.low, h_seed)
    high = d.mean + math.hypot(d.high - d.mean, h_seed)
    detail = (f"{d.detail}; plus seed SD {sd:.4f} of profile '{profile.name}' ({profile.n} seeds), "
              "half-widths added in quadrature")
    return replace(d, low=low, high=high, method=METHOD_PROFILE, detail=detail, covers_training_noise=True)


def difference(base: Experiment, other: Experiment, metric: str, protocol: Optional[str] = None, *,
               policy: Optional[IntervalPolicy] = None, scale: float = 1.0) -> Difference:
    """Interval of ``other - scale * base`` for ``metric`` (module doc: pooled, Welch, profile, bootstrap).

    Raises:
        IntervalError: the two were validated on different ground truth (no paired bootstrap).
    """
    policy = policy or IntervalPolicy()
    if scale == 1.0:
        pooled = _pooled(policy, base, other, metric, protocol)
        if pooled is not None:
            return pooled
    d = iv.difference_interval(base, other, metric, protocol, confidence=policy.confidence,
                               n_boot=policy.n_boot, rng_seed=policy.rng_seed, scale=scale,
                               progress=policy.progress)
    if d.covers_training_noise or not d.has_interval or "bootstrap" not in d.method:
        return d
    profile = matching_profile(base, [other], _profiles(policy, base))
    if profile is None:
        return d
    n_a = len([v for v in iv.seed_values(base, metric, protocol) if v is not None])
    n_b = len([v for v in iv.seed_values(other, metric, protocol) if v is not None])
    proto = split_metric_key(metric)[0] or protocol or headline_protocol(base.results)
    return _with_profile(d, profile, metric, proto, n_a, n_b) or d


def value(exp: Experiment, metric: str, protocol: Optional[str] = None, *,
          policy: Optional[IntervalPolicy] = None) -> Difference:
    """Interval of one record's ``metric``: pooled, t over its seeds, bootstrap (+ profile), or none."""
    policy = policy or IntervalPolicy()
    pooled = _pooled(policy, None, exp, metric, protocol)
    if pooled is not None:
        return pooled
    d = iv.value_interval(exp, metric, protocol, confidence=policy.confidence, n_boot=policy.n_boot,
                          rng_seed=policy.rng_seed, progress=policy.progress)
    if d.covers_training_noise or not d.has_interval or "bootstrap" not in d.method:
        return d
    profile = matching_profile(exp, [], _profiles(policy, exp))
    if profile is None:
        return d
    n = len([v for v in iv.seed_values(exp, metric, protocol) if v is not None])
    proto = split_metric_key(metric)[0] or protocol or headline_protocol(exp.results)
    return _with_profile(d, profile, metric, proto, 0, n) or d


def noise_word(d: Optional[Difference], threshold: float = 0.0) -> str:
    """``within noise``, ``beyond noise`` (interval covers training noise), ``beyond evaluation noise``
    (bootstrap alone), or ``-`` (no interval)."""
    if d is None or not d.has_interval:
        return "-"
    if d.within_noise(threshold):
        return "within noise"
    return "beyond noise" if d.covers_training_noise else "beyond evaluation noise"


def effect_word(d: Optional[Difference], up: str = "helps", down: str = "hurts") -> str:
    """``up`` / ``down`` (an interval covering training noise wholly above / below 0), ``within noise``,
    ``beyond evaluation noise (up|down; ...)``, ``no interval`` or ``no result yet``."""
    if d is None or d.mean is None:
        return "no result yet"
    side = d.side(0.0)
    if side == "unknown":
        return "no interval"
    if side == "straddles":
        return "within noise"
    if not d.covers_training_noise:
        return f"beyond evaluation noise ({'up' if side == 'above' else 'down'}; training noise not measured)"
    return up if side == "above" else down
