"""Recurrent MaxViT backbone (RVT): per stage conv downsampling + LayerNorm, attention, ConvLSTM."""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import Tensor, nn

from evdet.models.convlstm import ConvLSTM2d, LstmState
from evdet.models.maxvit import AttentionImpl, MaxVitBlock
from evdet.models.modules.sites import StageModules

StageState = tuple[Tensor, ...]  # (h, c), plus (memory, valid) when the stage has temporal attention


class ConvDownsample(nn.Module):
    """Overlapping strided conv (no bias) then LayerNorm; (B, Cin, H, W) -> (B, H/s, W/s, Cout).

    Kernel (s - 1) * 2 + 1 with padding kernel // 2: 7x7/pad 3 for s = 4, 3x3/pad 1 for s = 2.
    """

    def __init__(self, dim_in: int, dim_out: int, stride: int) -> None:
        super().__init__()
        if stride not in (2, 4, 8):
            raise ValueError(f"downsample stride must be 2, 4 or 8, got {stride}")
        kernel = (stride - 1) * 2 + 1
        self.conv = nn.Conv2d(dim_in, dim_out, kernel, stride=stride, padding=kernel // 2, bias=False)
        self.norm = nn.LayerNorm(dim_out, eps=1e-5)

    def forward(self, x: Tensor) -> Tensor:
        return self.norm(self.conv(x).permute(0, 2, 3, 1))


class RecurrentStage(nn.Module):
    """Downsample -> MaxViT blocks (channels-last) -> ConvLSTM; the LSTM's h is the stage output, or
    `refine` (``StageModules``, architecture modules) turns it into the output."""

    def __init__(self, dim_in: int, dim: int, stride: int, num_heads: int, partition_size: tuple[int, int],
                 *, num_blocks: int = 1, attention_impl: AttentionImpl = "sdpa",
                 refine: Optional[StageModules] = None) -> None:
        super().__init__()
        self.downsample = ConvDownsample(dim_in, dim, stride)
        self.blocks = nn.ModuleList(
            MaxVitBlock(dim, num_heads, partition_size, skip_first_norm=(i == 0), attention_impl=attention_impl)
            for i in range(num_blocks))
        self.lstm = ConvLSTM2d(dim)
        self.refine = refine

    @property
    def num_state_tensors(self) -> int:
        """2 (h, c), plus the architecture modules' extra state tensors."""
        return 2 + (self.refine.num_extra_states if self.refine is not None else 0)

    def forward(self, x: Tensor, state: Optional[StageState] = None) -> tuple[Tensor, StageState]:
        """x (B, Cin, H, W), state (h, c, ...) or None -> (output (B, C, H/s, W/s), (h, c, ...))."""
        x = self.downsample(x)
        for block in self.blocks:
            x = block(x)
        lstm_state: Optional[LstmState] = None if state is None else (state[0], state[1])
        h, c = self.lstm(x.permute(0, 3, 1, 2), lstm_state)
        if self.refine is None:
            return h, (h, c)
        h_prev = torch.zeros_like(h) if state is None else state[0]
        y, extra = self.refine(h, h_prev, () if state is None else tuple(state[2:]))
        return y, (h, c, *extra)


class RecurrentBackbone(nn.Module):
    """Four recurrent stages with strides patch, 2, 2, 2 (total patch * 8).

    Args:
        in_channels: input channels (20 for a 10-bin stacked histogram).
        dims: channels per stage, e.g. (32, 64, 128, 256).
        num_heads: attention heads per stage.
        patch_size: stride of the first stage (4 or 2).
        partition_size: (P0, P1) window and grid size, shared by all stages.
    """

    def __init__(self, in_channels: int, dims: Sequence[int], num_heads: Sequence[int], patch_size: int,
                 partition_size: tuple[int, int], *, num_blocks: Sequence[int] = (1, 1, 1, 1),
                 attention_impl: AttentionImpl = "sdpa",
                 stage_modules: Optional[Sequence[Optional[StageModules]]] = None) -> None:
        super().__init__()
        if stage_modules is None:
            stage_modules = [None] * len(dims)
        if not (len(dims) == len(num_heads) == len(num_blocks) == len(stage_modules)):
            raise ValueError("backbone: dims, num_heads and num_blocks need one entry per stage")
        self.dims = tuple(int(d) for d in dims)
        self.partition_size = partition_size
        stages, strides = [], []
        stride, dim_in = 1, in_channels
        for i, (dim, heads, blocks, mods) in enumerate(zip(dims, num_heads, num_blocks, stage_modules)):
            factor = patch_size if i == 0 else 2
            stride *= factor
            stages.append(RecurrentStage(dim_in, dim, factor, heads, partition_size,
                                         num_blocks=blocks, attention_impl=attention_impl, refine=mods))
            strides.append(stride)
            dim_in = dim
        self.stages = nn.ModuleList(stages)
        self.strides = tuple(strides)

    def forward(self, x: Tensor, states: Optional[Sequence[Optional[StageState]]] = None
                ) -> tuple[list[Tensor], list[StageState]]:
        """x (B, Cin, H, W) padded -> (features per stage (B, C_i, H/s_i, W/s_i), new states per stage)."""
        if states is None:
            states = [None] * len(self.stages)
        if len(states) != len(self.stages):
            raise ValueError(f"backbone: expected {len(self.stages)} stage states, got {len(states)}")
        features, new_states = [], []
        for stage, state in zip(self.stages, states):
            x, new_state = stage(x, state)
            features.append(x)
            new_states.append(new_state)
        return features, new_states
