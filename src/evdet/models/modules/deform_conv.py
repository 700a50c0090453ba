"""Modulated deformable convolution (DCN v2, Zhu et al. 2019) in pure torch (bilinear sampling by gather).

For output pixel p and kernel tap k the input is sampled at p * stride - padding + dilation * k + offset_k(p)
(bilinear, zero outside the map) and weighted by the modulation mask m_k(p):

    y(p) = b + sum_k w_k * m_k(p) * x(p_k + offset_k(p))

Offsets follow torchvision's layout: (B, 2 * kh * kw, Ho, Wo) with (dy, dx) of tap k in channels 2k, 2k + 1;
masks (B, kh * kw, Ho, Wo).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn


def _pair(v: int | tuple[int, int]) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def deform_columns(x: Tensor, offset: Tensor, mask: Tensor, kernel: tuple[int, int], stride: tuple[int, int],
                   padding: tuple[int, int], dilation: tuple[int, int]) -> Tensor:
    """Sampled, modulated input columns.

    Args:
        x: (B, C, H, W). offset: (B, 2K, Ho, Wo) (dy, dx) per tap in input pixels. mask: (B, K, Ho, Wo).
    Returns:
        (B, C, K, Ho, Wo): m_k(p) * x(p_k + offset_k(p)), taps row-major over the kernel.
    """
    b, c, h, w = x.shape
    kh, kw = kernel
    k = kh * kw
    ho, wo = offset.shape[-2:]
    dtype, device = x.dtype, x.device
    base_y = torch.arange(ho, device=device, dtype=dtype) * stride[0] - padding[0]
    base_x = torch.arange(wo, device=device, dtype=dtype) * stride[1] - padding[1]
    tap_y = (torch.arange(kh, device=device, dtype=dtype) * dilation[0]).repeat_interleave(kw)
    tap_x = (torch.arange(kw, device=device, dtype=dtype) * dilation[1]).repeat(kh)
    off = offset.reshape(b, k, 2, ho, wo)
    py = base_y[None, None, :, None] + tap_y[None, :, None, None] + off[:, :, 0]    # (B, K, Ho, Wo)
    px = base_x[None, None, None, :] + tap_x[None, :, None, None] + off[:, :, 1]
    y0, x0 = torch.floor(py), torch.floor(px)
    wy1, wx1 = py - y0, px - x0           # exactly 0 at integer positions: exact im2col there
    flat = x.reshape(b, c, h * w)
    sampled = None
    for dy, wy in ((0, 1 - wy1), (1, wy1)):
        for dx, wx in ((0, 1 - wx1), (1, wx1)):
            yy, xx = y0 + dy, x0 + dx
            inside = (yy >= 0) & (yy <= h - 1) & (xx >= 0) & (xx <= w - 1)
            index = (yy.clamp(0, h - 1) * w + xx.clamp(0, w - 1)).long().reshape(b, 1, -1).expand(b, c, -1)
            term = torch.gather(flat, 2, index) * (wy * wx * inside).reshape(b, 1, -1)
            sampled = term if sampled is None else sampled + term
    return sampled.reshape(b, c, k, ho, wo) * mask[:, None]


def deform_conv2d(x: Tensor, offset: Tensor, mask: Tensor, weight: Tensor, bias: Tensor | None = None, *,
                  stride: int | tuple[int, int] = 1, padding: int | tuple[int, int] = 0,
                  dilation: int | tuple[int, int] = 1) -> Tensor:
    """Modulated deformable convolution (groups 1).

    Args:
        x: (B, Cin, H, W); offset: (B, 2 * kh * kw, Ho, Wo); mask: (B, kh * kw, Ho, Wo);
        weight: (Cout, Cin, kh, kw); bias: (Cout,) or None.
    Returns:
        (B, Cout, Ho, Wo).
    """
    kernel = (weight.shape[2], weight.shape[3])
    cols = deform_columns(x, offset, mask, kernel, _pair(stride), _pair(padding), _pair(dilation))
    out = torch.einsum("bckhw,ock->bohw", cols, weight.flatten(2))
    return out if bias is None else out + bias[None, :, None, None]


class DeformConv2d(nn.Module):
    """DCN v2 layer: offsets and masks predicted from x by a 3x3 conv (zero-initialised: plain conv at start).

    mask = 2 * sigmoid(logit), so that the zero-initialised predictor gives unit masks.

    Args:
        c_in, c_out: channels. kernel, stride: of the main convolution (padding (kernel - 1) // 2).
        bias: whether the main convolution has a bias.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int = 3, stride: int = 1, bias: bool = False) -> None:
        super().__init__()
        self.kernel, self.stride, self.padding = kernel, stride, (kernel - 1) // 2
        self.weight = nn.Parameter(torch.empty(c_out, c_in, kernel, kernel))
        self.bias = nn.Parameter(torch.zeros(c_out)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=5 ** 0.5)  # nn.Conv2d's initialisation
        taps = kernel * kernel
        self.offset_mask = nn.Conv2d(c_in, 3 * taps, kernel, stride=stride, padding=self.padding)
        nn.init.zeros_(self.offset_mask.weight)
        nn.init.zeros_(self.offset_mask.bias)

    def forward(self, x: Tensor) -> Tensor:
        """(B, Cin, H, W) -> (B, Cout, Ho, Wo)."""
        taps = self.kernel * self.kernel
        pred = self.offset_mask(x)
        offset, mask = pred[:, : 2 * taps], 2 * torch.sigmoid(pred[:, 2 * taps:])
        return deform_conv2d(x, offset, mask, self.weight, self.bias, stride=self.stride, padding=self.padding)
