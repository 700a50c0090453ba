"""Multi-resolution training and scale jitter: input resolutions made from the stored representation.

Settings ``data.multires`` (``MultiResConfig``; ``scales = ()`` is off and changes nothing):

- A draw picks ``s = choice(scales) * uniform(jitter)``; the frames become ``(round(H*s), round(W*s))``
  and every box is scaled by the exact ratios ``(W'/W, H'/H)`` (cx, cx, w, h in pixels).
- Who shares a draw: a batch is one tensor, so all its items share one size. Random sampling draws
  per batch (key: seed, epoch, pass, batch); stream and mixed sampling draw per epoch (key: seed,
  epoch), so a sequence keeps one size from its first chunk to its last (the recurrent state has that
  size) and every sequence of an epoch has it.
- Resampling counts: ``sum`` = each output pixel holds the events of the input area it covers
  (area mean x area ratio; an exact 2x2 block sum at s = 0.5, as the pooled ``ds2_sum``
  preprocessing), clipped at ``count_cutoff``; ``nearest`` = nearest-exact pixel (RVT's
  ``ds2_nearest`` at s = 0.5). Up-scaling (s > 1) duplicates pixels in both modes.
- Validation and ``predict_sequences`` run at ``eval_scale`` (1 = stored); their boxes are mapped
  back to stored pixels, so the protocols' filters and ground truth stay the dataset's.

The model's attention partitions are fixed when it is built; the training module pads each batch at
the bottom/right to the next size they fit (``canvas_size``), so any drawn size runs.
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from evdet.data.config import MultiResConfig


def multires_on(cfg: MultiResConfig) -> bool:
    """True when training draws resolutions (``scales`` not empty)."""
    return len(cfg.scales) > 0


def check_multires(cfg: MultiResConfig) -> None:
    """One-line error for a jitter range that is not (low, high) with low <= high."""
    if len(cfg.jitter) != 2 or cfg.jitter[0] > cfg.jitter[1]:
        raise ValueError(f"data.multires.jitter: expected (low, high) with low <= high, got {tuple(cfg.jitter)}")


def draw_scale(cfg: MultiResConfig, key: tuple[int, ...]) -> float:
    """The factor of one draw: choice(scales) * uniform(jitter), from ``default_rng(key)``; 1.0 when off."""
    if not multires_on(cfg):
        return 1.0
    check_multires(cfg)
    rng = np.random.default_rng(list(key))
    s = float(cfg.scales[int(rng.integers(0, len(cfg.scales)))])
    lo, hi = cfg.jitter
    return s * (float(rng.uniform(lo, hi)) if hi > lo else float(lo))


def scaled_hw(height: int, width: int, scale: float) -> tuple[int, int]:
    """(round(H * s), round(W * s)), at least 1 pixel each."""
    return max(1, int(round(height * scale))), max(1, int(round(width * scale)))


def resize_counts(frames: torch.Tensor, out_hw: tuple[int, int], mode: str, cutoff: Optional[int]) -> torch.Tensor:
    """Resample count frames (T, C, H, W) to (T, C, H', W') (see module docstring for the modes)."""
    height, width = frames.shape[-2:]
    if (height, width) == tuple(out_hw):
        return frames
    if mode not in ("sum", "nearest"):
        raise ValueError(f"data.multires.resample: expected 'sum' or 'nearest', got {mode!r}")
    if mode == "nearest" or out_hw[0] > height or out_hw[1] > width:
        return F.interpolate(frames, size=out_hw, mode="nearest-exact")
    ratio = (height * width) / (out_hw[0] * out_hw[1])
    out = F.interpolate(frames, size=out_hw, mode="area") * ratio
    return out.clamp(max=float(cutoff)) if cutoff is not None else out


def scale_targets(targets: torch.Tensor, sx: float, sy: float) -> torch.Tensor:
    """(n, 5) class_id, cx, cy, w, h -> the same boxes in pixels scaled by (sx, sy)."""
    factor = torch.tensor([1.0, sx, sy, sx, sy], dtype=targets.dtype)
    return targets * factor


def canvas_size(height: int, width: int, multiple_hw: tuple[int, int]) -> tuple[int, int]:
    """Smallest (H', W') >= (H, W) that are multiples of ``multiple_hw`` (the sizes a model's partitions fit)."""
    return (math.ceil(height / multiple_hw[0]) * multiple_hw[0], math.ceil(width / multiple_hw[1]) * multiple_hw[1])
