"""Export-time substitutions: the same function as the detector, in a form ONNX Runtime runs faster on a CPU.

They replace modules of a deep copy of the detector before ``torch.onnx.export`` traces it; the
weights are the detector's, only the order of tensor operations changes (outputs agree to float32
rounding, checked in tests/deploy). Together they take ONNX Runtime's CPU time per tiny 640x360 frame
from 0.81x to 0.71x of RVT's own code (benchmarks/bench_onnx.py, same run); the first convolution
alone goes from 18 to 11 ms (one thread).

* ``SplitChannelConv`` (first convolution): ONNX Runtime's blocked (NCHWc) convolutions round the
  channel count up to a multiple of 16, so the 20-channel input becomes 32 channels (60% more
  work) plus a full-resolution reorder copy. Summing convolutions over channel groups of at most
  15 channels uses its direct NCHW-input kernel instead; the zero padding moves into each group's
  Pad, which the runtime fuses into the convolution.
* ``FastPartitionAttention`` (every window / grid attention): q, k and v from three projections
  of the whole map, each reshaped straight into (partitions, heads, tokens, head_dim) with ONE
  transpose, and the attention output transposed straight back to the map before the output
  projection (projections act per token, so they commute with partitioning). The traced
  original needs a partition transpose, a (3, heads) transpose of qkv, a split, a head
  transpose and an inverse partition transpose per block.
* ``FastConvLSTM`` (every ConvLSTM cell): one 1x1 convolution per gate instead of one for all
  four gates followed by slicing copies.
"""

from __future__ import annotations

import copy
import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from evdet.models.convlstm import ConvLSTM2d, LstmState
from evdet.models.detector import Detector, padded_size
from evdet.models.maxvit import PartitionAttention

MAX_DIRECT_CHANNELS = 15  # ONNX Runtime (MLAS) uses its NCHW-input convolution below the NCHWc block of 16


class SplitChannelConv(nn.Module):
    """conv(pad(x)) as a sum of convolutions over channel groups of at most 15 channels.

    Args:
        conv: the bias-free first convolution (its stride and symmetric padding are kept).
        extra_hw: zero rows / columns added at the bottom / right first (the detector's input padding).
    """

    def __init__(self, conv: nn.Conv2d, extra_hw: tuple[int, int]) -> None:
        super().__init__()
        if conv.bias is not None or conv.groups != 1:
            raise ValueError("SplitChannelConv: expects a plain convolution without bias")
        groups = math.ceil(conv.in_channels / MAX_DIRECT_CHANNELS)
        base, extra = divmod(conv.in_channels, groups)
        self.sizes = [base + (i < extra) for i in range(groups)]
        self.weights = nn.ParameterList(nn.Parameter(w.detach().clone(), requires_grad=False)
                                        for w in torch.split(conv.weight, self.sizes, dim=1))
        self.stride = conv.stride
        p_h, p_w = conv.padding
        self.pad = (p_w, p_w + extra_hw[1], p_h, p_h + extra_hw[0])  # F.pad order: left, right, top, bottom

    def forward(self, x: Tensor) -> Tensor:
        parts = torch.split(x, self.sizes, dim=1)
        out = None
        for part, weight in zip(parts, self.weights):
            y = F.conv2d(F.pad(part, self.pad), weight, stride=self.stride)
            out = y if out is None else out + y
        return out


