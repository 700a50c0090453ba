"""Weighted sampling of training label frames (random windows) or sequences (streams).

``data.sample_weighting.mode`` (``SampleWeightConfig``; "off" keeps RVT's uniform permutation):

- ``small_objects``: frame weight ``w_i = 1 + small_boost * [frame i holds a small road user]``, where a
  small road user is a box of the class-map group ``small_group`` (every class when "") with
  ``w * h < small_area_px2`` (representation pixels).
- ``class_inverse`` / ``class_effective``: class weights ``omega_c`` from the train split's box counts
  (``evdet.utils.class_balance``: 1/n_c or (1-beta)/(1-beta^n_c), mean 1 over present classes); frame
  weight = the largest ``omega_c`` of the classes in the frame (repeat-factor style; a frame without
  boxes gets the smallest present ``omega_c``).
- A sequence's weight (stream sampling) is the mean weight of its label frames.

An epoch then draws as many windows (sequences) as there are, with replacement, with probabilities
proportional to the weights (seeded by seed, epoch, pass). ``sampling_report`` gives what is logged at
training start: the weights and the share of small boxes among the boxes drawn, uniform vs weighted.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from evdet.data.config import SampleWeightConfig
from evdet.utils.class_balance import class_balanced_weights


def frame_box_counts(frames: Sequence[np.ndarray], num_classes: int, small_ids: Optional[Sequence[int]],
                     small_area_px2: float) -> tuple[np.ndarray, np.ndarray]:
    """Per label frame, boxes per class and small road users.

    Args:
        frames: per label frame, a BBOX array (fields w, h, class_id) in representation pixels.
        small_ids: class ids that count as small road users (None: every class).
    Returns:
        ((N, K) int64 boxes per class, (N,) int64 small road-user boxes).
    """
    per_class = np.zeros((len(frames), num_classes), dtype=np.int64)
    small = np.zeros(len(frames), dtype=np.int64)
    for i, boxes in enumerate(frames):
        if boxes is None or len(boxes) == 0:
            continue
        cls = np.asarray(boxes["class_id"], dtype=np.int64)
        per_class[i] = np.bincount(cls[cls < num_classes], minlength=num_classes)
        in_group = np.ones(len(cls), bool) if small_ids is None else np.isin(cls, np.asarray(small_ids))
        small[i] = int((in_group & (np.asarray(boxes["w"]) * np.asarray(boxes["h"]) < small_area_px2)).sum())
    return per_class, small


def frame_weights(cfg: SampleWeightConfig, per_class: np.ndarray, small: np.ndarray) -> Optional[np.ndarray]:
    """(N,) frame weights for the configured mode, None when off."""
    if cfg.mode == "off":
        return None
    if cfg.mode == "small_objects":
        return 1.0 + cfg.small_boost * (small > 0).astype(np.float64)
    omega = class_balanced_weights(per_class.sum(0), "inverse" if cfg.mode == "class_inverse" else "effective",
                                   cfg.beta)
    present = omega[omega > 0]
    if present.size == 0:
        return np.ones(len(per_class))
    w = np.where(per_class > 0, omega[None, :], 0.0).max(1)
    return np.where(per_class.sum(1) > 0, w, present.min())


def weighted_order(weights: np.ndarray, key: Sequence[int]) -> np.ndarray:
    """len(weights) indices drawn with replacement, P(i) = w_i / sum w, from ``default_rng(key)``."""
    w = np.asarray(weights, dtype=np.float64)
    if w.ndim != 1 or (w < 0).any() or w.sum() <= 0:
        raise ValueError("data.sample_weighting: weights must be >= 0 with a positive sum")
    return np.random.default_rng(list(key)).choice(len(w), size=len(w), replace=True, p=w / w.sum())


def sampling_report(cfg: SampleWeightConfig, weights: np.ndarray, per_class: np.ndarray, small: np.ndarray,
                    unit: str) -> dict:
    """What weighting does to the drawn data: weights and the expected share of small boxes drawn.

    share = sum_i p_i * small_i / sum_i p_i * boxes_i, with p uniform or proportional to the weights.
    """
    boxes = per_class.sum(1).astype(np.float64)
    w = np.asarray(weights, dtype=np.float64)

    def share(p: np.ndarray) -> Optional[float]:
        total = float((p * boxes).sum())
        return float((p * small).sum()) / total if total > 0 else None

    return {"mode": cfg.mode, "unit": unit, "count": int(len(w)), "weight_min": float(w.min()),
            "weight_mean": float(w.mean()), "weight_max": float(w.max()),
            "share_weighted_units_with_small": float((w * (small > 0)).sum() / w.sum()),
            "small_box_share_uniform": share(np.ones_like(w)), "small_box_share_weighted": share(w)}


def sequence_weights(frame_w: np.ndarray, frame_seq: np.ndarray, num_sequences: int) -> np.ndarray:
    """(S,) mean frame weight per sequence (1 for a sequence without label frames)."""
    total = np.bincount(frame_seq, weights=frame_w, minlength=num_sequences)
    count = np.bincount(frame_seq, minlength=num_sequences)
    return np.where(count > 0, total / np.maximum(count, 1), 1.0)


def small_class_ids(class_map, group: str) -> Optional[tuple[int, ...]]:
    """Class ids of ``group`` in a ClassMap (None for "": every class counts)."""
    if not group:
        return None
    if group not in class_map.groups:
        raise ValueError(f"data.sample_weighting.small_group: {group!r} is not a group of the class map "
                         f"(groups: {sorted(class_map.groups)})")
    return class_map.group_ids(group)


def read_frame_boxes(store, labelled: Sequence[np.ndarray]) -> tuple[list[np.ndarray], np.ndarray]:
    """Boxes of the labelled frames in ``random_windows`` order (through the store: classes merged as trained).

    Args:
        store: a ``SequenceStore`` (``labels_at_repr(index, repr_idx)``); labelled: per sequence, repr indices.
    Returns:
        (per frame a BBOX array in representation pixels, (N,) sequence index of each frame).
    """
    frames, seq = [], []
    empty = np.zeros(0, dtype=[("w", "<f4"), ("h", "<f4"), ("class_id", "<u4")])
    for i, reprs in enumerate(labelled):
        for r in np.unique(np.asarray(reprs, dtype=np.int64)):
            boxes = store.labels_at_repr(i, int(r))
            frames.append(boxes if boxes is not None else empty)
            seq.append(i)
    return frames, np.asarray(seq, dtype=np.int64)


def class_counts(frames: Sequence[np.ndarray], num_classes: int) -> np.ndarray:
    """(K,) boxes per class over the frames."""
    counts = np.zeros(num_classes, dtype=np.int64)
    for b in frames:
        cls = np.asarray(b["class_id"], dtype=np.int64)
        counts += np.bincount(cls[cls < num_classes], minlength=num_classes)
    return counts


def train_sampling(cfg: SampleWeightConfig, class_map, frames: Sequence[np.ndarray], frame_seq: np.ndarray,
                   num_sequences: int, unit: str) -> tuple[Optional[np.ndarray], Optional[dict]]:
    """(weights per frame or per sequence, report) for ``unit`` "frames" / "sequences"; (None, None) when off.

    The class modes report the small-box share over ``small_group`` when the class map has it, else over
    every class; ``small_objects`` refuses a missing group.
    """
    if cfg.mode == "off":
        return None, None
    group = cfg.small_group if cfg.mode == "small_objects" or cfg.small_group in class_map.groups else ""
    per_class, small = frame_box_counts(frames, class_map.num_classes, small_class_ids(class_map, group),
                                        cfg.small_area_px2)
    w = frame_weights(cfg, per_class, small)
    if unit == "sequences":
        w = sequence_weights(w, frame_seq, num_sequences)
        per_class = np.stack([per_class[frame_seq == s].sum(0) for s in range(num_sequences)])
        small = np.bincount(frame_seq, weights=small, minlength=num_sequences)
    return w, sampling_report(cfg, w, per_class, small, unit)
