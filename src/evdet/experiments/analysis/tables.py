"""Rich tables for the terminal views of the experiment tools (the CLI prints them)."""

from __future__ import annotations

from typing import Optional, Sequence

from rich.table import Table

from evdet.experiments.records.architecture import record_architecture
from evdet.experiments.analysis.compare import Comparison
from evdet.experiments.analysis.config_diff import ConfigDiff
from evdet.experiments.statistics.intervals import Difference
from evdet.experiments.statistics.policy import noise_word
from evdet.experiments.records.metric_keys import metric_value
from evdet.experiments.analysis.rank import RankRow
from evdet.experiments.records.record import Experiment
from evdet.utils.formatting import number

_RISK_STYLE = {"high": "bold red", "medium": "yellow", "low": "", "info": "dim"}


def _f(v: Optional[float], signed: bool = False) -> str:
    return number(v, signed=signed)


def _ci(d: Optional[Difference], signed: bool = False) -> str:
    """``[low, high]`` of an interval, or ``-``."""
    if d is None or not d.has_interval:
        return "-"
    return f"[{_f(d.low, signed)}, {_f(d.high, signed)}]"


def _noise(d: Optional[Difference]) -> str:
    """The policy's word for a delta: within noise / beyond noise / beyond evaluation noise."""
    word = noise_word(d)
    return {"within noise": "[dim]within noise[/]", "beyond noise": "[bold]beyond noise[/]"}.get(word, word)


def _method(*intervals: Optional[Difference]) -> str:
    """The method of the first interval that has one (else why there is none)."""
    for d in intervals:
        if d is not None and d.has_interval:
            return f"{d.confidence:.0%} {d.method}"
    for d in intervals:
        if d is not None:
            return f"{d.method}: {d.detail}" if d.detail else d.method
    return "-"


def experiments_table(exps: Sequence[Experiment], metrics: Sequence[str] = ("AP", "AP50", "AP_S")) -> Table:
    """id, status, steps, seeds, headline metrics (headline protocol; mean over seeds), architecture."""
    t = Table(title="experiments")
    for col in ("id", "status", "step", "seeds", "protocol", *metrics, "architecture"):
        t.add_column(col, justify="right" if col in metrics or col == "step" else "left")
    for e in exps:
        res, detected = e.typed_results, e.typed_status.detected
        state = e.state + (f" ({detected})" if detected else "")
        if e.error:
            state = f"[red]broken[/]: {e.error}"
        p = res.headline_protocol
        t.add_row(e.id, state, str(res.step), ",".join(map(str, res.seeds)) or "-", p or "-",
                  *[_f(metric_value(res, m, p)) for m in metrics], record_architecture(e.config))
    return t


def rank_table(rows: Sequence[RankRow], by: str) -> Table:
    """Ranking with the interval of each value and of each delta to the baseline, and the method."""
    t = Table(title=f"ranking by {by} (intervals: 95%; a delta whose interval holds 0 is within noise)")
    metric_names = [m for m in (rows[0].metrics if rows else []) if m != by]
    for col in ("rank", "id", by, "interval", "baseline", "delta", "delta interval", "noise", "method",
                *metric_names, "architecture", "flags"):
        t.add_column(col, no_wrap=col not in ("method", "architecture", "flags"))
    for r in rows:
        t.add_row(str(r.rank or "-"), r.id, _f(r.value), _ci(r.interval), r.baseline_id or "-", _f(r.delta, True),
                  _ci(r.delta_interval, True), _noise(r.delta_interval if r.delta is not None else None), _method(r.delta_interval, r.interval),
                  *[_f(r.metrics[m]) for m in metric_names], r.architecture, "; ".join(r.flags))
    return t


def comparison_tables(c: Comparison) -> list[Table]:
    out = []
    for title, rows, support in (("metrics", c.metrics, False), ("per size", c.sizes, False),
                                 ("per class AP", c.per_class, True), ("groups AP", c.groups, True)):
        if not rows:
            continue
        t = Table(title=f"{title} ({c.protocol}); deltas vs {c.ids[0]} with 95% intervals")
        t.add_column("name")
        if support:
            t.add_column("support", justify="right")
        for i, eid in enumerate(c.ids):
            t.add_column(eid, justify="right")
            if i:
                for col in ("delta", "interval", "noise"):
                    t.add_column(col, justify="right", no_wrap=True)
        t.add_column("method")
        for r in rows:
            cells = [r.name] + ([str(r.support) if r.support is not None else "-"] if support else [])
            for i, (v, d) in enumerate(zip(r.values, r.deltas)):
                cells += [_f(v)]
                if i:
                    cells += [_f(d, True), _ci(r.intervals[i] if r.intervals else None, True),
                              _noise(r.intervals[i] if r.intervals and r.deltas[i] is not None else None)]
            t.add_row(*cells, _method(*(r.intervals or [])))
        out.append(t)
    return out


def diff_table(d: ConfigDiff, title: str) -> Table:
    t = Table(title=title)
    for col in ("key", "old", "new", "rel. change", "risk", "note"):
        t.add_column(col)
    for ch in d.changes:
        rel = f"{ch.rel_change:+.0%}" if ch.rel_change is not None else "-"
        style = _RISK_STYLE[ch.risk]
        t.add_row(ch.key, str(ch.old), str(ch.new), rel, f"[{style}]{ch.risk}[/]" if style else ch.risk, ch.note)
    return t


def analysis_table(a: dict, stride_set: str = "3-scale p4", compare_set: str = "4-scale p4") -> Table:
    t = Table(title=f"per-class analysis ({a.get('layout', '?')} data, input {a.get('input_hw')}, "
                    f"AP: {a.get('protocol') or '-'})")
    cols = ("class", "support", "share", "AP", "eff.", "area P25/P50/P75 px2", "w/h P50", "narrow", "<8px",
            f"owner {stride_set}", f"covered {stride_set}", f"covered {compare_set}")
    for col in cols:
        t.add_column(col, justify="left" if col == "class" else "right")
    for name, c in a["classes"].items():
        ar, asp = c["area_px2"], c["aspect_w_over_h"]
        lv, lv2 = c["levels"][stride_set], c["levels"][compare_set]
        owner = " ".join(f"{s}:{v:.0%}" for s, v in lv["owner_share"].items() if v) if c["support"] else "-"
        pct = lambda v: "-" if v is None else f"{v:.0%}"  # noqa: E731
        t.add_row(name, str(c["support"]), pct(c["data_share"]), _f(c["AP"]),
                  "-" if c["efficiency"] is None else f"{c['efficiency']:.2f}",
                  "-" if ar["P50"] is None else f"{ar['P25']:.0f}/{ar['P50']:.0f}/{ar['P75']:.0f}",
                  "-" if asp["P50"] is None else f"{asp['P50']:.2f}", pct(c["narrow_share"]), pct(c["thin_share"]),
                  owner, pct(lv["covered_share"]), pct(lv2["covered_share"]))
    return t
