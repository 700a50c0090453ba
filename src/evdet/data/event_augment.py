"""Event-specific augmentations applied on the stored representation (before any geometry).

Frames are float tensors ``(T, C, H, W)`` of integer counts, polarity-major: channel ``p * B + b`` holds
the events of polarity p in time bin b of the window (stacked histogram: B = nbins; event frame: B = 1).
What each switch computes (``AugmentConfig``; probabilities are per sample, i.e. per stream sequence):

- ``dropout_prob`` / ``dropout_rate``: random event dropout. On counts this is binomial thinning: each
  stored count n becomes Binomial(n, 1 - rate), which is exactly "each event kept with 1 - rate",
  EXCEPT for cells stored at the count cutoff (their true count is >= cutoff and unknown): there the
  thinning under-counts.
- ``time_reversal_prob``: every window's bins reversed and polarities swapped (channel p*B + b ->
  (1-p)*B + (B-1-b)): the representation of the window's events with t -> t_first + t_last - t and
  p -> 1 - p, exact for events off the bin boundaries. Windows keep their order (labels stay on their
  windows); only the motion inside each window runs backwards. Applied twice it is the identity.
- ``noise_rate_hz`` (with ``noise_prob``): background activity: per pixel and window, Poisson(rate *
  window_s) events, each with a uniform polarity and time bin, i.e. Poisson(rate * window_s / C) per
  cell; ``hot_pixels`` random pixels per sample (the same pixels on every window of the sample) add
  Poisson(hot_pixel_rate_hz * window_s / C) per cell. Sums are clipped at the count cutoff. The noise of
  a window is a function of (noise seed, representation index), so stream chunks differ.
- Polarity suppression and the legacy density noise (``noise_density``) are applied by
  ``evdet.data.augment.augment_frames`` (one implementation each).

Representations without polarity-major counts (voxel grid, time surface, VTEI) support none of these:
``event_layout`` refuses them with a one-line error naming the switch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import torch

from evdet.data.config import AugmentConfig

COUNT_CUTOFF = 10   # the stacked histogram's default count cutoff (DESIGN sec. 3)


@dataclass(frozen=True)
class EventLayout:
    """How counts are laid out: 2 polarities x ``bins`` time bins per window of ``window_us``."""

    bins: int
    window_us: int
    cutoff: Optional[int] = COUNT_CUTOFF

    @property
    def channels(self) -> int:
        return 2 * self.bins


@dataclass(frozen=True)
class EventAugmentParams:
    """One draw of the event augmentations of a sample (see module docstring)."""

    dropout_rate: float = 0.0
    dropout_seed: Optional[int] = None
    reverse: bool = False
    noise_rate_hz: float = 0.0
    hot_pixels: int = 0
    hot_pixel_rate_hz: float = 0.0

    @property
    def active(self) -> bool:
        return self.dropout_seed is not None or self.reverse or self.noise_rate_hz > 0 or self.hot_pixels > 0


NO_EVENT_AUGMENT = EventAugmentParams()


def uses_event_augment(cfg: AugmentConfig) -> bool:
    """True when a switch of this module is on."""
    return cfg.dropout_prob > 0 or cfg.time_reversal_prob > 0 or (cfg.noise_prob > 0 and cfg.noise_rate_hz > 0)


def event_layout(representation: str, channels: int, cfg: AugmentConfig) -> Optional[EventLayout]:
    """The count layout of a representation folder name, or None when no event augmentation is on.

    Raises:
        ValueError: a switch is on and the representation has no polarity-major counts, naming the switch.
    """
    if not uses_event_augment(cfg):
        return None
    from evdet.events.build import parse_representation_name

    name, params = parse_representation_name(representation)
    if name not in ("stacked_histogram", "event_frame"):
        on = [k for k in ("dropout_prob", "time_reversal_prob", "noise_rate_hz") if getattr(cfg, k) > 0]
        raise ValueError(f"data.augment.{on[0]}: needs polarity-major counts (stacked_histogram or event_frame); "
                         f"representation {representation!r} does not allow it")
    bins = int(params.get("nbins", 10)) if name == "stacked_histogram" else 1
    if channels != 2 * bins:
        raise ValueError(f"representation {representation!r}: {channels} channels, expected 2 x {bins} bins")
    return EventLayout(bins=bins, window_us=int(params.get("window_ms", 50)) * 1000)


def draw_event_augment(cfg: AugmentConfig, rng: np.random.Generator) -> EventAugmentParams:
    """Draw a sample's event augmentations; draws nothing when every switch is off (RVT draws unchanged)."""
    if not uses_event_augment(cfg):
        return NO_EVENT_AUGMENT
    dropout_seed = None
    if cfg.dropout_prob > 0 and rng.random() < cfg.dropout_prob and cfg.dropout_rate > 0:
        dropout_seed = int(rng.integers(0, 2**31 - 1))
    reverse = bool(cfg.time_reversal_prob > 0 and rng.random() < cfg.time_reversal_prob)
    return EventAugmentParams(cfg.dropout_rate if dropout_seed is not None else 0.0, dropout_seed, reverse,
                              cfg.noise_rate_hz, cfg.hot_pixels if cfg.noise_rate_hz > 0 else 0,
                              cfg.hot_pixel_rate_hz)


