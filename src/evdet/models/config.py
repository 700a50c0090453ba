"""Model and loss settings. Values derived from data (classes, input size) are builder arguments."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from evdet.utils.value_checks import AT_LEAST_ONE, BELOW_ONE, NON_NEGATIVE, POSITIVE, PROBABILITY, Range, check_fields

STAGE = Range(1.0, 4.0)                     # 1-based backbone stage


@dataclass(frozen=True)
class HeadConfig:
    num_classes: Optional[int] = None      # classes come from the dataset's class map; a number here is a
                                           # check: build_model refuses data with another class count
    conf_threshold: float = 0.001          # post-processing of the run's predictions: RVT's published
                                           # numbers are evaluated at 0.001 (RVT/eTraM READMEs; RVT's
                                           # model yaml holds 0.1 for validation during training)
    nms_iou: float = 0.45
    max_detections: Optional[int] = None   # None = no cap (RVT); evaluation protocols add their own

    def __post_init__(self) -> None:
        check_fields(self, num_classes=AT_LEAST_ONE, conf_threshold=PROBABILITY, nms_iou=PROBABILITY,
                     max_detections=AT_LEAST_ONE)


@dataclass(frozen=True)
class SqueezeExcitationConfig:
    """Channel gate x * sigmoid(W2 relu(W1 mean_hw(x))) (evdet.models.modules.squeeze_excitation)."""

    where: Literal["off", "backbone", "fpn", "both"] = "off"  # backbone: every stage output; fpn: every level
    reduction: int = 4                      # hidden channels = C / reduction (at least 4)

    def __post_init__(self) -> None:
        check_fields(self, reduction=AT_LEAST_ONE)


@dataclass(frozen=True)
class DeformConvConfig:
    """Modulated deformable 3x3 convs, DCN v2 (evdet.models.modules.deform_conv); zero offsets at init."""

    where: Literal["off", "fpn", "head", "both"] = "off"  # fpn: CSP bottleneck 3x3s; head: last 3x3 per branch


@dataclass(frozen=True)
class SmallObjectAttentionConfig:
    """CBAM channel + spatial attention and/or a motion gate from h_t - h_{t-1} on stage outputs."""

    kind: Literal["off", "cbam", "motion", "cbam_motion"] = "off"
    stages: tuple[int, ...] = (1, 2)        # 1-based backbone stages whose outputs are refined
    scale_aware: bool = False               # only stages of stride <= 8, each with a learnt strength
    reduction: int = 4                      # channel-attention hidden = C / reduction
    kernel_size: int = 7                    # spatial / motion gate conv kernel

    def __post_init__(self) -> None:
        check_fields(self, stages=STAGE, reduction=AT_LEAST_ONE, kernel_size=AT_LEAST_ONE)


@dataclass(frozen=True)
class TemporalAttentionConfig:
    """Per-pixel attention over the last `memory` stage outputs beside the ConvLSTM (recurrent state)."""

    kind: Literal["off", "attention"] = "off"
    memory: int = 3                         # K past outputs kept per stage
    stages: tuple[int, ...] = (3, 4)        # 1-based backbone stages
    key_dim: int = 16                       # query / key channels

    def __post_init__(self) -> None:
        check_fields(self, memory=AT_LEAST_ONE, stages=STAGE, key_dim=AT_LEAST_ONE)


@dataclass(frozen=True)
class DensityFusionConfig:
    """Per-FPN-level spatial gate 2 * sigmoid(conv(log1p(local event count))) (identity at init)."""

    kind: Literal["off", "gate"] = "off"


@dataclass(frozen=True)
class P1EnhanceConfig:
    """Stride-4 level of the 4-scale FPN: GroupNorm + residual 3x3 refinement (needs in_stages (1,2,3,4))."""

    kind: Literal["off", "refine"] = "off"
    groups: int = 8                         # GroupNorm groups (the level's own normalisation)

    def __post_init__(self) -> None:
        check_fields(self, groups=AT_LEAST_ONE)


@dataclass(frozen=True)
class ModulesConfig:
    """Architecture modules for small objects; all off (the RVT network) by default."""

    squeeze_excitation: SqueezeExcitationConfig = field(default_factory=SqueezeExcitationConfig)
    deform_conv: DeformConvConfig = field(default_factory=DeformConvConfig)
    small_object_attention: SmallObjectAttentionConfig = field(default_factory=SmallObjectAttentionConfig)
    temporal_attention: TemporalAttentionConfig = field(default_factory=TemporalAttentionConfig)
    density_fusion: DensityFusionConfig = field(default_factory=DensityFusionConfig)
    p1_enhance: P1EnhanceConfig = field(default_factory=P1EnhanceConfig)
    extra: tuple[str, ...] = ()             # names of registered modules (evdet.models.modules.registry)


@dataclass(frozen=True)
class FusionConfig:
    """Cross-view fusion of a multi-view batch after the neck (evdet.models.fusion); off = single view."""

    enabled: bool = False                   # off: every item is an independent view (the single-view model)
    num_views: int = 2                      # V views per scene: batch item b is view b % V of scene b // V
    levels: tuple[int, ...] = (0, 1, 2)     # 0-based FPN levels fused (0 = finest)
    max_tokens: int = 256                   # K: memory tokens per level, top-K by L2 norm (K >= tokens = full)
    num_heads: int = 2
    layers: int = 1
    mlp_ratio: int = 2
    layer_scale_init: float = 1e-5          # RVT's LayerScale init: the fused model starts as the single-view one
    pose_embedding: bool = False            # add a linear embedding of each view's camera pose (views.yaml)

    def __post_init__(self) -> None:
        check_fields(self, num_views=AT_LEAST_ONE, max_tokens=AT_LEAST_ONE, num_heads=AT_LEAST_ONE,
                     layers=AT_LEAST_ONE, mlp_ratio=AT_LEAST_ONE, layer_scale_init=NON_NEGATIVE)


@dataclass(frozen=True)
class ModelConfig:
    preset: Literal["nano", "tiny", "small", "base"] = "tiny"
    patch_size: Literal[2, 4] = 4
    in_stages: tuple[int, ...] = (2, 3, 4)  # (1, 2, 3, 4) adds stride-4 (patch 4) P1 features
    partition_split: int = 2                # pad to a multiple of 32 * split; Gen1 uses 1
    attention_impl: Literal["sdpa", "manual"] = "sdpa"  # added: same weights, "manual" = explicit softmax (benchmarks)
    # added: "channels_last" keeps weights and activations in NHWC memory: same values up to float32 rounding
    # (which can move a training run's SimOTA assignments), a faster CPU step (benchmarks/bench_train_step.json)
    memory_format: Literal["contiguous", "channels_last"] = "contiguous"
    head: HeadConfig = field(default_factory=HeadConfig)
    modules: ModulesConfig = field(default_factory=ModulesConfig)  # added: architecture modules (all off)
    fusion: FusionConfig = field(default_factory=FusionConfig)  # added: cross-view fusion (off)

    def __post_init__(self) -> None:
        check_fields(self, in_stages=STAGE, partition_split=AT_LEAST_ONE)


@dataclass(frozen=True)
class SizeAwareConfig:
    alpha: float = 1.0                      # 1 turns size-aware weighting off; 2.0-2.5 typical
    tau_px2: float = 1024.0                 # input pixels squared

    def __post_init__(self) -> None:
        check_fields(self, alpha=AT_LEAST_ONE, tau_px2=POSITIVE)


@dataclass(frozen=True)
class FocalConfig:
    gamma: float = 0.0                      # 0 = plain BCE
    alpha: float = 0.25

    def __post_init__(self) -> None:
        check_fields(self, gamma=NON_NEGATIVE, alpha=PROBABILITY)


@dataclass(frozen=True)
class ClassBalanceConfig:
    """Class-balanced loss weighting of positives (evdet.models.loss_strategies); counts from the train split."""

    mode: Literal["off", "inverse", "effective"] = "off"  # inverse: w_c ~ 1/n_c; effective: (1-beta)/(1-beta^n_c)
    beta: float = 0.999                     # effective-number beta (Cui et al. 2019)

    def __post_init__(self) -> None:
        check_fields(self, beta=BELOW_ONE)


@dataclass(frozen=True)
class HardNegativeConfig:
    """Extra objectness weight on the highest-loss negatives near small GT boxes (evdet.models.loss_strategies)."""

    ratio: float = 0.0                      # 0 = off; negatives kept per image = ceil(ratio * small GT boxes)
    radius_px: float = 32.0                 # a negative anchor centre within this distance of a small GT centre
    small_area_px2: float = 1024.0          # "small" GT: w * h below this (input pixels^2)
    weight: float = 2.0                     # objectness BCE weight of a mined negative (others 1)

    def __post_init__(self) -> None:
        check_fields(self, ratio=NON_NEGATIVE, radius_px=POSITIVE, small_area_px2=POSITIVE, weight=NON_NEGATIVE)


@dataclass(frozen=True)
class SizeFeedbackConfig:
    """Size-aware loss v2: per-size-bucket weights that follow the running loss share (loss_strategies)."""

    enabled: bool = False
    edges_px: tuple[float, ...] = (16.0, 32.0, 96.0)  # bucket edges on sqrt(w * h), input pixels
    momentum: float = 0.98                  # EMA of each bucket's loss sum and positive count
    gamma: float = 1.0                      # w_b = clamp((loss share / count share)^gamma, min, max)
    min_weight: float = 1.0
    max_weight: float = 2.5

    def __post_init__(self) -> None:
        check_fields(self, edges_px=POSITIVE, momentum=BELOW_ONE, gamma=NON_NEGATIVE, min_weight=POSITIVE,
                     max_weight=POSITIVE)


@dataclass(frozen=True)
class LossConfig:
    iou_type: Literal["iou", "giou"] = "iou"
    iou_weight: float = 5.0
    obj_weight: float = 1.0
    cls_weight: float = 1.0
    size_aware: SizeAwareConfig = field(default_factory=SizeAwareConfig)
    focal: FocalConfig = field(default_factory=FocalConfig)
    class_balance: ClassBalanceConfig = field(default_factory=ClassBalanceConfig)  # added: training strategies
    hard_negative: HardNegativeConfig = field(default_factory=HardNegativeConfig)  # (all off; README table)
    size_feedback: SizeFeedbackConfig = field(default_factory=SizeFeedbackConfig)

    def __post_init__(self) -> None:
        check_fields(self, iou_weight=NON_NEGATIVE, obj_weight=NON_NEGATIVE, cls_weight=NON_NEGATIVE)
