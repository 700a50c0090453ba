"""COCO AP through faster-coco-eval (pycocotools as a selectable backend, for cross-checks)."""

from __future__ import annotations

import contextlib
import io
from dataclasses import dataclass
from typing import Literal

import numpy as np

from evdet.evaluation.matching import Frames
from evdet.evaluation.protocols import IOU_THRESHOLDS, MAX_DETECTIONS

Backend = Literal["faster", "pycocotools"]


@dataclass(frozen=True)
class CocoPrecision:
    """Accumulated COCO precision at ``maxDets = 100``.

    Attributes:
        precision: (T, R, K, A) interpolated precision; -1 where a category has no GT in that
            area range (COCO's marker for "undefined").
        class_ids: (K,) class id of each category slot ([-1] when class-agnostic).
        area_labels: A labels, "all" first.
        iou_thresholds: (T,) IoU thresholds.
        recall_thresholds: (R,) recall points (101).
    """

    precision: np.ndarray
    class_ids: tuple[int, ...]
    area_labels: tuple[str, ...]
    iou_thresholds: np.ndarray
    recall_thresholds: np.ndarray

    def average_precision(self, *, iou: float | None = None, area: str = "all",
                          class_slots: list[int] | None = None) -> float | None:
        """COCO summary AP (mean over valid entries) or None when no category has GT there.

        Args:
            iou: one IoU threshold (0.5, 0.75) or None for the mean over all thresholds.
            area: area label.
            class_slots: category slots (indices along K) to average over; None = all.
        """
        p = self.precision
        if iou is not None:
            p = p[np.flatnonzero(np.isclose(self.iou_thresholds, iou))]
        p = p[:, :, :, self.area_labels.index(area)]
        if class_slots is not None:
            p = p[:, :, class_slots]
        valid = p[p > -1]
        return float(valid.mean()) if valid.size else None


def _gt_dataset(frames: Frames, num_classes: int, height: int, width: int) -> dict:
    """COCO ground-truth dict; image id = image index + 1, category id = class id + 1."""
    g = frames.gt
    area = (g["w"] * g["h"]).astype(np.float64)   # float32 product, as the reference computes it
    anns = [
        {"area": a, "iscrowd": 0, "image_id": i + 1, "bbox": [x, y, w, h], "category_id": c + 1, "id": k + 1}
        for k, (a, i, x, y, w, h, c) in enumerate(zip(
            area.tolist(), frames.gt_image.tolist(), g["x"].astype(np.float64).tolist(),
            g["y"].astype(np.float64).tolist(), g["w"].astype(np.float64).tolist(),
            g["h"].astype(np.float64).tolist(), g["class_id"].tolist()))
    ]
    images = [{"id": i + 1, "height": int(height), "width": int(width)} for i in range(frames.num_images)]
    categories = [{"id": c + 1, "name": str(c), "supercategory": "none"} for c in range(num_classes)]
    return {"info": {}, "licenses": [], "images": images, "annotations": anns, "categories": categories}


def _dt_dataset(frames: Frames, gt_dataset: dict) -> dict:
    """COCO results dict, as ``loadRes`` would build it for boxes (area = w * h, ids from 1)."""
    d = frames.dt
    area = (d["w"] * d["h"]).astype(np.float64)   # float32 product, as loadRes computes it on the reference's boxes
    anns = [
        {"image_id": i + 1, "category_id": c + 1, "score": s, "bbox": [x, y, bw, bh], "area": a,
         "id": k + 1, "iscrowd": 0}
        for k, (i, c, s, x, y, bw, bh, a) in enumerate(zip(
            frames.dt_image.tolist(), d["class_id"].tolist(), d["class_confidence"].astype(np.float64).tolist(),
            d["x"].astype(np.float64).tolist(), d["y"].astype(np.float64).tolist(),
            d["w"].astype(np.float64).tolist(), d["h"].astype(np.float64).tolist(), area.tolist()))
    ]
    return {"info": {}, "images": gt_dataset["images"], "annotations": anns,
            "categories": gt_dataset["categories"]}


def coco_precision(
    frames: Frames,
    num_classes: int,
    height: int,
    width: int,
    area_ranges_px2: dict[str, tuple[float, float]],
    *,
    class_agnostic: bool = False,
    backend: Backend = "faster",
) -> CocoPrecision:
    """Run COCOeval (bbox, 10 IoU thresholds, 101 recall points, 100 detections per image).

    Args:
        frames: evaluation images (class ids already in [0, num_classes)).
        area_ranges_px2: label -> (min, max) area in evaluated pixels^2, "all" first.
        class_agnostic: COCO ``useCats = 0`` (labels ignored when matching).
    """
    gt_ds = _gt_dataset(frames, num_classes, height, width)
    ev = _cocoeval(gt_ds, _dt_dataset(frames, gt_ds), area_ranges_px2, backend)
    labels = list(area_ranges_px2)
    p = ev.params
    p.imgIds = list(range(1, frames.num_images + 1))
    p.catIds = list(range(1, num_classes + 1))
    p.useCats = 0 if class_agnostic else 1
    p.iouThrs = np.asarray(IOU_THRESHOLDS)
    p.maxDets = [1, 10, MAX_DETECTIONS]
    p.areaRng = [list(area_ranges_px2[k]) for k in labels]
    p.areaRngLbl = labels
    with contextlib.redirect_stdout(io.StringIO()):
        ev.evaluate()
        ev.accumulate()
    precision = np.asarray(ev.eval["precision"], dtype=np.float64)
    mind = list(p.maxDets).index(MAX_DETECTIONS)
    return CocoPrecision(
        precision=precision[..., mind],
        class_ids=(-1,) if class_agnostic else tuple(range(num_classes)),
        area_labels=tuple(labels),
        iou_thresholds=np.asarray(p.iouThrs, dtype=np.float64),
        recall_thresholds=np.asarray(p.recThrs, dtype=np.float64),
    )


def _cocoeval(gt_ds: dict, dt_ds: dict, area_ranges_px2: dict[str, tuple[float, float]], backend: Backend):
    """The backend's COCOeval object (bbox) over the two COCO documents, not yet configured or run."""
    if backend == "faster":
        from faster_coco_eval import COCO, COCOeval_faster

        quiet = lambda *a, **k: None  # noqa: E731
        coco_gt = COCO(gt_ds, print_function=quiet)
        coco_dt = COCO(dt_ds, print_function=quiet)
        ev = COCOeval_faster(coco_gt, coco_dt, "bbox", print_function=quiet,
                             ranges={k: list(v) for k, v in list(area_ranges_px2.items())[1:]})
    elif backend == "pycocotools":
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        with contextlib.redirect_stdout(io.StringIO()):
            coco_gt = COCO()
            coco_gt.dataset = gt_ds
            coco_gt.createIndex()
            coco_dt = COCO()
            coco_dt.dataset = dt_ds
            coco_dt.createIndex()
        ev = COCOeval(coco_gt, coco_dt, "bbox")
    else:
        raise ValueError(f"unknown COCO backend {backend!r}; known: faster, pycocotools")
    return ev
