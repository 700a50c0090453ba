"""Event-density adaptive fusion: a spatial gate per FPN level from the input's local event density.

For level l of stride s and the padded input x (B, C_in, H, W) (event counts per bin):

    d_l = log1p(avgpool_s(sum_c x))                      (B, 1, H / s, W / s) mean events per input pixel
    g_l = 2 * sigmoid(conv3x3_l(d_l))                    (B, 1, H / s, W / s), 1 everywhere at init
    y_l = x_l * g_l

Each level learns its own response to density, so that sparse regions (where small objects are) can lean
on the finer levels and dense ones on the coarser.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def event_density(x: Tensor, stride: int) -> Tensor:
    """(B, C, H, W) counts -> (B, 1, H / stride, W / stride) log1p of the mean count per pixel in each cell."""
    total = x.sum(dim=1, keepdim=True)
    return torch.log1p(F.avg_pool2d(total, kernel_size=stride, stride=stride))


class DensityFusion(nn.Module):
    """Per-level density gates.

    Args:
        strides: stride of each FPN level in input pixels (finest first).
    """

    def __init__(self, strides: Sequence[int]) -> None:
        super().__init__()
        self.strides = tuple(int(s) for s in strides)
        self.gates = nn.ModuleList(nn.Conv2d(1, 1, 3, padding=1) for _ in self.strides)
        for conv in self.gates:
            nn.init.zeros_(conv.weight)
            nn.init.zeros_(conv.bias)

    def gate(self, level: int, frames: Tensor) -> Tensor:
        """Gate of one level for padded input frames (B, C_in, H, W) -> (B, 1, H / s, W / s) in (0, 2)."""
        return 2 * torch.sigmoid(self.gates[level](event_density(frames, self.strides[level])))

    def forward(self, levels: Sequence[Tensor], frames: Tensor) -> list[Tensor]:
        """FPN outputs (B, C_l, H / s_l, W / s_l) and their padded input frames (B, C_in, H, W)."""
        return [x * self.gate(i, frames) for i, x in enumerate(levels)]
