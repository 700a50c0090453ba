"""The matrix at a glance: each variant's Δ small-road-user AP vs the baseline, with its interval."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

from evdet.experiments.statistics.intervals import Difference
from evdet.studies.summary_rows import RowProtocol, summary_rows
from evdet.utils.atomic import save_figure

PROTOCOL_STYLE = {"full": ("#1f77b4", "full (every box)"), "prophesee": ("#d62728", "prophesee (filtered)")}


def _delta(block: RowProtocol) -> Optional[Difference]:
    d = block.delta_small
    return None if d is None or d.mean is None else d


def effects_plot(summary: dict, path: Path, base_id: str) -> Optional[Path]:
    """Forest plot of Δ small-road-user AP per variant and protocol (filled: the interval covers training
    noise; hollow: evaluation noise only; a cross: no interval). None when nothing to draw."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [r for r in summary_rows(summary) if r.id != base_id]
    if not any(_delta(r.protocol(p)) for r in rows for p in PROTOCOL_STYLE):
        return None
    fig, ax = plt.subplots(figsize=(7.5, 0.7 * len(rows) + 1.4))
    for i, r in enumerate(rows):
        for j, (proto, (color, label)) in enumerate(PROTOCOL_STYLE.items()):
            d = _delta(r.protocol(proto))
            if d is None:
                continue
            y = i + (j - 0.5) * 0.3
            if d.has_interval:
                seeds = d.covers_training_noise
                ax.errorbar(d.mean, y, xerr=[[d.mean - d.low], [d.high - d.mean]], fmt="o", color=color,
                            mfc=color if seeds else "white", capsize=3, label=label if i == 0 else None)
            else:
                ax.plot(d.mean, y, "x", color=color, label=label if i == 0 else None)
    ax.axvline(0.0, color="0.4", lw=1)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels([f"{r.id} ({len(r.seeds_done)} seed{'s' * (len(r.seeds_done) != 1)})" for r in rows])
    ax.invert_yaxis()
    ax.set_xlabel(f"Δ small-road-user AP vs {base_id} (95% interval)")
    ax.set_title("Does the change help the small road users?\nfilled: training noise included; hollow: "
                 "evaluation noise only", fontsize=9)
    ax.legend(loc="best", fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    return path
