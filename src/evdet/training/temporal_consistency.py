"""Temporal consistency loss: predictions of one ground-truth track pulled together over consecutive labelled steps.

``training.temporal_consistency`` (weight 0 = off). For each batch item, its labelled steps t1 < t2 < ...
form consecutive pairs (t_k, t_{k+1}) inside the chunk; a GT track id present at both steps of a pair is
matched at each step to one prediction: the anchor whose predicted box has the highest IoU with that GT
among the anchors of its SimOTA centre region (all anchors when none lies there). For the matched pair
(box b1, b2; GT g1, g2; class probabilities q1, q2):

    box term = sum_j smoothL1(r1_j - r2_j),  r = ((cx - gx) / gw, (cy - gy) / gh, log(w / gw), log(h / gh))
    cls term = sum_k (q1_k - q2_k)^2
    loss     = weight * mean over matched pairs of (box_weight * box term + cls_weight * cls term)

The box term compares each prediction's error relative to its own step's GT box, so the object's motion
between the steps is not penalised; identical predictions of an unmoved object give zero. Both steps
receive gradients. Batches without any matched pair give an exact zero that keeps the graph connected.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from evdet.models.boxes import box_iou, cxcywh_to_xyxy
from evdet.models.simota import center_prior
from evdet.models.yolox_head import HeadOutput


def match_gt_anchors(boxes: Tensor, anchor_centers: Tensor, strides: Tensor, gt: Tensor) -> Tensor:
    """(G,) anchor index of each GT: best-IoU predicted box inside its centre region.

    Args:
        boxes: (A, 4) predicted cx, cy, w, h of one item; gt: (G, 4) cx, cy, w, h.
    """
    iou = box_iou(cxcywh_to_xyxy(gt), cxcywh_to_xyxy(boxes.detach()))                 # (G, A)
    inside = center_prior(anchor_centers, strides, gt)
    inside = torch.where(inside.any(1, keepdim=True), inside, torch.ones_like(inside))
    return torch.where(inside, iou, torch.full_like(iou, -1.0)).argmax(1)


def _residual(box: Tensor, gt: Tensor) -> Tensor:
    return torch.stack([(box[:, 0] - gt[:, 0]) / gt[:, 2], (box[:, 1] - gt[:, 1]) / gt[:, 3],
                        torch.log(box[:, 2].clamp(min=1e-6) / gt[:, 2]), torch.log(box[:, 3].clamp(min=1e-6) / gt[:, 3])], 1)


def temporal_consistency_loss(head: HeadOutput, rows: Sequence[tuple[int, int]], targets: Sequence[Tensor],
                              track_ids: Sequence[Tensor], *, box_weight: float = 1.0,
                              cls_weight: float = 1.0) -> tuple[Tensor, int]:
    """Loss over the consecutive labelled pairs of the selected items (see module docstring), without ``weight``.

    Args:
        head: outputs of N selected items, row i = step ``rows[i]`` = (b, t).
        targets: N tensors (n_i, 5) class_id, cx, cy, w, h; track_ids: N tensors (n_i,).
    Returns:
        (loss, number of matched pairs).
    """
    by_item: dict[int, list[tuple[int, int]]] = {}
    for i, (b, t) in enumerate(rows):
        by_item.setdefault(b, []).append((t, i))
    box_terms, cls_terms = [], []
    for steps in by_item.values():
        steps.sort()
        for (_, i1), (_, i2) in zip(steps, steps[1:]):
            pair = _matched_pair(head, i1, i2, targets, track_ids)
            if pair is None:
                continue
            (b1, g1, q1), (b2, g2, q2) = pair
            box_terms.append(F.smooth_l1_loss(_residual(b1, g1), _residual(b2, g2), reduction="none").sum(1))
            cls_terms.append(((q1 - q2) ** 2).sum(1))
    if not box_terms:
        return head.boxes.sum() * 0.0 + head.cls_logits.sum() * 0.0, 0
    box, cls = torch.cat(box_terms), torch.cat(cls_terms)
    return (box_weight * box + cls_weight * cls).mean(), int(box.numel())


def _matched_pair(head: HeadOutput, i1: int, i2: int, targets, track_ids):
    """Per step: (predicted boxes, GT boxes, class probabilities) of the tracks present at both steps."""
    ids1, ids2 = track_ids[i1].to(head.boxes.device), track_ids[i2].to(head.boxes.device)
    common = ids1[torch.isin(ids1, ids2)].unique()
    if common.numel() == 0:
        return None
    out = []
    for i, ids in ((i1, ids1), (i2, ids2)):
        pos = torch.stack([(ids == c).nonzero()[0, 0] for c in common])
        gt = targets[i].to(head.boxes)[pos, 1:5]
        anchors = match_gt_anchors(head.boxes[i], head.anchor_centers, head.strides, gt)
        out.append((head.boxes[i, anchors], gt, torch.sigmoid(head.cls_logits[i, anchors])))
    return out
