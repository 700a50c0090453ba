"""Detector = recurrent backbone + PAFPN + YOLOX head, with explicit padding and post-processing.

The three steps stay separate: `forward` returns raw head outputs and recurrent states (never
losses), the criterion (`evdet.models.losses.YoloxLoss`) computes losses, and `postprocess`
turns head outputs into detections. The input is used as given (RVT feeds the uint8 histogram
cast to float, no normalisation); the only transform is zero padding at the bottom/right to a
multiple of `pad_multiple`. Post-processing is RVT's by default (no clipping to the frame, no cap on
the number of detections); clipping and a cap are options (evdet's former ``clip_cap``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from evdet.models.backbone import RecurrentBackbone
from evdet.models.boxes import batched_nms, cxcywh_to_xyxy
from evdet.models.convlstm import LstmState
from evdet.models.modules.sites import LevelModules
from evdet.models.pafpn import PAFPN
from evdet.models.yolox_head import HeadOutput, YoloxHead


@dataclass
class DetectorOutput:
    """head: outputs for the selected items; states: per stage (h, c) after the last step, all B items
    ((h, c, memory, valid) for stages with temporal attention)."""

    head: HeadOutput
    states: list[LstmState]


def padded_size(size: int, multiple: int) -> int:
    """Smallest multiple of `multiple` that is >= size."""
    return -(-int(size) // multiple) * multiple


class Detector(nn.Module):
    """RVT-style recurrent detector.

    Args:
        backbone: RecurrentBackbone (4 stages).
        neck: PAFPN over the stages in `in_stages`.
        head: YoloxHead over the neck outputs.
        in_stages: 1-based backbone stages fed to the neck, e.g. (2, 3, 4).
        pad_multiple: input height/width are zero-padded at the bottom/right to a multiple of this.
        level_modules: architecture modules on the neck outputs (``evdet.models.modules``), or None.
        fusion: cross-view fusion after the neck (``evdet.models.fusion.CrossViewFusion``), or None
            (single view: items are independent).
    """

    def __init__(self, backbone: RecurrentBackbone, neck: PAFPN, head: YoloxHead, in_stages: Sequence[int],
                 pad_multiple: int, level_modules: Optional[LevelModules] = None,
                 fusion: Optional[nn.Module] = None, channels_last: bool = False) -> None:
        super().__init__()
        self.fusion = fusion
        self.channels_last = channels_last   # input steps in NHWC memory, as the weights (models.build)
        self.backbone = backbone
        self.neck = neck
        self.head = head
        self.level_modules = level_modules
        self.in_stages = tuple(int(s) for s in in_stages)
        self.pad_multiple = int(pad_multiple)

    @property
    def strides(self) -> tuple[int, ...]:
        """Stride in input pixels of each head level."""
        return tuple(self.backbone.strides[s - 1] for s in self.in_stages)

    def pad_input(self, x: Tensor) -> Tensor:
        """Zero-pad (..., H, W) at the bottom/right to multiples of `pad_multiple`."""
        h, w = x.shape[-2:]
        pad_h = padded_size(h, self.pad_multiple) - h
        pad_w = padded_size(w, self.pad_multiple) - w
        if pad_h == 0 and pad_w == 0:
            return x
        return F.pad(x, (0, pad_w, 0, pad_h))

    def check_input_fits(self, input_hw: tuple[int, int]) -> None:
        """Refuse an input whose padded size does not fit the attention partitions the model was built for.

        The partitions are fixed at build time from the build input size, as in RVT (``config/modifier.py``:
        partition = padded size / (32 * partition_split)); another size runs only when every stage map
        is a whole number of partitions (``evdet.training.strategies.fit_canvas`` pads to such a size).

        Raises:
            ValueError: one line naming the input, its padded size and the partitions.
        """
        part = tuple(int(p) for p in self.backbone.partition_size)
        stride = max(self.backbone.strides)
        padded = (padded_size(input_hw[0], self.pad_multiple), padded_size(input_hw[1], self.pad_multiple))
        if padded[0] % (stride * part[0]) or padded[1] % (stride * part[1]):
            raise ValueError(f"input {input_hw[1]}x{input_hw[0]} (padded {padded[1]}x{padded[0]}) does not fit the "
                             f"attention partitions {part[1]}x{part[0]} this model was built for: its padded size "
                             f"must be a multiple of {stride * part[1]}x{stride * part[0]} (rebuild the model for "
                             "this input size)")

    def forward(self, x: Tensor, states: Optional[Sequence[LstmState]] = None,
                select: Optional[Tensor] = None, view_pose: Optional[Tensor] = None) -> DetectorOutput:
        """Run one or T recurrent steps.

        Args:
            x: (B, C, H, W) one step, or (B, T, C, H, W) T steps with the state carried between steps;
                integer (uint8 histogram) input is cast to float32, values unchanged.
            states: None (zeros) or a list per stage of (h, c), each (B, C_i, H_i, W_i).
            select: bool (B, T) (or (B,) for 4-D input): head outputs only for those items, flattened
                row-major (b major, t minor). None: every step of every sample.
            view_pose: (B, POSE_DIM) camera pose of each item for the fusion's pose embedding, or None.
        Returns:
            DetectorOutput with head over the selected items and the states after the last step.
        """
        if not x.is_floating_point():
            x = x.float()  # RVT's only input transform: the uint8 histogram cast to float
        if x.ndim == 4:
            x = x[:, None]
            if select is not None:
                select = select.reshape(-1, 1)
        elif x.ndim != 5:
            raise ValueError(f"input: expected (B, C, H, W) or (B, T, C, H, W), got shape {tuple(x.shape)}")
        batch, steps = x.shape[:2]
        input_hw = (int(x.shape[-2]), int(x.shape[-1]))
        self.check_input_fits(input_hw)
        if select is None:
            select = torch.ones(batch, steps, dtype=torch.bool, device=x.device)
        if tuple(select.shape) != (batch, steps):
            raise ValueError(f"select: expected shape {(batch, steps)}, got {tuple(select.shape)}")
        select = select.to(device=x.device, dtype=torch.bool)
        select_cpu = select.cpu()

        picked: list[list[Tensor]] = []  # per step, the selected items' features per head level
        keys: list[Tensor] = []
        frames = self.level_modules is not None and self.level_modules.needs_frames
        for t in range(steps):
            x_t = self.pad_input(x[:, t])
            if self.channels_last:
                x_t = x_t.contiguous(memory_format=torch.channels_last)
            features, states = self.backbone(x_t, states)
            rows = select_cpu[:, t].nonzero().squeeze(1)
            if rows.numel() == 0:
                continue
            rows_dev = rows.to(x.device)
            picked.append([features[s - 1].index_select(0, rows_dev) for s in self.in_stages]
                          + ([x_t.index_select(0, rows_dev)] if frames else []))
            keys.append(rows * steps + t)
        if not picked:
            raise ValueError("select: no item selected; at least one (b, t) must be True")
        levels = [torch.cat([p[k] for p in picked], 0) for k in range(len(picked[0]))]
        item_keys = torch.cat(keys)
        order = torch.argsort(item_keys)
        if not torch.equal(order, torch.arange(order.numel())):
            order_dev = order.to(x.device)
            levels = [lvl.index_select(0, order_dev) for lvl in levels]
        n = len(self.in_stages)
        items = None
        if self.fusion is not None:
            item_b = item_keys[order] // steps
            items = (item_b, item_keys[order] % steps, None if view_pose is None else view_pose[item_b])
        head = self.head_outputs(levels[:n], levels[n] if frames else None, input_hw, items)
        return DetectorOutput(head=head, states=list(states))

    def head_outputs(self, features: Sequence[Tensor], frames: Optional[Tensor], input_hw: tuple[int, int],
                     items: Optional[tuple[Tensor, Tensor, Optional[Tensor]]] = None) -> HeadOutput:
        """Neck, cross-view fusion, level modules and head over the backbone features of N items.

        Args:
            features: per FPN level (N, C_l, H_l, W_l), the stages in ``in_stages``.
            frames: (N, C_in, H, W) padded input of the same items (read by the density gate), or None.
            items: for the fusion, (batch index (N,), time step (N,), pose (N, POSE_DIM) or None).
        """
        levels = self.neck(features)
        if self.fusion is not None and items is not None:
            levels = self.fusion(levels, *items)
        if self.level_modules is not None:
            levels = self.level_modules(levels, frames)
        return self.head(levels, input_hw)

    @torch.no_grad()
    def postprocess(self, head: HeadOutput, conf_threshold: float = 0.1, nms_iou: float = 0.45,
                    max_detections: Optional[int] = None, clip: bool = False) -> list[Tensor]:
        """Decode head outputs into detections per item (see :func:`postprocess`)."""
        return postprocess(head, conf_threshold, nms_iou, max_detections, clip)


def postprocess(head: HeadOutput, conf_threshold: float = 0.1, nms_iou: float = 0.45,
                max_detections: Optional[int] = None, clip: bool = False) -> list[Tensor]:
    """Decode head outputs into detections per item.

    RVT's ``postprocess`` (``models/detection/yolox/utils/boxes.py``): score = sigmoid(obj) *
    sigmoid(cls) of the best class; keep score >= conf_threshold; class-aware NMS at nms_iou. RVT
    keeps every survivor and does not clip (the defaults here); ``max_detections`` keeps only the
    highest scores and ``clip`` clips boxes to the unpadded input (evdet's ``clip_cap``). The best
    class's probability alone (YOLOX's ``class_conf``) is kept beside the score: RVT's evaluation
    ranks detections by it.

    Args:
        max_detections: None = no cap (RVT), else at most this many per item, by decreasing score.
        clip: clip boxes to [0, W] x [0, H] of the unpadded input (RVT: False).
    Returns:
        list (one per item) of (D, 7) float tensors: x1, y1, x2, y2, score (obj x cls), class_id,
        class_conf (input pixels), by decreasing score.
    """
    height, width = head.input_hw
    cls_probs = torch.sigmoid(head.cls_logits)
    best_cls, best_classes = cls_probs.max(dim=-1)     # YOLOX picks the class by cls alone
    best_scores = best_cls * torch.sigmoid(head.obj_logits)
    results = []
    for i in range(head.boxes.shape[0]):
        keep = best_scores[i] >= conf_threshold
        boxes = cxcywh_to_xyxy(head.boxes[i, keep].float())
        scores = best_scores[i, keep].float()
        classes = best_classes[i, keep]
        kept = batched_nms(boxes, scores, classes, nms_iou)
        if max_detections is not None:
            kept = kept[:max_detections]
        boxes = boxes[kept]
        if clip:
            boxes[:, 0::2] = boxes[:, 0::2].clamp(0, width)
            boxes[:, 1::2] = boxes[:, 1::2].clamp(0, height)
        results.append(torch.cat([boxes, scores[kept, None], classes[kept, None].float(),
                                  best_cls[i, keep][kept, None].float()], dim=1))
    return results
