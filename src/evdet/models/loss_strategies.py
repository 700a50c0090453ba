"""Loss-side training strategies of ``YoloxLoss`` (all off by default; ``LossConfig``).

- Class-balanced weighting (``loss.class_balance``): positive p of class c gets weight ``omega_c``
  (``evdet.utils.class_balance``: inverse frequency or effective number of the train split's box counts,
  mean 1 over present classes) on its box, objectness and class terms.
- Hard negative mining near small objects (``loss.hard_negative``): per image, the negatives (anchors not
  assigned by SimOTA) whose centre lies within ``radius_px`` of the centre of a small GT box
  (w * h < ``small_area_px2``) are ranked by their objectness loss; the ``ceil(ratio * small boxes)``
  highest get objectness weight ``weight`` (all other negatives 1).
- Size-aware loss v2 with feedback (``loss.size_feedback``): positives fall in buckets of sqrt(w * h)
  (edges ``edges_px``, input pixels); an EMA (``momentum``) keeps each bucket's summed per-positive loss
  S_b and positive count n_b; bucket weight ``w_b = clamp(((S_b / S) / (n_b / n)) ** gamma, min, max)``,
  i.e. a bucket whose boxes carry more than their share of the loss is weighted up. Updated after every
  training forward from the detached, unweighted losses; the weights of a step are those of the steps
  before it. Replaces v1 (``loss.size_aware``), which must then stay off.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
from torch import Tensor, nn


def hard_negative_weights(obj_loss: Tensor, fg_mask: Tensor, anchor_centers: Tensor, gt_boxes: Tensor, *,
                          ratio: float, radius_px: float, small_area_px2: float, weight: float) -> Tensor:
    """Objectness weights of one image's anchors with the mined hard negatives up-weighted.

    Args:
        obj_loss: (A,) per-anchor objectness loss (detached).
        fg_mask: (A,) bool, SimOTA positives.
        anchor_centers: (A, 2) x, y; gt_boxes: (G, 4) cx, cy, w, h, input pixels.
    Returns:
        (A,) weights: ``weight`` on the mined negatives, 1 elsewhere.
    """
    out = torch.ones_like(obj_loss)
    if ratio <= 0 or gt_boxes.numel() == 0:
        return out
    small = gt_boxes[(gt_boxes[:, 2] * gt_boxes[:, 3]) < small_area_px2]
    if small.numel() == 0:
        return out
    dist = torch.cdist(anchor_centers.to(small.dtype), small[:, :2])          # (A, S)
    near = (dist <= radius_px).any(1) & ~fg_mask
    k = min(int(math.ceil(ratio * small.shape[0])), int(near.sum()))
    if k == 0:
        return out
    scores = torch.where(near, obj_loss, torch.full_like(obj_loss, -math.inf))
    out[torch.topk(scores, k).indices] = weight
    return out


def size_buckets(area_px2: Tensor, edges_px: Sequence[float]) -> Tensor:
    """(P,) bucket index of each area: number of edges e with sqrt(area) >= e (0 = smallest bucket)."""
    edges = torch.as_tensor(list(edges_px), dtype=area_px2.dtype, device=area_px2.device)
    return torch.bucketize(area_px2.clamp(min=0).sqrt(), edges, right=True)


class SizeFeedback(nn.Module):
    """Per-size-bucket weights that follow the running loss share (see module docstring).

    Buffers (kept in checkpoints): ``loss_sum`` (B,), ``count`` (B,), ``weights`` (B,), ``steps`` ().
    """

    def __init__(self, edges_px: Sequence[float], *, momentum: float = 0.98, gamma: float = 1.0,
                 min_weight: float = 1.0, max_weight: float = 2.5) -> None:
        super().__init__()
        edges = [float(e) for e in edges_px]
        if not edges or edges != sorted(edges) or edges[0] <= 0:
            raise ValueError(f"loss.size_feedback.edges_px: expected increasing positive edges, got {edges}")
        if not 0.0 <= momentum < 1.0:
            raise ValueError(f"loss.size_feedback.momentum: must lie in [0, 1), got {momentum}")
        if not 0 < min_weight <= max_weight:
            raise ValueError(f"loss.size_feedback: need 0 < min_weight <= max_weight, got {min_weight}, {max_weight}")
        self.edges_px, self.momentum, self.gamma = tuple(edges), float(momentum), float(gamma)
        self.min_weight, self.max_weight = float(min_weight), float(max_weight)
        n = len(edges) + 1
        self.register_buffer("loss_sum", torch.zeros(n))
        self.register_buffer("count", torch.zeros(n))
        self.register_buffer("weights", torch.ones(n))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def weight_of(self, area_px2: Tensor) -> Tensor:
        """(P,) current weight of each positive's bucket."""
        return self.weights.to(area_px2.device)[size_buckets(area_px2, self.edges_px)].to(area_px2.dtype)

    @torch.no_grad()
    def update(self, area_px2: Tensor, loss_per_positive: Tensor) -> None:
        """Fold one step's positives (areas, unweighted losses) into the EMA and recompute the weights."""
        if area_px2.numel() == 0:
            return
        b = size_buckets(area_px2, self.edges_px)
        n = len(self.edges_px) + 1
        step_sum = torch.zeros(n, device=b.device).index_add_(0, b, loss_per_positive.float())
        step_count = torch.zeros(n, device=b.device).index_add_(0, b, torch.ones_like(loss_per_positive).float())
        m = self.momentum if int(self.steps) > 0 else 0.0
        self.loss_sum.mul_(m).add_((1 - m) * step_sum.to(self.loss_sum.device))
        self.count.mul_(m).add_((1 - m) * step_count.to(self.count.device))
        self.steps += 1
        seen = self.count > 0
        total_loss, total_count = self.loss_sum[seen].sum(), self.count[seen].sum()
        if total_loss <= 0:
            return
        ratio = (self.loss_sum / total_loss) / (self.count / total_count).clamp(min=1e-12)
        new = ratio.clamp(min=1e-12).pow(self.gamma).clamp(self.min_weight, self.max_weight)
        self.weights.copy_(torch.where(seen, new, self.weights))
