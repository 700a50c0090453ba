"""Cross-view fusion: each view's FPN tokens attend to the other views' tokens of the same time step.

A multi-view batch holds the views of a scene as consecutive batch items: item ``b`` is view
``b % V`` of scene ``b // V`` (V = ``num_views``). Each item keeps its own recurrent state, so each
view keeps its own; fusion happens after the neck, at the chosen FPN levels, between the items of
one (scene, time step). Detections stay per view.

Pooling (top-K): the memory of a view is the tokens of all the other views at that level, cut to
the ``max_tokens`` (K) tokens of largest L2 norm (where the other views' features are most active:
the neck's features grow where events are). Top-K needs no parameters, and with K >= the number of
tokens it keeps them all, so the block is then exactly full cross-view attention (tested against a
naive softmax). Learned-query pooling (Perceiver) was not chosen: it adds parameters and is never
full attention, so the K sweep would not have a full-attention end point.

Block (pre-norm, as RVT's): ``x = x + ls1 * attn(LN(x) + e_x, LN(m) + e_m)`` then
``x = x + ls2 * MLP(LN(x))``; ``ls`` are LayerScales initialised at ``layer_scale_init`` (1e-5, RVT's),
``e`` the optional camera-pose embedding (a linear map of the item's pose vector, inside the
attention branch only). With ls = 0, or with one view (no other tokens), the block is the identity,
so a fused model with zeroed fusion weights is the single-view model.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from evdet.models.config import FusionConfig
from evdet.models.maxvit import LayerScale, Mlp

POSE_DIM = 6     # (cos yaw, sin yaw, pitch rad, height / 10 m, x / 20 m, z / 20 m) per view


def topk_tokens(tokens: Tensor, k: int, rows: Optional[Tensor] = None) -> Tensor:
    """The ``k`` tokens of largest L2 norm, in their original order.

    Args:
        tokens: (G, N, C), scored by their L2 norm.
        rows: (G, N, D) gathered instead of ``tokens`` (e.g. tokens with their embeddings), or None.
    Returns:
        (G, min(k, N), C or D).
    """
    rows = tokens if rows is None else rows
    if k >= tokens.shape[1]:
        return rows
    idx = tokens.norm(dim=-1).topk(k, dim=1).indices.sort(dim=1).values
    return rows.gather(1, idx[..., None].expand(-1, -1, rows.shape[-1]))


class CrossViewAttention(nn.Module):
    """Multi-head attention of queries (G, Nq, C) over a memory (G, Nk, C); sdpa or explicit softmax."""

    def __init__(self, dim: int, num_heads: int) -> None:
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"fusion: {dim} channels are not divisible by {num_heads} heads")
        self.num_heads = num_heads
        self.q = nn.Linear(dim, dim)
        self.kv = nn.Linear(dim, 2 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor, memory: Tensor) -> Tensor:
        g, nq, c = x.shape
        h = self.num_heads
        q = self.q(x).reshape(g, nq, h, c // h).transpose(1, 2)
        k, v = self.kv(memory).reshape(g, memory.shape[1], 2, h, c // h).permute(2, 0, 3, 1, 4)
        out = F.scaled_dot_product_attention(q, k, v)
        return self.proj(out.transpose(1, 2).reshape(g, nq, c))


class FusionBlock(nn.Module):
    """One pre-norm cross-attention + MLP layer (see the module docstring)."""

    def __init__(self, dim: int, num_heads: int, mlp_ratio: int, layer_scale_init: float) -> None:
        super().__init__()
        self.norm_q = nn.LayerNorm(dim)
        self.norm_m = nn.LayerNorm(dim)
        self.attn = CrossViewAttention(dim, num_heads)
        self.ls1 = LayerScale(dim, layer_scale_init)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, mlp_ratio)
        self.ls2 = LayerScale(dim, layer_scale_init)

    def forward(self, x: Tensor, memory: Tensor, emb_x: Optional[Tensor], emb_m: Optional[Tensor]) -> Tensor:
        q, m = self.norm_q(x), self.norm_m(memory)
        if emb_x is not None:
            q, m = q + emb_x, m + emb_m
        x = x + self.ls1(self.attn(q, m))
        return x + self.ls2(self.mlp(self.norm2(x)))


class LevelFusion(nn.Module):
    """The fusion layers of one FPN level, over items grouped as (G, V, C, H, W)."""

    def __init__(self, dim: int, num_heads: int, layers: int, mlp_ratio: int, max_tokens: int,
                 layer_scale_init: float, pose_embedding: bool) -> None:
        super().__init__()
        self.max_tokens = int(max_tokens)
        self.blocks = nn.ModuleList(FusionBlock(dim, num_heads, mlp_ratio, layer_scale_init)
                                    for _ in range(layers))
        self.pose = nn.Linear(POSE_DIM, dim) if pose_embedding else None

    def forward(self, x: Tensor, pose: Optional[Tensor]) -> Tensor:
        """x: (G, V, C, H, W); pose: (G, V, POSE_DIM) or None. Returns the same shape."""
        g, v, c, h, w = x.shape
        if v < 2:
            return x
        tok = x.flatten(3).transpose(2, 3)                            # (G, V, HW, C)
        emb = None
        if self.pose is not None:
            if pose is None:
                raise ValueError("fusion.pose_embedding is on but the batch carries no view poses")
            emb = self.pose(pose.to(tok.dtype))[:, :, None, :].expand(g, v, h * w, c)
        for block in self.blocks:
            outs = []
            for i in range(v):                                        # view i attends to the others
                others = [j for j in range(v) if j != i]
                mem = tok[:, others].reshape(g, -1, c)
                e_x = e_m = None
                if emb is not None:
                    e_x, e_m = emb[:, i], emb[:, others].reshape(g, -1, c)
                    mem_e = topk_tokens(mem, self.max_tokens, torch.cat([mem, e_m], -1))
                    mem, e_m = mem_e[..., :c], mem_e[..., c:]
                else:
                    mem = topk_tokens(mem, self.max_tokens)
                outs.append(block(tok[:, i], mem, e_x, e_m))
            tok = torch.stack(outs, 1)
        return tok.transpose(2, 3).reshape(g, v, c, h, w).contiguous()   # (the neck's layout: same conv results)


class CrossViewFusion(nn.Module):
    """Cross-view fusion at chosen FPN levels (identity elsewhere).

    Args:
        channels: channels of every FPN level (neck outputs, finest first).
        num_views: V, views per scene (items b = scene * V + view).
        levels: 0-based indices of the fused FPN levels (0 = finest).
        num_heads, layers, mlp_ratio: per fused level.
        max_tokens: K, at most this many memory tokens per level (top-K by L2 norm).
        layer_scale_init: initial LayerScale of both branches.
        pose_embedding: add a linear embedding of each view's pose vector inside the attention.
    """

    def __init__(self, channels: Sequence[int], num_views: int, levels: Sequence[int], num_heads: int = 2,
                 layers: int = 1, mlp_ratio: int = 2, max_tokens: int = 256, layer_scale_init: float = 1e-5,
                 pose_embedding: bool = False) -> None:
        super().__init__()
        bad = [lv for lv in levels if not 0 <= lv < len(channels)]
        if bad or not levels:
            raise ValueError(f"fusion.levels must be indices of the {len(channels)} FPN levels, got {tuple(levels)}")
        if num_views < 1 or max_tokens < 1 or layers < 1 or mlp_ratio < 1:
            raise ValueError("fusion: num_views, max_tokens, layers and mlp_ratio must be >= 1, got "
                             f"{num_views}, {max_tokens}, {layers}, {mlp_ratio}")
        self.num_views = int(num_views)
        self.levels = tuple(int(lv) for lv in levels)
        self.fusers = nn.ModuleDict({str(lv): LevelFusion(channels[lv], num_heads, layers, mlp_ratio, max_tokens,
                                                         layer_scale_init, pose_embedding)
                                     for lv in self.levels})

    def group_order(self, item_b: Tensor, item_t: Tensor) -> Tensor:
        """Permutation of the N items into (scene, time step, view) order; every group must hold all V views.

        Args:
            item_b, item_t: (N,) batch index and time step of each item.
        """
        v = self.num_views
        group = (item_b // v) * (int(item_t.max()) + 1) + item_t
        order = torch.argsort(group * v + item_b % v)
        counts = torch.bincount(group)
        if bool(((counts != 0) & (counts != v)).any()):
            raise ValueError(f"fusion: every selected (scene, step) must select all {v} views of the scene "
                             "(select the same steps in every view)")
        return order

    def forward(self, levels: Sequence[Tensor], item_b: Tensor, item_t: Tensor,
                pose: Optional[Tensor] = None) -> list[Tensor]:
        """levels: per FPN level (N, C, H, W); item_b / item_t (N,); pose (N, POSE_DIM) or None."""
        out = list(levels)
        if self.num_views < 2:
            return out
        order = self.group_order(item_b.to(levels[0].device), item_t.to(levels[0].device))
        inverse = torch.argsort(order)
        v = self.num_views
        pose_g = None if pose is None else pose.to(levels[0].device)[order].reshape(-1, v, pose.shape[-1])
        for lv in self.levels:
            x = out[lv][order]
            x = self.fusers[str(lv)](x.reshape(-1, v, *x.shape[1:]), pose_g)
            out[lv] = x.reshape(-1, *x.shape[2:])[inverse]
        return out


def build_fusion(cfg: FusionConfig, fpn_channels: Sequence[int]) -> Optional[CrossViewFusion]:
    """The fusion of ``cfg`` over FPN levels of ``fpn_channels``, or None when it is off."""
    if not cfg.enabled:
        return None
    return CrossViewFusion(fpn_channels, cfg.num_views, cfg.levels, cfg.num_heads, cfg.layers, cfg.mlp_ratio,
                           cfg.max_tokens, cfg.layer_scale_init, cfg.pose_embedding)


__all__ = ["POSE_DIM", "build_fusion", "CrossViewFusion", "FusionBlock", "LevelFusion", "topk_tokens"]
