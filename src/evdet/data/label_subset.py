"""Training on a fraction of the labels: which label frames keep their labels, chosen by seed.

``data.label_fraction`` keeps the labels of a share of the TRAIN split's label frames (``by="frames"``,
drawn over all label frames of the split) or of a share of its labelled sequences (``by="sequences"``,
every frame of a kept sequence keeps its labels). The other label frames are *withheld*: training
never sees their boxes (their steps carry no label and no loss), but they stay on disk and
``withheld_label_frames`` lists them, so pseudo-labels can be measured against them.

Count kept = round half up of ``fraction * total`` (at least 1); the draw is
``numpy.random.default_rng([seed, SALT]).choice(total, kept, replace=False)`` over the units in
sorted sequence-name order, so the same (dataset, fraction, by, seed) always keeps the same frames.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Literal, Sequence

import numpy as np

LabelFractionBy = Literal["frames", "sequences"]
SALT = 1403          # separates this draw from the other draws seeded by the run seed


def check_label_fraction(fraction: float, by: str = "frames", source: str = "data.label_fraction") -> None:
    """Raise ``ValueError`` (one line, naming ``source``) unless 0 < fraction <= 1 and ``by`` is known."""
    if not (isinstance(fraction, (int, float)) and 0.0 < float(fraction) <= 1.0):
        raise ValueError(f"{source}: must lie in (0, 1], got {fraction!r}")
    if by not in ("frames", "sequences"):
        raise ValueError(f"{source}_by: {by!r} is not one of ['frames', 'sequences']")


def kept_count(fraction: float, total: int) -> int:
    """Units that keep their labels: round half up of fraction * total, at least 1 (0 when total is 0)."""
    if total <= 0:
        return 0
    return int(min(total, max(1, math.floor(fraction * total + 0.5))))


def select_kept_frames(frame_counts: Sequence[int], fraction: float, by: LabelFractionBy = "frames",
                       seed: int = 0, source: str = "train split") -> list[np.ndarray]:
    """Which label frames of each sequence keep their labels.

    Args:
        frame_counts: label frames per sequence, in sorted sequence-name order.
        fraction: share in (0, 1] of the frames (``by="frames"``) or labelled sequences kept.
        seed: the draw's seed (``data.label_seed``, else the run seed).
        source: named in the error when no sequence has a label frame.
    Returns:
        per sequence, a bool mask (F_i,) True where the frame keeps its labels.
    Raises:
        ValueError: fraction outside (0, 1], unknown ``by``, or no label frame at all.
    """
    check_label_fraction(fraction, by)
    counts = [int(c) for c in frame_counts]
    total = sum(counts)
    if total == 0:
        raise ValueError(f"{source}: no labelled frame (label fraction needs at least one)")
    rng = np.random.default_rng([int(seed), SALT])
    if by == "frames":
        flat = np.zeros(total, dtype=bool)
        flat[rng.choice(total, kept_count(fraction, total), replace=False)] = True
        return np.split(flat, np.cumsum(counts)[:-1])
    labelled = [i for i, c in enumerate(counts) if c > 0]
    keep = set(np.asarray(labelled)[rng.choice(len(labelled), kept_count(fraction, len(labelled)),
                                               replace=False)].tolist())
    return [np.full(c, i in keep, dtype=bool) for i, c in enumerate(counts)]


def frame_counts(pre_root: str | Path, split: str) -> tuple[list[str], list[int]]:
    """Sequence names (sorted) and their label frame counts (``labels_v2/timestamps_us.npy``)."""
    from evdet.data.preprocessed import LABELS_DIR, list_sequences

    paths = list_sequences(Path(pre_root), split)
    counts = [int(np.load(p / LABELS_DIR / "timestamps_us.npy", allow_pickle=False).size) for p in paths]
    return [p.name for p in paths], counts


def withheld_label_frames(pre_root: str | Path, fraction: float, by: LabelFractionBy = "frames", seed: int = 0,
                          split: str = "train") -> dict[str, np.ndarray]:
    """The label frames whose labels training does not use, for measurement.

    Returns:
        sequence name -> (n,) int64 label frame indices withheld (every sequence listed, maybe empty).
    """
    names, counts = frame_counts(pre_root, split)
    masks = select_kept_frames(counts, fraction, by, seed, source=str(Path(pre_root) / split))
    return {name: np.flatnonzero(~m).astype(np.int64) for name, m in zip(names, masks)}
