"""t-intervals over seeds: one record's seed summary, Welch's interval of two records, and intervals
with the seed variance pooled over the records of a design (a difference, or any contrast)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from evdet.experiments.statistics.difference import CONFIDENCE, METHOD_SEED_T, IntervalError


@dataclass(frozen=True)
class SeedSummary:
    """Mean, sample std (ddof 1) and two-sided t-interval of one metric over ``n`` seeds (None when n < 2)."""

    n: int
    mean: Optional[float]
    std: Optional[float]
    low: Optional[float]
    high: Optional[float]
    confidence: float = CONFIDENCE

    def to_dict(self) -> dict:
        return {"n": self.n, "mean": self.mean, "std": self.std, "low": self.low, "high": self.high,
                "confidence": self.confidence, "method": METHOD_SEED_T}


def seed_summary(values: Sequence[float], confidence: float = CONFIDENCE) -> SeedSummary:
    """Mean, std and t-interval ``mean +- t_{(1+c)/2, n-1} * std / sqrt(n)`` of per-seed values.

    None values are left out; with one value std / low / high are None, with none everything is.
    """
    from scipy.stats import t as student_t

    vals = np.asarray([float(v) for v in values if v is not None and math.isfinite(float(v))])
    n = int(vals.size)
    if n == 0:
        return SeedSummary(0, None, None, None, None, confidence)
    mean = float(vals.mean())
    if n == 1:
        return SeedSummary(1, mean, None, None, None, confidence)
    std = float(vals.std(ddof=1))
    half = float(student_t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    return SeedSummary(n, mean, std, mean - half, mean + half, confidence)


def welch_interval(base: Sequence[float], other: Sequence[float], confidence: float = CONFIDENCE,
                   scale: float = 1.0) -> tuple[float, float, float, float]:
    """Welch t-interval of ``mean(other) - scale * mean(base)``; returns (mean, low, high, dof).

    Both samples need at least two values. Zero spread in both gives the degenerate interval.
    """
    from scipy.stats import t as student_t

    a, b = np.asarray(base, dtype=np.float64), np.asarray(other, dtype=np.float64)
    if a.size < 2 or b.size < 2:
        raise IntervalError(f"Welch interval needs >= 2 values per side, got {a.size} and {b.size}")
    diff = float(b.mean() - scale * a.mean())
    va, vb = scale ** 2 * a.var(ddof=1) / a.size, b.var(ddof=1) / b.size
    se2 = va + vb
    if se2 == 0.0:
        return diff, diff, diff, math.inf
    dof = se2 ** 2 / (va ** 2 / (a.size - 1) + vb ** 2 / (b.size - 1))
    half = float(student_t.ppf(0.5 + confidence / 2, dof)) * math.sqrt(se2)
    return diff, diff - half, diff + half, float(dof)


def pooled_variance(groups: Sequence[Sequence[float]]) -> tuple[float, int]:
    """Seed variance pooled over ``groups`` (per-seed values of each record of a design):
    ``sum((n_i - 1) * s_i^2) / sum(n_i - 1)`` and its degrees of freedom ``sum(n_i - 1)``.

    Raises:
        IntervalError: no group with two values (no degree of freedom).
    """
    arrays = [np.asarray(g, dtype=np.float64) for g in groups if len(g) >= 2]
    dof = int(sum(g.size - 1 for g in arrays))
    if dof == 0:
        raise IntervalError("pooled interval needs a record with >= 2 seeds")
    return sum(float(((g - g.mean()) ** 2).sum()) for g in arrays) / dof, dof


def pooled_interval(base: Optional[Sequence[float]], other: Sequence[float], groups: Sequence[Sequence[float]],
                    confidence: float = CONFIDENCE) -> tuple[float, float, float, int]:
    """t-interval of ``mean(other) - mean(base)`` (of ``mean(other)`` when ``base`` is None) with the
    seed variance pooled over ``groups`` (:func:`pooled_variance`; ``base`` and ``other`` among them).

    The standard error is ``s_p * sqrt(1/n_base + 1/n_other)`` (``s_p / sqrt(n_other)`` for one
    record). With two groups this is Student's two-sample t-interval. Returns (mean, low, high, dof).

    Raises:
        IntervalError: an empty side, or no group with two values.
    """
    from scipy.stats import t as student_t

    b = np.asarray(other, dtype=np.float64)
    a = None if base is None else np.asarray(base, dtype=np.float64)
    if b.size == 0 or (a is not None and a.size == 0):
        raise IntervalError(f"pooled interval needs a value on each side, got {0 if a is None else a.size} "
                            f"and {b.size}")
    var, dof = pooled_variance(groups)
    mean = float(b.mean() - (0.0 if a is None else a.mean()))
    inv_n = 1 / b.size + (0.0 if a is None else 1 / a.size)
    half = float(student_t.ppf(0.5 + confidence / 2, dof)) * math.sqrt(var * inv_n)
    return mean, mean - half, mean + half, dof


def pooled_contrast(samples: Sequence[Sequence[float]], coefs: Sequence[float], groups: Sequence[Sequence[float]],
                    confidence: float = CONFIDENCE) -> tuple[float, float, float, int]:
    """t-interval of the contrast ``sum_j c_j * mean(samples_j)`` with the seed variance pooled over
    ``groups`` (:func:`pooled_variance`): standard error ``s_p * sqrt(sum_j c_j^2 / n_j)``.

    E.g. the interaction of a combination of k single changes, ``I = m_combo - sum_i m_i + (k - 1) m_base``
    (coefficients 1, -1 x k, k - 1). Returns (estimate, low, high, dof).

    Raises:
        IntervalError: an empty sample, or no group with two values.
    """
    from scipy.stats import t as student_t

    arrays = [np.asarray(x, dtype=np.float64) for x in samples]
    if any(a.size == 0 for a in arrays) or len(arrays) != len(coefs):
        raise IntervalError("pooled contrast needs one non-empty sample per coefficient")
    var, dof = pooled_variance(groups)
    est = float(sum(c * a.mean() for c, a in zip(coefs, arrays)))
    half = float(student_t.ppf(0.5 + confidence / 2, dof)) * math.sqrt(var * sum(c * c / a.size
                                                                                for c, a in zip(coefs, arrays)))
    return est, est - half, est + half, dof
