"""Temporal refinement of a teacher's detections: keep boxes that persist along tracks.

The teacher's detections at every representation of a sequence are linked by evdet's ByteTrack
tracker, once forward and once backward in time (so the first box of a track, which ByteTrack does
not report, is reported by the backward pass). Each box gets an *effective score*:

- ``none``: its own score (obj x cls);
- ``track`` / ``bidirectional``: the larger of its score and its track's mean score when its track
  holds at least ``min_track_len`` boxes in either direction, else 0 (one-frame flickers go).

The pseudo-label threshold then applies to the effective score: a faint box on a long, confident track
is kept (LEOD's low-score recovery), a confident box seen in a single frame is dropped.
``bidirectional`` differs from ``track`` before this step: the detections come from the model run on
the sequence forward AND on the time-reversed sequence, merged by class-aware NMS
(``merge_directions``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from evdet.tracking import TrackerConfig, track_sequence

RefineMode = Literal["none", "track", "bidirectional"]


@dataclass(frozen=True)
class RefineConfig:
    """Temporal refinement settings."""

    mode: RefineMode = "none"
    min_track_len: int = 3            # boxes a track needs (reported, one direction) for its boxes to persist
    track_score: float = 0.4          # tracker: detections from this score start / continue tracks
    low_score: float = 0.1            # tracker: second-stage (faint) detections from this score

    def __post_init__(self) -> None:
        if self.mode not in ("none", "track", "bidirectional"):
            raise ValueError(f"refine: {self.mode!r} is not one of ['none', 'track', 'bidirectional']")
        if self.min_track_len < 1:
            raise ValueError(f"refine: min_track_len must be >= 1, got {self.min_track_len}")

    def tracker(self) -> TrackerConfig:
        """ByteTrack settings: IoU alone decides a match (no score weighting: a weak teacher's low scores
        would block every match; the scores are used afterwards, by the threshold)."""
        low = min(self.low_score, self.track_score)
        return TrackerConfig(high_score=self.track_score, low_score=low, new_track_score=self.track_score,
                             fuse_score=False)


_KEY_FIELDS = ("t", "x", "y", "w", "h", "class_id")


def _keys(boxes: np.ndarray) -> list[bytes]:
    """One hashable key per box: its time, box and class (the tracker reports the detection's box as is)."""
    sub = np.zeros(boxes.size, dtype=[(f, boxes.dtype[f]) for f in _KEY_FIELDS])
    for f in _KEY_FIELDS:
        sub[f] = boxes[f]
    return [row.tobytes() for row in sub]


def _track_stats(dets: np.ndarray, cfg: TrackerConfig, reverse: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per detection: length (reported boxes) and mean score of its track; 0, 0 when not on a track."""
    length, mean = np.zeros(dets.size, np.int64), np.zeros(dets.size, np.float64)
    if dets.size == 0:
        return length, mean
    work = dets.copy()
    if reverse:
        work["t"] = int(dets["t"].max()) - dets["t"]
    order = np.argsort(work["t"], kind="stable")
    tracked = track_sequence(work[order], cfg)
    if tracked.size == 0:
        return length, mean
    index = {k: i for i, k in enumerate(_keys(work))}
    rows = np.array([index[k] for k in _keys(tracked)], dtype=np.int64)
    ids = tracked["track_id"].astype(np.int64)
    for tid in np.unique(ids):
        members = rows[ids == tid]
        length[members] = members.size
        mean[members] = float(dets["class_confidence"][members].mean())
    return length, mean


def effective_scores(dets: np.ndarray, cfg: RefineConfig) -> np.ndarray:
    """Effective score of each detection of one sequence (see the module docstring).

    Args:
        dets: BBOX / DETECTION array of one sequence, every representation (score in class_confidence).
    Returns:
        (n,) float64.
    """
    score = dets["class_confidence"].astype(np.float64)
    if cfg.mode == "none" or dets.size == 0:
        return score
    tcfg = cfg.tracker()
    len_f, mean_f = _track_stats(dets, tcfg, reverse=False)
    len_b, mean_b = _track_stats(dets, tcfg, reverse=True)
    persistent_f, persistent_b = len_f >= cfg.min_track_len, len_b >= cfg.min_track_len
    track_mean = np.maximum(np.where(persistent_f, mean_f, 0.0), np.where(persistent_b, mean_b, 0.0))
    return np.where(persistent_f | persistent_b, np.maximum(score, track_mean), 0.0)


def merge_directions(forward: np.ndarray, backward: np.ndarray, nms_iou: float = 0.45) -> np.ndarray:
    """Union of the forward and time-reversed model's detections, class-aware NMS per time step."""
    import torch

    from evdet.models.boxes import batched_nms

    both = np.concatenate([forward, backward])
    if both.size == 0:
        return both
    keep_rows = []
    for t in np.unique(both["t"]):
        rows = np.flatnonzero(both["t"] == t)
        b = both[rows]
        xyxy = torch.from_numpy(np.stack([b["x"], b["y"], b["x"] + b["w"], b["y"] + b["h"]], 1).astype(np.float32))
        kept = batched_nms(xyxy, torch.from_numpy(b["class_confidence"].astype(np.float32)),
                           torch.from_numpy(b["class_id"].astype(np.int64)), nms_iou)
        keep_rows.append(rows[kept.numpy()])
    out = both[np.sort(np.concatenate(keep_rows))]
    return out[np.argsort(out["t"], kind="stable")]
