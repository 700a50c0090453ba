"""Worked example of a registered module (README, "Architecture modules"): a learnt per-channel scale on
every FPN level, y = x * (1 + s), s initialised to 0 (the identity at the start).

Switched on by ``model.modules.extra=[channel_scale]``; this file is all a new module needs.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from evdet.models.modules.registry import ModuleSpec


class ChannelScale(nn.Module):
    """y = x * (1 + s) with s (1, C, 1, 1) learnt, zero at init."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.scale = nn.Parameter(torch.zeros(1, channels, 1, 1))

    def forward(self, x: Tensor) -> Tensor:
        return x * (1 + self.scale)


SPEC = ModuleSpec(name="channel_scale", site="level", build=lambda channels, stride: ChannelScale(channels),
                  summary="learnt per-channel scale on every FPN level (identity at init)")
