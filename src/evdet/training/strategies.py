"""Glue of the training strategies into ``DetectionModule`` (each strategy lives in its own module).

- fit / train start: class counts of the train split into the criterion (``loss.class_balance``), the
  sampling report of ``data.sample_weighting`` printed and logged, the distiller built
  (``training.distill``);
- each training batch: temporal consistency and distillation terms added to the loss, the size-feedback
  weights logged (``train/size_w/<bucket>``: the schedule);
- every forward: a batch whose size differs from the model's build size (``data.multires``) is padded at
  the bottom/right to the next size its attention partitions fit (``canvas_multiple``);
- detections and ground truth of a resized batch are mapped back to stored pixels (``batch["input_scale"]``).
``active_strategies`` lists what is on (recorded with the run's configs).
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch
import torch.nn.functional as F

from evdet.data.multires import canvas_size


def active_strategies(data_cfg, loss_cfg, train_cfg) -> list[str]:
    """Names of the strategies switched on (empty for the RVT recipes)."""
    a = data_cfg.augment
    on = {
        "event_dropout": a.dropout_prob > 0, "time_reversal": a.time_reversal_prob > 0,
        "noise_background_activity": a.noise_prob > 0 and a.noise_rate_hz > 0,
        "sample_weighting": data_cfg.sample_weighting.mode != "off", "multires": len(data_cfg.multires.scales) > 0,
        "eval_scale": data_cfg.multires.eval_scale != 1.0,
        "class_balance": loss_cfg.class_balance.mode != "off", "hard_negative": loss_cfg.hard_negative.ratio > 0,
        "size_feedback": loss_cfg.size_feedback.enabled,
        "temporal_consistency": train_cfg.temporal_consistency.weight > 0,
        "distill": bool(train_cfg.distill.teacher_ckpt),
    }
    return [k for k, v in on.items() if v]


def check_combination(train_cfg) -> None:
    """The EMA teacher has its own training step: the batch strategies cannot join it."""
    if train_cfg.ema_teacher.decay > 0 and (train_cfg.temporal_consistency.weight > 0 or train_cfg.distill.teacher_ckpt):
        raise ValueError("training.ema_teacher cannot be combined with training.temporal_consistency or "
                         "training.distill (set one of them off)")


def canvas_multiple(model) -> tuple[int, int]:
    """(H, W) multiples that a padded input must have for every stage map to fit the model's partitions."""
    part = model.backbone.partition_size
    stride = max(model.backbone.strides)
    pad = model.pad_multiple
    return (math.lcm(pad, stride * int(part[0])), math.lcm(pad, stride * int(part[1])))


def fit_canvas(model, frames: torch.Tensor, build_hw: tuple[int, int]) -> torch.Tensor:
    """Frames (B, T, C, H, W) padded at the bottom/right to a size the model fits; unchanged at its build size."""
    height, width = frames.shape[-2:]
    if (height, width) == tuple(build_hw):
        return frames
    ch, cw = canvas_size(height, width, canvas_multiple(model))
    return F.pad(frames, (0, cw - width, 0, ch - height)) if (ch, cw) != (height, width) else frames


def to_stored_pixels(xyxy: np.ndarray, scale_yx) -> np.ndarray:
    """(n, 4) x1, y1, x2, y2 of a resized item back to stored pixels (divide by (sx, sy))."""
    sy, sx = float(scale_yx[0]), float(scale_yx[1])
    if sy == 1.0 and sx == 1.0:
        return xyxy
    return xyxy / np.array([sx, sy, sx, sy], dtype=xyxy.dtype)


def setup_fit(module, datamodule) -> None:
    """Fit-start work: class counts, sampling report, distiller (``datamodule`` may be None)."""
    if module.loss_cfg.class_balance.mode != "off":
        if datamodule is None or not hasattr(datamodule, "class_counts"):
            raise ValueError("loss.class_balance needs the EventDataModule (train split class counts)")
        module.criterion.set_class_counts(datamodule.class_counts())
    if module.train_cfg.distill.teacher_ckpt and not module._distill:
        from evdet.training.distill import build_distiller

        module._distill = (build_distiller(module.model, module.train_cfg, in_channels=module.in_channels,
                                           input_hw=module.input_hw, trusted=module.trusted_checkpoints),)
        if module._pending_adapters is not None:
            module._distill[0].adapters.load_state_dict(module._pending_adapters)


def report_start(module, datamodule) -> None:
    """Print the strategies switched on, and print / log the sampling weights and small-box shares."""
    on = active_strategies(module.data_cfg, module.loss_cfg, module.train_cfg)
    if on:
        print(f"[evdet] training strategies on: {', '.join(on)}")
    report = getattr(datamodule, "sampling_report", None) or {}
    for unit, r in report.items():
        print(f"[evdet] sample weighting {r['mode']} over {r['count']} {unit}: weights {r['weight_min']:.3g}"
              f"..{r['weight_max']:.3g} (mean {r['weight_mean']:.3g}); small-box share uniform "
              f"{r['small_box_share_uniform']} -> weighted {r['small_box_share_weighted']}")
        if module.logger is not None:
            module.logger.log_metrics({f"data/sampling_{unit}/{k}": float(v) for k, v in r.items()
                                       if isinstance(v, (int, float)) and v is not None}, step=0)


def add_losses(module, batch: dict, out, losses: dict) -> dict:
    """Temporal consistency and distillation terms added to ``losses["loss"]`` (training batches)."""
    if out is None:
        return losses
    mask = batch["label_mask"].bool()
    tc = module.train_cfg.temporal_consistency
    total = losses["loss"]
    if tc.weight > 0:
        from evdet.training.temporal_consistency import temporal_consistency_loss

        rows = [tuple(r) for r in mask.nonzero().tolist()]
        term, pairs = temporal_consistency_loss(
            out.head, rows, [batch["targets"][b][t] for b, t in rows], [batch["track_ids"][b][t] for b, t in rows],
            box_weight=tc.box_weight, cls_weight=tc.cls_weight)
        losses["temporal"] = tc.weight * term
        losses["temporal_pairs"] = torch.tensor(float(pairs))
        total = total + losses["temporal"]
    if module._distill:
        frames = fit_canvas(module.model, batch["frames"].to(module.device).float(), module.input_hw)
        d = module._distill[0].to(frames.device).losses(batch, frames, out.head, mask)
        losses.update(d)
        total = total + d["distill"]
    losses["loss"] = total
    return losses


def log_values(module) -> dict[str, float]:
    """Values logged each training step besides the losses (size-feedback schedule)."""
    fb = getattr(module.criterion, "size_feedback", None)
    if fb is None:
        return {}
    edges = ("0",) + tuple(f"{e:g}" for e in fb.edges_px)
    return {f"train/size_w/{e}px": float(w) for e, w in zip(edges, fb.weights.tolist())}


def extra_parameters(module) -> list:
    """Trainable parameters outside the detector (the distillation adapters)."""
    return list(module._distill[0].adapters.parameters()) if module._distill else []


def adapters_state(module) -> Optional[dict]:
    """The distillation adapters' state for the checkpoint (None without distillation)."""
    return module._distill[0].adapters.state_dict() if module._distill else None
