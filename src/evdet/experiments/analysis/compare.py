"""Compare two or more experiments: metric, per-class, per-size and group deltas, overlaid curves.

Results made under different protocol fingerprints or class maps are not comparable: ``compare``
refuses them (``IncomparableError``) unless ``allow_mismatch=True``, in which case each mismatch is
listed in ``Comparison.problems`` and must be shown next to the numbers.

Every delta carries the interval of the difference from the one interval policy
(``statistics.policy``: pooled over a design, Welch t over seeds, a bootstrap widened by a noise
profile, or a paired bootstrap alone); a delta whose interval contains 0 is within noise.
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional, Sequence

from evdet.experiments.statistics import policy as interval_policy
from evdet.experiments.statistics.intervals import CONFIDENCE, N_BOOT, Difference, IntervalError
from evdet.experiments.statistics.policy import IntervalPolicy
from evdet.experiments.records.metric_keys import SIZE_METRICS, fingerprint_digest, metric_value
from evdet.experiments.records.record import Experiment, read_metrics_csv
from evdet.utils.atomic import write_bytes_atomic

HEADLINE_METRICS = ("AP", "AP50", "AP75", "AP_tiny", "AP_S", "AP_M", "AP_L")


class IncomparableError(ValueError):
    """Experiments were evaluated under different protocols / class maps."""


def comparability_problems(experiments: Sequence[Experiment], protocol: Optional[str]) -> list[str]:
    """Reasons why these results cannot be compared under ``protocol`` (empty list: comparable)."""
    problems = []
    if not experiments:
        return problems
    ref = experiments[0]
    views = [e.typed_results for e in experiments]
    ref_names = list(views[0].class_names)
    ref_digest = fingerprint_digest(views[0], protocol) if protocol else None
    for e, res in zip(experiments, views):
        if protocol and protocol not in res.protocols:
            problems.append(f"{e.id}: no results under protocol {protocol!r}")
    for e, res in zip(experiments[1:], views[1:]):
        names = list(res.class_names)
        if names and ref_names and names != ref_names:
            problems.append(f"class maps differ: {ref.id} {ref_names} vs {e.id} {names}")
        if protocol:
            digest = fingerprint_digest(res, protocol)
            if digest and ref_digest and digest != ref_digest:
                problems.append(f"protocol {protocol!r} fingerprints differ: {ref.id} {ref_digest[:12]} "
                                f"vs {e.id} {digest[:12]}")
    return problems


@dataclass
class DeltaRow:
    """One compared quantity: values per experiment (order of the comparison), deltas vs the first and
    the interval of each delta (None for the first and where no delta exists)."""

    name: str
    values: list[Optional[float]]
    deltas: list[Optional[float]]
    support: Optional[int] = None
    metric: str = ""
    intervals: list[Optional[Difference]] = field(default_factory=list)

    def within_noise(self, i: int) -> Optional[bool]:
        """Whether delta ``i`` is within noise (``METHOD_NONE`` counts as within noise); None without a delta
        or when intervals were not computed."""
        d = self.intervals[i] if i < len(self.intervals) else None
        return None if self.deltas[i] is None or i == 0 or d is None else d.within_noise()


@dataclass
class Comparison:
    ids: list[str]
    protocol: str
    metrics: list[DeltaRow]
    sizes: list[DeltaRow]
    per_class: list[DeltaRow]
    groups: list[DeltaRow]
    problems: list[str] = field(default_factory=list)


def _row(name: str, values: list[Optional[float]], support: Optional[int] = None, metric: str = "") -> DeltaRow:
    ref = values[0]
    deltas = [None if v is None or ref is None else v - ref for v in values]
    return DeltaRow(name=name, values=values, deltas=deltas, support=support, metric=metric or name)


def _add_intervals(rows: list[DeltaRow], experiments: Sequence[Experiment], protocol: str, *,
                   policy: IntervalPolicy, problems: list[str]) -> None:
    """Fill ``row.intervals`` with the difference interval of every delta vs the first experiment."""
    for row in rows:
        row.intervals = [None] * len(experiments)
        for i, e in enumerate(experiments[1:], start=1):
            if row.deltas[i] is None:
                continue
            try:
                row.intervals[i] = interval_policy.difference(experiments[0], e, row.metric, protocol,
                                                              policy=policy)
            except IntervalError as err:
                if str(err) not in problems:
                    problems.append(str(err))


def compare_experiments(experiments: Sequence[Experiment], *, protocol: Optional[str] = None,
                        allow_mismatch: bool = False, intervals: bool = True, confidence: float = CONFIDENCE,
                        n_boot: int = N_BOOT, progress: bool = False,
                        policy: Optional[IntervalPolicy] = None) -> Comparison:
    """Metric, size, per-class and group deltas (with intervals) of every experiment against the first one.

    Intervals: the one interval policy (``statistics.policy``; ``policy`` None: its defaults).

    Raises:
        IncomparableError: fingerprints or class maps differ and ``allow_mismatch`` is False.
    """
    if len(experiments) < 2:
        raise ValueError("compare needs at least two experiments")
    views = [e.typed_results for e in experiments]
    proto = protocol or views[0].headline_protocol
    if proto is None:
        raise IncomparableError(f"{experiments[0].id}: has no evaluation results yet")
    problems = comparability_problems(experiments, proto)
    if problems and not allow_mismatch:
        raise IncomparableError("refusing to compare: " + "; ".join(problems))
    vals = lambda m: [metric_value(res, m, proto) for res in views]  # noqa: E731
    metrics = [_row(m, vals(m)) for m in HEADLINE_METRICS if m not in SIZE_METRICS
               and any(v is not None for v in vals(m))]
    sizes = [_row(m, vals(m)) for m in SIZE_METRICS if any(v is not None for v in vals(m))]
    first = views[0].protocol(proto)
    classes = list(views[0].class_names or first.per_class)
    per_class = [_row(name, vals(f"per_class.{name}.AP"), first.per_class[name].support if name in first.per_class
                      else None, f"per_class.{name}.AP") for name in classes]
    groups = [_row(g, vals(f"groups.{g}.AP"), entry.support, f"groups.{g}.AP") for g, entry in first.groups.items()]
    if intervals:
        _add_intervals(metrics + sizes + per_class + groups, experiments, proto, problems=problems,
                       policy=policy or IntervalPolicy(confidence=confidence, n_boot=n_boot, progress=progress))
    return Comparison(ids=[e.id for e in experiments], protocol=proto, metrics=metrics, sizes=sizes,
                      per_class=per_class, groups=groups, problems=problems)


def curve_series(e: Experiment, which: str, protocol: str) -> Optional[tuple[list[int], list[float]]]:
    """(steps, values) of an experiment's loss (``which="loss"``) or AP (``"AP"``) curve, or None.

    Source: ``logs/metrics.csv`` (Lightning CSV logger), else ``results.json["curves"]``.
    Loss column: ``train/loss`` if present, else the first column whose name ends in ``loss``.
    AP column: ``val/<protocol>/AP`` (as logged by the EvaluationCallback).
    """
    curves = read_metrics_csv(e.metrics_csv)
    if not curves:
        curves = {k: (list(c.step), [math.nan if x is None else x for x in c.value])
                  for k, c in e.typed_results.curves.items()}
    if which == "AP":
        return curves.get(f"val/{protocol}/AP")
    if "train/loss" in curves:
        return curves["train/loss"]
    for key in sorted(curves):
        if key.endswith("loss") and not key.startswith("val"):
            return curves[key]
    return None


def plot_curves(experiments: Sequence[Experiment], out_png: Path, *, protocol: Optional[str] = None) -> Path:
    """Overlaid training-loss and validation-AP curves of several experiments into one PNG file."""
    return write_bytes_atomic(out_png, curves_png(experiments, protocol=protocol))


def curves_png(experiments: Sequence[Experiment], *, protocol: Optional[str] = None) -> bytes:
    """PNG bytes: training loss (left) and validation AP (right) of each experiment, overlaid."""
    from matplotlib.figure import Figure  # no pyplot: no global figure state

    proto = protocol or experiments[0].typed_results.headline_protocol or "prophesee"
    fig = Figure(figsize=(10, 3.6))
    axes = fig.subplots(1, 2)
    for ax, which, title in ((axes[0], "loss", "training loss"), (axes[1], "AP", f"val {proto} AP")):
        drawn = 0
        for e in experiments:
            series = curve_series(e, which, proto)
            if series and series[0]:
                ax.plot(series[0], series[1], marker="." if len(series[0]) < 30 else None, label=e.id)
                drawn += 1
        ax.set_title(title)
        ax.set_xlabel("step")
        if drawn:
            ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "no data", ha="center", va="center", transform=ax.transAxes)
        ax.grid(alpha=0.3)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()
