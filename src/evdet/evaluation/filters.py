"""Box filters of the evaluation protocols (Prophesee rule: skip the first 0.5 s, drop small boxes)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

REFERENCE_HW = (720, 1280)          # the Prophesee thresholds are defined at this resolution
REFERENCE_DIAG_PX = 60.0
REFERENCE_SIDE_PX = 20.0
# Resolutions with thresholds fixed by the reference code (Prophesee toolbox / RVT): (diag, side).
KNOWN_THRESHOLDS = {
    (720, 1280): (60.0, 20.0),      # Gen4 / 1Mpx / eTraM full resolution
    (360, 640): (30.0, 10.0),       # the same sensors downsampled by 2 (RVT "downsampled_by_2")
    (240, 304): (30.0, 10.0),       # Gen1 (ATIS)
}


@dataclass(frozen=True)
class BoxFilter:
    """Which boxes a protocol keeps.

    A box is kept when ``t_us > skip_first_us`` and ``w^2 + h^2 >= min_diag_px^2`` and
    ``w >= min_side_px`` and ``h >= min_side_px`` (Prophesee ``filter_boxes``).

    Args:
        skip_first_us: boxes at or before this time are dropped (the model has no history yet).
        min_diag_px: minimum box diagonal, pixels at ``at_hw``; 0 disables the size rule.
        min_side_px: minimum box width and height, pixels at ``at_hw``.
        at_hw: (height, width) of the pixels the thresholds are stated in (the evaluated resolution).
        rule: how the thresholds were obtained ("reference" table, "scaled width/1280", or "none").
    """

    skip_first_us: int
    min_diag_px: float
    min_side_px: float
    at_hw: tuple[int, int]
    rule: str

    def to_dict(self) -> dict:
        d = asdict(self)
        d["at_hw"] = list(self.at_hw)
        return d

    def keep_mask(self, boxes: np.ndarray) -> np.ndarray:
        """(N,) bool mask of the boxes that pass (boxes: BBOX_DTYPE array).

        Computed in float32, the dtype of the box fields, as the reference does (its NumPy
        arithmetic keeps the array's float32 and casts the Python thresholds to it): a box with
        w = h = float32(21.213203) has w^2 + h^2 = 900 in float32 (899.9999995 in float64) and
        passes the 30 px diagonal rule at 640x360.
        """
        w = boxes["w"].astype(np.float32)
        h = boxes["h"].astype(np.float32)
        return (
            (boxes["t"] > self.skip_first_us)
            & (w * w + h * h >= np.float32(self.min_diag_px**2))
            & (w >= np.float32(self.min_side_px))
            & (h >= np.float32(self.min_side_px))
        )

    def apply(self, boxes: np.ndarray) -> np.ndarray:
        """The boxes that pass, in their original order (a new array)."""
        return boxes[self.keep_mask(boxes)]


def prophesee_thresholds(height: int, width: int) -> tuple[float, float, str]:
    """(min_diag_px, min_side_px, rule) of the Prophesee filter at an evaluated resolution.

    (60, 20) at 1280x720, (30, 10) at 640x360 and at Gen1's 304x240, as in the reference code;
    any other resolution scales the 1280x720 thresholds by ``width / 1280``.
    """
    if (height, width) in KNOWN_THRESHOLDS:
        diag, side = KNOWN_THRESHOLDS[(height, width)]
        return diag, side, "reference"
    scale = width / REFERENCE_HW[1]
    return REFERENCE_DIAG_PX * scale, REFERENCE_SIDE_PX * scale, "scaled width/1280"


def prophesee_filter(height: int, width: int, skip_first_us: int = 500_000) -> BoxFilter:
    """The Prophesee / RVT evaluation filter at the evaluated resolution (height, width)."""
    diag, side, rule = prophesee_thresholds(height, width)
    return BoxFilter(skip_first_us, diag, side, (height, width), rule)


def time_only_filter(height: int, width: int, skip_first_us: int = 500_000) -> BoxFilter:
    """Only the skip-first rule: every box size counts."""
    return BoxFilter(skip_first_us, 0.0, 0.0, (height, width), "none")
