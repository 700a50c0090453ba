"""One self-contained HTML report of experiments: plots embedded as base64 PNG, no external files.

Sections: summary (status, steps, seeds, architecture), ranking with baseline deltas and their 95%
intervals (table and error bars; the method is stated), protocol fingerprints and comparability
warnings, loss / AP curves, per-class AP bars, confusion matrices, config diffs vs the base with risk
notes, noise-aware verdicts against the success criteria, monitors. When their data exists: a short
prediction clip (GIF) of the best experiment, tracking metrics (HOTA, MOTA, IDF1...) of the saved
validation detections, pseudo-label quality of pseudo-labelled training data, and the designed
experiments (ablations, bisections, sweeps) under ``<root>/_designs``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from evdet.experiments.records.architecture import record_architecture
from evdet.experiments.analysis.compare import comparability_problems, curves_png
from evdet.experiments.analysis.config_diff import diff_configs
from evdet.experiments.statistics.intervals import N_BOOT, IntervalError
from evdet.experiments.statistics.policy import noise_word
from evdet.experiments.analysis.rank import RankRow, rank_experiments
from evdet.experiments.records.record import Experiment, load_experiment
from evdet.experiments.records.views import Confusion
from evdet.experiments.report.html import CSS as _CSS
from evdet.experiments.report.html import esc as _e
from evdet.experiments.report.html import fig_png as _fig_png
from evdet.experiments.report.html import fmt as _fmt
from evdet.experiments.report.html import img as _img
from evdet.experiments.report.html import table as _table
from evdet.experiments.report.lab import clip_section, designs_section, pseudo_section, tracking_section
from evdet.experiments.analysis.verdict import CriteriaError, judge, overall_verdict, parse_criteria
from evdet.utils.atomic import write_text_atomic


def per_class_png(experiments: Sequence[Experiment], protocol: str) -> Optional[bytes]:
    """Grouped bar chart of per-class AP (one bar per experiment), or None without per-class results."""
    from matplotlib.figure import Figure

    first = experiments[0].typed_results
    names = list(first.class_names or first.protocol(protocol).per_class)
    if not names:
        return None
    fig = Figure(figsize=(max(6.0, 1.0 * len(names) + 2), 3.6))
    ax = fig.subplots()
    width = 0.8 / len(experiments)
    x = np.arange(len(names))
    for k, e in enumerate(experiments):
        pc = e.typed_results.protocol(protocol).per_class
        vals = [(pc[n].AP if n in pc else None) or 0.0 for n in names]
        ax.bar(x + (k - (len(experiments) - 1) / 2) * width, vals, width, label=e.id)
    ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(f"AP ({protocol})")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _fig_png(fig)


def confusion_png(confusion: Confusion, title: str) -> Optional[bytes]:
    """PNG bytes of a results.json confusion block drawn by ``evaluation.plots.plot_confusion``, or None."""
    import tempfile

    from evdet.evaluation.plots import plot_confusion

    if not confusion.square:
        return None
    title = f"{title} (IoU {confusion.iou}, conf {confusion.confidence})"
    with tempfile.TemporaryDirectory() as tmp:
        return plot_confusion(np.asarray(confusion.matrix), list(confusion.labels), Path(tmp) / "confusion.png",
                              title=title).read_bytes()


def error_bars_png(rows: Sequence[RankRow], by: str) -> Optional[bytes]:
    """Two panels: each experiment's value of ``by`` and its delta to its baseline, 95% intervals as error bars."""
    from matplotlib.figure import Figure

    rows = [r for r in rows if r.value is not None]
    if not rows:
        return None
    fig = Figure(figsize=(10, 0.9 + 0.42 * len(rows)))
    axes = fig.subplots(1, 2, sharey=True)
    y = np.arange(len(rows))[::-1]
    for ax, title, pick in ((axes[0], by, lambda r: (r.value, r.interval)),
                            (axes[1], f"delta of {by} vs baseline", lambda r: (r.delta, r.delta_interval))):
        for yi, r in zip(y, rows):
            point, d = pick(r)
            if point is None:
                continue
            has = d is not None and d.has_interval
            err = [[point - d.low], [d.high - point]] if has else None
            ax.errorbar([point], [yi], xerr=err, fmt="o", capsize=4,
                        color="#1f77b4" if has else "#999999")
        ax.set_title(title, fontsize=9)
        ax.grid(axis="x", alpha=0.3)
    axes[1].axvline(0.0, color="#b00020", linewidth=1)
    axes[0].set_yticks(y, [r.id for r in rows], fontsize=8)
    fig.tight_layout()
    return _fig_png(fig)


