"""Tracking metrics: HOTA (Luiten et al. 2021), CLEAR MOT (MOTA, MOTP) and identity (IDF1).

The algorithms follow the references that the tests use as oracles:
- HOTA as TrackEval computes it: a global alignment score between ids weights the per-frame
  Hungarian matching; DetA, AssA and LocA at IoU thresholds alpha = 0.05 .. 0.95, HOTA the mean
  over alpha of sqrt(DetA * AssA).
- CLEAR MOT as py-motmetrics computes it: a pair may match when 1 - IoU <= 0.5; previous matches
  are kept while still valid, the rest is a minimum-distance assignment of the most pairs; a switch
  is a ground-truth object matched to another track id than its last one.
  MOTA = 1 - (FN + FP + IDSW) / GT. MOTP here is the mean IoU of matched pairs (TrackEval's
  convention; motmetrics reports 1 - MOTP, a distance).
- IDF1: one global assignment of ground-truth ids to track ids maximising the frames where they
  match (IoU >= 0.5); IDF1 = 2 IDTP / (GT + tracker boxes).

Counts of several sequences (or classes) add up, so results combine by summing ``*_counts``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment

ALPHAS = np.arange(0.05, 0.96, 0.05)   # HOTA's IoU thresholds (19 values)
MATCH_IOU = 0.5                        # CLEAR and identity matching threshold
_EPS = np.finfo(float).eps


@dataclass
class FrameSet:
    """Evaluated frames of one sequence and class.

    Attributes:
        gt_ids: per frame, (G_t,) ground-truth ids.
        tr_ids: per frame, (T_t,) tracker ids.
        iou: per frame, (G_t, T_t) IoU.
    """

    gt_ids: list[np.ndarray] = field(default_factory=list)
    tr_ids: list[np.ndarray] = field(default_factory=list)
    iou: list[np.ndarray] = field(default_factory=list)


def _contiguous(ids_per_frame: list[np.ndarray]) -> tuple[list[np.ndarray], int]:
    all_ids = np.concatenate(ids_per_frame) if ids_per_frame else np.zeros(0, dtype=np.int64)
    uniq = np.unique(all_ids)
    return [np.searchsorted(uniq, ids) for ids in ids_per_frame], int(uniq.size)


def hota_counts(frames: FrameSet) -> dict[str, np.ndarray]:
    """Additive HOTA counts of one sequence: per alpha ``TP``, ``FN``, ``FP``, and the TP-weighted
    sums ``AssA_w``, ``AssRe_w``, ``AssPr_w``, ``LocA_w`` (similarity summed over matches)."""
    n_a = ALPHAS.size
    out = {k: np.zeros(n_a) for k in ("TP", "FN", "FP", "AssA_w", "AssRe_w", "AssPr_w", "LocA_w")}
    gt_ids, n_gt = _contiguous(frames.gt_ids)
    tr_ids, n_tr = _contiguous(frames.tr_ids)
    num_gt_dets = sum(g.size for g in gt_ids)
    num_tr_dets = sum(t.size for t in tr_ids)
    if num_tr_dets == 0 or num_gt_dets == 0:
        out["FN"][:] = num_gt_dets if num_tr_dets == 0 else 0
        out["FP"][:] = num_tr_dets if num_gt_dets == 0 else 0
        return out
    potential = np.zeros((n_gt, n_tr))
    gt_count = np.zeros((n_gt, 1))
    tr_count = np.zeros((1, n_tr))
    for g, t, sim in zip(gt_ids, tr_ids, frames.iou):
        denom = sim.sum(0)[None, :] + sim.sum(1)[:, None] - sim
        sim_iou = np.zeros_like(sim)
        ok = denom > _EPS
        sim_iou[ok] = sim[ok] / denom[ok]
        potential[g[:, None], t[None, :]] += sim_iou
        gt_count[g] += 1
        tr_count[0, t] += 1
    alignment = potential / (gt_count + tr_count - potential)
    matches = np.zeros((n_a, n_gt, n_tr))
    for g, t, sim in zip(gt_ids, tr_ids, frames.iou):
        if g.size == 0 or t.size == 0:
            out["FP"] += t.size
            out["FN"] += g.size
            continue
        rows, cols = linear_sum_assignment(-(alignment[g[:, None], t[None, :]] * sim))
        for a, alpha in enumerate(ALPHAS):
            ok = sim[rows, cols] >= alpha - _EPS
            r, c = rows[ok], cols[ok]
            out["TP"][a] += r.size
            out["FN"][a] += g.size - r.size
            out["FP"][a] += t.size - r.size
            out["LocA_w"][a] += sim[r, c].sum()
            matches[a, g[r], t[c]] += 1
    for a in range(n_a):
        m = matches[a]
        out["AssA_w"][a] = np.sum(m * m / np.maximum(1, gt_count + tr_count - m))
        out["AssRe_w"][a] = np.sum(m * m / np.maximum(1, gt_count))
        out["AssPr_w"][a] = np.sum(m * m / np.maximum(1, tr_count))
    return out


def hota_metrics(counts: dict[str, np.ndarray]) -> dict[str, float]:
    """HOTA, DetA, AssA, DetRe, DetPr, AssRe, AssPr, LocA (means over alpha) from summed counts."""
    tp, fn, fp = counts["TP"], counts["FN"], counts["FP"]
    det_a = tp / np.maximum(1, tp + fn + fp)
    ass_a = counts["AssA_w"] / np.maximum(1, tp)
    res = {"HOTA": np.sqrt(det_a * ass_a), "DetA": det_a, "AssA": ass_a,
           "DetRe": tp / np.maximum(1, tp + fn), "DetPr": tp / np.maximum(1, tp + fp),
           "AssRe": counts["AssRe_w"] / np.maximum(1, tp), "AssPr": counts["AssPr_w"] / np.maximum(1, tp),
           "LocA": np.maximum(1e-10, counts["LocA_w"]) / np.maximum(1e-10, tp)}
    return {k: float(np.mean(v)) for k, v in res.items()}


def _valid(iou: np.ndarray) -> np.ndarray:
    # the motmetrics test (1 - IoU <= 0.5) rather than IoU >= 0.5, so boundary cases agree
    return (1.0 - iou) <= 1.0 - MATCH_IOU


def clear_counts(frames: FrameSet) -> dict[str, float]:
    """Additive CLEAR MOT counts of one sequence: ``TP``, ``FN``, ``FP``, ``IDSW``, ``IoU_sum``
    (over matches), ``GT`` (ground-truth boxes)."""
    last_match: dict[int, int] = {}
    out = {"TP": 0, "FN": 0, "FP": 0, "IDSW": 0, "IoU_sum": 0.0, "GT": 0}
    for g, t, iou in zip(frames.gt_ids, frames.tr_ids, frames.iou):
        out["GT"] += g.size
        valid = _valid(iou)
        g_used = np.zeros(g.size, dtype=bool)
        t_used = np.zeros(t.size, dtype=bool)
        pairs = []
        for i, gid in enumerate(g.tolist()):   # 1. keep previous matches that are still valid
            prev = last_match.get(gid)
            if prev is None:
                continue
            js = np.flatnonzero(~t_used & (t == prev))
            if js.size and valid[i, js[0]]:
                g_used[i] = t_used[js[0]] = True
                pairs.append((i, js[0]))
        free = valid & ~g_used[:, None] & ~t_used[None, :]
        if free.any():                          # 2. most pairs, then least distance, among the rest
            dist = 1.0 - iou
            big = 2 * min(iou.shape) * (np.abs(dist[free]).max() + 1) + 1
            rows, cols = linear_sum_assignment(np.where(free, dist, big))
            for i, j in zip(rows, cols):
                if not free[i, j]:
                    continue
                gid, tid = int(g[i]), int(t[j])
                if gid in last_match and last_match[gid] != tid:
                    out["IDSW"] += 1
                g_used[i] = t_used[j] = True
                pairs.append((i, j))
        for i, j in pairs:
            last_match[int(g[i])] = int(t[j])
            out["IoU_sum"] += float(iou[i, j])
        out["TP"] += len(pairs)
        out["FN"] += int(g.size - g_used.sum())
        out["FP"] += int(t.size - t_used.sum())
    return out


def identity_counts(frames: FrameSet) -> dict[str, float]:
    """Additive identity counts of one sequence: ``IDTP``, ``GT`` and ``TR`` (tracker boxes)."""
    gt_ids, n_gt = _contiguous(frames.gt_ids)
    tr_ids, n_tr = _contiguous(frames.tr_ids)
    both = np.zeros((n_gt, n_tr))
    for g, t, iou in zip(gt_ids, tr_ids, frames.iou):
        rows, cols = np.nonzero(_valid(iou))
        np.add.at(both, (g[rows], t[cols]), 1)
    idtp = 0.0
    if both.size:
        rows, cols = linear_sum_assignment(-both)
        idtp = float(both[rows, cols].sum())
    return {"IDTP": idtp, "GT": sum(g.size for g in gt_ids), "TR": sum(t.size for t in tr_ids)}


def _ratio(num: float, den: float) -> float | None:
    return float(num) / float(den) if den else None


def clear_identity_metrics(clear: dict, ident: dict) -> dict[str, float | int | None]:
    """MOTA, MOTP, IDF1, IDP, IDR and the raw counts from summed counts (None when undefined)."""
    gt = clear["GT"]
    return {
        "MOTA": None if not gt else 1.0 - (clear["FN"] + clear["FP"] + clear["IDSW"]) / gt,
        "MOTP": _ratio(clear["IoU_sum"], clear["TP"]),
        "IDF1": _ratio(2 * ident["IDTP"], ident["GT"] + ident["TR"]),
        "IDP": _ratio(ident["IDTP"], ident["TR"]),
        "IDR": _ratio(ident["IDTP"], ident["GT"]),
        "TP": int(clear["TP"]), "FN": int(clear["FN"]), "FP": int(clear["FP"]), "IDSW": int(clear["IDSW"]),
        "gt_boxes": int(gt), "tracker_boxes": int(ident["TR"]),
    }


def add_counts(a: dict, b: dict) -> dict:
    """Sum of two count dictionaries (arrays or numbers) with the same keys."""
    return {k: a[k] + b[k] for k in a}
