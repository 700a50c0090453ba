"""Multi-resolution data: exact box scaling, block sums, draws shared by a batch / an epoch."""

import pytest
import torch

from evdet.data.config import MultiResConfig
from evdet.data.multires import canvas_size, draw_scale, resize_counts, scale_targets, scaled_hw


def test_boxes_scale_exactly_at_2x_and_half():
    t = torch.tensor([[1.0, 10.0, 20.0, 4.0, 6.0], [0.0, 0.5, 0.25, 1.0, 2.0]])
    assert scale_targets(t, 2.0, 2.0).tolist() == [[1.0, 20.0, 40.0, 8.0, 12.0], [0.0, 1.0, 0.5, 2.0, 4.0]]
    assert scale_targets(t, 0.5, 0.5).tolist() == [[1.0, 5.0, 10.0, 2.0, 3.0], [0.0, 0.25, 0.125, 0.5, 1.0]]
    assert scaled_hw(720, 1280, 0.5) == (360, 640) and scaled_hw(360, 640, 2.0) == (720, 1280)


def test_sum_resampling_at_half_is_the_clipped_2x2_block_sum():
    f = torch.randint(0, 6, (2, 4, 6, 8)).float()
    naive = f.reshape(2, 4, 3, 2, 4, 2).sum(dim=(3, 5)).clamp(max=10)
    torch.testing.assert_close(resize_counts(f, (3, 4), "sum", 10), naive)
    # nearest-exact at 0.5 keeps pixel (2i+1, 2j+1), as RVT's ds2_nearest
    near = resize_counts(f, (3, 4), "nearest", 10)
    torch.testing.assert_close(near, f[:, :, 1::2, 1::2])
    up = resize_counts(f, (12, 16), "sum", 10)
    torch.testing.assert_close(up[:, :, ::2, ::2], f)   # up-scaling duplicates pixels
    assert resize_counts(f, (6, 8), "sum", 10) is f


def test_draws_are_fixed_by_their_key_and_cover_the_choices():
    cfg = MultiResConfig(scales=(0.5, 1.0))
    assert draw_scale(cfg, (0, 1, 2)) == draw_scale(cfg, (0, 1, 2))
    assert {draw_scale(cfg, (s,)) for s in range(50)} == {0.5, 1.0}
    jit = MultiResConfig(scales=(1.0,), jitter=(0.8, 1.2))
    vals = [draw_scale(jit, (s,)) for s in range(200)]
    assert 0.8 <= min(vals) < 0.85 and 1.15 < max(vals) <= 1.2
    assert draw_scale(MultiResConfig(), (0,)) == 1.0
    with pytest.raises(ValueError, match="data.multires.jitter"):
        draw_scale(MultiResConfig(scales=(1.0,), jitter=(1.2, 0.8)), (0,))


def test_canvas_is_the_next_multiple():
    assert canvas_size(360, 640, (192, 320)) == (384, 640)
    assert canvas_size(400, 700, (192, 320)) == (576, 960)
    assert canvas_size(384, 640, (192, 320)) == (384, 640)
