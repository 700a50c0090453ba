"""An independent restatement of RVT's detector (uzh-rpg/RVT) with RVT's module and parameter names.

Written for tests from a reading of RVT's sources (``models/layers/maxvit/maxvit.py``,
``models/detection/recurrent_backbone/maxvit_rnn.py``, ``models/layers/rnn.py``,
``models/detection/yolox/models/{network_blocks,yolo_head}.py``,
``models/detection/yolox_extension/models/{yolo_pafpn,detector}.py``) with the timm helpers replaced
by torch; it shares no code with evdet. Its ``state_dict()`` has the names of RVT's ``mdl`` (the
``YoloXDetector`` inside RVT's Lightning module), so ``{"mdl." + k: v}`` is an RVT checkpoint.

What it restates (RVT's defaults, ``config/model/maxvit_yolox/default.yaml``):

- backbone ``RNNDetector``: 4 stages; each ``downsample_cf2cl`` (overlapping conv, kernel
  ``(factor - 1) * 2 + 1``, no bias, then LayerNorm, channels-last), ``att_blocks`` of
  ``MaxVitAttentionPairCl`` (``att_window`` then ``att_grid``; pre-norm, the first block's window
  norm skipped; ``SelfAttentionCl`` whose fused ``qkv`` output is viewed as (heads, 3 * dim_head),
  i.e. q, k, v side by side inside each head; LayerScale; MLP ``net`` = Linear+GELU, Dropout,
  Linear), then ``DWSConvLSTM2d`` (``conv1x1`` on cat(x, h); no depthwise conv).
- ``YOLOPAFPN`` over in_stages (RVT's has 3 levels: lateral_conv0, C3_p4, reduce_conv1, C3_p3,
  bu_conv2, C3_n3, bu_conv1, C3_n4; ``levels=4`` adds reduce_conv2, C3_p2 and bu_conv3, C3_n2,
  the YOLOX-style names of the extra top-down and bottom-up steps).
- ``YOLOXHead`` in inference: decoded (cx, cy, w, h, sigmoid(obj), sigmoid(cls)...) per anchor.

Build and run::

    from rvt_reference import RvtReference, randomize_
    ref = RvtReference(embed_dim=32, dim_head=32, fpn_depth=0.33, num_classes=3, in_stages=(2, 3, 4),
                       patch_size=4, partition_size=(6, 10), in_channels=20).eval()
    randomize_(ref, seed=0)
    decoded, states = ref(x, states)     # x (B, 20, H, W) padded; decoded (B, A, 5 + classes)
    torch.save({"state_dict": {"mdl." + k: v for k, v in ref.state_dict().items()}}, "rvt.ckpt")
"""

from __future__ import annotations

import math
from typing import Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn


# ---------------------------------------------------------------- backbone


class LayerScale(nn.Module):
    def __init__(self, dim: int, init_values: float = 1e-5):
        super().__init__()
        self.gamma = nn.Parameter(init_values * torch.ones(dim))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class MLP(nn.Module):
    """Not gated: net = [Sequential(Linear, GELU), Dropout, Linear]."""

    def __init__(self, dim: int, expansion_ratio: int = 4):
        super().__init__()
        inner = dim * expansion_ratio
        self.net = nn.Sequential(nn.Sequential(nn.Linear(dim, inner), nn.GELU()), nn.Dropout(0.0),
                                 nn.Linear(inner, dim))

    def forward(self, x: Tensor) -> Tensor:
        return self.net(x)


class SelfAttentionCl(nn.Module):
    """Channels-last attention; the qkv output is laid out per head: (heads, [q | k | v] of dim_head)."""

    def __init__(self, dim: int, dim_head: int):
        super().__init__()
        self.num_heads = dim // dim_head
        self.dim_head = dim_head
        self.qkv = nn.Linear(dim, dim * 3)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        batch = x.shape[0]
        shape = x.shape[:-1]
        per_head = self.qkv(x).reshape(batch, -1, self.num_heads, 3 * self.dim_head).transpose(1, 2)
        q = per_head[..., : self.dim_head]
        k = per_head[..., self.dim_head: 2 * self.dim_head]
        v = per_head[..., 2 * self.dim_head:]
        weights = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.dim_head), dim=-1)
        out = (weights @ v).transpose(1, 2).reshape(*shape, -1)
        return self.proj(out)


