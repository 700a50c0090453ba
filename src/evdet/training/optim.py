"""Optimiser and schedule: AdamW + OneCycle (reference RVT defaults)."""

from __future__ import annotations

import math

import torch

from evdet.training.config import TrainConfig


def scaled_lr(base_lr: float, batch_size: int) -> float:
    """Learning rate scaled by sqrt(batch / 8) (RVT README: lr = 2e-4 * sqrt(effective_batch_size / 8))."""
    return base_lr * math.sqrt(batch_size / 8.0)


def effective_batch(batch_size: int, cfg: TrainConfig) -> int:
    """Samples per optimiser step: devices x num_nodes x accumulate_grad_batches x per-process batch."""
    return int(cfg.devices) * int(cfg.num_nodes) * int(cfg.accumulate_grad_batches) * int(batch_size)


def build_optimizer(params, cfg: TrainConfig, batch_size: int) -> tuple[torch.optim.Optimizer, dict]:
    """AdamW at the scaled lr and a per-step OneCycle schedule over ``cfg.max_steps``.

    As RVT's ``configure_optimizers``: linear OneCycle without momentum cycling, initial lr =
    lr / div_factor, final lr = lr / final_div_factor (RVT passes torch final_div_factor /
    div_factor, since torch's is relative to the initial lr).

    Args:
        batch_size: the EFFECTIVE batch (``effective_batch``), which the lr is scaled by.
    Returns:
        (optimizer, Lightning scheduler dict with interval "step").
    """
    lr = scaled_lr(cfg.lr, batch_size)
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=cfg.weight_decay)
    total = max(4, int(cfg.max_steps))
    # torch's OneCycle divides by (pct_start * total - 1) and by the rest: keep both phases >= 2 steps
    pct = min(max(cfg.warmup_frac, 2.0 / total), 1.0 - 2.0 / total)
    sched = torch.optim.lr_scheduler.OneCycleLR(
        opt, max_lr=lr, total_steps=total, pct_start=pct, div_factor=cfg.div_factor,
        final_div_factor=cfg.final_div_factor / cfg.div_factor,
        anneal_strategy="linear", cycle_momentum=False)
    return opt, {"scheduler": sched, "interval": "step", "frequency": 1, "name": "lr"}
