"""Family-wise error: Holm's step-down correction for a family of comparisons against one baseline.

A matrix or an ablation compares k variants with one baseline at 95% each; with k = 5 the chance
that at least one interval excludes 0 by luck alone is up to 1 - 0.95^5 = 23%. Holm (1979) keeps
that chance at 5%: sort the k p-values, compare the i-th smallest (i = 1..k) with 0.05 / (k - i + 1),
and stop at the first that fails; the adjusted p-value is
``p_adj(i) = max_{j <= i} min(1, (k - j + 1) * p(j))`` and a comparison survives when it is <= 0.05.

The p-value of a difference comes from its interval (``p_value``): the interval's half-width on the
side towards 0 gives the standard error (t with the interval's degrees of freedom when it has
them, else normal), so a 95% interval that just touches 0 has p = 0.05. For the bootstrap this is
the normal approximation of its percentile interval.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional, Sequence

from evdet.experiments.statistics.intervals import Difference


def holm_adjust(p_values: Sequence[Optional[float]]) -> list[Optional[float]]:
    """Holm-adjusted p-values, in the input order; None (no interval) counts in the family size as
    p = 1 and stays None."""
    k = len(p_values)
    ps = [1.0 if p is None else float(p) for p in p_values]
    order = sorted(range(k), key=lambda i: ps[i])
    out: list[Optional[float]] = [None] * k
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (k - rank) * ps[i]))
        out[i] = None if p_values[i] is None else running
    return out


def p_value(d: Difference, null: float = 0.0) -> Optional[float]:
    """Two-sided p-value of ``mean == null`` from the interval ``d`` (None without an interval)."""
    from scipy.stats import norm, t as student_t

    if not d.has_interval or d.mean is None:
        return None
    half = (d.mean - d.low) if d.mean >= null else (d.high - d.mean)
    dof = d.dof if d.dof is not None and math.isfinite(d.dof) else None
    q = float(student_t.ppf(0.5 + d.confidence / 2, dof)) if dof else float(norm.ppf(0.5 + d.confidence / 2))
    if half <= 0:
        return 0.0 if d.mean != null else 1.0
    z = abs(d.mean - null) / (half / q)
    return float(2 * (student_t.sf(z, dof) if dof else norm.sf(z)))


@dataclass(frozen=True)
class HolmResult:
    """One comparison of a family: its unadjusted p-value, Holm-adjusted p-value, and whether it
    survives the family-wise correction at ``alpha``."""

    name: str
    p: Optional[float]
    p_holm: Optional[float]
    survives: bool
    family_size: int
    alpha: float

    def text(self) -> str:
        if self.p is None:
            return f"Holm ({self.family_size} comparisons): no interval"
        verdict = "survives" if self.survives else "does not survive"
        return (f"p {self.p:.3f}, Holm-adjusted {self.p_holm:.3f} over {self.family_size} comparisons: "
                f"{verdict} at {self.alpha:g}")

    def to_dict(self) -> dict:
        return {"p": self.p, "p_holm": self.p_holm, "survives": self.survives,
                "family_size": self.family_size, "alpha": self.alpha, "method": "Holm step-down"}


def holm_text(h: Optional[dict]) -> str:
    """``p 0.012, Holm 0.048: survives`` from a ``HolmResult.to_dict()`` (``-`` without an interval)."""
    if not h or h.get("p") is None:
        return "-"
    return f"p {h['p']:.3f}, Holm {h['p_holm']:.3f}: {'survives' if h['survives'] else 'does not survive'}"


def holm_family(differences: dict[str, Difference], alpha: float = 0.05) -> dict[str, HolmResult]:
    """Holm correction over a family ``{name: Difference vs the shared baseline}``."""
    names = list(differences)
    ps = [p_value(differences[n]) for n in names]
    adj = holm_adjust(ps)
    return {n: HolmResult(n, p, pa, pa is not None and pa <= alpha, len(names), alpha)
            for n, p, pa in zip(names, ps, adj)}
