"""SimOTA label assignment (YOLOX, as used by RVT) for one image."""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor

from evdet.models.boxes import box_iou, cxcywh_to_xyxy

OUTSIDE_COST = 1e6
CENTER_RADIUS = 1.5   # centre prior half-size in strides (YOLOX / RVT)


@dataclass
class Assignment:
    """Result of SimOTA for one image with A anchors and G ground-truth boxes.

    Attributes:
        fg_mask: (A,) bool, anchors assigned to some ground truth.
        matched_gt: (F,) int64, ground-truth index of each foreground anchor (in anchor order).
        matched_iou: (F,) IoU between the anchor's predicted box and its ground truth.
    """

    fg_mask: Tensor
    matched_gt: Tensor
    matched_iou: Tensor

    @property
    def num_fg(self) -> int:
        return int(self.matched_gt.numel())


def in_center_region(anchor_px, center_px, stride, radius: float = CENTER_RADIUS):
    """SimOTA's centre prior on one axis: the anchor coordinate lies strictly within radius * stride
    of the box centre (no condition on the box extent).

    Elementwise with broadcasting, on torch tensors or NumPy arrays alike (the data analysis of
    ``evdet.evaluation.class_analysis`` counts candidates with it).
    """
    return abs(anchor_px - center_px) < radius * stride


def center_prior(anchor_centers: Tensor, strides: Tensor, gt_boxes: Tensor, radius: float = CENTER_RADIUS) -> Tensor:
    """Which anchors lie strictly inside the square of half-size radius * stride around each GT centre.

    Args:
        anchor_centers: (A, 2) x, y in input pixels.
        strides: (A,) stride per anchor.
        gt_boxes: (G, 4) cx, cy, w, h.
    Returns:
        (G, A) bool.
    """
    in_x = in_center_region(anchor_centers[None, :, 0], gt_boxes[:, None, 0], strides[None, :], radius)
    in_y = in_center_region(anchor_centers[None, :, 1], gt_boxes[:, None, 1], strides[None, :], radius)
    return in_x & in_y


@torch.no_grad()
def simota_assign(pred_boxes: Tensor, obj_logits: Tensor, cls_logits: Tensor, anchor_centers: Tensor,
                  strides: Tensor, gt_boxes: Tensor, gt_classes: Tensor, *, center_radius: float = CENTER_RADIUS,
                  iou_cost_weight: float = 3.0, candidate_topk: int = 10) -> Assignment:
    """Assign anchors to ground-truth boxes by SimOTA.

    Candidates are anchors inside the centre region (radius * stride) of at least one GT.
    cost[g, a] = BCE(sqrt(sigmoid(cls) * sigmoid(obj)), onehot(g)) summed over classes
    + iou_cost_weight * -log(IoU + 1e-8) + 1e6 if a is outside g's centre region.
    Each GT takes its k lowest-cost candidates, k = max(1, int(sum of its top-10 IoUs));
    an anchor taken by several GTs keeps the one with the lowest cost.

    Args:
        pred_boxes: (A, 4) predicted cx, cy, w, h.
        obj_logits: (A,) objectness logits.
        cls_logits: (A, K) class logits.
        anchor_centers: (A, 2), strides: (A,) as in HeadOutput.
        gt_boxes: (G, 4) cx, cy, w, h; gt_classes: (G,) int class ids.
    """
    num_anchors = pred_boxes.shape[0]
    device = pred_boxes.device
    empty = Assignment(torch.zeros(num_anchors, dtype=torch.bool, device=device),
                       torch.zeros(0, dtype=torch.long, device=device),
                       torch.zeros(0, dtype=pred_boxes.dtype, device=device))
    num_gt = gt_boxes.shape[0]
    if num_gt == 0:
        return empty
    in_center = center_prior(anchor_centers, strides, gt_boxes, center_radius)  # (G, A)
    candidates = in_center.any(dim=0)
    if not bool(candidates.any()):
        return empty
    geometry = in_center[:, candidates]
    ious = box_iou(cxcywh_to_xyxy(gt_boxes.float()), cxcywh_to_xyxy(pred_boxes[candidates].float()))  # (G, C)
    num_classes = cls_logits.shape[1]
    scores = (cls_logits[candidates].float().sigmoid() * obj_logits[candidates, None].float().sigmoid()).sqrt()
    onehot = F.one_hot(gt_classes.long(), num_classes).float()
    cls_cost = F.binary_cross_entropy(scores[None].expand(num_gt, -1, -1),
                                      onehot[:, None].expand(-1, scores.shape[0], -1),
                                      reduction="none").sum(-1)
    cost = cls_cost + iou_cost_weight * -torch.log(ious + 1e-8) + OUTSIDE_COST * (~geometry).float()

    num_cand = ious.shape[1]
    topk_ious = torch.topk(ious, min(candidate_topk, num_cand), dim=1).values
    dynamic_k = topk_ious.sum(1).int().clamp(min=1)
    matching = torch.zeros_like(cost, dtype=torch.bool)
    for g in range(num_gt):
        idx = torch.topk(cost[g], int(dynamic_k[g]), largest=False).indices
        matching[g, idx] = True
    multiple = matching.sum(0) > 1
    if bool(multiple.any()):
        best = cost[:, multiple].argmin(0)
        matching[:, multiple] = False
        matching[best, multiple.nonzero().squeeze(1)] = True
    fg_cand = matching.any(0)
    matched_gt = matching[:, fg_cand].float().argmax(0)
    matched_iou = ious[matched_gt, fg_cand.nonzero().squeeze(1)]
    fg_mask = torch.zeros(num_anchors, dtype=torch.bool, device=device)
    fg_mask[candidates.nonzero().squeeze(1)[fg_cand]] = True
    return Assignment(fg_mask, matched_gt, matched_iou.to(pred_boxes.dtype))
