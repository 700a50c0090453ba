"""Random and hand-made tracking cases, and a plain-loop IoU (independent of evdet.tracking)."""

from __future__ import annotations

import numpy as np

from evdet.data.labels import empty_boxes


def boxes(rows) -> np.ndarray:
    """BBOX array from (t, x, y, w, h, class_id, track_id, score) rows."""
    out = empty_boxes(len(rows))
    for i, r in enumerate(rows):
        out[i] = tuple(r)
    return out


def iou_loop(a, b) -> float:
    """IoU of two (x, y, w, h) boxes, written out."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return inter / union if union > 0 else 0.0


def random_case(seed: int, *, frames: int = 25, objects: int = 6, classes: int = 1):
    """(gt, tracks): moving GT boxes with ids; tracks = jittered copies with misses, false
    positives, id swaps, fragmented ids and (for several classes) some wrong classes."""
    rng = np.random.default_rng(seed)
    gt_rows, tr_rows = [], []
    starts = rng.integers(0, frames // 2, objects)
    ends = rng.integers(frames // 2, frames + 1, objects)
    pos = rng.uniform(0, 300, (objects, 2))
    vel = rng.uniform(-6, 6, (objects, 2))
    size = rng.uniform(15, 60, (objects, 2))
    cls = rng.integers(0, classes, objects)
    tr_id = np.arange(objects) + 100
    next_id = 200
    for f in range(frames):
        t = (f + 1) * 50_000
        if rng.random() < 0.15 and objects >= 2:          # two tracks swap ids
            i, j = rng.choice(objects, 2, replace=False)
            tr_id[[i, j]] = tr_id[[j, i]]
        if rng.random() < 0.1:                            # a track gets a new id
            tr_id[rng.integers(objects)] = next_id
            next_id += 1
        for k in range(objects):
            if not starts[k] <= f < ends[k]:
                continue
            x, y = pos[k] + vel[k] * f
            w, h = size[k]
            gt_rows.append((t, x, y, w, h, cls[k], k + 1, 1.0))
            if rng.random() < 0.12:                       # missed
                continue
            jitter = rng.normal(0, 0.12, 4) * [w, h, w, h]
            c = cls[k] if rng.random() > 0.1 else rng.integers(0, classes)
            tr_rows.append((t, x + jitter[0], y + jitter[1], max(w + jitter[2], 1.0), max(h + jitter[3], 1.0),
                            c, tr_id[k], 0.9))
        for _ in range(rng.poisson(0.6)):                 # false positives
            tr_rows.append((t, *rng.uniform(0, 300, 2), *rng.uniform(15, 60, 2), rng.integers(0, classes),
                            next_id, 0.5))
            next_id += 1
    return boxes(gt_rows), boxes(tr_rows)


def frames_by_time(gt: np.ndarray, tr: np.ndarray, class_id: int | None = None):
    """Per GT timestamp (of any class): (gt ids, tracker ids, IoU matrix by the plain loop)."""
    times = sorted(set(gt["t"].tolist()))          # GT frames of every class
    if class_id is not None:
        gt, tr = gt[gt["class_id"] == class_id], tr[tr["class_id"] == class_id]
    out = []
    for t in times:
        g, h = gt[gt["t"] == t], tr[tr["t"] == t]
        iou = np.array([[iou_loop([float(a[k]) for k in "xywh"], [float(b[k]) for k in "xywh"])
                         for b in h] for a in g]).reshape(len(g), len(h))
        out.append((g["track_id"].astype(int), h["track_id"].astype(int), iou))
    return out
