"""Success criteria from hypothesis.md and the verdict of one experiment against them.

Criteria live under a ``## Success criteria`` heading, one per bullet::

    - prophesee/AP >= 0.30
    - full/small_AP >= base + 0.02
    - full/per_class.bicycle.AP > base
    - monitors.loss_cv <= 0.5

Left side: a metric key (``protocol/metric``, see ``evdet.experiments.records.metric_keys``). Operators:
``>= > <= < ==``. Right side: a number, or ``base`` with an optional ``+ x`` / ``- x`` / ``* x``
(``base`` = the same metric in the experiment's base run). Text after ``#`` or two spaces is ignored.

Noise decides, not the point values: a criterion is **supported** only when the interval of the
compared quantity (the difference to the base, or the value itself) lies wholly on its side of the
threshold, **rejected** only when it lies wholly on the other side, and **inconclusive** otherwise
(also when there is no interval: one seed and no saved validation detections). The intervals are
those of ``evdet.experiments.statistics.intervals`` and every reason names its method.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, Optional

from evdet.experiments.statistics import policy as interval_policy
from evdet.experiments.statistics.intervals import CONFIDENCE, METHOD_NONE, N_BOOT, Difference
from evdet.experiments.statistics.policy import IntervalPolicy
from evdet.experiments.records.metric_keys import metric_value
from evdet.experiments.records.record import Experiment

_CRITERION = re.compile(
    r"^\s*[-*]\s*`?(?P<metric>[A-Za-z0-9_./\-]+)\s*(?P<op>>=|<=|==|>|<)\s*"
    r"(?:(?P<base>base)\s*(?:(?P<bop>[-+*])\s*(?P<bnum>[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?))?"
    r"|(?P<num>[-+]?\d*\.?\d+(?:[eE][-+]?\d+)?))\s*`?\s*(?:(?:#|\s{2,}|\().*)?$")


class CriteriaError(ValueError):
    """hypothesis.md holds a criterion line that cannot be parsed."""


@dataclass(frozen=True)
class Criterion:
    """``metric op threshold`` or ``metric op base (+|-|*) offset``."""

    text: str
    metric: str
    op: str
    value: Optional[float] = None          # absolute threshold
    relative_to_base: bool = False
    base_op: str = "+"
    base_offset: float = 0.0

    def threshold(self, base_value: Optional[float]) -> Optional[float]:
        """Threshold given the base run's value (None when it needs a base that is missing)."""
        if not self.relative_to_base:
            return self.value
        if base_value is None:
            return None
        if self.base_op == "*":
            return base_value * self.base_offset
        return base_value + (self.base_offset if self.base_op == "+" else -self.base_offset)


Decision = Literal["supported", "rejected", "inconclusive"]


@dataclass
class CriterionResult:
    """One criterion judged with noise: the interval of the compared quantity against the threshold.

    ``interval`` is the interval of ``value - scale * base`` (relative criteria) or of ``value``
    (absolute ones); ``margin`` is what it must exceed (or stay below). ``met`` is True / False /
    None for supported / rejected / inconclusive.
    """

    criterion: Criterion
    value: Optional[float]
    base_value: Optional[float]
    threshold: Optional[float]
    decision: Decision
    interval: Optional[Difference]
    margin: Optional[float]
    reason: str

    @property
    def met(self) -> Optional[bool]:
        return {"supported": True, "rejected": False}.get(self.decision)


def parse_criteria(markdown: str, source: str = "hypothesis.md") -> list[Criterion]:
    """Criteria bullets of the ``Success criteria`` section (any heading level).

    Raises:
        CriteriaError: naming the line of a bullet that is not a valid criterion.
    """
    out, inside = [], False
    for line_no, line in enumerate(markdown.splitlines(), start=1):
        heading = re.match(r"^\s*#+\s*(.*)$", line)
        if heading:
            inside = heading.group(1).strip().lower().startswith("success criteria")
            continue
        if not inside or not re.match(r"^\s*[-*]\s+\S", line):
            continue
        m = _CRITERION.match(line)
        if m is None:
            raise CriteriaError(f"{source}:{line_no}: cannot parse criterion {line.strip()!r}; expected e.g. "
                                "'- prophesee/AP >= 0.30' or '- full/AP_S >= base + 0.02'")
        rhs = (f"base {m.group('bop')} {m.group('bnum')}" if m.group("bop") else "base") if m.group("base") \
            else m.group("num")
        text = f"{m.group('metric')} {m.group('op')} {rhs}"
        if m.group("base"):
            out.append(Criterion(text=text, metric=m.group("metric"),
                                 op=m.group("op"), relative_to_base=True, base_op=m.group("bop") or "+",
                                 base_offset=float(m.group("bnum")) if m.group("bnum") else
                                 (1.0 if m.group("bop") == "*" else 0.0)))
        else:
            out.append(Criterion(text=text, metric=m.group("metric"),
                                 op=m.group("op"), value=float(m.group("num"))))
    return out


