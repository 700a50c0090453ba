"""MaxViT-style window and grid attention blocks (channels-last, as in RVT).

A block is pre-norm: x + LayerScale(attention(LN(x))), then x + LayerScale(MLP(LN(x))).
No relative position bias. Attention runs over non-overlapping partitions of the feature map:
*window* partitions are contiguous P0 x P1 tiles; *grid* partitions take every (H/P0)-th row and
(W/P1)-th column, so each partition spans the whole map (dilated, global mixing).
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from torch import Tensor, nn

AttentionImpl = Literal["sdpa", "manual"]


def window_partition(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Split (B, H, W, C) into (B * H/P0 * W/P1, P0 * P1, C) contiguous windows."""
    b, h, w, c = x.shape
    p0, p1 = size
    x = x.view(b, h // p0, p0, w // p1, p1, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, p0 * p1, c)


def window_reverse(windows: Tensor, size: tuple[int, int], hw: tuple[int, int]) -> Tensor:
    """Inverse of `window_partition`: (B * n, P0 * P1, C) -> (B, H, W, C)."""
    h, w = hw
    p0, p1 = size
    c = windows.shape[-1]
    x = windows.view(-1, h // p0, w // p1, p0, p1, c)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, h, w, c)


def grid_partition(x: Tensor, size: tuple[int, int]) -> Tensor:
    """Split (B, H, W, C) into (B * H/G0 * W/G1, G0 * G1, C) strided (dilated) grids."""
    b, h, w, c = x.shape
    g0, g1 = size
    x = x.view(b, g0, h // g0, g1, w // g1, c)
    return x.permute(0, 2, 4, 1, 3, 5).reshape(-1, g0 * g1, c)


def grid_reverse(windows: Tensor, size: tuple[int, int], hw: tuple[int, int]) -> Tensor:
    """Inverse of `grid_partition`: (B * n, G0 * G1, C) -> (B, H, W, C)."""
    h, w = hw
    g0, g1 = size
    c = windows.shape[-1]
    x = windows.view(-1, h // g0, w // g1, g0, g1, c)
    return x.permute(0, 3, 1, 4, 2, 5).reshape(-1, h, w, c)


class LayerScale(nn.Module):
    """Per-channel learnable scale (CaiT), initialised small so that new blocks start near identity."""

    def __init__(self, dim: int, init_value: float = 1e-5) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.full((dim,), init_value))

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


class Mlp(nn.Module):
    """Linear -> GELU -> Linear on the last (channel) dimension."""

    def __init__(self, dim: int, ratio: int = 4) -> None:
        super().__init__()
        self.fc1 = nn.Linear(dim, dim * ratio)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(dim * ratio, dim)

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SelfAttention(nn.Module):
    """Multi-head self-attention over tokens (N, L, C) with a fused qkv projection (bias on)."""

    def __init__(self, dim: int, num_heads: int, impl: AttentionImpl = "sdpa") -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"attention: dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.head_dim = dim // num_heads
        self.impl: AttentionImpl = impl
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        n, length, c = x.shape
        qkv = self.qkv(x).view(n, length, 3, self.num_heads, self.head_dim).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]  # each (N, heads, L, head_dim)
        if self.impl == "sdpa":
            out = F.scaled_dot_product_attention(q, k, v)
        else:
            attn = (q @ k.transpose(-2, -1)) * self.head_dim ** -0.5
            out = attn.softmax(dim=-1) @ v
        return self.proj(out.transpose(1, 2).reshape(n, length, c))


class PartitionAttention(nn.Module):
    """One pre-norm transformer block whose attention runs inside window or grid partitions.

    Args:
        dim: channels C.
        num_heads: attention heads.
        partition_size: (P0, P1) tokens per partition side; H and W must be divisible by it.
        kind: "window" (local tiles) or "grid" (dilated, global).
        skip_first_norm: True when the input is already layer-normed (RVT: the first block after
            the downsampling LayerNorm has no norm1).
        ls_init: LayerScale initial value.
    """

    def __init__(self, dim: int, num_heads: int, partition_size: tuple[int, int],
                 kind: Literal["window", "grid"], *, skip_first_norm: bool = False,
                 mlp_ratio: int = 4, ls_init: float = 1e-5, attention_impl: AttentionImpl = "sdpa") -> None:
        super().__init__()
        self.partition_size = (int(partition_size[0]), int(partition_size[1]))
        self.kind = kind
        self.norm1 = nn.Identity() if skip_first_norm else nn.LayerNorm(dim, eps=1e-5)
        self.attn = SelfAttention(dim, num_heads, attention_impl)
        self.ls1 = LayerScale(dim, ls_init)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.mlp = Mlp(dim, mlp_ratio)
        self.ls2 = LayerScale(dim, ls_init)

    def _attend(self, x: Tensor) -> Tensor:
        hw = (x.shape[1], x.shape[2])
        p0, p1 = self.partition_size
        if hw[0] % p0 or hw[1] % p1:
            raise ValueError(f"{self.kind} attention: feature map {hw} is not divisible by "
                             f"partition size {self.partition_size}")
        if self.kind == "window":
            return window_reverse(self.attn(window_partition(x, self.partition_size)), self.partition_size, hw)
        return grid_reverse(self.attn(grid_partition(x, self.partition_size)), self.partition_size, hw)

    def forward(self, x: Tensor) -> Tensor:
        """(B, H, W, C) -> (B, H, W, C)."""
        x = x + self.ls1(self._attend(self.norm1(x)))
        return x + self.ls2(self.mlp(self.norm2(x)))


class MaxVitBlock(nn.Module):
    """Window attention followed by grid attention, channels-last (B, H, W, C)."""

    def __init__(self, dim: int, num_heads: int, partition_size: tuple[int, int], *,
                 skip_first_norm: bool, mlp_ratio: int = 4, ls_init: float = 1e-5,
                 attention_impl: AttentionImpl = "sdpa") -> None:
        super().__init__()
        self.window = PartitionAttention(dim, num_heads, partition_size, "window",
                                         skip_first_norm=skip_first_norm, mlp_ratio=mlp_ratio,
                                         ls_init=ls_init, attention_impl=attention_impl)
        self.grid = PartitionAttention(dim, num_heads, partition_size, "grid", mlp_ratio=mlp_ratio,
                                       ls_init=ls_init, attention_impl=attention_impl)

    def forward(self, x: Tensor) -> Tensor:
        return self.grid(self.window(x))


def set_attention_impl(module: nn.Module, impl: AttentionImpl) -> None:
    """Switch every SelfAttention inside `module` to `impl` ("sdpa" or "manual"); weights unchanged."""
    if impl not in ("sdpa", "manual"):
        raise ValueError(f"attention_impl must be 'sdpa' or 'manual', got {impl!r}")
    for m in module.modules():
        if isinstance(m, SelfAttention):
            m.impl = impl
