"""AdamW + OneCycle: lr scaling by the effective batch and the shape of the schedule (RVT's)."""

import pytest
import torch

from evdet.training.config import TrainConfig
from evdet.training.optim import build_optimizer, effective_batch, scaled_lr


def test_lr_scales_with_sqrt_batch():
    assert scaled_lr(2e-4, 8) == pytest.approx(2e-4)
    assert scaled_lr(2e-4, 32) == pytest.approx(4e-4)


def test_effective_batch_is_devices_nodes_accumulation_batch():
    cfg = TrainConfig(devices=2, num_nodes=3, accumulate_grad_batches=2)
    assert effective_batch(4, cfg) == 48
    # RVT 1 Mpx: 2 GPUs x 12 = 24 -> 2e-4 * sqrt(3) = 3.464e-4 (config/experiment/gen4/default.yaml: 0.000346)
    assert scaled_lr(2e-4, effective_batch(12, TrainConfig(devices=2))) == pytest.approx(3.4641e-4, rel=1e-4)


def test_one_cycle_as_rvt_div_20_final_lr_over_10000():
    p = torch.nn.Parameter(torch.zeros(1))
    opt, sched = build_optimizer([p], TrainConfig(max_steps=100, lr=1e-3, warmup_frac=0.1), batch_size=8)
    assert opt.param_groups[0]["weight_decay"] == 0.0
    lrs = []
    for _ in range(100):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched["scheduler"].step()
    lrs.append(opt.param_groups[0]["lr"])
    assert lrs[0] == pytest.approx(1e-3 / 20)
    assert max(lrs) == pytest.approx(1e-3) and lrs.index(max(lrs)) == 9
    assert lrs[99] == pytest.approx(1e-3 / 1e4, rel=1e-6)      # last step: max / final_div_factor
    assert all(a >= b for a, b in zip(lrs[9:99], lrs[10:100]))