class FastPartitionAttention(nn.Module):
    """A PartitionAttention block (window or grid) with fewer copies; same weights, same function."""

    def __init__(self, block: PartitionAttention) -> None:
        super().__init__()
        attn = block.attn
        self.kind = block.kind
        self.partition_size = block.partition_size
        self.heads, self.head_dim = attn.num_heads, attn.head_dim
        self.norm1, self.ls1, self.norm2, self.mlp, self.ls2 = block.norm1, block.ls1, block.norm2, block.mlp, block.ls2
        self.proj = attn.proj
        # qkv rows are (3, heads, head_dim): q rows first, then k, then v
        self.q, self.k, self.v = (nn.Linear(attn.qkv.in_features, attn.qkv.out_features // 3) for _ in range(3))
        with torch.no_grad():
            for lin, w, b in zip((self.q, self.k, self.v), attn.qkv.weight.chunk(3, 0), attn.qkv.bias.chunk(3)):
                lin.weight.copy_(w)
                lin.bias.copy_(b)

    def _partition(self, t: Tensor) -> Tensor:
        """(B, H, W, C) -> (B * partitions, heads, P0 * P1, head_dim)."""
        b, h, w, _ = t.shape
        p0, p1 = self.partition_size
        if self.kind == "window":
            t = t.reshape(b, h // p0, p0, w // p1, p1, self.heads, self.head_dim).permute(0, 1, 3, 5, 2, 4, 6)
        else:
            t = t.reshape(b, p0, h // p0, p1, w // p1, self.heads, self.head_dim).permute(0, 2, 4, 5, 1, 3, 6)
        return t.reshape(-1, self.heads, p0 * p1, self.head_dim)

    def _reverse(self, t: Tensor, b: int, h: int, w: int) -> Tensor:
        """(B * partitions, heads, P0 * P1, head_dim) -> (B, H, W, C)."""
        p0, p1 = self.partition_size
        t = t.reshape(b, h // p0, w // p1, self.heads, p0, p1, self.head_dim)
        order = (0, 1, 4, 2, 5, 3, 6) if self.kind == "window" else (0, 4, 1, 5, 2, 3, 6)
        return t.permute(*order).reshape(b, h, w, self.heads * self.head_dim)

    def forward(self, x: Tensor) -> Tensor:
        """(B, H, W, C) -> (B, H, W, C)."""
        b, h, w, _ = x.shape
        y = self.norm1(x)
        q, k, v = (self._partition(lin(y)) for lin in (self.q, self.k, self.v))
        attended = self._reverse(F.scaled_dot_product_attention(q, k, v), b, h, w)
        x = x + self.ls1(self.proj(attended))
        return x + self.ls2(self.mlp(self.norm2(x)))


class FastConvLSTM(nn.Module):
    """A ConvLSTM2d cell (without depthwise conv) with one 1x1 convolution per gate; same weights."""

    def __init__(self, cell: ConvLSTM2d) -> None:
        super().__init__()
        if not isinstance(cell.dws, nn.Identity):
            raise ValueError("FastConvLSTM: cells with a depthwise convolution are exported as they are")
        dim = cell.dim
        # conv1x1 output rows: forget, input, output gates, then the cell input
        self.gates = nn.ModuleList(nn.Conv2d(2 * dim, dim, 1) for _ in range(4))
        with torch.no_grad():
            for conv, w, b in zip(self.gates, cell.conv1x1.weight.chunk(4, 0), cell.conv1x1.bias.chunk(4)):
                conv.weight.copy_(w)
                conv.bias.copy_(b)

    def forward(self, x: Tensor, state: LstmState) -> LstmState:
        h_prev, c_prev = state
        xh = torch.cat([x, h_prev], dim=1)
        forget_gate, input_gate, output_gate = (torch.sigmoid(conv(xh)) for conv in self.gates[:3])
        c = forget_gate * c_prev + input_gate * torch.tanh(self.gates[3](xh))
        return output_gate * torch.tanh(c), c


def rewrite_for_export(detector: Detector, input_hw: tuple[int, int]) -> Detector:
    """A deep copy of the detector with the substitutions above and its input padding moved into the
    first convolution: call its backbone on the UNPADDED frame."""
    det = copy.deepcopy(detector).eval()
    extra_hw = (padded_size(input_hw[0], det.pad_multiple) - input_hw[0],
                padded_size(input_hw[1], det.pad_multiple) - input_hw[1])
    first = det.backbone.stages[0].downsample
    first.conv = SplitChannelConv(first.conv, extra_hw)
    for stage in det.backbone.stages:
        if isinstance(stage.lstm.dws, nn.Identity):
            stage.lstm = FastConvLSTM(stage.lstm)
        for block in stage.blocks:
            block.window = FastPartitionAttention(block.window)
            block.grid = FastPartitionAttention(block.grid)
    return det
