"""Write an EvalResult to disk: metrics JSON, per-class CSV, confusion CSV + PNG, PR curves PNG.

Layout (every file written atomically: temp file + rename)::

    <out_dir>/
      <protocol>_metrics.json      EvalResult.to_dict()
      <protocol>_per_class.csv     class, support, AP, AP50, precision, recall, confidence, tp, fp, fn
      <protocol>_confusion.csv     first column = true class, header = predicted classes + background
      <protocol>_confusion.png     (plots=True)
      <protocol>_pr_curves.png     (plots=True)
      <protocol>_per_class_ap.png  (plots=True)
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from evdet.evaluation.result import EvalResult
from evdet.utils.atomic import write_text_atomic

PER_CLASS_COLUMNS = ("support", "AP", "AP50", "precision", "recall", "confidence", "tp", "fp", "fn")


def _csv(rows: list[list]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerows(rows)
    return buf.getvalue()


def _cell(value) -> str:
    return "" if value is None else (f"{value:.6f}" if isinstance(value, float) else str(value))


def save_evaluation(result: EvalResult, out_dir: str | Path, *, plots: bool = True) -> dict[str, Path]:
    """Write the files of one protocol's result into ``out_dir``; returns kind -> path."""
    out_dir = Path(out_dir)
    stem = result.protocol
    paths = {"metrics": write_text_atomic(out_dir / f"{stem}_metrics.json", result.to_json())}
    rows = [["class", *PER_CLASS_COLUMNS]]
    rows += [[name, *(_cell(v.get(c)) for c in PER_CLASS_COLUMNS)] for name, v in result.per_class.items()]
    paths["per_class"] = write_text_atomic(out_dir / f"{stem}_per_class.csv", _csv(rows))
    labels = result.confusion["labels"]
    matrix = result.confusion_matrix
    rows = [["true\\predicted", *labels]] + [[labels[i], *map(int, matrix[i])] for i in range(len(labels))]
    paths["confusion"] = write_text_atomic(out_dir / f"{stem}_confusion.csv", _csv(rows))
    if plots:
        from evdet.evaluation.plots import plot_confusion, plot_per_class_ap, plot_pr_curves

        conf = result.confusion
        paths["confusion_png"] = plot_confusion(
            matrix, labels, out_dir / f"{stem}_confusion.png",
            title=f"{stem}: IoU {conf['iou']}, score >= {conf['confidence']}")
        paths["pr_curves_png"] = plot_pr_curves(result.pr_curves, out_dir / f"{stem}_pr_curves.png",
                                                title=f"{stem}: precision-recall at IoU 0.5")
        paths["per_class_png"] = plot_per_class_ap(result.per_class, out_dir / f"{stem}_per_class_ap.png",
                                                   title=f"{stem}: per-class AP")
    return paths
