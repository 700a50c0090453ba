"""Convolutional LSTM cell whose gates come from a 1x1 conv on cat(x, h) (RVT's DWSConvLSTM2d)."""

from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn

LstmState = tuple[Tensor, Tensor]


class ConvLSTM2d(nn.Module):
    """ConvLSTM cell in (B, C, H, W) layout.

    gates = conv1x1(cat(x, dws(h))) -> forget, input, output (sigmoid) and cell input (tanh);
    c' = f * c + i * g; h' = o * tanh(c'). RVT's default has no depthwise conv (`dws_conv=False`);
    with `dws_conv=True` a depthwise k x k conv is applied to h (or to cat(x, h) when
    `dws_conv_only_hidden=False`) before the 1x1 conv.

    Args:
        dim: channels of x, h and c.
    """

    def __init__(self, dim: int, *, dws_conv: bool = False, dws_conv_only_hidden: bool = True,
                 dws_kernel_size: int = 3) -> None:
        super().__init__()
        self.dim = dim
        self.dws_only_hidden = dws_conv_only_hidden
        dws_dim = dim if dws_conv_only_hidden else 2 * dim
        self.dws = (nn.Conv2d(dws_dim, dws_dim, dws_kernel_size, padding=dws_kernel_size // 2, groups=dws_dim)
                    if dws_conv else nn.Identity())
        self.conv1x1 = nn.Conv2d(2 * dim, 4 * dim, kernel_size=1)

    def forward(self, x: Tensor, state: Optional[LstmState] = None) -> LstmState:
        """One step: x (B, C, H, W), state (h, c) or None (zeros) -> new (h, c)."""
        if state is None:
            h_prev = torch.zeros_like(x)
            c_prev = torch.zeros_like(x)
        else:
            h_prev, c_prev = state
        if self.dws_only_hidden:
            xh = torch.cat([x, self.dws(h_prev)], dim=1)
        else:
            xh = self.dws(torch.cat([x, h_prev], dim=1))
        mix = self.conv1x1(xh)
        gates = torch.sigmoid(mix[:, : 3 * self.dim])
        forget_gate, input_gate, output_gate = gates.chunk(3, dim=1)
        cell_input = torch.tanh(mix[:, 3 * self.dim:])
        c = forget_gate * c_prev + input_gate * cell_input
        h = output_gate * torch.tanh(c)
        return h, c
