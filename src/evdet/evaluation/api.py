"""``evaluate``: box arrays of GT and detections -> EvalResult under a named protocol."""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from evdet.data.classes import ClassMap
from evdet.data.labels import BBOX_DTYPE, to_bbox_array
from evdet.evaluation.coco import Backend, CocoPrecision, coco_precision
from evdet.evaluation.confusion import confusion_matrix
from evdet.evaluation.curves import pr_curves
from evdet.evaluation.groups import groups_mean_of_classes, groups_merged, resolve_groups
from evdet.evaluation.matching import Frames, build_frames
from evdet.evaluation.per_class import per_class_results
from evdet.evaluation.postprocessing import apply_postprocess
from evdet.evaluation.protocols import Protocol, fingerprint, get_protocol
from evdet.evaluation.result import EvalResult


def _prepare(boxes: np.ndarray, source: str, num_classes: int, scoring: str = "obj_x_cls") -> np.ndarray:
    """Validated BBOX array sorted by t (stable, so equal-time order is kept).

    Under scoring "class", an array with a ``class_score`` field (evdet's in-memory detections) is
    ranked by it: it replaces ``class_confidence``. Under scoring "obj_x_cls", an array with an
    ``obj_x_cls`` field (the detection files evdet writes) is ranked by that field.
    """
    arr = np.asarray(boxes)
    names = arr.dtype.names or ()
    if scoring == "class" and "class_score" in names and "class_confidence" in names:
        arr = arr.copy()
        arr["class_confidence"] = arr["class_score"]
    if scoring == "obj_x_cls" and "obj_x_cls" in names and "class_confidence" in names:
        arr = arr.copy()
        arr["class_confidence"] = arr["obj_x_cls"]
    if arr.dtype != BBOX_DTYPE:
        if arr.dtype.names is None and arr.size == 0:
            arr = np.zeros(0, dtype=BBOX_DTYPE)
        else:
            t_field = next((f for f in ("t", "ts") if f in (arr.dtype.names or ())), None)
            if t_field is not None:
                arr = arr[np.argsort(arr[t_field], kind="stable")]
            arr = to_bbox_array(arr, source=source)
    bad = np.flatnonzero(arr["class_id"] >= num_classes)
    if bad.size:
        raise ValueError(f"{source}: field 'class_id' = {arr['class_id'][bad[0]]} at row {bad[0]} "
                         f"is outside the {num_classes} classes")
    for f in ("x", "y", "w", "h", "class_confidence"):
        if not np.all(np.isfinite(arr[f])):
            raise ValueError(f"{source}: field {f!r} holds non-finite values")
    for f in ("w", "h"):
        neg = np.flatnonzero(arr[f] < 0)
        if neg.size:
            raise ValueError(f"{source}: field {f!r} is negative at row {neg[0]}")
    if np.any(np.diff(arr["t"]) < 0):
        arr = arr[np.argsort(arr["t"], kind="stable")]
    return arr


