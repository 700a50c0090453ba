"""YOLOX detection loss with SimOTA, optional size-aware weighting and focal modulation."""

from __future__ import annotations

from typing import Literal, Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from evdet.models.boxes import paired_iou_giou
from evdet.models.loss_strategies import SizeFeedback, hard_negative_weights
from evdet.models.simota import simota_assign
from evdet.models.yolox_head import HeadOutput


def size_aware_weight(area_px2: Tensor, alpha: float, tau_px2: float) -> Tensor:
    """Loss weight per positive box that favours small objects.

    Args:
        area_px2: (P,) box areas in input pixels squared.
    Returns:
        (P,) weights in [1, alpha]: clamp(alpha * exp(-area / tau), 1, alpha).
    """
    if alpha <= 1.0:
        return torch.ones_like(area_px2)
    return (alpha * torch.exp(-area_px2 / tau_px2)).clamp(1.0, alpha)


def focal_bce_with_logits(logits: Tensor, targets: Tensor, gamma: float, alpha: float) -> Tensor:
    """Element-wise sigmoid BCE, focal-modulated when gamma > 0.

    loss = BCE(logits, t) for gamma == 0 (alpha unused); otherwise
    loss = (alpha * t + (1 - alpha) * (1 - t)) * |t - sigmoid(logits)|^gamma * BCE(logits, t),
    which is the focal loss of Lin et al. for t in {0, 1} and its soft-target extension otherwise.
    """
    bce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    if gamma == 0:
        return bce
    p = torch.sigmoid(logits)
    alpha_t = alpha * targets + (1 - alpha) * (1 - targets)
    return alpha_t * (targets - p).abs().pow(gamma) * bce


