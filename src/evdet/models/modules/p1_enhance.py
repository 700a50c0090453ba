"""P1 (stride-4) enhancement for the 4-scale FPN: the finest level gets its own normalisation and an extra
residual refinement block before the head.

    y = x + gamma * conv3x3_bn_silu(conv3x3_bn_silu(GroupNorm(x)))        gamma learnt, per channel, init 0.1

GroupNorm normalises each item's stride-4 map on its own (its statistics are far sparser than the coarser
levels' and than the batch's), instead of the batch statistics the shared BatchNorm layers use.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from evdet.models.pafpn import BaseConv


class P1Enhance(nn.Module):
    """Refinement of the stride-4 FPN level.

    Args:
        channels: C of the level. groups: GroupNorm groups (C must divide by it).
    """

    def __init__(self, channels: int, groups: int = 8) -> None:
        super().__init__()
        if groups < 1 or channels % groups:
            raise ValueError(f"model.modules.p1_enhance.groups={groups} must divide the stride-4 level's "
                             f"{channels} channels")
        self.norm = nn.GroupNorm(groups, channels)
        self.refine = nn.Sequential(BaseConv(channels, channels, 3), BaseConv(channels, channels, 3))
        self.gamma = nn.Parameter(torch.full((1, channels, 1, 1), 0.1))

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        return x + self.gamma * self.refine(self.norm(x))
