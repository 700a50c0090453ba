"""Data settings: which preprocessed dataset, how sequences are sampled, augmentation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from evdet.utils.value_checks import AT_LEAST_ONE, BELOW_ONE, NON_NEGATIVE, POSITIVE, PROBABILITY, check_fields


@dataclass(frozen=True)
class AugmentConfig:
    # geometry with RVT's semantics (evdet.data.augment; RVT config/dataset/base.yaml, data/utils/augmentor.py)
    flip_prob: float = 0.5                 # horizontal flip, per sample / per stream (RVT: 0.5 both)
    flip_convention: Literal["rvt", "mirror"] = "rvt"  # rvt: x' = W - 1 - x - w (RVT's labels); mirror: W - x - w
    zoom_in_prob: float = 0.0              # random samples: P(zoom in) (RVT recipes: 0.8 x 8/10 = 0.64)
    zoom_in_max: float = 1.5               # factor uniform in [1, max] (RVT: 1.5)
    zoom_out_prob: float = 0.0             # random samples: P(zoom out), exclusive of zoom in (RVT: 0.8 x 2/10 = 0.16)
    zoom_out_max: float = 1.2              # factor uniform in [1, max] (RVT: 1.2, random and stream)
    stream_zoom_out_prob: float = 0.0      # streams: P(zoom out), drawn per sequence (RVT: 0.5); streams never zoom in
    zoom_crop: Literal["label", "uniform"] = "label"  # zoom-in window around a box of the latest labelled step
                                           # (RVT) / anywhere
    zoom_label_pick: Literal["rvt", "any"] = "rvt"  # rvt: randint(0, n - 1), never the last of n >= 2 boxes
                                           # (RVT's off-by-one); any: every box equally likely
    zoom_resample: Literal["nearest-exact", "smooth"] = "nearest-exact"  # RVT / bilinear in, area out
    polarity_suppression_prob: float = 0.0  # zero the channels of one polarity
    noise_prob: float = 0.0                # add background-activity counts
    noise_density: float = 0.001           # fraction of pixels that receive one noise count
    # added (evdet.data.event_augment): physical noise model, dropout, time reversal; all off by default
    noise_rate_hz: float = 0.0             # > 0: the noise (noise_prob) is background activity at this rate,
                                           # events per pixel per second, instead of noise_density
    hot_pixels: int = 0                    # with noise: this many random pixels per sample also fire ...
    hot_pixel_rate_hz: float = 200.0       # ... at this rate (events per second)
    dropout_prob: float = 0.0              # probability that a sample's events are thinned ...
    dropout_rate: float = 0.2              # ... each stored count binomially thinned, keep 1 - rate
    time_reversal_prob: float = 0.0        # bins of every window reversed and polarities swapped

    def __post_init__(self) -> None:
        check_fields(self, flip_prob=PROBABILITY, zoom_in_prob=PROBABILITY, zoom_in_max=AT_LEAST_ONE,
                     zoom_out_prob=PROBABILITY, zoom_out_max=AT_LEAST_ONE, stream_zoom_out_prob=PROBABILITY,
                     polarity_suppression_prob=PROBABILITY,
                     noise_prob=PROBABILITY, noise_density=PROBABILITY, noise_rate_hz=NON_NEGATIVE,
                     hot_pixels=NON_NEGATIVE, hot_pixel_rate_hz=NON_NEGATIVE, dropout_prob=PROBABILITY,
                     dropout_rate=PROBABILITY, time_reversal_prob=PROBABILITY)
        if self.zoom_in_prob + self.zoom_out_prob > 1.0:
            raise ValueError(f"data.augment: zoom_in_prob + zoom_out_prob = {self.zoom_in_prob + self.zoom_out_prob} "
                             "exceeds 1 (zoom in and out exclude each other)")


@dataclass(frozen=True)
class SampleWeightConfig:
    """Weighted draws of training windows / stream sequences (evdet.data.sampling_weights); off by default."""

    mode: Literal["off", "small_objects", "class_inverse", "class_effective"] = "off"
    small_boost: float = 4.0               # small_objects: w = 1 + boost * (frame holds a small road user)
    small_area_px2: float = 1024.0         # "small": w * h below this, representation pixels^2
    small_group: str = "small_road_users"  # class-map group whose boxes count ("" = every class)
    beta: float = 0.999                    # class_effective: (1 - beta) / (1 - beta^n)

    def __post_init__(self) -> None:
        check_fields(self, small_boost=NON_NEGATIVE, small_area_px2=POSITIVE, beta=BELOW_ONE)


@dataclass(frozen=True)
class MultiResConfig:
    """Training at several input resolutions made from the stored one (evdet.data.multires); off by default."""

    scales: tuple[float, ...] = ()         # e.g. (0.5, 1.0) on 1280x720 data: 640x360 and 1280x720; () = off
    jitter: tuple[float, float] = (1.0, 1.0)  # extra uniform factor range on top of the chosen scale
    resample: Literal["sum", "nearest"] = "sum"  # counts: block sums clipped at cutoff / nearest-exact
    count_cutoff: int = 10                 # clip of the resampled counts (the histogram's cutoff)
    eval_scale: float = 1.0                # validation input = stored resolution x this; boxes mapped back

    def __post_init__(self) -> None:
        check_fields(self, scales=POSITIVE, jitter=POSITIVE, count_cutoff=AT_LEAST_ONE, eval_scale=POSITIVE)


@dataclass(frozen=True)
class DataConfig:
    root: str = ""                          # preprocessed dataset (RVT layout), see evdet.data.preprocess.dataset
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
    empty_label_frames: Literal["skip", "train"] = "skip"  # a label frame left without boxes (none labelled, or
                                            # all removed by zoom): skip = not in the loss (RVT), train = in it
                                            # (objectness learns background there)
    sample_weighting: SampleWeightConfig = field(default_factory=SampleWeightConfig)  # added: strategies
    multires: MultiResConfig = field(default_factory=MultiResConfig)                  # added: strategies

    def __post_init__(self) -> None:
        from evdet.data.label_subset import check_label_fraction

        check_label_fraction(self.label_fraction, self.label_fraction_by)
        check_fields(self, seq_len=AT_LEAST_ONE, batch_size=AT_LEAST_ONE, eval_batch_size=AT_LEAST_ONE,
                     num_workers=NON_NEGATIVE)
