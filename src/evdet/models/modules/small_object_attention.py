"""Small-object attention on a recurrent stage's output: CBAM channel + spatial attention (Woo et al. 2018)
and a motion gate from the change of the stage's recurrent state between steps.

With x the stage output (B, C, H, W) and d = |h_t - h_{t-1}| (h_{t-1} = 0 at a sequence start, as the
ConvLSTM's own zero state):

    channel:  x <- x * sigmoid(mlp(mean_hw x) + mlp(max_hw x))                          (B, C, 1, 1) gate
    spatial:  x <- x * sigmoid(conv_k([mean_c x, max_c x]))                             (B, 1, H, W) gate
    motion:   x <- x * (1 + sigmoid(conv_k([mean_c d, max_c d])))                       moving regions x1..x2

Scale-aware variant: y = x + s * (attended - x) with a learnt strength s per stage, initialised to
finest_stride / stride, built only for stages of stride <= 8 (the levels where small objects live).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

AttentionKind = Literal["cbam", "motion", "cbam_motion"]


def channel_pool(x: Tensor) -> Tensor:
    """(B, C, H, W) -> (B, 2, H, W): mean and max over channels."""
    return torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)


class ChannelAttention(nn.Module):
    """CBAM channel gate: sigmoid(mlp(avg) + mlp(max)), the MLP shared (C -> C/r -> C, ReLU)."""

    def __init__(self, channels: int, reduction: int) -> None:
        super().__init__()
        hidden = max(channels // reduction, 4)
        self.mlp = nn.Sequential(nn.Conv2d(channels, hidden, 1), nn.ReLU(), nn.Conv2d(hidden, channels, 1))

    def forward(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, 1, 1) gate."""
        avg = self.mlp(x.mean(dim=(2, 3), keepdim=True))
        peak = self.mlp(x.amax(dim=(2, 3), keepdim=True))
        return torch.sigmoid(avg + peak)


class SpatialGate(nn.Module):
    """sigmoid(conv_k([mean_c z, max_c z])): (B, C, H, W) -> (B, 1, H, W)."""

    def __init__(self, kernel_size: int) -> None:
        super().__init__()
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"model.modules.small_object_attention.kernel_size must be odd, got {kernel_size}")
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, z: Tensor) -> Tensor:
        return torch.sigmoid(self.conv(channel_pool(z)))


class SmallObjectAttention(nn.Module):
    """Channel + spatial and/or motion attention of one stage output.

    Args:
        channels: C of the stage output.
        kind: "cbam" (channel + spatial), "motion" (gate from |h_t - h_{t-1}|) or "cbam_motion" (both).
        reduction: channel-attention hidden = C / reduction.
        kernel_size: spatial / motion gate kernel.
        strength: None (plain) or the initial learnt strength of the scale-aware variant.
    """

    def __init__(self, channels: int, kind: AttentionKind, reduction: int = 4, kernel_size: int = 7,
                 strength: float | None = None) -> None:
        super().__init__()
        if kind not in ("cbam", "motion", "cbam_motion"):
            raise ValueError(f"model.modules.small_object_attention.kind: unknown {kind!r}")
        self.kind = kind
        cbam = kind in ("cbam", "cbam_motion")
        self.channel = ChannelAttention(channels, reduction) if cbam else None
        self.spatial = SpatialGate(kernel_size) if cbam else None
        self.motion = SpatialGate(kernel_size) if kind in ("motion", "cbam_motion") else None
        self.strength = None if strength is None else nn.Parameter(torch.tensor(float(strength)))

    def forward(self, x: Tensor, h: Tensor, h_prev: Tensor) -> Tensor:
        """x (B, C, H, W) stage output; h, h_prev: the LSTM's h after and before this step (same shape)."""
        y = x
        if self.channel is not None:
            y = y * self.channel(y)
            y = y * self.spatial(y)
        if self.motion is not None:
            y = y * (1 + self.motion((h - h_prev).abs()))
        if self.strength is not None:
            y = x + self.strength * (y - x)
        return y
