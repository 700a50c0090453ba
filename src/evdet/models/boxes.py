"""Box operations in pure torch: format conversion, IoU / GIoU, greedy NMS (class-aware by offsets)."""

from __future__ import annotations

import torch
from torch import Tensor

_EPS = 1e-16


def cxcywh_to_xyxy(boxes: Tensor) -> Tensor:
    """Convert (..., 4) centre/size boxes (cx, cy, w, h) to corners (x1, y1, x2, y2)."""
    cxcy, wh = boxes[..., :2], boxes[..., 2:4]
    return torch.cat([cxcy - wh / 2, cxcy + wh / 2], dim=-1)


def xyxy_to_cxcywh(boxes: Tensor) -> Tensor:
    """Convert (..., 4) corner boxes (x1, y1, x2, y2) to centre/size (cx, cy, w, h)."""
    x1y1, x2y2 = boxes[..., :2], boxes[..., 2:4]
    return torch.cat([(x1y1 + x2y2) / 2, x2y2 - x1y1], dim=-1)


def box_area(boxes: Tensor) -> Tensor:
    """Area of (..., 4) xyxy boxes; inverted boxes have area 0."""
    wh = (boxes[..., 2:4] - boxes[..., :2]).clamp(min=0)
    return wh[..., 0] * wh[..., 1]


def box_iou(boxes_a: Tensor, boxes_b: Tensor) -> Tensor:
    """Pairwise IoU of xyxy boxes.

    Args:
        boxes_a: (N, 4) x1, y1, x2, y2.
        boxes_b: (M, 4) x1, y1, x2, y2.
    Returns:
        (N, M) IoU in [0, 1]; 0 where the union is empty.
    """
    area_a = box_area(boxes_a)
    area_b = box_area(boxes_b)
    top_left = torch.maximum(boxes_a[:, None, :2], boxes_b[None, :, :2])
    bottom_right = torch.minimum(boxes_a[:, None, 2:4], boxes_b[None, :, 2:4])
    wh = (bottom_right - top_left).clamp(min=0)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    return inter / union.clamp(min=_EPS)


def paired_iou_giou(pred_cxcywh: Tensor, target_cxcywh: Tensor) -> tuple[Tensor, Tensor]:
    """Element-wise IoU and generalised IoU of matched box pairs (YOLOX loss convention).

    Args:
        pred_cxcywh: (P, 4) cx, cy, w, h.
        target_cxcywh: (P, 4) cx, cy, w, h.
    Returns:
        iou (P,) in [0, 1] and giou (P,) in [-1, 1].
    """
    pred = cxcywh_to_xyxy(pred_cxcywh)
    target = cxcywh_to_xyxy(target_cxcywh)
    top_left = torch.maximum(pred[:, :2], target[:, :2])
    bottom_right = torch.minimum(pred[:, 2:], target[:, 2:])
    wh = (bottom_right - top_left).clamp(min=0)
    inter = wh[:, 0] * wh[:, 1]
    area_p = pred_cxcywh[:, 2] * pred_cxcywh[:, 3]
    area_t = target_cxcywh[:, 2] * target_cxcywh[:, 3]
    union = area_p + area_t - inter
    iou = inter / (union + _EPS)
    hull_wh = torch.maximum(pred[:, 2:], target[:, 2:]) - torch.minimum(pred[:, :2], target[:, :2])
    hull = hull_wh[:, 0] * hull_wh[:, 1]
    giou = iou - (hull - union) / hull.clamp(min=_EPS)
    return iou, giou.clamp(-1.0, 1.0)


def nms(boxes: Tensor, scores: Tensor, iou_threshold: float) -> Tensor:
    """Greedy non-maximum suppression.

    A box is dropped when its IoU with a kept, higher-scoring box is strictly greater than
    `iou_threshold` (the torchvision convention). Ties in score keep the lower index first.

    Args:
        boxes: (N, 4) x1, y1, x2, y2.
        scores: (N,) scores.
        iou_threshold: IoU above which the lower-scoring box is suppressed.
    Returns:
        (K,) int64 indices of kept boxes, by decreasing score.
    """
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    remaining = torch.sort(scores, descending=True, stable=True).indices
    keep = []
    # One step per kept box, each comparing it with the boxes still alive: O(N) memory.
    while remaining.numel() > 0:
        best = remaining[0]
        keep.append(best)
        rest = remaining[1:]
        if rest.numel() == 0:
            break
        ious = box_iou(boxes[best][None], boxes[rest])[0]
        remaining = rest[ious <= iou_threshold]
    return torch.stack(keep)


def batched_nms(boxes: Tensor, scores: Tensor, class_ids: Tensor, iou_threshold: float) -> Tensor:
    """Class-aware NMS: boxes of different classes never suppress each other.

    Each class is shifted by its own offset larger than every coordinate, so that one
    NMS pass over all boxes gives the per-class result.

    Args:
        boxes: (N, 4) x1, y1, x2, y2.
        scores: (N,) scores.
        class_ids: (N,) integer class of each box.
        iou_threshold: IoU above which the lower-scoring box of the same class is suppressed.
    Returns:
        (K,) int64 indices of kept boxes, by decreasing score.
    """
    if boxes.numel() == 0:
        return torch.zeros(0, dtype=torch.long, device=boxes.device)
    span = boxes.max() - boxes.min() + 1
    offsets = class_ids.to(boxes.dtype) * span
    return nms(boxes + offsets[:, None], scores, iou_threshold)