def time_reverse(frames: torch.Tensor, bins: int) -> torch.Tensor:
    """(T, 2*B, H, W) -> same shape with channel p*B + b moved to (1-p)*B + (B-1-b)."""
    t_steps, channels, height, width = frames.shape
    if channels != 2 * bins:
        raise ValueError(f"time reversal: expected {2 * bins} channels (2 polarities x {bins} bins), got {channels}")
    return frames.reshape(t_steps, 2, bins, height, width).flip(1).flip(2).reshape(frames.shape)


def thin_counts(counts: torch.Tensor, keep: float, rng: np.random.Generator) -> torch.Tensor:
    """Binomial thinning: each integer count n -> Binomial(n, keep)."""
    n = counts.numpy().astype(np.int64)
    if not np.array_equal(n, counts.numpy()):
        raise ValueError("event dropout: needs integer counts (apply it before geometry)")
    out = np.zeros(n.shape, dtype=np.float32)
    nz = n > 0                     # event data are sparse: draw only where there are events
    out[nz] = rng.binomial(n[nz], keep)
    return torch.from_numpy(out)


def background_noise(shape: tuple[int, int, int], layout: EventLayout, rate_hz: float, hot_yx: np.ndarray,
                     hot_rate_hz: float, rng: np.random.Generator) -> torch.Tensor:
    """Noise counts of one window, (C, H, W): Poisson(rate * window_s / C) per cell plus the hot pixels'."""
    channels = shape[0]
    window_s = layout.window_us * 1e-6
    cells = int(np.prod(shape))
    # independent Poisson(lambda) per cell == a Poisson(lambda * cells) total placed uniformly (splitting)
    total = rng.poisson(rate_hz * window_s / channels * cells) if rate_hz > 0 else 0
    noise = np.bincount(rng.integers(0, cells, total), minlength=cells).reshape(shape).astype(np.int64)
    if len(hot_yx):
        hot = rng.poisson(hot_rate_hz * window_s / channels, size=(channels, len(hot_yx)))
        np.add.at(noise, (slice(None), hot_yx[:, 0], hot_yx[:, 1]), hot)
    return torch.from_numpy(noise.astype(np.float32))


def apply_event_augment(frames: torch.Tensor, p: EventAugmentParams, layout: Optional[EventLayout], *,
                        noise_seed: Optional[int], step_ids: np.ndarray) -> torch.Tensor:
    """Dropout, time reversal, then noise, on stored counts.

    Args:
        frames: (T, C, H, W) float integer counts (not modified).
        noise_seed: the sample's noise draw (``AugmentParams.noise_seed``); None = no noise.
        step_ids: (T,) representation index of each step (keys the per-window draws).
    Returns:
        (T, C, H, W) float.
    """
    if layout is None or not p.active:
        return frames
    out = frames
    if p.dropout_seed is not None and p.dropout_rate > 0:
        out = torch.stack([thin_counts(out[i], 1.0 - p.dropout_rate, np.random.default_rng([p.dropout_seed, int(s)]))
                           for i, s in enumerate(step_ids)])
    if p.reverse:
        out = time_reverse(out, layout.bins)
    if noise_seed is not None and (p.noise_rate_hz > 0 or p.hot_pixels > 0):
        _, channels, height, width = out.shape
        hot_rng = np.random.default_rng([noise_seed])
        hot_yx = np.stack([hot_rng.integers(0, height, p.hot_pixels), hot_rng.integers(0, width, p.hot_pixels)], 1)
        noise = torch.stack([background_noise((channels, height, width), layout, p.noise_rate_hz, hot_yx,
                                              p.hot_pixel_rate_hz, np.random.default_rng([noise_seed, int(s)]))
                             for s in step_ids])
        out = out + noise
        if layout.cutoff is not None:
            out = out.clamp(max=float(layout.cutoff))
    return out if out is not frames else frames.clone()
