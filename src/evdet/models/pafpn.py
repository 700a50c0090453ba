"""YOLOX PAFPN (path-aggregation FPN) over any number of levels, with YOLOX's CSP blocks.

For 3 levels this is exactly YOLOX/RVT's `YOLOPAFPN` (lateral_conv0, C3_p4, reduce_conv1, C3_p3,
bu_conv2, C3_n3, bu_conv1, C3_n4); 4 levels add one more top-down and one more bottom-up step.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from evdet.models.modules.deform_conv import DeformConv2d


class BaseConv(nn.Module):
    """Conv (no bias, same padding) -> BatchNorm -> SiLU; `deform`: the conv is a DCN v2 ``DeformConv2d``
    (same weight, plus an offset / mask predictor: the plain conv at initialisation)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, deform: bool = False) -> None:
        super().__init__()
        self.conv = (DeformConv2d(c_in, c_out, kernel, stride=stride) if deform else
                     nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=(kernel - 1) // 2, bias=False))
        self.bn = nn.BatchNorm2d(c_out)
        self.act = nn.SiLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    """1x1 then 3x3 BaseConv (deformable with `deform`), optional residual."""

    def __init__(self, channels: int, shortcut: bool, deform: bool = False) -> None:
        super().__init__()
        self.conv1 = BaseConv(channels, channels, 1)
        self.conv2 = BaseConv(channels, channels, 3, deform=deform)
        self.shortcut = shortcut

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv2(self.conv1(x))
        return x + y if self.shortcut else y


class CSPLayer(nn.Module):
    """CSP bottleneck with three convolutions (YOLOv5 C3), hidden = out / 2."""

    def __init__(self, c_in: int, c_out: int, depth: int, shortcut: bool = False, deform: bool = False) -> None:
        super().__init__()
        hidden = int(c_out * 0.5)
        self.conv1 = BaseConv(c_in, hidden, 1)
        self.conv2 = BaseConv(c_in, hidden, 1)
        self.conv3 = BaseConv(2 * hidden, c_out, 1)
        self.m = nn.Sequential(*[Bottleneck(hidden, shortcut, deform) for _ in range(depth)])

    def forward(self, x: Tensor) -> Tensor:
        return self.conv3(torch.cat([self.m(self.conv1(x)), self.conv2(x)], dim=1))


class PAFPN(nn.Module):
    """Top-down then bottom-up feature pyramid; output channels equal input channels per level.

    Args:
        in_channels: channels per level, finest first (e.g. (64, 128, 256) for strides 8/16/32).
        depth_multiplier: YOLOX depth; each CSP layer has round(3 * depth) bottlenecks.
        deform: the bottlenecks' 3x3 convs are deformable (DCN v2, model.modules.deform_conv).
    """

    def __init__(self, in_channels: Sequence[int], depth_multiplier: float, deform: bool = False) -> None:
        super().__init__()
        if len(in_channels) < 2:
            raise ValueError("PAFPN needs at least 2 levels")
        self.in_channels = tuple(int(c) for c in in_channels)
        c = self.in_channels
        n = round(3 * depth_multiplier)
        top = len(c) - 1
        # Top-down, coarse to fine: lateral[j] reduces level j+1 to c[j], td_csp[j] fuses with level j.
        self.lateral = nn.ModuleList(BaseConv(c[j + 1], c[j], 1) for j in range(top))
        self.td_csp = nn.ModuleList(CSPLayer(2 * c[j], c[j], n, deform=deform) for j in range(top))
        # Bottom-up, fine to coarse: down[j] strides level j, bu_csp[j] fuses with lateral j -> c[j+1].
        self.down = nn.ModuleList(BaseConv(c[j], c[j], 3, 2) for j in range(top))
        self.bu_csp = nn.ModuleList(CSPLayer(2 * c[j], c[j + 1], n, deform=deform) for j in range(top))

    def forward(self, features: Sequence[Tensor]) -> list[Tensor]:
        """Features per level (B, c_i, H_i, W_i), H_i = 2 * H_{i+1} -> same shapes after fusion."""
        if len(features) != len(self.in_channels):
            raise ValueError(f"PAFPN: expected {len(self.in_channels)} levels, got {len(features)}")
        top = len(features) - 1
        laterals: list[Tensor] = [features[0]] * top
        x = features[top]
        for j in range(top - 1, -1, -1):
            laterals[j] = self.lateral[j](x)
            up = F.interpolate(laterals[j], scale_factor=2, mode="nearest-exact")
            x = self.td_csp[j](torch.cat([up, features[j]], dim=1))
        outputs = [x]
        for j in range(top):
            x = self.bu_csp[j](torch.cat([self.down[j](x), laterals[j]], dim=1))
            outputs.append(x)
        return outputs