class YoloxLoss(nn.Module):
    """IoU + objectness + class loss over SimOTA assignments, normalised by the number of foreground anchors.

    Per positive p with assigned GT box of area a_p (input px^2) and weight w_p = size_aware_weight(a_p):
        iou = iou_weight * sum_p w_p * L_box(p) / num_fg,    L_box = 1 - IoU^2 ("iou") or 1 - GIoU ("giou")
        obj = obj_weight * (sum_{all anchors} w_a * BCE_f(obj_a, fg_a)) / num_fg,  w_a = 1 for negatives
        cls = cls_weight * sum_p w_p * sum_k BCE_f(cls_pk, onehot_k * IoU_p) / num_fg
        loss = iou + obj + cls       (num_fg = max(total foreground anchors in the batch, 1))
    BCE_f is focal-modulated when focal_gamma > 0. With alpha = 1 and gamma = 0 this is RVT's loss
    (RVT also reports the weighted IoU term).
    Training strategies (``evdet.models.loss_strategies``, off by default): w_p is multiplied by the
    class-balanced weight of p's class (``set_class_counts``), replaced by the size-feedback bucket
    weight (``size_feedback``), and mined hard negatives near small boxes get w_a = hard_negative_weight.
    """

    def __init__(self, num_classes: int, *, iou_type: Literal["iou", "giou"] = "iou", iou_weight: float = 5.0,
                 obj_weight: float = 1.0, cls_weight: float = 1.0, size_aware_alpha: float = 1.0,
                 size_aware_tau_px2: float = 1024.0, focal_gamma: float = 0.0, focal_alpha: float = 0.25,
                 class_balance: Literal["off", "inverse", "effective"] = "off", class_balance_beta: float = 0.999,
                 hard_negative_ratio: float = 0.0, hard_negative_radius_px: float = 32.0,
                 hard_negative_small_area_px2: float = 1024.0, hard_negative_weight: float = 2.0,
                 size_feedback: Optional[SizeFeedback] = None) -> None:
        super().__init__()
        if class_balance not in ("off", "inverse", "effective"):
            raise ValueError(f"loss.class_balance.mode must be off, inverse or effective, got {class_balance!r}")
        if hard_negative_ratio < 0 or hard_negative_radius_px <= 0 or hard_negative_weight < 0:
            raise ValueError("loss.hard_negative: ratio >= 0, radius_px > 0 and weight >= 0 required, got "
                             f"{hard_negative_ratio}, {hard_negative_radius_px}, {hard_negative_weight}")
        if size_feedback is not None and size_aware_alpha > 1.0:
            raise ValueError("loss.size_feedback.enabled replaces loss.size_aware: set loss.size_aware.alpha=1")
        if iou_type not in ("iou", "giou"):
            raise ValueError(f"loss.iou_type must be 'iou' or 'giou', got {iou_type!r}")
        if size_aware_alpha < 1.0:
            raise ValueError(f"loss.size_aware.alpha must be >= 1, got {size_aware_alpha}")
        if size_aware_tau_px2 <= 0:
            raise ValueError(f"loss.size_aware.tau_px2 must be > 0, got {size_aware_tau_px2}")
        if focal_gamma < 0:
            raise ValueError(f"loss.focal.gamma must be >= 0, got {focal_gamma}")
        self.num_classes = num_classes
        self.iou_type = iou_type
        self.iou_weight = iou_weight
        self.obj_weight = obj_weight
        self.cls_weight = cls_weight
        self.size_aware_alpha = size_aware_alpha
        self.size_aware_tau_px2 = size_aware_tau_px2
        self.focal_gamma = focal_gamma
        self.focal_alpha = focal_alpha
        self.class_balance, self.class_balance_beta = class_balance, class_balance_beta
        if class_balance != "off":
            self.register_buffer("class_weights", torch.ones(num_classes))
        self.hard_negative = (hard_negative_ratio, hard_negative_radius_px, hard_negative_small_area_px2,
                              hard_negative_weight)
        self.size_feedback = size_feedback

    def set_class_counts(self, counts: Sequence[float]) -> None:
        """Class-balanced weights from the train split's boxes per class (no-op when class balance is off)."""
        if self.class_balance == "off":
            return
        from evdet.utils.class_balance import class_balanced_weights

        w = class_balanced_weights(counts, self.class_balance, self.class_balance_beta)
        if len(w) != self.num_classes:
            raise ValueError(f"class counts: expected {self.num_classes} classes, got {len(w)}")
        self.class_weights.copy_(torch.as_tensor(w, dtype=self.class_weights.dtype))

    def _positive_weight(self, gt: Tensor) -> Tensor:
        """(P,) weight of each positive from its assigned GT rows (class_id, cx, cy, w, h)."""
        area = gt[:, 3] * gt[:, 4]
        if self.size_feedback is not None:
            weight = self.size_feedback.weight_of(area)
        else:
            weight = size_aware_weight(area, self.size_aware_alpha, self.size_aware_tau_px2)
        if self.class_balance != "off":
            weight = weight * self.class_weights.to(weight)[gt[:, 0].long()]
        return weight

    def _check_targets(self, head: HeadOutput, targets: Sequence[Tensor]) -> None:
        n = head.boxes.shape[0]
        if len(targets) != n:
            raise ValueError(f"targets: expected {n} tensors (one per selected item), got {len(targets)}")
        for i, t in enumerate(targets):
            if t.ndim != 2 or t.shape[1] != 5:
                raise ValueError(f"targets[{i}]: expected shape (n, 5) (class_id, cx, cy, w, h), got {tuple(t.shape)}")
            if t.numel():
                cls = t[:, 0]
                if bool(((cls < 0) | (cls >= self.num_classes) | (cls != cls.round())).any()):
                    raise ValueError(f"targets[{i}]: class_id outside 0..{self.num_classes - 1}")
                if bool((t[:, 3:5] <= 0).any()):
                    raise ValueError(f"targets[{i}]: box width and height must be > 0")

    def forward(self, head: HeadOutput, targets: Sequence[Tensor]) -> dict[str, Tensor]:
        """Losses for N items: head from the detector, targets list of N (n_i, 5) tensors in input pixels."""
        self._check_targets(head, targets)
        device, dtype = head.boxes.device, head.boxes.dtype
        obj_targets = torch.zeros_like(head.obj_logits)
        obj_weights = torch.ones_like(head.obj_logits)
        fg_boxes, fg_targets, fg_cls_logits, fg_cls_targets, fg_weights = [], [], [], [], []
        fg_masks: list[tuple[int, Tensor, Tensor]] = []   # (item, fg mask, GT boxes) for mining / feedback
        for i, target in enumerate(targets):
            target = target.to(device=device, dtype=dtype)
            assignment = simota_assign(head.boxes[i].detach(), head.obj_logits[i].detach(),
                                       head.cls_logits[i].detach(), head.anchor_centers, head.strides,
                                       target[:, 1:5], target[:, 0].long())
            if assignment.num_fg == 0:
                continue
            gt = target[assignment.matched_gt]
            weight = self._positive_weight(gt)
            fg_masks.append((i, assignment.fg_mask, target[:, 1:5]))
            obj_targets[i, assignment.fg_mask] = 1.0
            obj_weights[i, assignment.fg_mask] = weight
            fg_boxes.append(head.boxes[i, assignment.fg_mask])
            fg_targets.append(gt[:, 1:5])
            fg_cls_logits.append(head.cls_logits[i, assignment.fg_mask])
            onehot = F.one_hot(gt[:, 0].long(), self.num_classes).to(dtype)
            fg_cls_targets.append(onehot * assignment.matched_iou[:, None])
            fg_weights.append(weight)

        num_fg = sum(b.shape[0] for b in fg_boxes)
        norm = float(max(num_fg, 1))
        obj_elem = focal_bce_with_logits(head.obj_logits, obj_targets, self.focal_gamma, self.focal_alpha)
        if self.hard_negative[0] > 0:
            ratio, radius, small_area, hn_weight = self.hard_negative
            for i, fg_mask, gt_boxes in fg_masks:
                hn = hard_negative_weights(obj_elem[i].detach(), fg_mask, head.anchor_centers, gt_boxes, ratio=ratio,
                                           radius_px=radius, small_area_px2=small_area, weight=hn_weight)
                obj_weights[i] = torch.where(fg_mask, obj_weights[i], hn)
        loss_obj = (obj_elem * obj_weights).sum() / norm
        if num_fg:
            weights = torch.cat(fg_weights)
            iou, giou = paired_iou_giou(torch.cat(fg_boxes), torch.cat(fg_targets))
            box_elem = 1 - iou ** 2 if self.iou_type == "iou" else 1 - giou
            loss_iou = (box_elem * weights).sum() / norm
            cls_elem = focal_bce_with_logits(torch.cat(fg_cls_logits), torch.cat(fg_cls_targets),
                                             self.focal_gamma, self.focal_alpha).sum(1)
            loss_cls = (cls_elem * weights).sum() / norm
            if self.size_feedback is not None and self.training:
                obj_pos = torch.cat([obj_elem[i, m] for i, m, _ in fg_masks])
                per_pos = self.iou_weight * box_elem + self.cls_weight * cls_elem + self.obj_weight * obj_pos
                fg_gt = torch.cat(fg_targets)
                self.size_feedback.update(fg_gt[:, 2] * fg_gt[:, 3], per_pos.detach())
        else:
            # Keep the graph connected so that backward works on batches without objects.
            loss_iou = head.boxes.sum() * 0.0
            loss_cls = head.cls_logits.sum() * 0.0
        iou_term = self.iou_weight * loss_iou
        obj_term = self.obj_weight * loss_obj
        cls_term = self.cls_weight * loss_cls
        return {"loss": iou_term + obj_term + cls_term, "iou": iou_term, "obj": obj_term, "cls": cls_term,
                "num_fg": torch.tensor(float(num_fg), device=device)}