def _base_of(e: Experiment, by_id: dict, root: Optional[Path]) -> Optional[Experiment]:
    """The base experiment of ``e``: from the report's list, else loaded from ``root``."""
    if not e.base:
        return None
    base = by_id.get(e.base)
    if base is None and root is not None and (Path(root) / e.base).is_dir():
        base = load_experiment(Path(root), e.base)
    return base


def _experiments_section(experiments: Sequence[Experiment]) -> list[str]:
    rows = []
    for e in experiments:
        res, st = e.typed_results, e.typed_status
        rows.append([_e(e.id), _e(e.state), _e(st.detected or st.message), _e(res.step),
                     _e(", ".join(map(str, res.seeds)) or "-"),
                     _e(e.base or "-"), _e(record_architecture(e.config))])
    return ["<h2>Experiments</h2>",
            _table(["id", "status", "message", "step", "seeds", "base", "architecture"], rows, (3,))]


def _ranking_section(ranked: Sequence[RankRow], by: str) -> list[str]:
    metric_names = list(ranked[0].metrics) if ranked else []
    ci = lambda d: "-" if d is None or not d.has_interval else f"[{_fmt(d.low)}, {_fmt(d.high)}]"  # noqa: E731
    rows = [[_e(r.rank or "-"), _e(r.id), _fmt(r.value), ci(r.interval), _e(r.baseline_id or "-"),
             _fmt(r.delta, signed=True), ci(r.delta_interval),
             {"beyond noise": "<b>beyond noise</b>"}.get(noise_word(r.delta_interval if r.delta is not None else None),
                                                         _e(noise_word(r.delta_interval if r.delta is not None else None))),
             _e(_method_text(r.delta_interval or r.interval)),
             *[_fmt(v) for v in r.metrics.values()], _e(r.architecture), _e("; ".join(r.flags))] for r in ranked]
    parts = [f"<h2>Ranking by {_e(by)}</h2>",
             "<p>Intervals are 95%, from evdet's one interval policy; the method column names the one used. "
             "Records of one design (a matrix) pool their seed variance; with several seeds: a t-interval of "
             "the value and a Welch t-interval of the delta. With one seed: a paired bootstrap over evaluation "
             "sequences (or blocks of label frames when there are few sequences) of the saved validation "
             "detections, the metric recomputed per resample, bias-corrected expanded percentile interval; "
             "alone it measures evaluation noise only, and a delta outside it is 'beyond evaluation noise', "
             "not an effect. When a noise profile of the base's recipe and data exists (evdet exp noise), its "
             "seed SD is added (half-widths in quadrature) and the interval covers training noise. A delta "
             "whose interval holds 0 is within noise. Grey points in the plot have no interval (one seed and "
             "no saved detections).</p>",
             _table(["rank", "id", by, "interval", "baseline", "delta", "delta interval", "noise", "method",
                     *metric_names, "architecture", "flags"], rows,
                    tuple(range(2, 8)) + tuple(range(9, 9 + len(metric_names))) if rows else ())]
    png = error_bars_png(ranked, by)
    if png:
        parts.append(_img(png, f"{by} with 95% intervals"))
    return parts


