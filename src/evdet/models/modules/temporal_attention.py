"""Temporal attention beside the ConvLSTM: each chosen stage keeps its last K outputs and fuses them with
the current one by per-pixel attention, the query from the current step.

With h the current LSTM output (B, C, H, W), memory m_1..m_K (oldest first) and valid flags v_j:

    q = Wq h,  keys k_0 = Wk h, k_j = Wk m_j,  values u_0 = Wv h, u_j = Wv m_j      (1x1 convs)
    a_j(p) = softmax_j(q(p) . k_j(p) / sqrt(d))   over j = 0 (the current step) and the valid m_j
    y = h + Wo sum_j a_j u_j                                                       (Wo zero-initialised)

The memory is recurrent state: (B, K, C, H, W) plus valid flags (B, K), zeros (empty) at a sequence start,
carried, detached and checkpointed with the LSTM's (h, c); after the step h enters it as the newest entry.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn


class TemporalAttention(nn.Module):
    """Attention over the current output and a memory of the last K outputs of one stage.

    Args:
        channels: C. memory: K >= 1. key_dim: d, query / key channels.
    """

    def __init__(self, channels: int, memory: int, key_dim: int = 16) -> None:
        super().__init__()
        if memory < 1:
            raise ValueError(f"model.modules.temporal_attention.memory must be >= 1, got {memory}")
        if key_dim < 1:
            raise ValueError(f"model.modules.temporal_attention.key_dim must be >= 1, got {key_dim}")
        self.memory, self.key_dim = int(memory), int(key_dim)
        self.query = nn.Conv2d(channels, key_dim, 1)
        self.key = nn.Conv2d(channels, key_dim, 1)
        self.value = nn.Conv2d(channels, channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def empty_memory(self, h: Tensor) -> tuple[Tensor, Tensor]:
        """Zero memory (B, K, C, H, W) and valid flags (B, K) for outputs shaped like h (a sequence start)."""
        b = h.shape[0]
        return h.new_zeros(b, self.memory, *h.shape[1:]), h.new_zeros(b, self.memory)

    def forward(self, h: Tensor, memory: Tensor, valid: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """h (B, C, H, W), memory (B, K, C, H, W), valid (B, K) in {0, 1} -> (fused y, new memory, new valid)."""
        b, k = memory.shape[:2]
        entries = torch.cat([h[:, None], memory], dim=1)                           # (B, 1 + K, C, H, W)
        flat = entries.flatten(0, 1)
        keys = self.key(flat).unflatten(0, (b, k + 1))                               # (B, 1 + K, d, H, W)
        values = self.value(flat).unflatten(0, (b, k + 1))                           # (B, 1 + K, C, H, W)
        q = self.query(h)[:, None]                                                   # (B, 1, d, H, W)
        logits = (q * keys).sum(dim=2) / math.sqrt(self.key_dim)                     # (B, 1 + K, H, W)
        allowed = torch.cat([valid.new_ones(b, 1), valid], dim=1)[:, :, None, None]  # the current step always
        logits = logits.masked_fill(allowed <= 0, float("-inf"))
        weights = torch.softmax(logits, dim=1)
        fused = (weights[:, :, None] * values).sum(dim=1)                            # (B, C, H, W)
        y = h + self.out(fused)
        new_memory = torch.cat([memory[:, 1:], h[:, None]], dim=1)
        new_valid = torch.cat([valid[:, 1:], valid.new_ones(b, 1)], dim=1)
        return y, new_memory, new_valid
