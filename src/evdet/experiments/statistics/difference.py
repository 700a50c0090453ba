"""The value type of every interval: ``Difference`` (an estimate, its bounds and the method that made
them), the method names shown beside intervals, and ``IntervalError``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

CONFIDENCE = 0.95

METHOD_SEED_T = "t-interval over seeds"
METHOD_WELCH = "welch-t over seeds"
METHOD_POOLED = "t over seeds, variance pooled over records"
METHOD_BOOT_SEQ = "paired bootstrap over sequences"
METHOD_BOOT_BLOCK = "paired bootstrap over blocks of label frames"
METHOD_NONE = "no interval"
TRAINING_NOISE_METHODS = (METHOD_SEED_T, METHOD_WELCH, METHOD_POOLED)


class IntervalError(ValueError):
    """An interval cannot be computed (e.g. the experiments were validated on different ground truth)."""



@dataclass(frozen=True)
class Difference:
    """Interval of ``other - scale * base`` for one metric (for one experiment: of its value).

    Attributes:
        mean: the point estimate (difference of the seed means); None when a value is missing.
        low, high: interval bounds at ``confidence``; None when no interval could be computed.
        method: one of the METHOD_* strings (the text to show next to the interval).
        n_a, n_b: seeds (Welch / t) or evaluation units (bootstrap) of the base and the other.
        detail: more words for the method (resamples, unit size, why there is no interval).
        dof: degrees of freedom of a t-interval (None: bootstrap or none).
        covers_training_noise: the interval includes seed-to-seed training noise (t over seeds, Welch,
            pooled, or a bootstrap widened by a noise profile); False for a bootstrap alone, which
            sees the evaluation data's noise only (see ``statistics.policy``). None: from the method.
    """

    mean: Optional[float]
    low: Optional[float]
    high: Optional[float]
    method: str
    n_a: int
    n_b: int
    confidence: float = CONFIDENCE
    detail: str = ""
    dof: Optional[float] = None
    covers_training_noise: Optional[bool] = None

    def __post_init__(self) -> None:   # None: from the method (t over seeds, Welch and pooled cover it)
        if self.covers_training_noise is None:
            object.__setattr__(self, "covers_training_noise", self.method in TRAINING_NOISE_METHODS)

    @property
    def has_interval(self) -> bool:
        return self.low is not None and self.high is not None

    def within_noise(self, threshold: float = 0.0) -> bool:
        """True unless the interval lies wholly above or wholly below ``threshold`` (no interval: True)."""
        return self.side(threshold) in ("straddles", "unknown")

    def side(self, threshold: float = 0.0) -> str:
        """``above`` (low > threshold), ``below`` (high < threshold), ``straddles`` or ``unknown``."""
        if not self.has_interval:
            return "unknown"
        if self.low > threshold:
            return "above"
        if self.high < threshold:
            return "below"
        return "straddles"

    def text(self, signed: bool = True) -> str:
        """``+0.0123 [-0.0040, +0.0290] 95% welch-t over seeds (n=3/3)``; bootstraps add that they see
        evaluation noise only."""
        fmt = (lambda v: f"{v:+.4f}") if signed else (lambda v: f"{v:.4f}")  # noqa: E731
        if self.mean is None:
            return f"- ({self.method}{': ' + self.detail if self.detail else ''})"
        if not self.has_interval:
            return f"{fmt(self.mean)} ({self.method}{': ' + self.detail if self.detail else ''})"
        n = f"n={self.n_a}/{self.n_b}" if self.n_a else f"n={self.n_b}"
        only = "; evaluation noise only, seeds not measured" if not self.covers_training_noise else ""
        return f"{fmt(self.mean)} [{fmt(self.low)}, {fmt(self.high)}] {self.confidence:.0%} {self.method} ({n}{only})"

    def to_dict(self) -> dict:
        return {"mean": self.mean, "low": self.low, "high": self.high, "method": self.method, "n_a": self.n_a,
                "n_b": self.n_b, "confidence": self.confidence, "detail": self.detail, "dof": self.dof,
                "covers_training_noise": self.covers_training_noise}

    @classmethod
    def from_dict(cls, d: Optional[dict]) -> Optional["Difference"]:
        """The inverse of :meth:`to_dict` (None stays None; files written before ``dof`` and
        ``covers_training_noise`` existed read them from the method)."""
        if d is None:
            return None
        return cls(**{k: d[k] for k in ("mean", "low", "high", "method", "n_a", "n_b", "confidence", "detail")},
                   dof=d.get("dof"), covers_training_noise=d.get("covers_training_noise"))
