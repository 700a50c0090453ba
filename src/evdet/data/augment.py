"""Augmentation of event representations and their boxes.

Parameters are drawn once (``draw_augment``) and applied to every step of a sample, so that a
stream keeps one geometry for a whole sequence (RVT draws zoom per sequence for streams) and a
random window keeps it over its ``seq_len`` steps. Geometry (zoom, flip) moves boxes with the
frames; boxes are clipped to the frame and dropped when less than ``min_side_px`` remains.

Frames are float tensors ``(T, C, H, W)`` of counts; channels are polarity-major (first half
polarity 0), as in the stacked histogram. Boxes are ``(n, 4)`` corner arrays x1, y1, x2, y2 in
pixels of the same frame.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from evdet.data.config import AugmentConfig


@dataclass(frozen=True)
class AugmentParams:
    """One draw of the augmentations.

    Attributes:
        flip: mirror left-right (after zoom).
        zoom: 1 = none; > 1 zoom in (crop a (H/zoom, W/zoom) window at (x0_px, y0_px) and resize it
            up to (H, W)); < 1 zoom out (shrink to (H*zoom, W*zoom) and paste at (x0_px, y0_px)
            into an empty frame).
        x0_px, y0_px: crop origin (zoom in) or paste origin (zoom out), integer pixels.
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


IDENTITY = AugmentParams()


def draw_augment(cfg: AugmentConfig, rng: np.random.Generator, height: int, width: int) -> AugmentParams:
    """Draw one set of parameters from the configured probabilities.

    Zoom in and zoom out exclude each other: zoom in is tried first with ``zoom_in_prob``, then
    zoom out with ``zoom_out_prob``; factors are uniform in [1, max].
    """
    flip = bool(rng.random() < cfg.flip_prob)
    zoom, x0, y0 = 1.0, 0, 0
    if cfg.zoom_in_prob > 0 and rng.random() < cfg.zoom_in_prob and cfg.zoom_in_max > 1:
        zoom = float(rng.uniform(1.0, cfg.zoom_in_max))
        crop_h, crop_w = _scaled_size(height, width, 1.0 / zoom)
        y0, x0 = int(rng.integers(0, height - crop_h + 1)), int(rng.integers(0, width - crop_w + 1))
    elif cfg.zoom_out_prob > 0 and rng.random() < cfg.zoom_out_prob and cfg.zoom_out_max > 1:
        zoom = 1.0 / float(rng.uniform(1.0, cfg.zoom_out_max))
        small_h, small_w = _scaled_size(height, width, zoom)
        y0, x0 = int(rng.integers(0, height - small_h + 1)), int(rng.integers(0, width - small_w + 1))
    suppress = None
    if cfg.polarity_suppression_prob > 0 and rng.random() < cfg.polarity_suppression_prob:
        suppress = int(rng.integers(0, 2))
    noise_seed = None
    if cfg.noise_prob > 0 and rng.random() < cfg.noise_prob:
        noise_seed = int(rng.integers(0, 2**31 - 1))
    # with noise_rate_hz > 0 the noise is background activity (evdet.data.event_augment), not the density form
    density = cfg.noise_density if noise_seed is not None and cfg.noise_rate_hz == 0 else 0.0
    return AugmentParams(flip, zoom, x0, y0, suppress, noise_seed, density)


def _scaled_size(height: int, width: int, factor: float) -> tuple[int, int]:
    """(round(H * factor), round(W * factor)), at least 1 pixel each."""
    return max(1, int(round(height * factor))), max(1, int(round(width * factor)))


def augment_frames(frames: torch.Tensor, p: AugmentParams) -> torch.Tensor:
    """Apply the parameters to frames (a new tensor).

    Args:
        frames: (T, C, H, W) float counts.
    Returns:
        (T, C, H, W) float.
    """
    t_steps, channels, height, width = frames.shape
    out = frames
    if p.zoom > 1.0:
        crop_h, crop_w = _scaled_size(height, width, 1.0 / p.zoom)
        crop = out[:, :, p.y0_px : p.y0_px + crop_h, p.x0_px : p.x0_px + crop_w]
        out = F.interpolate(crop, size=(height, width), mode="bilinear", align_corners=False)
    elif p.zoom < 1.0:
        small_h, small_w = _scaled_size(height, width, p.zoom)
        # area interpolation: each output pixel is the mean of the input pixels it covers
        small = F.interpolate(out, size=(small_h, small_w), mode="area")
        out = frames.new_zeros(frames.shape)
        out[:, :, p.y0_px : p.y0_px + small_h, p.x0_px : p.x0_px + small_w] = small
    if p.flip:
        out = torch.flip(out, dims=[-1])
    if p.suppress_polarity is not None:
        if channels % 2:
            raise ValueError(f"polarity suppression needs polarity-major channels (even C), got C={channels}")
        out = out.clone() if out is frames else out
        half = channels // 2
        out[:, p.suppress_polarity * half : (p.suppress_polarity + 1) * half] = 0
    if p.noise_seed is not None and p.noise_density > 0:
        gen = torch.Generator().manual_seed(p.noise_seed)
        noise = (torch.rand(out.shape, generator=gen) < p.noise_density).to(out.dtype)
        out = out + noise
    return out if out is not frames else frames.clone()


def augment_boxes(
    xyxy: np.ndarray, p: AugmentParams, height: int, width: int, min_side_px: float = 1.0
) -> tuple[np.ndarray, np.ndarray]:
    """Move boxes with the frame geometry, clip them to the frame and drop the lost ones.

    Args:
        xyxy: (n, 4) x1, y1, x2, y2 in pixels of the (H, W) frame.
        min_side_px: a box whose clipped width or height is below this is dropped.
    Returns:
        (m, 4) transformed boxes and (n,) bool mask of the kept input boxes.
    """
    b = np.asarray(xyxy, dtype=np.float64).reshape(-1, 4).copy()
    if p.zoom > 1.0:
        crop_h, crop_w = _scaled_size(height, width, 1.0 / p.zoom)
        sx, sy = width / crop_w, height / crop_h
        b[:, [0, 2]] = (b[:, [0, 2]] - p.x0_px) * sx
        b[:, [1, 3]] = (b[:, [1, 3]] - p.y0_px) * sy
    elif p.zoom < 1.0:
        small_h, small_w = _scaled_size(height, width, p.zoom)
        sx, sy = small_w / width, small_h / height
        b[:, [0, 2]] = b[:, [0, 2]] * sx + p.x0_px
        b[:, [1, 3]] = b[:, [1, 3]] * sy + p.y0_px
    if p.flip:
        b[:, [0, 2]] = width - b[:, [2, 0]]
    b[:, [0, 2]] = b[:, [0, 2]].clip(0, width)
    b[:, [1, 3]] = b[:, [1, 3]].clip(0, height)
    keep = ((b[:, 2] - b[:, 0]) >= min_side_px) & ((b[:, 3] - b[:, 1]) >= min_side_px)
    return b[keep].astype(np.float32), keep
