"""Squeeze-and-excitation (Hu et al. 2018): a per-channel gate from the globally pooled features."""

from __future__ import annotations

from torch import Tensor, nn


class SqueezeExcitation(nn.Module):
    """y = x * gate(x), gate = sigmoid(W2 relu(W1 mean_hw(x) + b1) + b2), one value per (item, channel).

    Args:
        channels: C of x (B, C, H, W).
        reduction: hidden width = max(C // reduction, 4).
    """

    def __init__(self, channels: int, reduction: int = 4) -> None:
        super().__init__()
        if reduction < 1:
            raise ValueError(f"model.modules.squeeze_excitation.reduction must be >= 1, got {reduction}")
        hidden = max(channels // reduction, 4)
        self.fc1 = nn.Conv2d(channels, hidden, 1)
        self.fc2 = nn.Conv2d(hidden, channels, 1)

    def gate(self, x: Tensor) -> Tensor:
        """(B, C, H, W) -> (B, C, 1, 1) gate in (0, 1)."""
        pooled = x.mean(dim=(2, 3), keepdim=True)
        return self.fc2(self.fc1(pooled).relu()).sigmoid()

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gate(x)
