"""Data settings: which preprocessed dataset, how sequences are sampled, augmentation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional


@dataclass(frozen=True)
class AugmentConfig:
    flip_prob: float = 0.5                 # horizontal flip, per sample / per stream
    zoom_in_prob: float = 0.0              # crop-and-resize in, per sequence for streams
    zoom_in_max: float = 1.5
    zoom_out_prob: float = 0.0             # shrink-and-pad, per sequence for streams
    zoom_out_max: float = 1.5
    polarity_suppression_prob: float = 0.0  # zero the channels of one polarity
    noise_prob: float = 0.0                # add background-activity counts
    noise_density: float = 0.001           # fraction of pixels that receive one noise count


@dataclass(frozen=True)
class DataConfig:
    root: str = ""                          # preprocessed dataset (RVT layout), see evdet.data.preprocess
    representation: str = "stacked_histogram_dt=50_nbins=10"
    sampling: Literal["random", "stream", "mixed"] = "mixed"
    seq_len: int = 5                        # representations per training sample / TBPTT chunk
    batch_size: int = 8
    eval_batch_size: int = 2                # streams evaluated in parallel
    num_workers: int = 2
    class_map: str = "auto"                 # "auto" = the dataset's dataset.yaml, else etram / gen1 / gen4
    augment: AugmentConfig = field(default_factory=AugmentConfig)
    label_fraction: float = 1.0             # share of the train split's labels used (evdet.data.label_subset)
    label_fraction_by: Literal["frames", "sequences"] = "frames"
    label_seed: Optional[int] = None        # seed of that choice; None = the run seed (training.seed)

    def __post_init__(self) -> None:
        from evdet.data.label_subset import check_label_fraction

        check_label_fraction(self.label_fraction, self.label_fraction_by)