def _method_text(d) -> str:
    if d is None:
        return "-"
    if d.has_interval:
        return f"{d.method} ({d.detail})" if d.detail else d.method
    return f"{d.method}: {d.detail}" if d.detail else d.method


def _fingerprint_section(experiments: Sequence[Experiment], proto: Optional[str]) -> list[str]:
    rows = []
    for e in experiments:
        res = e.typed_results
        for pname, block in res.protocols.items():
            fp = block.fingerprint
            rows.append([_e(e.id), _e(pname), f"<code>{_e(str(fp.digest or '-')[:16])}</code>",
                         _e(", ".join(fp.class_names or res.class_names)),
                         _e("-" if fp.resolution is None else fp.resolution), _e("-" if fp.filter is None else fp.filter)])
    parts = ["<h2>Protocol fingerprints</h2>",
             _table(["id", "protocol", "digest", "classes", "resolution", "filter"], rows)]
    evaluated = [e for e in experiments if e.typed_results.protocols]   # runs not evaluated yet are no conflict
    problems = comparability_problems(evaluated, proto) if len(evaluated) > 1 else []
    return parts + [f'<div class="warn">Not comparable: {_e(p)}</div>' for p in problems]


def _plots_section(experiments: Sequence[Experiment], proto: Optional[str]) -> list[str]:
    parts = ["<h2>Curves</h2>", _img(curves_png(experiments, protocol=proto), "loss and AP curves")]
    if not proto:
        return parts
    png = per_class_png(experiments, proto)
    if png:
        parts.append(f"<h2>Per-class AP ({_e(proto)})</h2>" + _img(png, "per-class AP"))
    parts.append("<h2>Confusion matrices</h2>")
    shown = 0
    for e in experiments:
        png = confusion_png(e.typed_results.protocol(proto).confusion, f"{e.id} / {proto}")
        if png:
            parts.append(_img(png, f"confusion matrix {e.id}"))
            shown += 1
    if not shown:
        parts.append("<p>No confusion matrix in these results.</p>")
    return parts


def _diff_section(experiments: Sequence[Experiment], by_id: dict, root: Optional[Path]) -> list[str]:
    parts = ["<h2>Config changes vs base</h2>"]
    any_diff = False
    for e in experiments:
        if not e.base:
            continue
        base = _base_of(e, by_id, root)
        if base is None:
            parts.append(f"<p>{_e(e.id)}: base {_e(e.base)} not found.</p>")
            continue
        d = diff_configs(base.config, e.config, base_completed=base.state == "completed", ids=(base.id, e.id))
        any_diff = True
        parts.append(f"<h3>{_e(base.id)} &rarr; {_e(e.id)}</h3>")
        parts += [f'<div class="warn">{_e(n)}</div>' for n in d.notes]
        parts.append(_table(["key", "old", "new", "rel. change", "risk", "note"],
                            [[f"<code>{_e(c.key)}</code>", _e(c.old), _e(c.new),
                              _fmt(c.rel_change, signed=True, digits=2), f'<span class="{c.risk}">{c.risk}</span>',
                              _e(c.note)] for c in d.changes]))
        if d.plan:
            parts.append("<p>To isolate the cause, run:</p><pre>" + _e("\n".join(d.plan)) + "</pre>")
    if not any_diff:
        parts.append("<p>No experiment with a base in this report.</p>")
    return parts


