"""Builders: model presets (RVT sizes + nano), padding / partition rules, and the loss."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import torch

from evdet.models.backbone import RecurrentBackbone
from evdet.models.config import LossConfig, ModelConfig
from evdet.models.detector import Detector, padded_size
from evdet.models.fusion import build_fusion
from evdet.models.loss_strategies import SizeFeedback
from evdet.models.losses import YoloxLoss
from evdet.models.modules.registry import build_level_modules, build_stage_modules
from evdet.models.pafpn import PAFPN
from evdet.models.yolox_head import YoloxHead


@dataclass(frozen=True)
class Preset:
    """One model size: backbone channels and heads per stage, FPN depth multiplier, head width."""

    dims: tuple[int, int, int, int]
    heads: tuple[int, int, int, int]
    fpn_depth: float
    head_width: int


# RVT sizes (3-scale FPN, 2 classes: tiny 4.405 M, small 9.870 M, base 18.536 M parameters);
# head width is RVT's in_channels[-1] / 4 for the 3-scale FPN.
PRESETS: dict[str, Preset] = {
    "nano": Preset((16, 32, 64, 128), (1, 1, 2, 4), 0.33, 32),
    "tiny": Preset((32, 64, 128, 256), (1, 2, 4, 8), 0.33, 64),
    "small": Preset((48, 96, 192, 384), (2, 4, 8, 16), 0.33, 96),
    "base": Preset((64, 128, 256, 512), (2, 4, 8, 16), 0.67, 128),
}


def pad_multiple(partition_split: int) -> int:
    """Input height/width are padded to a multiple of 32 * partition_split pixels."""
    return 32 * int(partition_split)


def partition_size(input_hw: tuple[int, int], partition_split: int) -> tuple[int, int]:
    """Window / grid partition size (tokens per side) for an input of (H, W) pixels.

    padded size / (32 * partition_split): 640x360 with split 2 -> padded 384x640 -> (6, 10);
    Gen1 304x240 with split 1 -> padded 256x320 -> (8, 10).
    """
    m = pad_multiple(partition_split)
    return padded_size(input_hw[0], m) // m, padded_size(input_hw[1], m) // m


def _check_model_args(cfg: ModelConfig, num_classes: int, input_hw: tuple[int, int], in_channels: int) -> None:
    if cfg.preset not in PRESETS:
        raise ValueError(f"model.preset: unknown {cfg.preset!r}; choose from {sorted(PRESETS)}")
    if cfg.patch_size not in (2, 4):
        raise ValueError(f"model.patch_size must be 2 or 4, got {cfg.patch_size}")
    stages = tuple(cfg.in_stages)
    if len(stages) < 2 or list(stages) != list(range(stages[0], 5)) or stages[0] < 1:
        raise ValueError(f"model.in_stages must be consecutive stages ending at 4, e.g. (2, 3, 4) or "
                         f"(1, 2, 3, 4); got {stages}")
    if cfg.partition_split < 1:
        raise ValueError(f"model.partition_split must be >= 1, got {cfg.partition_split}")
    if cfg.attention_impl not in ("sdpa", "manual"):
        raise ValueError(f"model.attention_impl must be 'sdpa' or 'manual', got {cfg.attention_impl!r}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    if cfg.head.num_classes is not None and cfg.head.num_classes != num_classes:
        raise ValueError(f"model.head.num_classes={cfg.head.num_classes} but the dataset's class map has "
                         f"{num_classes} classes: the classes come from the data; drop the setting or "
                         f"use data with {cfg.head.num_classes} classes")
    if in_channels < 1:
        raise ValueError(f"in_channels must be >= 1, got {in_channels}")
    if len(input_hw) != 2 or min(input_hw) < 1:
        raise ValueError(f"input_hw must be (height, width) > 0, got {input_hw}")


def build_model(cfg: ModelConfig, num_classes: int, input_hw: tuple[int, int], in_channels: int = 20) -> Detector:
    """Build the RVT detector for inputs of `input_hw` = (height, width) pixels (before padding)."""
    _check_model_args(cfg, num_classes, input_hw, in_channels)
    preset = PRESETS[cfg.preset]
    part = partition_size(input_hw, cfg.partition_split)
    mods = cfg.modules
    stage_strides = [cfg.patch_size * 2 ** i for i in range(len(preset.dims))]
    backbone = RecurrentBackbone(in_channels, preset.dims, preset.heads, cfg.patch_size, part,
                                 attention_impl=cfg.attention_impl,
                                 stage_modules=build_stage_modules(mods, preset.dims, stage_strides))
    stages = tuple(cfg.in_stages)
    fpn_channels = [preset.dims[s - 1] for s in stages]
    fpn_strides = [backbone.strides[s - 1] for s in stages]
    deform = mods.deform_conv.where
    neck = PAFPN(fpn_channels, preset.fpn_depth, deform=deform in ("fpn", "both"))
    head = YoloxHead(num_classes, fpn_channels, fpn_strides, preset.head_width, deform=deform in ("head", "both"))
    channels_last = cfg.memory_format == "channels_last"
    detector = Detector(backbone, neck, head, stages, pad_multiple(cfg.partition_split),
                        level_modules=build_level_modules(mods, fpn_channels, fpn_strides),
                        fusion=build_fusion(cfg.fusion, fpn_channels), channels_last=channels_last)
    # channels last: the attention blocks work in (B, H, W, C) anyway, so their permutes become views
    return detector.to(memory_format=torch.channels_last) if channels_last else detector


def build_loss(cfg: LossConfig, num_classes: int) -> YoloxLoss:
    """Build the YOLOX / SimOTA criterion from its config."""
    return YoloxLoss(num_classes=num_classes, iou_type=cfg.iou_type, iou_weight=cfg.iou_weight,
                     obj_weight=cfg.obj_weight, cls_weight=cfg.cls_weight,
                     size_aware_alpha=cfg.size_aware.alpha, size_aware_tau_px2=cfg.size_aware.tau_px2,
                     focal_gamma=cfg.focal.gamma, focal_alpha=cfg.focal.alpha,
                     class_balance=cfg.class_balance.mode, class_balance_beta=cfg.class_balance.beta,
                     hard_negative_ratio=cfg.hard_negative.ratio, hard_negative_radius_px=cfg.hard_negative.radius_px,
                     hard_negative_small_area_px2=cfg.hard_negative.small_area_px2,
                     hard_negative_weight=cfg.hard_negative.weight, size_feedback=_size_feedback(cfg))


def _size_feedback(cfg: LossConfig) -> Optional[SizeFeedback]:
    """The size-aware v2 feedback state, or None when ``loss.size_feedback.enabled`` is False."""
    fb = cfg.size_feedback
    if not fb.enabled:
        return None
    return SizeFeedback(fb.edges_px, momentum=fb.momentum, gamma=fb.gamma, min_weight=fb.min_weight,
                        max_weight=fb.max_weight)
