"""AdamW + OneCycle: lr scaling and the shape of the schedule."""

import pytest
import torch

from evdet.training.config import TrainConfig
from evdet.training.optim import build_optimizer, scaled_lr


def test_lr_scales_with_sqrt_batch():
    assert scaled_lr(2e-4, 8) == pytest.approx(2e-4)
    assert scaled_lr(2e-4, 32) == pytest.approx(4e-4)


def test_one_cycle_warms_up_then_decays():
    p = torch.nn.Parameter(torch.zeros(1))
    opt, sched = build_optimizer([p], TrainConfig(max_steps=100, lr=1e-3, warmup_frac=0.1), batch_size=8)
    assert opt.param_groups[0]["weight_decay"] == 0.0
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched["scheduler"].step()
    assert lrs[0] == pytest.approx(1e-3 / 25)
    assert max(lrs) == pytest.approx(1e-3) and lrs.index(max(lrs)) == 9
    assert lrs[-1] < 1e-5 and all(a >= b for a, b in zip(lrs[9:], lrs[10:]))
