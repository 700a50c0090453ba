"""Class-group results (e.g. eTraM's PED / VH / MM, the small road users)."""

from __future__ import annotations

import dataclasses
from typing import Mapping, Sequence

import numpy as np

from evdet.evaluation.coco import Backend, CocoPrecision, coco_precision
from evdet.evaluation.matching import Frames


def resolve_groups(
    class_names: Sequence[str],
    known_groups: Mapping[str, Sequence[str]],
    groups: Mapping[str, Sequence[str]] | Sequence[str] | None,
) -> dict[str, tuple[str, ...]]:
    """Group name -> member class names.

    Args:
        known_groups: the class map's groups.
        groups: None (all known groups), a sequence of known group names, or explicit
            name -> members.
    Raises:
        ValueError: naming an unknown group or an unknown class.
    """
    if groups is None:
        resolved = {k: tuple(v) for k, v in known_groups.items()}
    elif isinstance(groups, Mapping):
        resolved = {k: tuple(v) for k, v in groups.items()}
    else:
        unknown = [g for g in groups if g not in known_groups]
        if unknown:
            raise ValueError(f"groups: unknown group(s) {unknown}; the class map defines {sorted(known_groups)}")
        resolved = {g: tuple(known_groups[g]) for g in groups}
    for name, members in resolved.items():
        bad = [m for m in members if m not in class_names]
        if bad:
            raise ValueError(f"groups[{name!r}]: unknown class(es) {bad}; classes: {list(class_names)}")
    return resolved


def _support(frames: Frames, ids: list[int]) -> int:
    return int(np.isin(frames.gt["class_id"], ids).sum())


def groups_mean_of_classes(
    coco: CocoPrecision, frames: Frames, class_names: Sequence[str], groups: Mapping[str, Sequence[str]]
) -> dict[str, dict]:
    """Group AP = COCO AP over the group's categories only (the mean over member classes with support).

    Returns:
        group -> {"AP", "AP50", "support", "classes", "mode"}; AP None when no member has support.
    """
    out = {}
    for name, members in groups.items():
        ids = [class_names.index(m) for m in members]
        out[name] = {
            "AP": coco.average_precision(class_slots=ids),
            "AP50": coco.average_precision(iou=0.5, class_slots=ids),
            "support": _support(frames, ids),
            "classes": list(members),
            "mode": "mean_of_classes",
        }
    return out


def merge_classes(frames: Frames, class_ids: Sequence[int]) -> Frames:
    """Frames keeping only boxes of ``class_ids`` (GT and detections), all relabelled to class 0."""
    g = np.isin(frames.gt["class_id"], class_ids)
    d = np.isin(frames.dt["class_id"], class_ids)
    gt, dt = frames.gt[g].copy(), frames.dt[d].copy()
    gt["class_id"] = 0
    dt["class_id"] = 0
    return dataclasses.replace(frames, gt=gt, gt_image=frames.gt_image[g], dt=dt, dt_image=frames.dt_image[d])


def groups_merged(
    frames: Frames,
    class_names: Sequence[str],
    groups: Mapping[str, Sequence[str]],
    *,
    height: int,
    width: int,
    area_ranges_px2: dict[str, tuple[float, float]],
    backend: Backend = "faster",
) -> dict[str, dict]:
    """Group AP with the group's classes pooled into one class (class-agnostic within the group).

    Only GT and detections of member classes take part; the images stay those of the protocol.
    """
    out = {}
    for name, members in groups.items():
        ids = [class_names.index(m) for m in members]
        merged = merge_classes(frames, ids)
        support = len(merged.gt)
        ap = ap50 = None
        if support:
            coco = coco_precision(merged, 1, height, width, area_ranges_px2, backend=backend)
            ap, ap50 = coco.average_precision(), coco.average_precision(iou=0.5)
        out[name] = {"AP": ap, "AP50": ap50, "support": support, "classes": list(members), "mode": "merged"}
    return out
