"""Augmentations: hand-computed box transforms, frames moved consistently with their boxes."""

import numpy as np
import pytest
import torch

from evdet.data.augment import IDENTITY, AugmentParams, augment_boxes, augment_frames, draw_augment
from evdet.data.config import AugmentConfig

H, W = 40, 100


def boxes(*rows):
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


def test_flip_boxes_by_hand():
    out, keep = augment_boxes(boxes([10, 5, 30, 15]), AugmentParams(flip=True), H, W)
    np.testing.assert_allclose(out, [[70, 5, 90, 15]])
    assert keep.tolist() == [True]


def test_zoom_in_boxes_by_hand():
    # zoom 2: crop (20, 50) at x0=10, y0=5, scaled by 2
    p = AugmentParams(zoom=2.0, x0_px=10, y0_px=5)
    out, keep = augment_boxes(boxes([20, 10, 40, 20], [55, 0, 70, 10], [0, 30, 5, 35]), p, H, W)
    np.testing.assert_allclose(out, [[20, 10, 60, 30], [90, 0, 100, 10]])
    assert keep.tolist() == [True, True, False]  # the third box lies outside the crop


def test_zoom_out_boxes_by_hand():
    # zoom 0.5: frame shrunk to (20, 50) and pasted at x0=30, y0=10
    p = AugmentParams(zoom=0.5, x0_px=30, y0_px=10)
    out, _ = augment_boxes(boxes([20, 10, 40, 20]), p, H, W)
    np.testing.assert_allclose(out, [[40, 15, 50, 20]])


def test_zoom_then_flip_by_hand():
    p = AugmentParams(zoom=0.5, x0_px=30, y0_px=10, flip=True)
    out, _ = augment_boxes(boxes([20, 10, 40, 20]), p, H, W)
    np.testing.assert_allclose(out, [[50, 15, 60, 20]])


def test_boxes_below_min_side_after_clipping_are_dropped():
    out, keep = augment_boxes(boxes([-10, 5, 0.5, 15]), IDENTITY, H, W, min_side_px=1.0)
    assert out.shape == (0, 4) and keep.tolist() == [False]


def block_frame(x1, y1, x2, y2):
    f = torch.zeros(1, 2, H, W)
    f[:, :, y1:y2, x1:x2] = 1.0
    return f


@pytest.mark.parametrize("params", [
    AugmentParams(flip=True),
    AugmentParams(zoom=2.0, x0_px=10, y0_px=5),
    AugmentParams(zoom=0.5, x0_px=30, y0_px=10),
    AugmentParams(zoom=0.5, x0_px=30, y0_px=10, flip=True),
])
def test_frames_move_with_their_boxes(params):
    # a block of counts and its box must land in the same place
    frame = block_frame(20, 10, 40, 20)
    moved = augment_frames(frame, params)[0, 0]
    (bx1, by1, bx2, by2), = augment_boxes(boxes([20, 10, 40, 20]), params, H, W)[0]
    ys, xs = np.nonzero(moved.numpy() > 0.5)
    assert xs.min() >= bx1 - 1 and xs.max() <= bx2 and ys.min() >= by1 - 1 and ys.max() <= by2
    assert abs(xs.mean() + 0.5 - (bx1 + bx2) / 2) < 1.0 and abs(ys.mean() + 0.5 - (by1 + by2) / 2) < 1.0


def test_flip_frames_mirror_columns():
    f = torch.rand(2, 4, H, W)
    np.testing.assert_array_equal(augment_frames(f, AugmentParams(flip=True)).numpy(), f.numpy()[..., ::-1])


def test_zoom_out_area_keeps_mean_counts_of_each_block():
    f = torch.arange(H * W, dtype=torch.float32).reshape(1, 1, H, W)
    out = augment_frames(f, AugmentParams(zoom=0.5, x0_px=0, y0_px=0))[0, 0]
    assert float(out[0, 0]) == pytest.approx(float(f[0, 0, :2, :2].mean()))
    assert float(out[20:, :].abs().sum()) == 0.0 and float(out[:, 50:].abs().sum()) == 0.0


def test_polarity_suppression_zeroes_one_half_of_the_channels():
    f = torch.rand(3, 6, 4, 5) + 0.1
    out = augment_frames(f, AugmentParams(suppress_polarity=1))
    assert float(out[:, 3:].abs().sum()) == 0.0
    torch.testing.assert_close(out[:, :3], f[:, :3])
    assert float(f[:, 3:].min()) > 0  # the input is not modified


def test_polarity_suppression_needs_even_channels():
    with pytest.raises(ValueError, match="even C"):
        augment_frames(torch.zeros(1, 3, 4, 4), AugmentParams(suppress_polarity=0))


def test_noise_adds_single_counts_at_about_the_density():
    f = torch.zeros(2, 4, 50, 50)
    p = AugmentParams(noise_seed=7, noise_density=0.1)
    out = augment_frames(f, p)
    assert set(out.unique().tolist()) <= {0.0, 1.0}
    assert 0.08 < float(out.mean()) < 0.12
    torch.testing.assert_close(out, augment_frames(f, p))  # the seed fixes the noise


def test_draw_respects_probabilities_and_stays_inside_the_frame():
    assert draw_augment(AugmentConfig(flip_prob=0.0), np.random.default_rng(0), H, W) == IDENTITY
    cfg = AugmentConfig(flip_prob=1.0, zoom_in_prob=1.0, zoom_in_max=3.0, polarity_suppression_prob=1.0,
                        noise_prob=1.0, noise_density=0.01)
    for seed in range(50):
        p = draw_augment(cfg, np.random.default_rng(seed), H, W)
        assert p.flip and 1.0 <= p.zoom <= 3.0 and p.suppress_polarity in (0, 1) and p.noise_seed is not None
        assert p.x0_px + round(W / p.zoom) <= W and p.y0_px + round(H / p.zoom) <= H
    out_cfg = AugmentConfig(flip_prob=0.0, zoom_out_prob=1.0, zoom_out_max=2.0)
    for seed in range(50):
        p = draw_augment(out_cfg, np.random.default_rng(seed), H, W)
        assert 0.5 <= p.zoom <= 1.0
        assert p.x0_px + round(W * p.zoom) <= W and p.y0_px + round(H * p.zoom) <= H