def _windows(x: Tensor, p: tuple[int, int]) -> Tensor:
    b, h, w, c = x.shape
    t = x.reshape(b, h // p[0], p[0], w // p[1], p[1], c).permute(0, 1, 3, 2, 4, 5)
    return t.reshape(-1, p[0], p[1], c)


def _unwindows(t: Tensor, p: tuple[int, int], h: int, w: int) -> Tensor:
    c = t.shape[-1]
    x = t.reshape(-1, h // p[0], w // p[1], p[0], p[1], c).permute(0, 1, 3, 2, 4, 5)
    return x.reshape(-1, h, w, c)


def _grids(x: Tensor, g: tuple[int, int]) -> Tensor:
    b, h, w, c = x.shape
    t = x.reshape(b, g[0], h // g[0], g[1], w // g[1], c).permute(0, 2, 4, 1, 3, 5)
    return t.reshape(-1, g[0], g[1], c)


def _ungrids(t: Tensor, g: tuple[int, int], h: int, w: int) -> Tensor:
    c = t.shape[-1]
    x = t.reshape(-1, h // g[0], w // g[1], g[0], g[1], c).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(-1, h, w, c)


class PartitionAttentionCl(nn.Module):
    def __init__(self, dim: int, window: bool, partition_size: tuple[int, int], dim_head: int,
                 skip_first_norm: bool):
        super().__init__()
        self.window = window
        self.partition_size = partition_size
        self.norm1 = nn.Identity() if skip_first_norm else nn.LayerNorm(dim, eps=1e-5)
        self.self_attn = SelfAttentionCl(dim, dim_head)
        self.ls1 = LayerScale(dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.mlp = MLP(dim)
        self.ls2 = LayerScale(dim)

    def _attention(self, x: Tensor) -> Tensor:
        h, w = x.shape[1:3]
        if self.window:
            return _unwindows(self.self_attn(_windows(x, self.partition_size)), self.partition_size, h, w)
        return _ungrids(self.self_attn(_grids(x, self.partition_size)), self.partition_size, h, w)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.ls1(self._attention(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class MaxVitAttentionPairCl(nn.Module):
    def __init__(self, dim: int, partition_size: tuple[int, int], dim_head: int, skip_first_norm: bool):
        super().__init__()
        self.att_window = PartitionAttentionCl(dim, True, partition_size, dim_head, skip_first_norm)
        self.att_grid = PartitionAttentionCl(dim, False, partition_size, dim_head, False)

    def forward(self, x: Tensor) -> Tensor:
        return self.att_grid(self.att_window(x))


class ConvDownsampling_Cf2Cl(nn.Module):  # noqa: N801 (RVT's name)
    def __init__(self, dim_in: int, dim_out: int, factor: int):
        super().__init__()
        kernel = (factor - 1) * 2 + 1
        self.conv = nn.Conv2d(dim_in, dim_out, kernel, stride=factor, padding=kernel // 2, bias=False)
        self.norm = nn.LayerNorm(dim_out, eps=1e-5)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.conv(x).permute(0, 2, 3, 1))


class DWSConvLSTM2d(nn.Module):
    """RVT's ConvLSTM with dws_conv=False: gates (forget, input, output) then cell input from conv1x1."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim
        self.conv1x1 = nn.Conv2d(2 * dim, 4 * dim, kernel_size=1)

    def forward(self, x: Tensor, state: Optional[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor]:
        h, c = (torch.zeros_like(x), torch.zeros_like(x)) if state is None else state
        mix = self.conv1x1(torch.cat((x, h), dim=1))
        f = torch.sigmoid(mix[:, : self.dim])
        i = torch.sigmoid(mix[:, self.dim: 2 * self.dim])
        o = torch.sigmoid(mix[:, 2 * self.dim: 3 * self.dim])
        g = torch.tanh(mix[:, 3 * self.dim:])
        c_new = f * c + i * g
        return o * torch.tanh(c_new), c_new


class RNNDetectorStage(nn.Module):
    def __init__(self, dim_in: int, dim: int, factor: int, partition_size: tuple[int, int], dim_head: int):
        super().__init__()
        self.downsample_cf2cl = ConvDownsampling_Cf2Cl(dim_in, dim, factor)
        self.att_blocks = nn.ModuleList([MaxVitAttentionPairCl(dim, partition_size, dim_head, True)])
        self.lstm = DWSConvLSTM2d(dim)

    def forward(self, x: Tensor, state):
        x = self.downsample_cf2cl(x)
        for block in self.att_blocks:
            x = block(x)
        h, c = self.lstm(x.permute(0, 3, 1, 2), state)
        return h, (h, c)


class RNNDetector(nn.Module):
    def __init__(self, in_channels: int, embed_dim: int, patch_size: int, partition_size: tuple[int, int],
                 dim_head: int):
        super().__init__()
        self.stage_dims = [embed_dim * m for m in (1, 2, 4, 8)]
        self.stages = nn.ModuleList()
        self.strides = []
        stride, dim_in = 1, in_channels
        for i, dim in enumerate(self.stage_dims):
            factor = patch_size if i == 0 else 2
            stride *= factor
            self.strides.append(stride)
            self.stages.append(RNNDetectorStage(dim_in, dim, factor, partition_size, dim_head))
            dim_in = dim

    def forward(self, x: Tensor, states=None):
        states = [None] * 4 if states is None else states
        features, new_states = {}, []
        for i, stage in enumerate(self.stages):
            x, state = stage(x, states[i])
            features[i + 1] = x
            new_states.append(state)
        return features, new_states


# ---------------------------------------------------------------- YOLOX neck and head


class BaseConv(nn.Module):
    def __init__(self, c_in: int, c_out: int, ksize: int, stride: int):
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, ksize, stride, (ksize - 1) // 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)
        self.act = nn.SiLU()

    def forward(self, x: Tensor) -> Tensor:
        return self.act(self.bn(self.conv(x)))


class Bottleneck(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = BaseConv(channels, channels, 1, 1)
        self.conv2 = BaseConv(channels, channels, 3, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv2(self.conv1(x))          # shortcut=False in the PAFPN


class CSPLayer(nn.Module):
    def __init__(self, c_in: int, c_out: int, n: int):
        super().__init__()
        hidden = int(c_out * 0.5)
        self.conv1 = BaseConv(c_in, hidden, 1, 1)
        self.conv2 = BaseConv(c_in, hidden, 1, 1)
        self.conv3 = BaseConv(2 * hidden, c_out, 1, 1)
        self.m = nn.Sequential(*[Bottleneck(hidden) for _ in range(n)])

    def forward(self, x: Tensor) -> Tensor:
        return self.conv3(torch.cat((self.m(self.conv1(x)), self.conv2(x)), dim=1))


def _up(x: Tensor) -> Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest-exact")


class YOLOPAFPN(nn.Module):
    """RVT's 3-level PAFPN, or its 4-level extension (in_channels finest first)."""

    def __init__(self, depth: float, in_stages: tuple[int, ...], in_channels: tuple[int, ...]):
        super().__init__()
        n = round(3 * depth)
        self.in_features = in_stages
        c = in_channels
        self.levels = len(c)
        if self.levels == 3:
            c0, c1, c2 = c
            self.lateral_conv0 = BaseConv(c2, c1, 1, 1)
            self.C3_p4 = CSPLayer(2 * c1, c1, n)
            self.reduce_conv1 = BaseConv(c1, c0, 1, 1)
            self.C3_p3 = CSPLayer(2 * c0, c0, n)
            self.bu_conv2 = BaseConv(c0, c0, 3, 2)
            self.C3_n3 = CSPLayer(2 * c0, c1, n)
            self.bu_conv1 = BaseConv(c1, c1, 3, 2)
            self.C3_n4 = CSPLayer(2 * c1, c2, n)
        elif self.levels == 4:
            c0, c1, c2, c3 = c
            self.lateral_conv0 = BaseConv(c3, c2, 1, 1)
            self.C3_p4 = CSPLayer(2 * c2, c2, n)
            self.reduce_conv1 = BaseConv(c2, c1, 1, 1)
            self.C3_p3 = CSPLayer(2 * c1, c1, n)
            self.reduce_conv2 = BaseConv(c1, c0, 1, 1)
            self.C3_p2 = CSPLayer(2 * c0, c0, n)
            self.bu_conv3 = BaseConv(c0, c0, 3, 2)
            self.C3_n2 = CSPLayer(2 * c0, c1, n)
            self.bu_conv2 = BaseConv(c1, c1, 3, 2)
            self.C3_n3 = CSPLayer(2 * c1, c2, n)
            self.bu_conv1 = BaseConv(c2, c2, 3, 2)
            self.C3_n4 = CSPLayer(2 * c2, c3, n)
        else:
            raise ValueError("3 or 4 levels")

    def forward(self, feats: dict) -> tuple[Tensor, ...]:
        if self.levels == 3:
            x2, x1, x0 = (feats[s] for s in self.in_features)
            fpn_out0 = self.lateral_conv0(x0)
            f_out0 = self.C3_p4(torch.cat([_up(fpn_out0), x1], 1))
            fpn_out1 = self.reduce_conv1(f_out0)
            pan_out2 = self.C3_p3(torch.cat([_up(fpn_out1), x2], 1))
            pan_out1 = self.C3_n3(torch.cat([self.bu_conv2(pan_out2), fpn_out1], 1))
            pan_out0 = self.C3_n4(torch.cat([self.bu_conv1(pan_out1), fpn_out0], 1))
            return pan_out2, pan_out1, pan_out0
        x3, x2, x1, x0 = (feats[s] for s in self.in_features)
        fpn_out0 = self.lateral_conv0(x0)
        f_out0 = self.C3_p4(torch.cat([_up(fpn_out0), x1], 1))
        fpn_out1 = self.reduce_conv1(f_out0)
        f_out1 = self.C3_p3(torch.cat([_up(fpn_out1), x2], 1))
        fpn_out2 = self.reduce_conv2(f_out1)
        pan_out3 = self.C3_p2(torch.cat([_up(fpn_out2), x3], 1))
        pan_out2 = self.C3_n2(torch.cat([self.bu_conv3(pan_out3), fpn_out2], 1))
        pan_out1 = self.C3_n3(torch.cat([self.bu_conv2(pan_out2), fpn_out1], 1))
        pan_out0 = self.C3_n4(torch.cat([self.bu_conv1(pan_out1), fpn_out0], 1))
        return pan_out3, pan_out2, pan_out1, pan_out0


class YOLOXHead(nn.Module):
    """Inference only: decoded outputs (B, A, 5 + classes) = cx, cy, w, h, sigmoid(obj), sigmoid(cls)."""

    def __init__(self, num_classes: int, strides: tuple[int, ...], in_channels: tuple[int, ...]):
        super().__init__()
        hidden = int(256 * in_channels[-1] / 1024)
        self.strides = strides
        self.stems = nn.ModuleList(BaseConv(c, hidden, 1, 1) for c in in_channels)
        self.cls_convs = nn.ModuleList(nn.Sequential(BaseConv(hidden, hidden, 3, 1), BaseConv(hidden, hidden, 3, 1))
                                       for _ in in_channels)
        self.reg_convs = nn.ModuleList(nn.Sequential(BaseConv(hidden, hidden, 3, 1), BaseConv(hidden, hidden, 3, 1))
                                       for _ in in_channels)
        self.cls_preds = nn.ModuleList(nn.Conv2d(hidden, num_classes, 1) for _ in in_channels)
        self.reg_preds = nn.ModuleList(nn.Conv2d(hidden, 4, 1) for _ in in_channels)
        self.obj_preds = nn.ModuleList(nn.Conv2d(hidden, 1, 1) for _ in in_channels)

    def forward(self, xin) -> Tensor:
        outputs = []
        for k, x in enumerate(xin):
            x = self.stems[k](x)
            cls_out = self.cls_preds[k](self.cls_convs[k](x))
            reg_feat = self.reg_convs[k](x)
            reg_out, obj_out = self.reg_preds[k](reg_feat), self.obj_preds[k](reg_feat)
            b, _, h, w = reg_out.shape
            ys, xs = torch.meshgrid(torch.arange(h, dtype=x.dtype), torch.arange(w, dtype=x.dtype), indexing="ij")
            grid = torch.stack((xs, ys), -1).reshape(1, h * w, 2)
            raw = torch.cat([reg_out, obj_out.sigmoid(), cls_out.sigmoid()], 1).flatten(2).permute(0, 2, 1)
            s = self.strides[k]
            outputs.append(torch.cat([(raw[..., :2] + grid) * s, torch.exp(raw[..., 2:4]) * s, raw[..., 4:]], -1))
        return torch.cat(outputs, 1)


class RvtReference(nn.Module):
    """RVT's ``YoloXDetector`` (inference): backbone, fpn, yolox_head."""

    def __init__(self, *, embed_dim: int, dim_head: int, fpn_depth: float, num_classes: int,
                 in_stages: tuple[int, ...], patch_size: int, partition_size: tuple[int, int], in_channels: int = 20):
        super().__init__()
        self.backbone = RNNDetector(in_channels, embed_dim, patch_size, partition_size, dim_head)
        dims = tuple(self.backbone.stage_dims[s - 1] for s in in_stages)
        self.fpn = YOLOPAFPN(fpn_depth, in_stages, dims)
        self.yolox_head = YOLOXHead(num_classes, tuple(self.backbone.strides[s - 1] for s in in_stages), dims)

    def forward(self, x: Tensor, states=None):
        feats, states = self.backbone(x, states)
        return self.yolox_head(self.fpn(feats)), states


def randomize_(model: nn.Module, seed: int, scale: float = 0.2) -> nn.Module:
    """Give every parameter and BatchNorm statistic a random value, so that every weight matters
    (LayerScale near 1, norms' weights near 1, running variances positive)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            leaf = name.rsplit(".", 1)[-1]
            if leaf == "gamma" or (leaf == "weight" and p.ndim == 1):
                p.copy_(1.0 + scale * torch.randn(p.shape, generator=gen))
            elif p.ndim == 1:
                p.copy_(scale * torch.randn(p.shape, generator=gen))
            else:
                fan_in = p[0].numel()
                p.copy_(torch.randn(p.shape, generator=gen) / math.sqrt(fan_in))
        for name, b in model.named_buffers():
            if name.endswith("running_mean"):
                b.copy_(scale * torch.randn(b.shape, generator=gen))
            elif name.endswith("running_var"):
                b.copy_(1.0 + scale * torch.rand(b.shape, generator=gen))
    return model
