"""Rank experiments by one metric, with the delta to each one's baseline, its interval and protocol checks.

Each row carries the interval of its value and of its delta to the baseline, both from the one
interval policy (``statistics.policy``: pooled, Welch / t over seeds, bootstrap + noise profile, or a
bootstrap alone, which sees evaluation noise only); a
delta whose interval contains 0 (or that has no interval) is marked as within noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

from evdet.experiments.records.architecture import record_architecture
from evdet.experiments.analysis.compare import comparability_problems
from evdet.experiments.statistics import policy as interval_policy
from evdet.experiments.statistics.intervals import CONFIDENCE, N_BOOT, Difference, IntervalError
from evdet.experiments.statistics.policy import IntervalPolicy
from evdet.experiments.records.metric_keys import (check_metric, fingerprint_digest, higher_is_better, metric_value,
                                                   split_metric_key)
from evdet.experiments.records.record import Experiment
from evdet.experiments.records.views import ResultsView


@dataclass
class RankRow:
    """One ranked experiment. ``delta`` = value - baseline value (None when either is missing)."""

    rank: Optional[int]
    id: str
    state: str
    value: Optional[float]
    baseline_id: Optional[str]
    baseline_value: Optional[float]
    delta: Optional[float]
    metrics: dict[str, Optional[float]]
    architecture: str
    step: int
    flags: list[str] = field(default_factory=list)
    interval: Optional[Difference] = None          # of ``value``
    delta_interval: Optional[Difference] = None    # of ``delta``

    @property
    def within_noise(self) -> Optional[bool]:
        """Whether the delta to the baseline is within noise (None without a delta or its interval)."""
        return None if self.delta is None or self.delta_interval is None else self.delta_interval.within_noise()


def rank_experiments(experiments: Sequence[Experiment], by: str = "AP", *, protocol: Optional[str] = None,
                     baseline: Optional[str] = None,
                     extra_metrics: Sequence[str] = ("AP", "AP50", "AP_S"), intervals: bool = True,
                     confidence: float = CONFIDENCE, n_boot: int = N_BOOT,
                     progress: bool = False, policy: Optional[IntervalPolicy] = None) -> list[RankRow]:
    """Sort experiments by ``by`` (best first; losses ascending); missing values rank last, unranked.

    Args:
        by: metric name (``AP``, ``small_AP``, ``per_class.pedestrian.AP``, ``prophesee/AP``...).
        protocol: protocol to read (default: the key's, else each experiment's headline protocol).
        baseline: id whose value every delta refers to (default: each experiment's ``base``).
        intervals: compute the value and delta intervals (bootstraps take seconds per experiment), from
            the one interval policy (``statistics.policy``; ``policy`` None: its defaults).
    Flags name protocol-fingerprint or class-map mismatches against the baseline and the majority,
    and broken records (listed unranked).
    Raises:
        UnknownMetricError: no evaluated experiment holds ``by`` (the message lists the metrics).
    """
    views = {e.id: e.typed_results for e in experiments}
    check_metric(by, [views[e.id] for e in experiments if not e.error])
    policy = policy or IntervalPolicy(confidence=confidence, n_boot=n_boot, progress=progress)
    key_proto, _ = split_metric_key(by)
    by_id = {e.id: e for e in experiments}
    proto_of = {e.id: key_proto or protocol or views[e.id].headline_protocol for e in experiments}
    digests = [fingerprint_digest(views[e.id], proto_of[e.id]) for e in experiments if proto_of[e.id]]
    majority = max(set(d for d in digests if d), key=digests.count, default=None)
    rows = []
    for e in experiments:
        p, res = proto_of[e.id], views[e.id]
        base_id = baseline if baseline is not None else e.base
        value = metric_value(res, by, p)
        base_value, flags = _baseline_value(e, base_id, by_id, by, p)
        flags += _record_flags(e, res, by, p, value, majority)
        delta = value - base_value if value is not None and base_value is not None else None
        interval, delta_interval = (None, None)
        if intervals and value is not None:
            interval, delta_interval = _intervals(e, by_id.get(base_id) if delta is not None else None, by, p,
                                                  policy, flags)
        rows.append(RankRow(rank=None, id=e.id, state=e.state, value=value, baseline_id=base_id,
                            baseline_value=base_value, delta=delta,
                            metrics={m: metric_value(res, m, p) for m in extra_metrics},
                            architecture=record_architecture(e.config), step=res.step,
                            flags=list(dict.fromkeys(flags)), interval=interval, delta_interval=delta_interval))
    return _ranked(rows, by)


def _baseline_value(e: Experiment, base_id: Optional[str], by_id: dict, by: str,
                    p: Optional[str]) -> tuple[Optional[float], list[str]]:
    """(the baseline's value of ``by``, flags: a baseline missing from the listing or not comparable)."""
    if not base_id or base_id == e.id:
        return None, []
    base_exp = by_id.get(base_id)
    if base_exp is None:
        return None, [f"baseline {base_id} not in this listing"]
    return metric_value(base_exp.typed_results, by, p), comparability_problems([base_exp, e], p)


def _record_flags(e: Experiment, res: ResultsView, by: str, p: Optional[str], value: Optional[float],
                  majority: Optional[str]) -> list[str]:
    """Flags of the record itself: a fingerprint unlike most runs', a broken record, no value."""
    flags = []
    digest = fingerprint_digest(res, p) if p else None
    if digest and majority and digest != majority:
        flags.append(f"protocol fingerprint {digest[:8]} differs from most runs ({majority[:8]})")
    if e.error:
        flags.append(f"broken record: {e.error}")
    elif value is None:
        flags.append(f"no {by} under {p}")
    return flags


def _intervals(e: Experiment, base: Optional[Experiment], by: str, p: Optional[str], policy: IntervalPolicy,
               flags: list[str]) -> tuple[Optional[Difference], Optional[Difference]]:
    """(interval of the value, of the delta to ``base`` when there is one); an IntervalError becomes a flag."""
    interval = None
    try:
        interval = interval_policy.value(e, by, p, policy=policy)
        return interval, (interval_policy.difference(base, e, by, p, policy=policy) if base is not None else None)
    except IntervalError as err:
        flags.append(str(err))
        return interval, None


def _ranked(rows: list[RankRow], by: str) -> list[RankRow]:
    """Rows with a value, best first (ties by id) and numbered; then the rest by id, unranked."""
    sign = -1.0 if higher_is_better(by) else 1.0
    ranked = sorted((r for r in rows if r.value is not None), key=lambda r: (sign * r.value, r.id))
    for i, r in enumerate(ranked, start=1):
        r.rank = i
    return ranked + sorted((r for r in rows if r.value is None), key=lambda r: r.id)


__all__ = ["RankRow", "rank_experiments"]
