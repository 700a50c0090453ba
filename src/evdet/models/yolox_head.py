"""YOLOX decoupled, anchor-free head: per level a 1x1 stem, two 3x3 cls convs, two 3x3 reg convs."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Sequence

import torch
from torch import Tensor, nn

from evdet.models.pafpn import BaseConv


@dataclass
class HeadOutput:
    """Raw head outputs for N items, A anchors over all levels (finest level first, row-major).

    Attributes:
        boxes: (N, A, 4) decoded boxes cx, cy, w, h in input pixels: cx = (gx + dx) * stride,
            w = exp(dw) * stride (YOLOX decoding).
        obj_logits: (N, A) objectness logits.
        cls_logits: (N, A, K) class logits.
        anchor_centers: (A, 2) x, y of each anchor cell centre, (g + 0.5) * stride, in input pixels.
        strides: (A,) stride of each anchor in input pixels.
        input_hw: (height, width) of the unpadded input, used to clip detections.
    """

    boxes: Tensor
    obj_logits: Tensor
    cls_logits: Tensor
    anchor_centers: Tensor
    strides: Tensor
    input_hw: tuple[int, int]

    @property
    def num_classes(self) -> int:
        return self.cls_logits.shape[-1]


class YoloxHead(nn.Module):
    """Decoupled YOLOX head over FPN levels.

    Args:
        num_classes: K.
        in_channels: channels per FPN level.
        strides: stride per FPN level in input pixels.
        width: hidden channels of stems and branches (RVT: in_channels[-1] / 4).
        prior_prob: initial foreground probability for cls and obj biases (focal-loss init).
        deform: the last 3x3 conv of each cls and reg branch is deformable (DCN v2, model.modules.deform_conv).
    """

    def __init__(self, num_classes: int, in_channels: Sequence[int], strides: Sequence[int], width: int,
                 prior_prob: float = 0.01, deform: bool = False) -> None:
        super().__init__()
        if len(in_channels) != len(strides):
            raise ValueError("YoloxHead: in_channels and strides need one entry per level")
        if num_classes < 1:
            raise ValueError(f"YoloxHead: num_classes must be >= 1, got {num_classes}")
        self.num_classes = num_classes
        self.strides = tuple(int(s) for s in strides)
        self.stems = nn.ModuleList(BaseConv(c, width, 1) for c in in_channels)
        self.cls_convs = nn.ModuleList(
            nn.Sequential(BaseConv(width, width, 3), BaseConv(width, width, 3, deform=deform)) for _ in in_channels)
        self.reg_convs = nn.ModuleList(
            nn.Sequential(BaseConv(width, width, 3), BaseConv(width, width, 3, deform=deform)) for _ in in_channels)
        self.cls_preds = nn.ModuleList(nn.Conv2d(width, num_classes, 1) for _ in in_channels)
        self.reg_preds = nn.ModuleList(nn.Conv2d(width, 4, 1) for _ in in_channels)
        self.obj_preds = nn.ModuleList(nn.Conv2d(width, 1, 1) for _ in in_channels)
        bias = -math.log((1 - prior_prob) / prior_prob)
        for conv in [*self.cls_preds, *self.obj_preds]:
            nn.init.constant_(conv.bias, bias)

    def forward(self, features: Sequence[Tensor], input_hw: tuple[int, int]) -> HeadOutput:
        """FPN features per level (N, C_i, H_i, W_i) -> HeadOutput with A = sum H_i * W_i anchors."""
        boxes, obj, cls, centers, strides = [], [], [], [], []
        for k, x in enumerate(features):
            stride = self.strides[k]
            x = self.stems[k](x)
            cls_out = self.cls_preds[k](self.cls_convs[k](x))
            reg_feat = self.reg_convs[k](x)
            reg_out = self.reg_preds[k](reg_feat)
            obj_out = self.obj_preds[k](reg_feat)
            n, _, h, w = reg_out.shape
            gy, gx = torch.meshgrid(torch.arange(h, device=x.device, dtype=reg_out.dtype),
                                    torch.arange(w, device=x.device, dtype=reg_out.dtype), indexing="ij")
            grid = torch.stack([gx, gy], dim=-1).reshape(-1, 2)  # (h*w, 2)
            reg = reg_out.flatten(2).transpose(1, 2)  # (N, h*w, 4)
            boxes.append(torch.cat([(reg[..., :2] + grid) * stride, torch.exp(reg[..., 2:4]) * stride], dim=-1))
            obj.append(obj_out.flatten(1))
            cls.append(cls_out.flatten(2).transpose(1, 2))
            centers.append((grid + 0.5) * stride)
            strides.append(torch.full((h * w,), float(stride), device=x.device, dtype=reg_out.dtype))
        return HeadOutput(boxes=torch.cat(boxes, 1), obj_logits=torch.cat(obj, 1), cls_logits=torch.cat(cls, 1),
                          anchor_centers=torch.cat(centers, 0), strides=torch.cat(strides, 0),
                          input_hw=(int(input_hw[0]), int(input_hw[1])))
