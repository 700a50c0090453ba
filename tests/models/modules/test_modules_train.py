"""Every architecture module on at once trains for 160 CPU steps without NaN, in random and stream batches
through the training system's own stream path (StreamStates carry the module state, reset at starts)."""

import math

import pytest
import torch
from module_cases import ALL_MODULES, model_config

from evdet.data.config import DataConfig
from evdet.models.config import LossConfig
from evdet.training.config import TrainConfig
from evdet.training.module import DetectionModule

HW = (32, 64)


def moving_box_batch(step: int, batch: int, steps: int, stream: bool, chunk: int):
    """A box of events that moves right by 2 px per step; targets (class 0, cx, cy, w, h) at every step."""
    g = torch.Generator().manual_seed(step)
    frames = torch.zeros(batch, steps, 20, *HW)
    targets = []
    for b in range(batch):
        per_item = []
        x0 = int(torch.randint(0, 24, (1,), generator=g)) if not stream else 0
        y0 = 8 + 4 * b
        for t in range(steps):
            x = (x0 + 2 * (chunk * steps + t)) % 48
            frames[b, t, :, y0:y0 + 10, x:x + 12] = torch.randint(0, 4, (20, 10, 12), generator=g).float()
            per_item.append(torch.tensor([[0.0, x + 6.0, y0 + 5.0, 12.0, 10.0]]))
        targets.append(per_item)
    return {"frames": frames, "targets": targets, "label_mask": torch.ones(batch, steps, dtype=torch.bool),
            "is_first": torch.full((batch,), (not stream) or chunk == 0),
            "stream_slot": torch.tensor([0, 1] if stream else [-1, -1])}


@pytest.mark.slow
def test_all_modules_train_160_steps_without_nan():
    torch.manual_seed(0)
    module = DetectionModule(DataConfig(), model_config(ALL_MODULES), LossConfig(), TrainConfig(), 2, HW, 20,
                             ("car", "pedestrian"))
    module.train()
    opt = torch.optim.AdamW(module.model.parameters(), lr=1e-3)
    losses = []
    for step in range(160):
        stream = step % 2 == 1
        batch = moving_box_batch(step, 2, 1, stream, chunk=(step // 2) % 5)
        out, _ = module._run(batch, module.train_states)
        opt.zero_grad()
        out["loss"].backward()
        torch.nn.utils.clip_grad_value_(module.model.parameters(), 1.0)   # the recipe's clipping
        opt.step()
        losses.append(float(out["loss"].detach()))
        assert math.isfinite(losses[-1]), f"step {step}: loss {losses[-1]}"
    assert all(torch.isfinite(p).all() for p in module.model.parameters())
    assert len(module.train_states) == 2 and len(module.train_states.state_dict()[0][1]) == 4
    assert sum(losses[-20:]) < sum(losses[:20])   # it learns the moving box
