"""One self-contained HTML report of experiments: plots embedded as base64 PNG, no external files.

Sections: summary (status, steps, architecture), ranking with baseline deltas, protocol fingerprints
and comparability warnings, loss / AP curves, per-class AP bars, confusion matrices, config diffs vs
the base with risk notes, verdicts against the success criteria, monitors.
"""

from __future__ import annotations

import base64
import html
import io
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from evdet.experiments.architecture import architecture_summary
from evdet.experiments.compare import comparability_problems, curves_png
from evdet.experiments.config_diff import diff_configs
from evdet.experiments.metrics import headline_protocol
from evdet.experiments.rank import rank_experiments
from evdet.events.atomic import write_text_atomic
from evdet.experiments.records import Experiment, load_experiment
from evdet.experiments.verdict import CriteriaError, judge, overall_verdict, parse_criteria

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;
     background:#fff;max-width:1200px}
h1{font-size:22px} h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0;font-size:13px} th,td{border:1px solid #ccc;padding:3px 8px;
text-align:left} th{background:#f0f3f7} td.num{text-align:right;font-variant-numeric:tabular-nums}
.high{color:#b00020;font-weight:600} .medium{color:#b36b00} .low{color:#555} .info{color:#888}
.warn{background:#fff4e5;border-left:4px solid #f0a000;padding:6px 10px;margin:8px 0}
.ok{color:#1b7f3b;font-weight:600} .bad{color:#b00020;font-weight:600} .und{color:#777}
img{max-width:100%;border:1px solid #eee} code{background:#f5f5f5;padding:0 3px}
"""


def _e(v: object) -> str:
    return html.escape(str(v), quote=True)


def _fmt(v: Optional[float], signed: bool = False, digits: int = 4) -> str:
    if v is None:
        return "-"
    return f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"


def _table(headers: Sequence[str], rows: Sequence[Sequence[str]], num_cols: Sequence[int] = ()) -> str:
    """HTML table; cells are already-escaped HTML strings."""
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f'<td class="num">{c}</td>' if i in num_cols else f"<td>{c}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _img(png: bytes, alt: str) -> str:
    return f'<img alt="{_e(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def _fig_png(fig) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()


def per_class_png(experiments: Sequence[Experiment], protocol: str) -> Optional[bytes]:
    """Grouped bar chart of per-class AP (one bar per experiment), or None without per-class results."""
    from matplotlib.figure import Figure

    names = list(experiments[0].results.get("class_names") or [])
    if not names:
        names = list((experiments[0].results.get("protocols", {}).get(protocol) or {}).get("per_class", {}))
    if not names:
        return None
    fig = Figure(figsize=(max(6.0, 1.0 * len(names) + 2), 3.6))
    ax = fig.subplots()
    width = 0.8 / len(experiments)
    x = np.arange(len(names))
    for k, e in enumerate(experiments):
        pc = (e.results.get("protocols", {}).get(protocol) or {}).get("per_class", {})
        vals = [((pc.get(n) or {}).get("AP") or 0.0) for n in names]
        ax.bar(x + (k - (len(experiments) - 1) / 2) * width, vals, width, label=e.id)
    ax.set_xticks(x, names, rotation=30, ha="right", fontsize=8)
    ax.set_ylabel(f"AP ({protocol})")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return _fig_png(fig)


def confusion_png(confusion: dict, title: str) -> Optional[bytes]:
    """Heat map of a results.json confusion block (raw counts written in the cells), or None."""
    from matplotlib.figure import Figure

    labels, matrix = confusion.get("labels"), confusion.get("matrix")
    if not labels or not matrix:
        return None
    m = np.asarray(matrix, dtype=np.float64)
    if m.shape != (len(labels), len(labels)):
        return None
    size = 2.5 + 0.45 * len(labels)
    fig = Figure(figsize=(size, size))
    ax = fig.subplots()
    ax.imshow(m / np.maximum(m.sum(axis=1, keepdims=True), 1), cmap="Blues", vmin=0, vmax=1)
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            if m[i, j]:
                ax.text(j, i, f"{int(m[i, j])}", ha="center", va="center", fontsize=7)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(f"{title} (IoU {confusion.get('iou')}, conf {confusion.get('confidence')}; colour: row share)",
                 fontsize=8)
    fig.tight_layout()
    return _fig_png(fig)


def build_report(experiments: Sequence[Experiment], *, root: Optional[Path] = None,
                 protocol: Optional[str] = None, by: str = "AP", title: str = "evdet experiment report") -> str:
    """HTML text of the report for ``experiments`` (bases missing from the list are loaded from ``root``)."""
    if not experiments:
        raise ValueError("report needs at least one experiment")
    proto = protocol or next((headline_protocol(e.results) for e in experiments
                              if headline_protocol(e.results)), None)
    by_id = {e.id: e for e in experiments}
    parts = [f"<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{_e(title)}</title>"
             f"<style>{_CSS}</style></head><body>",
             f"<h1>{_e(title)}</h1><p>Generated {_e(time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime()))}; "
             f"{len(experiments)} experiment(s); headline protocol <code>{_e(proto or '-')}</code>.</p>"]

    parts.append("<h2>Experiments</h2>")
    rows = []
    for e in experiments:
        model = e.config.get("model", {}) if isinstance(e.config, dict) else {}
        msg = e.status.get("detected") or e.status.get("message") or ""
        rows.append([_e(e.id), _e(e.state), _e(msg), _e(e.results.get("step", 0)), _e(e.base or "-"),
                     _e(architecture_summary(model, e.config.get("loss")) if model else "?")])
    parts.append(_table(["id", "status", "message", "step", "base", "architecture"], rows, (3,)))

    parts.append(f"<h2>Ranking by {_e(by)}</h2>")
    ranked = rank_experiments(experiments, by, protocol=proto)
    rows = [[_e(r.rank or "-"), _e(r.id), _fmt(r.value), _e(r.baseline_id or "-"), _fmt(r.delta, signed=True),
             *[_fmt(v) for v in r.metrics.values()], _e(r.architecture), _e("; ".join(r.flags))] for r in ranked]
    metric_names = list(ranked[0].metrics) if ranked else []
    parts.append(_table(["rank", "id", by, "baseline", "delta", *metric_names, "architecture", "flags"], rows,
                        tuple(range(2, 5 + len(metric_names))) if rows else ()))

    parts.append("<h2>Protocol fingerprints</h2>")
    rows = []
    for e in experiments:
        for pname, block in e.results.get("protocols", {}).items():
            fp = block.get("fingerprint") or {}
            rows.append([_e(e.id), _e(pname), f"<code>{_e(str(fp.get('digest', '-'))[:16])}</code>",
                         _e(", ".join(fp.get("class_names", []) or e.results.get("class_names", []))),
                         _e(fp.get("resolution", "-")), _e(fp.get("filter", "-"))])
    parts.append(_table(["id", "protocol", "digest", "classes", "resolution", "filter"], rows))
    evaluated = [e for e in experiments if e.results.get("protocols")]   # runs not evaluated yet are no conflict
    problems = comparability_problems(evaluated, proto) if len(evaluated) > 1 else []
    for p in problems:
        parts.append(f'<div class="warn">Not comparable: {_e(p)}</div>')

    parts.append("<h2>Curves</h2>")
    parts.append(_img(curves_png(experiments, protocol=proto), "loss and AP curves"))

    if proto:
        png = per_class_png(experiments, proto)
        if png:
            parts.append(f"<h2>Per-class AP ({_e(proto)})</h2>" + _img(png, "per-class AP"))
        parts.append("<h2>Confusion matrices</h2>")
        shown = 0
        for e in experiments:
            conf = (e.results.get("protocols", {}).get(proto) or {}).get("confusion") or {}
            png = confusion_png(conf, f"{e.id} / {proto}")
            if png:
                parts.append(_img(png, f"confusion matrix {e.id}"))
                shown += 1
        if not shown:
            parts.append("<p>No confusion matrix in these results.</p>")

    parts.append("<h2>Config changes vs base</h2>")
    any_diff = False
    for e in experiments:
        if not e.base:
            continue
        base = by_id.get(e.base)
        if base is None and root is not None and (Path(root) / e.base).is_dir():
            base = load_experiment(Path(root), e.base)
        if base is None:
            parts.append(f"<p>{_e(e.id)}: base {_e(e.base)} not found.</p>")
            continue
        d = diff_configs(base.config, e.config, base_completed=base.state == "completed")
        any_diff = True
        parts.append(f"<h3>{_e(base.id)} &rarr; {_e(e.id)}</h3>")
        parts += [f'<div class="warn">{_e(n)}</div>' for n in d.notes]
        parts.append(_table(["key", "old", "new", "rel. change", "risk", "note"],
                            [[f"<code>{_e(c.key)}</code>", _e(c.old), _e(c.new),
                              _fmt(c.rel_change, signed=True, digits=2), f'<span class="{c.risk}">{c.risk}</span>',
                              _e(c.note)] for c in d.changes]))
    if not any_diff:
        parts.append("<p>No experiment with a base in this report.</p>")

    parts.append("<h2>Verdicts</h2>")
    for e in experiments:
        try:
            criteria = parse_criteria(e.hypothesis, f"{e.id}/hypothesis.md")
        except CriteriaError as err:
            parts.append(f'<div class="warn">{_e(err)}</div>')
            continue
        base = by_id.get(e.base) if e.base else None
        if e.base and base is None and root is not None and (Path(root) / e.base).is_dir():
            base = load_experiment(Path(root), e.base)
        res = judge(criteria, e, base)
        verdict = overall_verdict(res)
        cls = {"supported": "ok", "rejected": "bad"}.get(verdict, "und")
        parts.append(f'<h3>{_e(e.id)}: <span class="{cls}">{_e(verdict)}</span></h3>')
        if res:
            parts.append(_table(["criterion", "value", "threshold", "met", "why"],
                                [[f"<code>{_e(r.criterion.text)}</code>", _fmt(r.value), _fmt(r.threshold),
                                  {True: '<span class="ok">yes</span>', False: '<span class="bad">no</span>'}
                                  .get(r.met, '<span class="und">?</span>'), _e(r.reason)] for r in res], (1, 2)))

    parts.append("<h2>Training monitors</h2>")
    rows = [[_e(e.id), _e(k), _e(v), _e(e.status.get("stop_reason", "-"))]
            for e in experiments for k, v in (e.results.get("monitors") or {}).items()]
    parts.append(_table(["id", "monitor", "final value", "stop reason"], rows) if rows
                 else "<p>No monitor values recorded.</p>")
    parts.append("</body></html>\n")
    return "\n".join(parts)


def write_report(experiments: Sequence[Experiment], out: Path, **kwargs) -> Path:
    """Write ``build_report(...)`` to ``out`` atomically."""
    return write_text_atomic(out, build_report(experiments, **kwargs))
