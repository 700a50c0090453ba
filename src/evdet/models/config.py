"""Model and loss settings. Values derived from data (classes, input size) are builder arguments."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional


@dataclass(frozen=True)
class HeadConfig:
    num_classes: Optional[int] = None      # classes come from the dataset's class map; a number here is a
                                           # check: build_model refuses data with another class count
    conf_threshold: float = 0.1            # post-processing, as in RVT
    nms_iou: float = 0.45
    max_detections: int = 300


@dataclass(frozen=True)
class ModelConfig:
    preset: Literal["nano", "tiny", "small", "base"] = "tiny"
    patch_size: Literal[2, 4] = 4
    in_stages: tuple[int, ...] = (2, 3, 4)  # (1, 2, 3, 4) adds stride-4 (patch 4) P1 features
    partition_split: int = 2                # pad to a multiple of 32 * split; Gen1 uses 1
    attention_impl: Literal["sdpa", "manual"] = "sdpa"  # added: same weights, "manual" = explicit softmax (benchmarks)
    head: HeadConfig = field(default_factory=HeadConfig)


@dataclass(frozen=True)
class SizeAwareConfig:
    alpha: float = 1.0                      # 1 turns size-aware weighting off; 2.0-2.5 typical
    tau_px2: float = 1024.0                 # input pixels squared


@dataclass(frozen=True)
class FocalConfig:
    gamma: float = 0.0                      # 0 = plain BCE
    alpha: float = 0.25


@dataclass(frozen=True)
class LossConfig:
    iou_type: Literal["iou", "giou"] = "iou"
    iou_weight: float = 5.0
    obj_weight: float = 1.0
    cls_weight: float = 1.0
    size_aware: SizeAwareConfig = field(default_factory=SizeAwareConfig)
    focal: FocalConfig = field(default_factory=FocalConfig)
