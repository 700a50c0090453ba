"""Augmentation of event representations and their boxes, with RVT's semantics by default.

Parameters are drawn once (``draw_augment``) and applied to every step of a sample, so that a
stream keeps one geometry for a whole sequence and a random window keeps it over its ``seq_len``
steps. RVT (``data/utils/augmentor.py``, ``data/genx_utils/labels.py``, ``config/dataset/base.yaml``):

- random samples: flip with 0.5; zoom with 0.8, in or out with weights 8 : 2 (P(in) = 0.64,
  P(out) = 0.16), factors uniform in [1, 1.5] (in) and [1, 1.2] (out). Streams: flip 0.5, zoom
  out with 0.5, never in (``stream=True``).
- order: flip, then zoom. Flip moves a box to ``x' = W - 1 - x - w`` (``flip_convention="rvt"``,
  RVT's label convention, 1 px left of the exact mirror ``W - x - w`` that ``"mirror"`` gives).
- zoom in by z: a window of ``(int(H / z), int(W / z))`` pixels whose top-left corner is drawn so
  that the window holds one box of the latest labelled step (``zoom_crop="label"``; the box is
  ``randint(0, n - 1)``, never the last of n >= 2 boxes, as RVT's code does, or any box with
  ``zoom_label_pick="any"``; no box: no zoom), resized to (H, W) with ``nearest-exact``. Boxes
  are clamped to the window (right / bottom edge one pixel inside), shifted, scaled by z and
  clamped to ``W - 1`` / ``H - 1``; flat ones dropped.
- zoom out by z: the frame resized to ``(int(H / z), int(W / z))`` (``nearest-exact``) and pasted
  at a uniform integer corner into an empty frame; boxes scaled by 1 / z (right / bottom edge
  clamped one pixel inside the small frame) and shifted.

``zoom_resample="smooth"`` (bilinear in, area out) and ``zoom_crop="uniform"`` are evdet's
earlier choices, kept by name. Boxes are finally clipped to the frame and dropped when flat.

Frames are float tensors ``(T, C, H, W)`` of counts; channels are polarity-major (first half
polarity 0), as in the stacked histogram. Boxes are ``(n, 4)`` corner arrays x1, y1, x2, y2 in
pixels of the same frame.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal, Optional

import numpy as np
import torch
import torch.nn.functional as F

from evdet.data.config import AugmentConfig


@dataclass(frozen=True)
class AugmentParams:
    """One draw of the augmentations.

    Attributes:
        flip: mirror left-right (before zoom, as RVT).
        zoom: 1 = none; > 1 zoom in by this factor (crop an (int(H/zoom), int(W/zoom)) window at
            (x0_px, y0_px) and resize it up to (H, W)).
        zoom_out: 1 = none; > 1 zoom out by this factor (shrink to (int(H/f), int(W/f)) and paste at
            (x0_px, y0_px) into an empty frame). Zoom in and out exclude each other.
        x0_px, y0_px: crop origin (zoom in) or paste origin (zoom out), integer pixels.
        crop_seed: zoom in around a box: the seed of that draw (``place_zoom_crop``), None once placed.
        flip_convention, resample: see ``AugmentConfig``.
        suppress_polarity: None, or 0 / 1: zero the channels of that polarity.
        noise_seed: None, or the seed of the noise counts added to every step.
        noise_density: fraction of pixels per channel and step that receive one noise count.
    """

    flip: bool = False
    zoom: float = 1.0
    x0_px: int = 0
    y0_px: int = 0
    suppress_polarity: Optional[int] = None
    noise_seed: Optional[int] = None
    noise_density: float = 0.0
    zoom_out: float = 1.0
    crop_seed: Optional[int] = None
    flip_convention: Literal["rvt", "mirror"] = "rvt"
    resample: Literal["nearest-exact", "smooth"] = "nearest-exact"
    label_pick: Literal["rvt", "any"] = "rvt"


IDENTITY = AugmentParams()


def draw_augment(cfg: AugmentConfig, rng: np.random.Generator, height: int, width: int,
                 stream: bool = False) -> AugmentParams:
    """Draw one set of parameters from the configured probabilities.

    Random samples: zoom in with ``zoom_in_prob``, else zoom out with ``zoom_out_prob`` (one draw,
    so these are the stated probabilities); streams (``stream=True``): zoom out with
    ``stream_zoom_out_prob``, never in. Factors are uniform in [1, max]. A label-centred zoom-in
    window is placed later, when the boxes are known (``place_zoom_crop``).
    """
    flip = bool(rng.random() < cfg.flip_prob)
    zoom, zoom_out, x0, y0, crop_seed = 1.0, 1.0, 0, 0, None
    p_in = 0.0 if stream else cfg.zoom_in_prob
    p_out = cfg.stream_zoom_out_prob if stream else cfg.zoom_out_prob
    u = rng.random() if p_in + p_out > 0 else 1.0
    if u < p_in and cfg.zoom_in_max > 1:
        zoom = float(rng.uniform(1.0, cfg.zoom_in_max))
        crop_h, crop_w = _window(height, width, zoom)
        if cfg.zoom_crop == "label":
            crop_seed = int(rng.integers(0, 2**31 - 1))
        else:
            y0, x0 = int(rng.integers(0, height - crop_h + 1)), int(rng.integers(0, width - crop_w + 1))
    elif p_in <= u < p_in + p_out and cfg.zoom_out_max > 1:
        zoom_out = float(rng.uniform(1.0, cfg.zoom_out_max))
        small_h, small_w = _window(height, width, zoom_out)
        x0 = int(rng.uniform(0, width - small_w))     # RVT: int(uniform(0, W - w)), as torch_uniform_sample_scalar
        y0 = int(rng.uniform(0, height - small_h))
    suppress = None
    if cfg.polarity_suppression_prob > 0 and rng.random() < cfg.polarity_suppression_prob:
        suppress = int(rng.integers(0, 2))
    noise_seed = None
    if cfg.noise_prob > 0 and rng.random() < cfg.noise_prob:
        noise_seed = int(rng.integers(0, 2**31 - 1))
    # with noise_rate_hz > 0 the noise is background activity (evdet.data.event_augment), not the density form
    density = cfg.noise_density if noise_seed is not None and cfg.noise_rate_hz == 0 else 0.0
    return AugmentParams(flip, zoom, x0, y0, suppress, noise_seed, density, zoom_out, crop_seed,
                         cfg.flip_convention, cfg.zoom_resample, cfg.zoom_label_pick)


def _window(height: int, width: int, factor: float) -> tuple[int, int]:
    """(int(H / factor), int(W / factor)), at least 1 pixel each (RVT truncates)."""
    return max(1, int(height / factor)), max(1, int(width / factor))


def place_zoom_crop(p: AugmentParams, xywh: Optional[np.ndarray], height: int, width: int) -> AugmentParams:
    """Place a label-centred zoom-in window (RVT's ``randomly_sample_zoom_window_from_objframe``).

    Args:
        p: parameters whose ``crop_seed`` is set (others are returned unchanged).
        xywh: (n, 4) boxes x, y, w, h of the latest labelled step (frame pixels, before the flip), or
            None / empty: then no zoom (RVT warns and skips).
    Returns:
        parameters with x0_px, y0_px of a window that contains the picked box, crop_seed None.
    """
    if p.crop_seed is None:
        return p
    if xywh is None or len(xywh) == 0:
        return replace(p, zoom=1.0, crop_seed=None)
    rng = np.random.default_rng(p.crop_seed)
    n = len(xywh)
    index = 0 if n == 1 else int(rng.integers(0, n - 1 if p.label_pick == "rvt" else n))
    x, y, w, h = (float(v) for v in xywh[index])
    if p.flip:                                        # RVT flips before it zooms
        x = float(flip_boxes_x(np.float64(x), np.float64(w), width, p.flip_convention))
    x, y = max(x, 0.0), max(y, 0.0)
    crop_h, crop_w = _window(height, width, p.zoom)
    x0 = _window_origin(x, w, crop_w, width, rng)
    y0 = _window_origin(y, h, crop_h, height, rng)
    return replace(p, x0_px=x0, y0_px=y0, crop_seed=None)


def _window_origin(lo: float, size: float, window: int, frame: int, rng: np.random.Generator) -> int:
    """One axis of RVT's ``randomly_sample_zoom_window_from_label_rectangle``: uniform in the valid range."""
    hi = min(lo + size, frame - 1)
    start = max(hi - max(window, size), 0.0)
    stop = min(lo + max(window, size), frame - 1)
    stop = max(stop - window, start)
    return min(max(int(start + (stop - start) * rng.random()), 0), frame - 1)


def flip_boxes_x(x: np.ndarray, w: np.ndarray, width: int, convention: str) -> np.ndarray:
    """Left edge after a left-right flip: RVT ``W - 1 - x - w``, mirror ``W - x - w``."""
    return (width - 1 - x - w) if convention == "rvt" else (width - x - w)


def keeps_integer_counts(p: AugmentParams) -> bool:
    """Whether these augmentations map integer counts to the same integers (flips, nearest-exact zooms,
    polarity suppression), so uint8 frames can stay uint8; smooth resampling makes fractions and noise
    adds counts (which may pass 255)."""
    zoomed = p.zoom > 1.0 or p.zoom_out > 1.0
    noisy = p.noise_seed is not None and p.noise_density > 0
    return not noisy and (p.resample == "nearest-exact" or not zoomed)


def augment_frames(frames: torch.Tensor, p: AugmentParams, out: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Apply the parameters to frames: flip, zoom, polarity suppression, noise.

    Args:
        frames: (T, C, H, W) counts, float or (when ``keeps_integer_counts(p)``) uint8; not modified.
        out: (T, C, H, W) tensor of the frames' dtype to write the result into (a slot of a batch), or None.
    Returns:
        (T, C, H, W) of the input's dtype: ``out`` when given, else a new tensor, or ``frames`` itself when
        nothing applies.
    """
    if p.crop_seed is not None:
        raise ValueError("augment_frames: the zoom-in window is not placed yet (call place_zoom_crop)")
    t_steps, channels, height, width = frames.shape
    if p.zoom > 1.0:
        crop_h, crop_w = _window(height, width, p.zoom)
        # RVT flips before it zooms: the window of the flipped frames is the mirrored window, flipped
        x0 = width - p.x0_px - crop_w if p.flip else p.x0_px
        crop = frames[:, :, p.y0_px : p.y0_px + crop_h, x0 : x0 + crop_w]
        crop = torch.flip(crop, dims=[-1]) if p.flip else crop
        if p.resample == "nearest-exact":
            res = (torch.ops.aten._upsample_nearest_exact2d.out(crop, [height, width], None, None, out=out)
                   if out is not None else F.interpolate(crop, size=(height, width), mode="nearest-exact"))
        else:
            res = F.interpolate(crop, size=(height, width), mode="bilinear", align_corners=False)
    else:
        res = torch.flip(frames, dims=[-1]) if p.flip else frames
        if p.zoom_out > 1.0:
            small_h, small_w = _window(height, width, p.zoom_out)
            # smooth: area interpolation, each output pixel the mean of the input pixels it covers
            small = F.interpolate(res, size=(small_h, small_w),
                                  mode="nearest-exact" if p.resample == "nearest-exact" else "area")
            res = out.zero_() if out is not None else frames.new_zeros(frames.shape)
            res[:, :, p.y0_px : p.y0_px + small_h, p.x0_px : p.x0_px + small_w] = small
    if out is not None and res is not out:
        res = out.copy_(res)
    if p.suppress_polarity is not None:
        if channels % 2:
            raise ValueError(f"polarity suppression needs polarity-major channels (even C), got C={channels}")
        res = res.clone() if res is frames else res
        half = channels // 2
        res[:, p.suppress_polarity * half : (p.suppress_polarity + 1) * half] = 0
    if p.noise_seed is not None and p.noise_density > 0:
        if out is not None:
            raise ValueError("augment_frames: noise makes new counts; give no out tensor")
        gen = torch.Generator().manual_seed(p.noise_seed)
        noise = (torch.rand(res.shape, generator=gen) < p.noise_density).to(res.dtype)
        res = res + noise
    return res


def is_identity(p: AugmentParams) -> bool:
    """Whether these parameters leave frames unchanged (no flip, zoom, suppression or noise)."""
    return (not p.flip and p.zoom <= 1.0 and p.zoom_out <= 1.0 and p.suppress_polarity is None
            and not (p.noise_seed is not None and p.noise_density > 0))


def augment_boxes(
    xyxy: np.ndarray, p: AugmentParams, height: int, width: int, min_side_px: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """Move boxes with the frame geometry (RVT's label arithmetic), clip them to the frame, drop flat ones.

    Args:
        xyxy: (n, 4) x1, y1, x2, y2 in pixels of the (H, W) frame.
        min_side_px: a box whose final width or height is not above this is dropped (0: flat boxes, RVT).
    Returns:
        (m, 4) transformed boxes and (n,) bool mask of the kept input boxes.
    """
    if p.crop_seed is not None:
        raise ValueError("augment_boxes: the zoom-in window is not placed yet (call place_zoom_crop)")
    b = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4)
    x, y, w, h = b[:, 0].copy(), b[:, 1].copy(), b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    if p.flip:
        x = flip_boxes_x(x, w, width, p.flip_convention)
    if p.zoom > 1.0:
        # ObjectLabels.zoom_in_and_rescale_: window of the float size (H/z, W/z), then scale_(z)
        win_w, win_h = width / p.zoom, height / p.zoom
        x1w, y1w = min(p.x0_px + win_w, width - 1), min(p.y0_px + win_h, height - 1)
        bx0, bx1 = np.clip(x, p.x0_px, x1w - 1), np.clip(x + w, p.x0_px, x1w - 1)
        by0, by1 = np.clip(y, p.y0_px, y1w - 1), np.clip(y + h, p.y0_px, y1w - 1)
        x, y, w, h = bx0 - p.x0_px, by0 - p.y0_px, bx1 - bx0, by1 - by0
        x, y, w, h = _scale(x, y, w, h, p.zoom, win_h, win_w)
    elif p.zoom_out > 1.0:
        x, y, w, h = _scale(x, y, w, h, 1.0 / p.zoom_out, height, width)
        x, y = x + p.x0_px, y + p.y0_px
    x1, y1 = np.clip(x, 0, width), np.clip(y, 0, height)
    x2, y2 = np.clip(x + w, 0, width), np.clip(y + h, 0, height)
    keep = ((x2 - x1) > min_side_px) & ((y2 - y1) > min_side_px) & (w > 0) & (h > 0)
    out = np.stack([x1, y1, x2, y2], axis=1)[keep]
    return out.astype(np.float32), keep


def _scale(x, y, w, h, factor: float, frame_h: float, frame_w: float):
    """RVT's ``ObjectLabels.scale_``: multiply, clamp the right / bottom edge to the new frame - 1."""
    new_w, new_h = factor * frame_w, factor * frame_h
    x2 = np.minimum((x + w) * factor, new_w - 1)
    y2 = np.minimum((y + h) * factor, new_h - 1)
    x, y = x * factor, y * factor
    return x, y, x2 - x, y2 - y
