"""Augmentations: hand-computed box transforms, frames moved consistently with their boxes."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from evdet.data.augment import IDENTITY, AugmentParams, augment_boxes, augment_frames, draw_augment, place_zoom_crop
from evdet.data.config import AugmentConfig

H, W = 40, 100


def boxes(*rows):
    return np.array(rows, dtype=np.float64).reshape(-1, 4)


def test_flip_boxes_by_hand_both_conventions():
    out, keep = augment_boxes(boxes([10, 5, 30, 15]), AugmentParams(flip=True), H, W)
    np.testing.assert_allclose(out, [[69, 5, 89, 15]])          # RVT: x' = W - 1 - x - w = 100 - 1 - 10 - 20
    assert keep.tolist() == [True]
    out, _ = augment_boxes(boxes([10, 5, 30, 15]), AugmentParams(flip=True, flip_convention="mirror"), H, W)
    np.testing.assert_allclose(out, [[70, 5, 90, 15]])          # exact mirror of pixel edges 10..30


def test_flipped_pixels_land_on_the_mirror_convention():
    """torch.flip maps column i to W - 1 - i: columns 10..29 go to 70..89, edges [70, 90] (RVT's box: 69)."""
    moved = augment_frames(block_frame(10, 5, 30, 15), AugmentParams(flip=True))[0, 0].numpy()
    cols = np.flatnonzero(moved.sum(0))
    assert (cols.min(), cols.max() + 1) == (70, 90)


def test_zoom_in_boxes_by_hand_rvt_arithmetic():
    # z = 2 at (10, 5): window (H/2, W/2) = (20, 50); right edge min(10 + 50, 99) = 60, bottom min(25, 39) = 25;
    # boxes clamped to [10, 59] x [5, 24], shifted, scaled by 2, right / bottom edge clamped to 99 / 39
    p = AugmentParams(zoom=2.0, x0_px=10, y0_px=5)
    out, keep = augment_boxes(boxes([20, 10, 40, 20], [55, 0, 70, 10], [0, 30, 5, 35]), p, H, W)
    np.testing.assert_allclose(out, [[20, 10, 60, 30], [90, 0, 98, 10]])
    assert keep.tolist() == [True, True, False]  # the third box is flat once clamped to the window


def test_zoom_out_boxes_by_hand_rvt_arithmetic():
    # z = 2 pasted at (30, 10): boxes scaled by 1/2 into a (20, 50) frame, right / bottom edge <= 49 / 19
    p = AugmentParams(zoom_out=2.0, x0_px=30, y0_px=10)
    out, _ = augment_boxes(boxes([20, 10, 40, 20], [80, 30, 100, 40]), p, H, W)
    np.testing.assert_allclose(out, [[40, 15, 50, 20], [70, 25, 79, 29]])


def test_flip_then_zoom_out_by_hand():
    # RVT flips first: x = 99 - 20 - 20 = 59, then x / 2 + 30 = 59.5, (59 + 20) / 2 + 30 = 69.5
    p = AugmentParams(zoom_out=2.0, x0_px=30, y0_px=10, flip=True)
    out, _ = augment_boxes(boxes([20, 10, 40, 20]), p, H, W)
    np.testing.assert_allclose(out, [[59.5, 15, 69.5, 20]])


def test_flat_boxes_after_clipping_are_dropped():
    out, keep = augment_boxes(boxes([-10, 5, 0.0, 15], [0, 5, 0.5, 15]), IDENTITY, H, W)
    assert keep.tolist() == [False, True] and out.shape == (1, 4)


def test_label_centred_window_contains_the_box():
    # box x 10..30, window int(100 / 2) = 50: corner in [max(30 - 50, 0), min(10 + 50, 99) - 50] = [0, 10];
    # y 5..15, window 20: [0, min(5 + 20, 39) - 20] = [0, 5]
    xs, ys = set(), set()
    for seed in range(200):
        p = place_zoom_crop(AugmentParams(zoom=2.0, crop_seed=seed), np.array([[10.0, 5, 20, 10]]), H, W)
        assert p.crop_seed is None and 0 <= p.x0_px <= 10 and 0 <= p.y0_px <= 5
        xs.add(p.x0_px)
        ys.add(p.y0_px)
    assert len(xs) >= 10 and len(ys) >= 5        # the whole valid range is reached
    assert place_zoom_crop(AugmentParams(zoom=2.0, crop_seed=1), None, H, W).zoom == 1.0  # no box: no zoom


@pytest.mark.parametrize("pick, last_reachable", [("rvt", False), ("any", True)])
def test_rvt_never_centres_on_the_last_box(pick, last_reachable):
    # zoom 10: window 10 wide; box 0 at x 2 gives corners [0, 2], box 2 at x 90 gives [81, 89]
    three = np.array([[2.0, 1, 1, 1], [50, 1, 1, 1], [90, 1, 1, 1]])
    corners = {place_zoom_crop(AugmentParams(zoom=10.0, crop_seed=s, label_pick=pick), three, H, W).x0_px
               for s in range(200)}
    assert any(c <= 2 for c in corners)
    assert any(c >= 81 for c in corners) == last_reachable


def _nearest_exact(src: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    """Plain-loop oracle: out[i, j] = src[floor((i + 0.5) * h / out_h), floor((j + 0.5) * w / out_w)]."""
    h, w = src.shape
    out = np.zeros((out_h, out_w), src.dtype)
    for i in range(out_h):
        for j in range(out_w):
            out[i, j] = src[min(int((i + 0.5) * h / out_h), h - 1), min(int((j + 0.5) * w / out_w), w - 1)]
    return out


def test_zoom_resampling_is_nearest_exact():
    f = torch.arange(H * W, dtype=torch.float32).reshape(1, 1, H, W)
    zin = augment_frames(f, AugmentParams(zoom=1.3, x0_px=7, y0_px=3))[0, 0].numpy()
    crop = f[0, 0, 3 : 3 + int(H / 1.3), 7 : 7 + int(W / 1.3)].numpy()
    np.testing.assert_array_equal(zin, _nearest_exact(crop, H, W))
    zout = augment_frames(f, AugmentParams(zoom_out=1.2, x0_px=5, y0_px=2))[0, 0].numpy()
    small_h, small_w = int(H / 1.2), int(W / 1.2)                 # 33 x 83
    np.testing.assert_array_equal(zout[2 : 2 + small_h, 5 : 5 + small_w], _nearest_exact(f[0, 0].numpy(), small_h, small_w))
    assert zout.sum() == zout[2 : 2 + small_h, 5 : 5 + small_w].sum()  # nothing outside the pasted frame


def block_frame(x1, y1, x2, y2):
    f = torch.zeros(1, 2, H, W)
    f[:, :, y1:y2, x1:x2] = 1.0
    return f


@pytest.mark.parametrize("params", [
    AugmentParams(flip=True, flip_convention="mirror"),
    AugmentParams(zoom=2.0, x0_px=10, y0_px=5),
    AugmentParams(zoom_out=2.0, x0_px=30, y0_px=10),
    AugmentParams(zoom_out=2.0, x0_px=30, y0_px=10, flip=True, flip_convention="mirror"),
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


def test_smooth_zoom_out_area_keeps_mean_counts_of_each_block():
    f = torch.arange(H * W, dtype=torch.float32).reshape(1, 1, H, W)
    out = augment_frames(f, AugmentParams(zoom_out=2.0, x0_px=0, y0_px=0, resample="smooth"))[0, 0]
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
                        noise_prob=1.0, noise_density=0.01, zoom_crop="uniform")
    for seed in range(50):
        p = draw_augment(cfg, np.random.default_rng(seed), H, W)
        assert p.flip and 1.0 <= p.zoom <= 3.0 and p.suppress_polarity in (0, 1) and p.noise_seed is not None
        assert p.x0_px + int(W / p.zoom) <= W and p.y0_px + int(H / p.zoom) <= H
    out_cfg = AugmentConfig(flip_prob=0.0, zoom_out_prob=1.0, zoom_out_max=2.0)
    for seed in range(50):
        p = draw_augment(out_cfg, np.random.default_rng(seed), H, W)
        assert 1.0 <= p.zoom_out <= 2.0 and p.zoom == 1.0
        assert p.x0_px + int(W / p.zoom_out) <= W and p.y0_px + int(H / p.zoom_out) <= H


def test_rvt_zoom_rates_per_sampling_mode():
    """RVT: random 0.8 x (8 in : 2 out) -> 0.64 / 0.16; streams: out 0.5, never in."""
    cfg = AugmentConfig(zoom_in_prob=0.64, zoom_out_prob=0.16, stream_zoom_out_prob=0.5)
    rnd = [draw_augment(cfg, np.random.default_rng(s), H, W) for s in range(4000)]
    assert abs(np.mean([p.zoom > 1 for p in rnd]) - 0.64) < 0.025
    assert abs(np.mean([p.zoom_out > 1 for p in rnd]) - 0.16) < 0.02
    assert all(p.crop_seed is not None for p in rnd if p.zoom > 1)   # placed around a label later
    streams = [draw_augment(cfg, np.random.default_rng(s), H, W, stream=True) for s in range(4000)]
    assert all(p.zoom == 1.0 for p in streams)
    assert abs(np.mean([p.zoom_out > 1 for p in streams]) - 0.5) < 0.03
    with pytest.raises(ValueError, match="exceeds 1"):
        AugmentConfig(zoom_in_prob=0.9, zoom_out_prob=0.2)


@settings(max_examples=40, deadline=None)
@given(flip=st.booleans(), zoom=st.sampled_from([1.0, 1.3, 1.5]), zoom_out=st.sampled_from([1.0, 1.2, 2.0]),
       suppress=st.sampled_from([None, 0, 1]), fx=st.floats(0, 1), fy=st.floats(0, 1),
       resample=st.sampled_from(["nearest-exact", "smooth"]), noise=st.booleans())
def test_uint8_frames_augment_to_the_same_counts_as_float_frames(flip, zoom, zoom_out, suppress, fx, fy, resample,
                                                                 noise):
    # the loader keeps stored uint8 counts as uint8 exactly when the float path gives the same integers
    from evdet.data.augment import keeps_integer_counts

    zoom_out = 1.0 if zoom > 1.0 else zoom_out           # zoom in and out exclude each other
    factor = max(zoom, zoom_out)                          # the window (in) or pasted frame (out) fits the frame
    x0, y0 = int(fx * (16 - int(16 / factor))), int(fy * (12 - int(12 / factor)))
    p = AugmentParams(flip=flip, zoom=zoom, zoom_out=zoom_out, x0_px=x0, y0_px=y0, suppress_polarity=suppress,
                      resample=resample, noise_seed=3 if noise else None, noise_density=0.2 if noise else 0.0)
    counts = torch.from_numpy(np.random.default_rng(0).integers(0, 256, (2, 4, 12, 16), dtype=np.uint8))
    expected = augment_frames(counts.float(), p)
    integral = bool(torch.equal(expected, expected.round()) and expected.max() <= 255)
    if keeps_integer_counts(p):
        got = augment_frames(counts, p)
        assert got.dtype == torch.uint8 and torch.equal(got.float(), expected)
    else:
        assert noise or (resample == "smooth" and (zoom > 1.0 or zoom_out > 1.0))
    if not integral:
        assert not keeps_integer_counts(p)


@settings(max_examples=30, deadline=None)
@given(flip=st.booleans(), zoom=st.sampled_from([1.0, 1.25, 1.5]), zoom_out=st.sampled_from([1.0, 1.5]),
       suppress=st.sampled_from([None, 1]), fx=st.floats(0, 1), fy=st.floats(0, 1))
def test_frames_written_into_a_batch_slot_equal_rvts_order_of_operations(flip, zoom, zoom_out, suppress, fx, fy):
    # reference: RVT's order written out here (flip the frames, crop the window, nearest-exact resize)
    import torch.nn.functional as F

    zoom_out = 1.0 if zoom > 1.0 else zoom_out
    factor = max(zoom, zoom_out)
    x0, y0 = int(fx * (16 - int(16 / factor))), int(fy * (12 - int(12 / factor)))
    p = AugmentParams(flip=flip, zoom=zoom, zoom_out=zoom_out, x0_px=x0, y0_px=y0, suppress_polarity=suppress)
    counts = torch.from_numpy(np.random.default_rng(1).integers(0, 256, (2, 4, 12, 16), dtype=np.uint8))
    ref = torch.flip(counts, dims=[-1]) if flip else counts.clone()
    if zoom > 1.0:
        ref = F.interpolate(ref[:, :, y0 : y0 + int(12 / zoom), x0 : x0 + int(16 / zoom)], size=(12, 16),
                            mode="nearest-exact")
    elif zoom_out > 1.0:
        small = F.interpolate(ref, size=(int(12 / zoom_out), int(16 / zoom_out)), mode="nearest-exact")
        ref = torch.zeros_like(ref)
        ref[:, :, y0 : y0 + small.shape[2], x0 : x0 + small.shape[3]] = small
    if suppress is not None:
        ref[:, 2:] = 0
    batch = torch.full((3, 2, 4, 12, 16), 7, dtype=torch.uint8)      # slot 1 of a batch, neighbours untouched
    got = augment_frames(counts, p, out=batch[1])
    assert got.data_ptr() == batch[1].data_ptr() and torch.equal(batch[1], ref)
    assert torch.equal(augment_frames(counts, p), ref)
    assert (batch[0] == 7).all() and (batch[2] == 7).all()
