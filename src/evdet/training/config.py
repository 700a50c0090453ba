"""Optimisation and trainer settings (reference RVT defaults)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Optional

from evdet.utils.value_checks import AT_LEAST_ONE, NON_NEGATIVE, POSITIVE, PROBABILITY, check_fields


@dataclass(frozen=True)
class EmaTeacherConfig:
    """Mean-teacher pseudo-labelling during training (evdet.training.teacher)."""

    decay: float = 0.0                      # 0 = off; else teacher <- decay * teacher + (1 - decay) * student per step
    score_thr: float = 0.4                  # a teacher box becomes a pseudo-target at obj x cls >= score_thr ...
    class_thr: float = 0.35                 # ... and class probability >= class_thr
    burn_in_steps: int = 0                  # before this step: teacher = student copy, no pseudo loss


@dataclass(frozen=True)
class TemporalConsistencyConfig:
    """Pull predictions of one GT track together over consecutive labelled steps (temporal_consistency)."""

    weight: float = 0.0                     # 0 = off
    box_weight: float = 1.0                 # smooth-L1 of the box residuals (relative to GT size)
    cls_weight: float = 1.0                 # squared difference of class probabilities

    def __post_init__(self) -> None:
        check_fields(self, weight=NON_NEGATIVE, box_weight=NON_NEGATIVE, cls_weight=NON_NEGATIVE)


@dataclass(frozen=True)
class DistillConfig:
    """Frozen high-resolution teacher guides the student (evdet.training.distill)."""

    teacher_ckpt: str = ""                  # "" = off; an evdet DetectionModule checkpoint
    teacher_scale: float = 2.0              # teacher input = student input resized by this (nearest-exact)
    feature_weight: float = 1.0             # MSE of adapted student FPN levels to the teacher's matched levels
    response_weight: float = 1.0            # BCE of student obj / cls logits to the teacher's probabilities

    def __post_init__(self) -> None:
        check_fields(self, teacher_scale=POSITIVE, feature_weight=NON_NEGATIVE, response_weight=NON_NEGATIVE)


@dataclass(frozen=True)
class TrainConfig:
    max_steps: int = 400_000
    lr: float = 2e-4                        # at effective batch 8; scaled by sqrt(effective batch / 8), effective
                                            # batch = devices x num_nodes x accumulate_grad_batches x data.batch_size
                                            # (RVT README "Training")
    weight_decay: float = 0.0
    warmup_frac: float = 0.005              # OneCycle pct_start
    div_factor: float = 20.0                # OneCycle initial lr = lr / div_factor (RVT experiment yamls: 20)
    final_div_factor: float = 10_000.0      # final lr = lr / final_div_factor (RVT's meaning, not torch's)
    sync_batchnorm: bool = True             # SyncBatchNorm under DDP (RVT: on whenever several GPUs); no effect
                                            # on one process or on CPU processes (torch's op is GPU-only)
    grad_clip_value: float = 1.0
    accumulate_grad_batches: int = 1
    precision: Literal["auto", "32", "16-mixed", "bf16-mixed"] = "auto"  # auto: fp16 on GPU, fp32 on CPU
    seed: int = 0
    accelerator: str = "auto"
    devices: int = 1
    num_nodes: int = 1
    strategy: str = "auto"                  # "ddp" for multi-GPU / multi-node
    val_every_n_steps: int = 10_000
    limit_val_batches: Optional[int] = None
    checkpoint_metric: str = "val/prophesee/AP"
    checkpoint_mode: Literal["max", "min"] = "max"
    checkpoint_every_n_steps: int = 0       # also refresh last.ckpt every this many steps (0: at validations only)
    log_every_n_steps: int = 10
    loggers: tuple[str, ...] = ("csv", "tensorboard")  # also "mlflow" (local SQLite store; pip install mlflow-skinny)
    loss_cv_window: int = 50                # monitor: loss coefficient of variation window
    divergence_factor: float = 20.0         # stop when loss exceeds this times its running median
    ema_teacher: EmaTeacherConfig = field(default_factory=EmaTeacherConfig)
    pseudo_weight: float = 1.0              # weight of the loss on the EMA teacher's pseudo-targets
    temporal_consistency: TemporalConsistencyConfig = field(default_factory=TemporalConsistencyConfig)  # added
    distill: DistillConfig = field(default_factory=DistillConfig)                                       # added

    def __post_init__(self) -> None:
        check_fields(self, max_steps=AT_LEAST_ONE, lr=POSITIVE, weight_decay=NON_NEGATIVE, warmup_frac=PROBABILITY,
                     grad_clip_value=NON_NEGATIVE, accumulate_grad_batches=AT_LEAST_ONE, num_nodes=AT_LEAST_ONE,
                     val_every_n_steps=AT_LEAST_ONE, limit_val_batches=AT_LEAST_ONE,
                     checkpoint_every_n_steps=NON_NEGATIVE, log_every_n_steps=AT_LEAST_ONE,
                     loss_cv_window=AT_LEAST_ONE, divergence_factor=POSITIVE)
