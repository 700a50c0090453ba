"""Evaluate tracked boxes against ground-truth track ids: HOTA, MOTA, MOTP, IDF1 per class and overall.

Frames are the distinct ground-truth timestamps of each sequence (as in the Prophesee detection
protocol; label frames without boxes do not exist in that format). Each frame takes the tracker
boxes of the nearest tracker timestamp within ``time_tolerance_us``; tracker boxes at other times
are not scored. Evaluation is per class (a track of the wrong class is a miss plus a false
positive); ``overall`` sums the counts of all classes and sequences (TrackEval's detection-averaged
combination).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict

import numpy as np

from evdet.tracking.boxes import as_bbox_array, iou_xywh, xywh
from evdet.tracking.bytetrack import TrackerConfig, track_sequence
from evdet.tracking.metrics import (
    FrameSet,
    add_counts,
    clear_counts,
    clear_identity_metrics,
    hota_counts,
    hota_metrics,
    identity_counts,
)

DEFAULT_TOLERANCE_US = 25_000   # half a 50 ms window


def frames_of_class(gt: np.ndarray, tracks: np.ndarray, class_id: int | None,
                    time_tolerance_us: int = DEFAULT_TOLERANCE_US) -> FrameSet:
    """Evaluated frames of one sequence, restricted to one class (None: all classes).

    Args:
        gt: ``BBOX_DTYPE`` ground truth with ``track_id``.
        tracks: ``BBOX_DTYPE`` tracker output with ``track_id``.
    """
    gt_times = np.unique(gt["t"])        # frames of every class, so a wrong-class track is a FP
    if class_id is not None:
        gt = gt[gt["class_id"] == class_id]
        tracks = tracks[tracks["class_id"] == class_id]
    frames = FrameSet()
    tr_times = np.unique(tracks["t"])
    for t in gt_times:
        g = gt[gt["t"] == t]
        tr = tracks[:0]
        if tr_times.size:
            k = int(np.argmin(np.abs(tr_times - t)))
            if abs(int(tr_times[k]) - int(t)) <= time_tolerance_us:
                tr = tracks[tracks["t"] == tr_times[k]]
        frames.gt_ids.append(g["track_id"].astype(np.int64))
        frames.tr_ids.append(tr["track_id"].astype(np.int64))
        frames.iou.append(iou_xywh(xywh(g), xywh(tr)))
    return frames


def _check(boxes: np.ndarray, source: str, num_classes: int) -> np.ndarray:
    arr = as_bbox_array(boxes, source)
    bad = np.flatnonzero(arr["class_id"] >= num_classes)
    if bad.size:
        raise ValueError(f"{source}: class_id {arr['class_id'][bad[0]]} at row {bad[0]} is outside the "
                         f"{num_classes} classes")
    return arr


def evaluate_tracking(gt_list: Sequence[np.ndarray], track_list: Sequence[np.ndarray], *,
                      class_names: Sequence[str], time_tolerance_us: int = DEFAULT_TOLERANCE_US) -> dict:
    """Tracking metrics of several sequences.

    Args:
        gt_list: per sequence, ``BBOX_DTYPE`` ground truth with track ids (pixels of some frame).
        track_list: per sequence (same order), tracker boxes in the same pixels, with track ids.
        class_names: names in class-id order.
        time_tolerance_us: how far a tracker frame may lie from a ground-truth frame.
    Returns:
        {"overall": metrics, "per_class": {name: metrics}, "settings": {...}} where metrics holds
        HOTA, DetA, AssA, DetRe, DetPr, AssRe, AssPr, LocA, MOTA, MOTP (mean IoU), IDF1, IDP, IDR,
        TP, FN, FP, IDSW, gt_boxes, tracker_boxes, gt_tracks; undefined values are None.
    """
    if len(gt_list) != len(track_list):
        raise ValueError(f"gt_list has {len(gt_list)} sequences but track_list has {len(track_list)}")
    names = list(class_names)
    gts = [_check(g, f"gt_list[{i}]", len(names)) for i, g in enumerate(gt_list)]
    trs = [_check(t, f"track_list[{i}]", len(names)) for i, t in enumerate(track_list)]
    per_class, total = {}, None
    for c, name in enumerate(names):
        acc = None
        gt_tracks = 0
        for gt, tr in zip(gts, trs):
            frames = frames_of_class(gt, tr, c, time_tolerance_us)
            counts = {"hota": hota_counts(frames), "clear": clear_counts(frames), "id": identity_counts(frames)}
            acc = counts if acc is None else {k: add_counts(acc[k], counts[k]) for k in acc}
            gt_tracks += int(np.unique(gt["track_id"][gt["class_id"] == c]).size)
        per_class[name] = {**_metrics(acc), "gt_tracks": gt_tracks}
        total = acc if total is None else {k: add_counts(total[k], acc[k]) for k in total}
    overall = {**_metrics(total), "gt_tracks": sum(m["gt_tracks"] for m in per_class.values())} if names else {}
    return {"overall": overall, "per_class": per_class,
            "settings": {"time_tolerance_us": int(time_tolerance_us), "match_iou": 0.5,
                         "class_aware": True, "motp": "mean IoU of matched pairs"}}


def _metrics(counts: dict) -> dict:
    out = hota_metrics(counts["hota"])
    if not counts["clear"]["GT"] and not counts["id"]["TR"]:
        out = {k: None for k in out}
    return {**out, **clear_identity_metrics(counts["clear"], counts["id"])}


def track_and_evaluate(gt_list: Sequence[np.ndarray], dt_list: Sequence[np.ndarray], *,
                       class_names: Sequence[str], config: TrackerConfig | None = None,
                       time_tolerance_us: int = DEFAULT_TOLERANCE_US) -> dict:
    """Track each sequence's detections with ByteTrack, then evaluate (for reports).

    Args:
        gt_list: per sequence, ground truth with track ids (e.g. from ``predict_sequences``).
        dt_list: per sequence, detections (``BBOX_DTYPE``, score in ``class_confidence``), same pixels.
        class_names: names in class-id order.
        config: tracker settings (None: ``TrackerConfig()`` defaults).
    Returns:
        ``evaluate_tracking``'s dict plus ``"tracker"``: the tracker settings used.
    """
    config = config or TrackerConfig()
    tracks = [track_sequence(d, config) for d in dt_list]
    result = evaluate_tracking(gt_list, tracks, class_names=class_names, time_tolerance_us=time_tolerance_us)
    result["tracker"] = asdict(config)
    return result
