"""Rank experiments by one metric, with the delta to each one's baseline, its interval and protocol checks.

Each row carries the interval of its value and of its delta to the baseline, both from the one
interval policy (``statistics.policy``: pooled, Welch / t over seeds, bootstrap + noise profile, or a
bootstrap alone, which sees evaluation noise only); a
delta whose interval contains 0 (or that has no interval) is marked as within noise.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional, Sequence

from evdet.experiments.records.architecture import architecture_summary
from evdet.experiments.analysis.compare import comparability_problems
from evdet.experiments.statistics import policy as interval_policy
from evdet.experiments.statistics.intervals import CONFIDENCE, N_BOOT, Difference, IntervalError
from evdet.experiments.statistics.policy import IntervalPolicy
from evdet.experiments.records.metric_keys import (check_metric, fingerprint_digest, headline_protocol,
                                       higher_is_better, metric_value, split_metric_key)
from evdet.experiments.records.record import Experiment


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
    check_metric(by, [e.results for e in experiments if not e.error])
    policy = policy or IntervalPolicy(confidence=confidence, n_boot=n_boot, progress=progress)
    key_proto, _ = split_metric_key(by)
    by_id = {e.id: e for e in experiments}
    proto_of = {e.id: key_proto or protocol or headline_protocol(e.results) for e in experiments}
    digests = [fingerprint_digest(e.results, proto_of[e.id]) for e in experiments if proto_of[e.id]]
    majority = max(set(d for d in digests if d), key=digests.count, default=None)
    rows = []
    for e in experiments:
        p = proto_of[e.id]
        value = metric_value(e.results, by, p)
        base_id = baseline if baseline is not None else e.base
        base_value, flags = None, []
        if base_id and base_id != e.id:
            base_exp = by_id.get(base_id)
            if base_exp is None:
                flags.append(f"baseline {base_id} not in this listing")
            else:
                base_value = metric_value(base_exp.results, by, p)
                flags += comparability_problems([base_exp, e], p)
        digest = fingerprint_digest(e.results, p) if p else None
        if digest and majority and digest != majority:
            flags.append(f"protocol fingerprint {digest[:8]} differs from most runs ({majority[:8]})")
        if e.error:
            flags.append(f"broken record: {e.error}")
        elif value is None:
            flags.append(f"no {by} under {p}")
        shown = {m: metric_value(e.results, m, p) for m in extra_metrics}
        delta = value - base_value if value is not None and base_value is not None else None
        interval = delta_interval = None
        if intervals and value is not None:
            try:
                interval = interval_policy.value(e, by, p, policy=policy)
                if delta is not None:
                    delta_interval = interval_policy.difference(by_id[base_id], e, by, p, policy=policy)
            except IntervalError as err:
                flags.append(str(err))
        model = e.config.get("model", {}) if isinstance(e.config, dict) else {}
        loss = e.config.get("loss") if isinstance(e.config, dict) else None
        rows.append(RankRow(rank=None, id=e.id, state=e.state, value=value, baseline_id=base_id,
                            baseline_value=base_value, delta=delta, metrics=shown,
                            architecture=architecture_summary(model, loss) if model else "?",
                            step=int(e.results.get("step", 0) or 0), flags=list(dict.fromkeys(flags)),
                            interval=interval, delta_interval=delta_interval))
    sign = -1.0 if higher_is_better(by) else 1.0
    ranked = sorted((r for r in rows if r.value is not None), key=lambda r: (sign * r.value, r.id))
    for i, r in enumerate(ranked, start=1):
        r.rank = i
    return ranked + sorted((r for r in rows if r.value is None), key=lambda r: r.id)


__all__ = ["RankRow", "rank_experiments"]