def evaluate(
    gt_list: Sequence[np.ndarray],
    dt_list: Sequence[np.ndarray],
    *,
    height: int,
    width: int,
    class_names: Sequence[str] | ClassMap,
    protocol: str = "prophesee",
    source_hw: tuple[int, int] | None = None,
    groups: Mapping[str, Sequence[str]] | Sequence[str] | None = None,
    pr_confidence: float = 0.5,
    label_rate_hz: float | None = None,
    confusion_iou: float = 0.5,
    backend: Backend = "faster",
    scoring: str | None = None,
    postprocess: str | None = None,
    conf_threshold: float | None = None,
) -> EvalResult:
    """Evaluate detections against ground truth under a named protocol.

    Args:
        gt_list: one BBOX_DTYPE array per sequence, boxes in pixels of a (height, width) frame.
        dt_list: detections of the same sequences, same order; score in ``class_confidence``.
        height, width: the evaluated resolution (that of the boxes), pixels.
        class_names: class names in id order, or a ClassMap (its groups become the default groups;
            a plain list equal to a known map's names gets that map's groups).
        protocol: "prophesee", "etram-paper" or "full" (see ``evdet.evaluation.protocols``).
        source_hw: the sensor's (height, width); default (height, width). ``full`` states its
            area buckets at this resolution.
        groups: None (all groups of the class map), names of class-map groups, or name -> members.
        pr_confidence: score threshold of per-class precision / recall and of the confusion matrix.
        label_rate_hz: GT label rate, recorded in the fingerprint when known.
        confusion_iou: IoU at which the confusion matrix pairs a detection with a GT box.
        backend: COCO implementation ("faster" = faster-coco-eval; "pycocotools" for cross-checks).
        scoring: the score detections are ranked by: "class" (RVT: the class probability alone, field
            ``class_score`` where the array has it) or "obj_x_cls" (YOLOX: ``class_confidence``);
            None: the protocol's default ("class"). Recorded in the fingerprint.
        postprocess, conf_threshold: the candidates evaluated ("rvt" or "clip_cap" at an obj x cls
            threshold, ``evdet.evaluation.postprocessing``); None: the protocol's defaults. Recorded
            in the fingerprint.
    Returns:
        EvalResult; ``to_dict()`` follows docs/CONTRACTS.md.
    Raises:
        ValueError: mismatched lists, unknown protocol / group / class, class ids out of range.
    """
    proto = get_protocol(protocol, scoring, postprocess, conf_threshold)
    cmap = ClassMap.from_names(class_names)
    names = list(cmap.names)
    num_classes = len(names)
    _check_arguments(gt_list, dt_list, height, width, pr_confidence)
    source_hw = (int(height), int(width)) if source_hw is None else (int(source_hw[0]), int(source_hw[1]))
    group_map = resolve_groups(names, cmap.groups, groups)
    frames = _matched_frames(proto, gt_list, dt_list, height, width, num_classes)
    ranges = proto.area_ranges_px2(height, width, source_hw)

    aware = coco_precision(frames, num_classes, height, width, ranges, backend=backend)
    overall = coco_precision(frames, num_classes, height, width, ranges, class_agnostic=True,
                             backend=backend) if proto.class_agnostic else aware
    if proto.group_mode == "merged":
        group_results = groups_merged(frames, names, group_map, height=height, width=width,
                                      area_ranges_px2=ranges, backend=backend)
    else:
        group_results = groups_mean_of_classes(aware, frames, names, group_map)

    matrix = confusion_matrix(frames, num_classes, iou_threshold=confusion_iou, confidence=pr_confidence)
    curves = pr_curves(aware, names)
    if proto.class_agnostic:
        curves.update(pr_curves(overall, names))
    return EvalResult(
        protocol=proto.name,
        fingerprint=fingerprint(proto, names, height, width, source_hw, label_rate_hz),
        metrics=_headline_metrics(overall, ranges),
        per_class=per_class_results(aware, frames, names, confidence=pr_confidence),
        groups=group_results,
        confusion={"labels": names + ["background"], "matrix": matrix.tolist(), "iou": float(confusion_iou),
                   "confidence": float(pr_confidence)},
        pr_curves=curves,
        counts={"images": frames.num_images, "gt": len(frames.gt), "detections": len(frames.dt)},
    )


def _check_arguments(gt_list: Sequence[np.ndarray], dt_list: Sequence[np.ndarray], height: int, width: int,
                     pr_confidence: float) -> None:
    """Refuse mismatched lists, a non-positive size and a confidence outside [0, 1] (one-line errors)."""
    if len(gt_list) != len(dt_list):
        raise ValueError(f"gt_list has {len(gt_list)} sequences but dt_list has {len(dt_list)}")
    if height <= 0 or width <= 0:
        raise ValueError(f"height/width must be positive, got {height}x{width}")
    if not 0.0 <= pr_confidence <= 1.0:
        raise ValueError(f"pr_confidence must lie in [0, 1], got {pr_confidence}")


def _matched_frames(proto: Protocol, gt_list: Sequence[np.ndarray], dt_list: Sequence[np.ndarray], height: int,
                    width: int, num_classes: int) -> Frames:
    """GT and post-processed detections, validated, filtered by the protocol's box filter, paired in time."""
    box_filter = proto.box_filter(height, width)
    gts = [box_filter.apply(_prepare(g, f"gt_list[{i}]", num_classes)) for i, g in enumerate(gt_list)]
    dts = [box_filter.apply(_prepare(apply_postprocess(d, proto.post, height, width), f"dt_list[{i}]", num_classes,
                                     proto.scoring)) for i, d in enumerate(dt_list)]
    return build_frames(gts, dts, proto.time_tolerance_us)


def _headline_metrics(overall: CocoPrecision, ranges: Mapping[str, tuple[float, float]]) -> dict[str, float]:
    """AP, AP50, AP75 and ``AP_<area>`` of every area range but ``all``."""
    metrics = {"AP": overall.average_precision(), "AP50": overall.average_precision(iou=0.5),
               "AP75": overall.average_precision(iou=0.75)}
    for label in ranges:
        if label != "all":
            metrics[f"AP_{label}"] = overall.average_precision(area=label)
    return metrics