def decide(op: str, interval: Difference, margin: float) -> Decision:
    """Supported when the interval lies wholly on the criterion's side of ``margin``, rejected when wholly
    on the other side, inconclusive otherwise (a bound on the margin is not wholly on a side)."""
    side = interval.side(margin)
    if op in (">", ">="):
        return {"above": "supported", "below": "rejected"}.get(side, "inconclusive")
    if op in ("<", "<="):
        return {"below": "supported", "above": "rejected"}.get(side, "inconclusive")
    if side in ("above", "below"):           # ==: an interval off the value rejects it
        return "rejected"
    return "supported" if interval.has_interval and interval.low == interval.high == margin else "inconclusive"


def _point_interval(d: Difference) -> Difference:
    """A training monitor of single runs has no noise estimate: judged on its value."""
    return Difference(d.mean, d.mean, d.mean, METHOD_NONE, d.n_a, d.n_b, d.confidence,
                      "training monitor of a single run, judged on its value", covers_training_noise=True)


EVALUATION_NOISE_ONLY = ("beyond evaluation noise only: one seed and no matching noise profile, so training "
                         "noise is not measured (train --seeds, or measure a profile with evdet exp noise)")


def judge(criteria: list[Criterion], exp: Experiment, base: Optional[Experiment] = None, *,
          confidence: float = CONFIDENCE, n_boot: int = N_BOOT, progress: bool = False,
          policy: Optional[IntervalPolicy] = None) -> list[CriterionResult]:
    """Judge each criterion on ``exp`` (and ``base`` for relative ones) with the interval of the difference.

    ``metric op base + x`` compares the interval of ``exp - base`` with ``x``; ``metric op base * k``
    the interval of ``exp - k * base`` with 0; ``metric op x`` the interval of ``exp``'s value with
    ``x``. Intervals: the one interval policy (``statistics.policy``; ``policy`` None: its defaults at
    ``confidence`` / ``n_boot``). A criterion is supported or rejected only on an interval that covers
    training noise; an interval of evaluation noise alone (one seed, no noise profile) that lies wholly
    on one side leaves it *inconclusive*, and the reason says so.
    """
    policy = policy or IntervalPolicy(confidence=confidence, n_boot=n_boot, progress=progress)
    out = []
    for c in criteria:
        value = metric_value(exp.typed_results, c.metric)
        base_value = metric_value(base.typed_results, c.metric) if base is not None else None
        threshold = c.threshold(base_value)
        if value is None:
            out.append(CriterionResult(c, value, base_value, threshold, "inconclusive", None, None,
                                       f"{exp.id} has no value for {c.metric}"))
            continue
        if c.relative_to_base:
            if base is None or base_value is None:
                out.append(CriterionResult(c, value, base_value, threshold, "inconclusive", None, None,
                                           f"needs a base run with {c.metric}" + ("" if base else " (no base)")))
                continue
            scale = c.base_offset if c.base_op == "*" else 1.0
            margin = 0.0 if c.base_op == "*" else (c.base_offset if c.base_op == "+" else -c.base_offset)
            interval = interval_policy.difference(base, exp, c.metric, policy=policy, scale=scale)
            what = f"{exp.id} - {'' if scale == 1.0 else f'{scale:g} * '}{base.id}"
        else:
            margin = float(c.value)
            interval = interval_policy.value(exp, c.metric, policy=policy)
            what = exp.id
        if not interval.has_interval and c.metric.split("/")[-1].startswith("monitors.") \
                and interval.mean is not None:
            interval = _point_interval(interval)
        if not interval.has_interval:
            out.append(CriterionResult(c, value, base_value, threshold, "inconclusive", interval, margin,
                                       f"{what}: {interval.text()}; no interval, so noise cannot be ruled out"))
            continue
        decision = decide(c.op, interval, margin)
        where = {"above": "wholly above", "below": "wholly below"}.get(interval.side(margin), "overlaps")
        reason = f"{what}: {interval.text()} {where} {margin:+.4g}"
        if decision != "inconclusive" and not interval.covers_training_noise:
            decision, reason = "inconclusive", f"{reason}; {EVALUATION_NOISE_ONLY}"
        out.append(CriterionResult(c, value, base_value, threshold, decision, interval, margin, reason))
    return out


def overall_verdict(results: list[CriterionResult]) -> str:
    """``supported`` (all supported), ``rejected`` (any rejected), ``inconclusive`` (else), ``no criteria``."""
    if not results:
        return "no criteria"
    if any(r.decision == "rejected" for r in results):
        return "rejected"
    if any(r.decision == "inconclusive" for r in results):
        return "inconclusive"
    return "supported"


def verdict_lines(results: list[CriterionResult], exp_id: str) -> list[str]:
    """Plain-text verdict: a headline, then one line per criterion with its interval and method."""
    lines = [f"{exp_id}: {overall_verdict(results)}"]
    width = max((len(r.criterion.text) for r in results), default=0)
    for r in results:
        lines.append(f"  {r.decision:<12} {r.criterion.text:<{width}}  {r.reason}")
    return lines
