"""Pseudo-label quality against withheld ground truth: precision / recall per class, size and group.

A pseudo box is a true positive when greedy matching (boxes in decreasing score, each taking the
unmatched ground-truth box of its class with the highest IoU, at IoU >= ``iou_thr``) pairs it in the
same label frame. Precision = TP / pseudo boxes, recall = TP / ground-truth boxes. Per class,
recall counts ground truth of that class and precision pseudo boxes of that class; per size bucket
(``FULL_BUCKETS_PX2``, areas in SOURCE pixels: tiny < 16^2, S < 32^2, M < 96^2, L), recall buckets by the
ground-truth area and precision by the pseudo box's area. ``small_road_users`` pools the classes of
``SMALL_ROAD_USERS`` (pedestrian, bicycle, motorbike, wheelchair) present in the class map; its
recall is the share of small road users recovered.

A threshold sweep keeps the pseudo boxes scoring >= each threshold. Greedy matching in score order
makes the matches at a threshold the prefix of the matches of all boxes, so one matching serves
every threshold.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from evdet.data.classes import SMALL_ROAD_USERS
from evdet.evaluation.protocols import FULL_BUCKETS_PX2
from evdet.utils.formatting import number

DEFAULT_THRESHOLDS = tuple(round(x, 2) for x in np.arange(0.05, 1.0, 0.05))
SRU = "small_road_users"


def _iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of BBOX arrays a (n) x b (m), boxes top-left x, y, w, h."""
    ax1, ay1 = a["x"].astype(np.float64)[:, None], a["y"].astype(np.float64)[:, None]
    ax2, ay2 = ax1 + a["w"][:, None], ay1 + a["h"][:, None]
    bx1, by1 = b["x"].astype(np.float64)[None], b["y"].astype(np.float64)[None]
    bx2, by2 = bx1 + b["w"][None], by1 + b["h"][None]
    iw = np.clip(np.minimum(ax2, bx2) - np.maximum(ax1, bx1), 0, None)
    ih = np.clip(np.minimum(ay2, by2) - np.maximum(ay1, by1), 0, None)
    inter = iw * ih
    union = (a["w"] * a["h"])[:, None].astype(np.float64) + (b["w"] * b["h"])[None].astype(np.float64) - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def match_frame(gt: np.ndarray, pseudo: np.ndarray, iou_thr: float = 0.5) -> tuple[np.ndarray, np.ndarray]:
    """Greedy class-aware matching of one label frame.

    Returns:
        (pseudo_matched bool (m,), gt_match_score float (n,): score of the pseudo box that matched each
        ground-truth box, -inf when none did).
    """
    matched = np.zeros(pseudo.size, dtype=bool)
    gt_score = np.full(gt.size, -np.inf)
    if gt.size == 0 or pseudo.size == 0:
        return matched, gt_score
    iou = _iou_matrix(pseudo, gt)
    same = pseudo["class_id"][:, None].astype(np.int64) == gt["class_id"][None].astype(np.int64)
    iou = np.where(same, iou, -1.0)
    taken = np.zeros(gt.size, dtype=bool)
    for i in np.argsort(-pseudo["class_confidence"], kind="stable"):
        cand = np.where(taken, -1.0, iou[i])
        j = int(np.argmax(cand))
        if cand[j] >= iou_thr:
            taken[j] = True
            matched[i] = True
            gt_score[j] = float(pseudo["class_confidence"][i])
    return matched, gt_score


@dataclass(frozen=True)
class Matches:
    """Every pseudo box and ground-truth box of the measured frames, with the matching's outcome."""

    pseudo_score: np.ndarray    # (M,) float
    pseudo_class: np.ndarray    # (M,) int
    pseudo_area_px2: np.ndarray
    pseudo_matched: np.ndarray  # (M,) bool
    gt_class: np.ndarray        # (N,) int
    gt_area_px2: np.ndarray
    gt_match_score: np.ndarray  # (N,) score of its matching pseudo box, -inf if none


def match_frames(gt_list: Sequence[np.ndarray], pseudo_list: Sequence[np.ndarray],
                 iou_thr: float = 0.5) -> Matches:
    """Match pseudo boxes to ground truth frame by frame (a frame = one sequence and one ``t``).

    Args:
        gt_list, pseudo_list: per sequence, BBOX arrays (same pixels; pseudo score in
            ``class_confidence``) restricted to the measured (withheld) label frames.
    """
    parts: dict[str, list] = {k: [] for k in Matches.__dataclass_fields__}
    for gt, ps in zip(gt_list, pseudo_list):
        times = np.union1d(gt["t"], ps["t"])
        for t in times:
            g, p = gt[gt["t"] == t], ps[ps["t"] == t]
            m, s = match_frame(g, p, iou_thr)
            parts["pseudo_score"].append(p["class_confidence"].astype(np.float64))
            parts["pseudo_class"].append(p["class_id"].astype(np.int64))
            parts["pseudo_area_px2"].append((p["w"] * p["h"]).astype(np.float64))
            parts["pseudo_matched"].append(m)
            parts["gt_class"].append(g["class_id"].astype(np.int64))
            parts["gt_area_px2"].append((g["w"] * g["h"]).astype(np.float64))
            parts["gt_match_score"].append(s)
    empty = {"pseudo_matched": bool, "pseudo_class": np.int64, "gt_class": np.int64}
    return Matches(**{k: np.concatenate(v) if v else np.zeros(0, empty.get(k, np.float64))
                      for k, v in parts.items()})


