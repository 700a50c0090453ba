"""Window / grid partitions and attention blocks."""

import pytest
import torch

from evdet.models.maxvit import (PartitionAttention, SelfAttention, grid_partition, grid_reverse,
                                 set_attention_impl, window_partition, window_reverse)


def coords_map(h, w):
    """(1, H, W, 2) map whose channels are the (row, col) of each pixel."""
    rows, cols = torch.meshgrid(torch.arange(h), torch.arange(w), indexing="ij")
    return torch.stack([rows, cols], -1)[None].float()


def test_window_partition_holds_contiguous_tiles():
    x = coords_map(4, 6)
    windows = window_partition(x, (2, 3))  # 2 x 2 windows of 2 x 3 tokens
    assert windows.shape == (4, 6, 2)
    # window 1 is the top-right tile: rows 0-1, cols 3-5, row-major inside.
    expected = [[r, c] for r in (0, 1) for c in (3, 4, 5)]
    assert windows[1].tolist() == expected
    assert torch.equal(window_reverse(windows, (2, 3), (4, 6)), x)


def test_grid_partition_holds_strided_tokens():
    x = coords_map(4, 6)
    grids = grid_partition(x, (2, 3))  # grid cell size (4/2, 6/3) = (2, 2): 4 partitions
    assert grids.shape == (4, 6, 2)
    # partition 0 takes rows {0, 2} and cols {0, 2, 4}; partition 1 starts at col 1.
    assert grids[0].tolist() == [[r, c] for r in (0, 2) for c in (0, 2, 4)]
    assert grids[1].tolist() == [[r, c] for r in (0, 2) for c in (1, 3, 5)]
    assert torch.equal(grid_reverse(grids, (2, 3), (4, 6)), x)


def test_sdpa_equals_manual_softmax():
    torch.manual_seed(0)
    attn = SelfAttention(16, 2)
    x = torch.randn(3, 12, 16)
    fast = attn(x)
    attn.impl = "manual"
    slow = attn(x)
    assert torch.allclose(fast, slow, atol=1e-5)


def _perturb_effect(kind):
    torch.manual_seed(0)
    block = PartitionAttention(8, 2, (2, 2), kind, ls_init=1.0).eval()
    x = torch.randn(1, 4, 4, 8)
    y = x.clone()
    y[0, 0, 0] += torch.randn(8)  # not a constant shift, which LayerNorm would erase
    return (block(y) - block(x)).abs().sum(-1)[0] > 1e-6


def test_window_attention_is_local_and_grid_attention_dilated():
    changed = _perturb_effect("window")
    # a token at (0, 0) only influences its own 2 x 2 window
    expected = torch.zeros(4, 4, dtype=torch.bool)
    expected[:2, :2] = True
    assert torch.equal(changed, expected)
    changed = _perturb_effect("grid")
    expected = torch.zeros(4, 4, dtype=torch.bool)
    expected[::2, ::2] = True
    assert torch.equal(changed, expected)


def test_partition_size_must_divide_map():
    block = PartitionAttention(8, 1, (3, 3), "window")
    with pytest.raises(ValueError, match="not divisible"):
        block(torch.zeros(1, 4, 4, 8))


def test_set_attention_impl_rejects_unknown():
    with pytest.raises(ValueError, match="attention_impl"):
        set_attention_impl(SelfAttention(8, 1), "flash")
