"""A nano model overfits one synthetic batch on CPU and then detects the target box."""

import pytest
import torch

from evdet.models import build_loss, build_model
from evdet.models.boxes import box_iou
from evdet.models.config import LossConfig, ModelConfig

HW = (64, 96)
BOX = (1.0, 60.0, 28.0, 24.0, 20.0)  # class 1, cx, cy, w, h in input pixels


def synthetic_batch(batch=2):
    """Event-like histogram: counts inside the box edges, sparse noise elsewhere."""
    g = torch.Generator().manual_seed(0)
    x = (torch.rand(batch, 20, *HW, generator=g) < 0.02).float()
    _, cx, cy, w, h = BOX
    x1, y1, x2, y2 = int(cx - w / 2), int(cy - h / 2), int(cx + w / 2), int(cy + h / 2)
    x[:, :, y1:y2, x1:x1 + 2] = 4.0
    x[:, :, y1:y2, x2 - 2:x2] = 4.0
    x[:, :, y1:y1 + 2, x1:x2] = 4.0
    x[:, :, y2 - 2:y2, x1:x2] = 4.0
    return x, [torch.tensor([BOX]) for _ in range(batch)]


def recalibrate_batch_norm(model, x):
    """Precise BN: replace running statistics by the exact statistics of `x` (few steps leave them lagging)."""
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.reset_running_stats()
            m.momentum = None  # cumulative average
    model.train()
    with torch.no_grad():
        model(x)


@pytest.mark.slow
def test_nano_overfits_one_batch():
    torch.manual_seed(0)
    model = build_model(ModelConfig(preset="nano"), num_classes=2, input_hw=HW)
    criterion = build_loss(LossConfig(), num_classes=2)
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3, weight_decay=0.0)
    x, targets = synthetic_batch()
    model.train()
    history = []
    for _ in range(50):
        losses = criterion(model(x).head, targets)
        optimizer.zero_grad()
        losses["loss"].backward()
        optimizer.step()
        history.append(float(losses["loss"].detach()))
    assert sum(history[-5:]) / 5 < 0.4 * history[0]

    recalibrate_batch_norm(model, x)
    model.eval()
    with torch.no_grad():
        dets = model.postprocess(model(x).head, conf_threshold=0.25, nms_iou=0.45, max_detections=10)
    _, cx, cy, w, h = BOX
    gt = torch.tensor([[cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2]])
    for det in dets:
        assert det.shape[0] >= 1
        top = det[0]
        assert int(top[5]) == 1
        assert float(box_iou(top[None, :4], gt)[0, 0]) > 0.5
