"""Success criteria from hypothesis.md and the verdict of one experiment against them.

Criteria live under a ``## Success criteria`` heading, one per bullet::

    - prophesee/AP >= 0.30
    - full/small_AP >= base + 0.02
    - full/per_class.bicycle.AP > base
    - monitors.loss_cv <= 0.5

Left side: a metric key (``protocol/metric``, see ``evdet.experiments.metrics``). Operators:
``>= > <= < ==``. Right side: a number, or ``base`` with an optional ``+ x`` / ``- x`` / ``* x``
(``base`` = the same metric in the experiment's base run). Text after ``#`` or two spaces is ignored.
"""

from __future__ import annotations

import operator
import re
from dataclasses import dataclass
from typing import Optional

from evdet.experiments.metrics import metric_value
from evdet.experiments.records import Experiment

_OPS = {">=": operator.ge, ">": operator.gt, "<=": operator.le, "<": operator.lt, "==": operator.eq}
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


@dataclass
class CriterionResult:
    criterion: Criterion
    value: Optional[float]
    base_value: Optional[float]
    threshold: Optional[float]
    met: Optional[bool]                     # None: cannot be decided (missing value / base)
    reason: str


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


def judge(criteria: list[Criterion], exp: Experiment, base: Optional[Experiment] = None) -> list[CriterionResult]:
    """Check each criterion on ``exp`` (and ``base`` for relative ones)."""
    results = []
    for c in criteria:
        value = metric_value(exp.results, c.metric)
        base_value = metric_value(base.results, c.metric) if base is not None else None
        threshold = c.threshold(base_value)
        if value is None:
            met, reason = None, f"{exp.id} has no value for {c.metric}"
        elif threshold is None:
            met, reason = None, f"needs a base run with {c.metric}" + ("" if base else " (no base)")
        else:
            met = bool(_OPS[c.op](value, threshold))
            reason = f"{value:.4g} {c.op} {threshold:.4g}" + ("" if met else " is false")
        results.append(CriterionResult(c, value, base_value, threshold, met, reason))
    return results


def overall_verdict(results: list[CriterionResult]) -> str:
    """``supported`` (all met), ``rejected`` (any unmet), ``undecided`` (none unmet, some unknown), ``no criteria``."""
    if not results:
        return "no criteria"
    if any(r.met is False for r in results):
        return "rejected"
    if any(r.met is None for r in results):
        return "undecided"
    return "supported"