def _verdict_section(experiments: Sequence[Experiment], by_id: dict, root: Optional[Path], n_boot: int) -> list[str]:
    parts = ["<h2>Verdicts</h2>",
             "<p>A criterion is <b>supported</b> only when the 95% interval of the difference to the base (or of "
             "the value, for absolute thresholds) lies wholly on its side of the threshold, <b>rejected</b> when "
             "it lies wholly on the other side, and <b>inconclusive</b> otherwise. Each line names its method.</p>"]
    for e in experiments:
        try:
            criteria = parse_criteria(e.hypothesis, f"{e.id}/hypothesis.md")
        except CriteriaError as err:
            parts.append(f'<div class="warn">{_e(err)}</div>')
            continue
        try:
            res = judge(criteria, e, _base_of(e, by_id, root), n_boot=n_boot)
        except IntervalError as err:
            parts.append(f'<div class="warn">{_e(e.id)}: {_e(err)}</div>')
            continue
        verdict = overall_verdict(res)
        cls = {"supported": "ok", "rejected": "bad"}.get(verdict, "und")
        parts.append(f'<h3>{_e(e.id)}: <span class="{cls}">{_e(verdict)}</span></h3>')
        if res:
            decision = {"supported": '<span class="ok">supported</span>', "rejected": '<span class="bad">rejected'
                        '</span>', "inconclusive": '<span class="und">inconclusive</span>'}
            parts.append(_table(["criterion", "value", "threshold", "interval", "method", "verdict", "why"],
                                [[f"<code>{_e(r.criterion.text)}</code>", _fmt(r.value), _fmt(r.threshold),
                                  "-" if r.interval is None or not r.interval.has_interval else
                                  f"[{_fmt(r.interval.low, True)}, {_fmt(r.interval.high, True)}]",
                                  _e(_method_text(r.interval)), decision[r.decision], _e(r.reason)]
                                 for r in res], (1, 2)))
    return parts


def _monitor_section(experiments: Sequence[Experiment]) -> list[str]:
    rows = [[_e(e.id), _e(k), _e(v), _e(e.typed_status.stop_reason or "-")]
            for e in experiments for k, v in e.typed_results.monitors.items()]
    return ["<h2>Training monitors</h2>",
            _table(["id", "monitor", "final value", "stop reason"], rows) if rows
            else "<p>No monitor values recorded.</p>"]


def build_report(experiments: Sequence[Experiment], *, root: Optional[Path] = None,
                 protocol: Optional[str] = None, by: str = "AP", title: str = "evdet experiment report",
                 n_boot: int = N_BOOT, clip: bool = False, trusted: bool = False) -> str:
    """HTML text of the report for ``experiments`` (bases missing from the list are loaded from ``root``).

    Args:
        root: experiments folder (bases, and the designed experiments under ``<root>/_designs``).
        clip: embed a short prediction GIF of the best-ranked experiment with a checkpoint, when a raw
            validation recording is found (in ``data.root`` or the ``raw`` folder beside it). Off by default:
            only then is a checkpoint read (weights-only, unless ``trusted``).
    """
    if not experiments:
        raise ValueError("report needs at least one experiment")
    proto = protocol or next((e.typed_results.headline_protocol for e in experiments
                              if e.typed_results.headline_protocol), None)
    by_id = {e.id: e for e in experiments}
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{_e(title)}</title>"
             f"<style>{_CSS}</style></head><body>",
             f"<h1>{_e(title)}</h1><p>Generated {_e(time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime()))}; "
             f"{len(experiments)} experiment(s); headline protocol <code>{_e(proto or '-')}</code>.</p>"]
    ranked = rank_experiments(experiments, by, protocol=proto, n_boot=n_boot)
    parts += _experiments_section(experiments)
    parts += _ranking_section(ranked, by)
    if clip:
        parts += clip_section(ranked, by_id, by, trusted=trusted)
    parts += _fingerprint_section(experiments, proto)
    parts += _plots_section(experiments, proto)
    parts += tracking_section(experiments)
    parts += pseudo_section(experiments)
    parts += _diff_section(experiments, by_id, root)
    parts += _verdict_section(experiments, by_id, root, n_boot)
    parts += designs_section(root)
    parts += _monitor_section(experiments)
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_report(experiments: Sequence[Experiment], out: Path, **kwargs) -> Path:
    """Write ``build_report(...)`` to ``out`` atomically."""
    return write_text_atomic(out, build_report(experiments, **kwargs))