def _counts(m: Matches, thr: float, pseudo_sel: np.ndarray, gt_sel: np.ndarray) -> dict:
    kept = pseudo_sel & (m.pseudo_score >= thr)
    tp_p = int((kept & m.pseudo_matched).sum())
    n_p = int(kept.sum())
    n_g = int(gt_sel.sum())
    tp_g = int((gt_sel & (m.gt_match_score >= thr)).sum())
    return {"precision": tp_p / n_p if n_p else None, "recall": tp_g / n_g if n_g else None,
            "tp": tp_g, "fp": n_p - tp_p, "fn": n_g - tp_g, "pseudo": n_p, "gt": n_g}


def quality_table(m: Matches, class_names: Sequence[str],
                  thresholds: Sequence[float] = DEFAULT_THRESHOLDS) -> list[dict]:
    """Precision / recall at each threshold: overall, per class, per size bucket and small road users.

    Returns:
        one dict per threshold: {"threshold", "overall", "per_class": {name: ...}, "per_size": {bucket: ...},
        "small_road_users": ... (None when the class map has none)}; each leaf is {"precision",
        "recall", "tp", "fp", "fn", "pseudo", "gt"} (precision / recall None without boxes).
    """
    sru_ids = [i for i, n in enumerate(class_names) if n in SMALL_ROAD_USERS]
    rows = []
    all_p, all_g = np.ones(m.pseudo_score.size, bool), np.ones(m.gt_class.size, bool)
    for thr in thresholds:
        thr = float(thr)
        row = {"threshold": thr, "overall": _counts(m, thr, all_p, all_g), "per_class": {}, "per_size": {}}
        for c, name in enumerate(class_names):
            row["per_class"][name] = _counts(m, thr, m.pseudo_class == c, m.gt_class == c)
        for bucket, (lo, hi) in FULL_BUCKETS_PX2.items():
            row["per_size"][bucket] = _counts(m, thr, (m.pseudo_area_px2 >= lo) & (m.pseudo_area_px2 < hi),
                                              (m.gt_area_px2 >= lo) & (m.gt_area_px2 < hi))
        row[SRU] = _counts(m, thr, np.isin(m.pseudo_class, sru_ids), np.isin(m.gt_class, sru_ids)) \
            if sru_ids else None
        rows.append(row)
    return rows


def _fmt(v: Optional[float]) -> str:
    return number(v, digits=3)


def format_quality_table(rows: list[dict], class_names: Sequence[str]) -> str:
    """Plain-text table: one line per threshold (overall and small road users), then per class and per size
    at the threshold of the best overall F1."""
    lines = [f"{'thr':>5} {'prec':>6} {'recall':>6} {'pseudo':>7} {'gt':>6} {'SRU prec':>8} {'SRU rec':>8}"]
    for r in rows:
        o, s = r["overall"], r[SRU] or {"precision": None, "recall": None}
        lines.append(f"{r['threshold']:>5.2f} {_fmt(o['precision']):>6} {_fmt(o['recall']):>6} {o['pseudo']:>7} "
                     f"{o['gt']:>6} {_fmt(s['precision']):>8} {_fmt(s['recall']):>8}")
    best = max(rows, key=lambda r: _f1(r["overall"]))
    lines.append(f"at threshold {best['threshold']:.2f} (best overall F1):")
    lines.append(f"  {'class / size':<14} {'prec':>6} {'recall':>6} {'pseudo':>7} {'gt':>6}")
    for name in class_names:
        c = best["per_class"][name]
        lines.append(f"  {name:<14} {_fmt(c['precision']):>6} {_fmt(c['recall']):>6} {c['pseudo']:>7} {c['gt']:>6}")
    for bucket, c in best["per_size"].items():
        lines.append(f"  size {bucket:<9} {_fmt(c['precision']):>6} {_fmt(c['recall']):>6} {c['pseudo']:>7} "
                     f"{c['gt']:>6}")
    return "\n".join(lines)


def _f1(c: dict) -> float:
    p, r = c["precision"] or 0.0, c["recall"] or 0.0
    return 2 * p * r / (p + r) if p + r else 0.0


def plot_quality_sweep(rows: list[dict], class_names: Sequence[str], path: str | Path, title: str = "") -> Path:
    """PNG: precision and recall vs threshold (overall, small road users, and recall per class)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from evdet.utils.atomic import save_figure

    thr = [r["threshold"] for r in rows]

    def series(get):
        return [np.nan if get(r) is None else get(r) for r in rows]

    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(10, 4))
    ax1.plot(thr, series(lambda r: r["overall"]["precision"]), "-o", ms=3, label="precision (all)")
    ax1.plot(thr, series(lambda r: r["overall"]["recall"]), "-s", ms=3, label="recall (all)")
    if rows and rows[0][SRU] is not None:
        ax1.plot(thr, series(lambda r: r[SRU]["precision"]), "--o", ms=3, label="precision (small road users)")
        ax1.plot(thr, series(lambda r: r[SRU]["recall"]), "--s", ms=3, label="recall (small road users)")
    ax1.set(xlabel="pseudo-label score threshold", ylabel="value", ylim=(0, 1.02), title="overall")
    ax1.legend(fontsize=8)
    for name in class_names:
        if rows and rows[0]["per_class"][name]["gt"]:
            ax2.plot(thr, series(lambda r, n=name: r["per_class"][n]["recall"]), label=name)
    ax2.set(xlabel="pseudo-label score threshold", ylabel="recall", ylim=(0, 1.02), title="recall per class")
    ax2.legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    save_figure(fig, path, dpi=110)
    return path
