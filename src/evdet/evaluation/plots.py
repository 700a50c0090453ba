"""Matplotlib PNGs: confusion matrix, PR curves, per-class AP bars (Agg canvas, no global state)."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Sequence

import numpy as np

from evdet.utils.atomic import atomic_path


def _new_figure(width_in: float, height_in: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width_in, height_in), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _save_atomic(fig, path: Path) -> Path:
    path = Path(path)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    return path


def plot_confusion(matrix: np.ndarray, labels: Sequence[str], path: Path, *, title: str = "") -> Path:
    """Row-normalised confusion matrix as colours, raw counts as cell text.

    Args:
        matrix: (C+1, C+1) raw counts, rows = true, columns = predicted (last = background).
    """
    from evdet.evaluation.confusion import normalize_rows

    matrix = np.asarray(matrix)
    n = len(labels)
    fig = _new_figure(1.2 + 0.65 * n, 1.0 + 0.6 * n)
    ax = fig.add_subplot(1, 1, 1)
    im = ax.imshow(normalize_rows(matrix), cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="share of true class")
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(n):
        for j in range(n):
            if matrix[i, j]:
                ax.text(j, i, str(int(matrix[i, j])), ha="center", va="center", fontsize=7)
    ax.set_title(title or "confusion matrix (counts)")
    return _save_atomic(fig, path)


def plot_pr_curves(curves: Mapping[str, Mapping], path: Path, *, title: str = "") -> Path:
    """One precision-recall line per class (IoU 0.5)."""
    fig = _new_figure(6.0, 4.5)
    ax = fig.add_subplot(1, 1, 1)
    for name, c in curves.items():
        ax.plot(c["recall"], c["precision"], label=name, linewidth=1.3)
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("recall")
    ax.set_ylabel("precision")
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(fontsize=7, loc="lower left")
    ax.set_title(title or "precision-recall at IoU 0.5")
    return _save_atomic(fig, path)


def plot_per_class_ap(per_class: Mapping[str, Mapping], path: Path, *, title: str = "") -> Path:
    """AP50 and AP bars per class with the support written above each pair."""
    names = list(per_class)
    ap = [per_class[n]["AP"] or 0.0 for n in names]
    ap50 = [per_class[n]["AP50"] or 0.0 for n in names]
    x = np.arange(len(names))
    fig = _new_figure(1.5 + 0.8 * len(names), 4.0)
    ax = fig.add_subplot(1, 1, 1)
    ax.bar(x - 0.2, ap50, 0.4, label="AP50")
    ax.bar(x + 0.2, ap, 0.4, label="AP")
    for i, n in enumerate(names):
        ax.text(i, max(ap50[i], ap[i]) + 0.02, f"n={per_class[n]['support']}", ha="center", fontsize=7)
    ax.set_xticks(x, names, rotation=30, ha="right")
    ax.set_ylim(0, 1.1)
    ax.set_ylabel("AP")
    ax.legend(fontsize=8)
    ax.set_title(title or "per-class AP (support above)")
    return _save_atomic(fig, path)
