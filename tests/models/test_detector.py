"""Recurrent state carry, item selection, gradient flow and post-processing."""

import pytest
import torch

from evdet.models import HeadOutput, build_loss, build_model
from evdet.models.config import LossConfig, ModelConfig

HW = (64, 96)


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = build_model(ModelConfig(preset="nano"), num_classes=2, input_hw=HW)
    # LayerScale starts at 1e-5; raise it so attention visibly matters in these checks.
    for name, p in m.named_parameters():
        if name.endswith("gamma"):
            p.data.fill_(0.5)
    return m.eval()


def test_sequence_equals_single_steps(model):
    torch.manual_seed(1)
    x = torch.rand(2, 3, 20, *HW)
    with torch.no_grad():
        full = model(x)
        states = None
        singles = []
        for t in range(3):
            out = model(x[:, t], states)
            states = out.states
            singles.append(out.head)
    # full.head items are row-major (b, t): item b * 3 + t.
    for b in range(2):
        for t in range(3):
            assert torch.allclose(full.head.obj_logits[b * 3 + t], singles[t].obj_logits[b], atol=1e-5)
            assert torch.allclose(full.head.boxes[b * 3 + t], singles[t].boxes[b], atol=1e-4)
    for (h_full, c_full), (h_one, c_one) in zip(full.states, states):
        assert torch.allclose(h_full, h_one, atol=1e-6) and torch.allclose(c_full, c_one, atol=1e-6)
    # The state matters: a fresh start on the last frame gives different features.
    with torch.no_grad():
        fresh = model(x[:, 2])
    for (h_fresh, _), (h_carried, _) in zip(fresh.states, states):
        assert not torch.allclose(h_fresh, h_carried, atol=1e-3)


def test_select_picks_items_row_major(model):
    torch.manual_seed(2)
    x = torch.rand(2, 3, 20, *HW)
    select = torch.tensor([[False, True, True], [True, False, False]])
    with torch.no_grad():
        every = model(x)
        picked = model(x, select=select)
    wanted = [0 * 3 + 1, 0 * 3 + 2, 1 * 3 + 0]
    assert picked.head.obj_logits.shape[0] == 3
    assert torch.allclose(picked.head.obj_logits, every.head.obj_logits[wanted], atol=1e-5)
    for (h_a, _), (h_b, _) in zip(picked.states, every.states):
        assert torch.allclose(h_a, h_b, atol=1e-6)
    with pytest.raises(ValueError, match="select"):
        model(x, select=torch.zeros(2, 3, dtype=torch.bool))
    with pytest.raises(ValueError, match="select: expected shape"):
        model(x, select=torch.ones(3, 2, dtype=torch.bool))


def test_gradients_reach_every_parameter():
    torch.manual_seed(3)
    model = build_model(ModelConfig(preset="nano", in_stages=(1, 2, 3, 4)), 2, HW).train()
    x = torch.rand(2, 2, 20, *HW) * 5
    out = model(x)  # two steps so that the LSTM's hidden-state weights see a non-zero h
    # one box per level's scale (strides 4/8/16/32) so that every level's cls branch has positives
    boxes = [[0.0, 10.0, 10.0, 4.0, 4.0], [1.0, 70.0, 14.0, 8.0, 8.0], [0.0, 24.0, 44.0, 16.0, 16.0],
             [1.0, 64.0, 40.0, 32.0, 32.0]]
    targets = [torch.tensor(boxes) for _ in range(4)]
    build_loss(LossConfig(), 2)(out.head, targets)["loss"].backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert missing == []


def test_forward_rejects_bad_rank(model):
    with pytest.raises(ValueError, match="input: expected"):
        model(torch.zeros(20, *HW))


def _head(boxes, obj, cls, hw=(50, 60)):
    n = boxes.shape[0]
    return HeadOutput(boxes=boxes[None], obj_logits=obj[None], cls_logits=cls[None],
                      anchor_centers=torch.zeros(n, 2), strides=torch.full((n,), 8.0), input_hw=hw)


def logit(p):
    return torch.log(torch.tensor(p) / (1 - torch.tensor(p)))


def test_postprocess_scores_threshold_nms_clip_and_limit(model):
    boxes = torch.tensor([[20.0, 20.0, 10.0, 10.0],   # best, class 0
                          [21.0, 20.0, 10.0, 10.0],   # same class, IoU 0.82 -> suppressed
                          [21.0, 20.0, 10.0, 10.0],   # class 1 -> kept (class-aware)
                          [58.0, 48.0, 10.0, 10.0],   # crosses the frame: (53, 43, 63, 53), clipped (53, 43, 60, 50)
                          [5.0, 5.0, 4.0, 4.0]])      # score below threshold
    obj = torch.stack([logit(0.9), logit(0.8), logit(0.5), logit(0.6), logit(0.1)])
    # class probabilities: best class decides the label and score = obj * cls.
    cls_p = torch.tensor([[0.9, 0.1], [0.8, 0.1], [0.1, 0.8], [0.7, 0.2], [0.5, 0.5]])
    head = _head(boxes, obj, torch.log(cls_p / (1 - cls_p)))
    # RVT's defaults: no clipping to the frame, no cap
    dets = model.postprocess(head, conf_threshold=0.1, nms_iou=0.45)[0]
    # columns: x1, y1, x2, y2, obj x cls, class, cls alone (YOLOX class_conf)
    expected = torch.tensor([[15.0, 15.0, 25.0, 25.0, 0.81, 0.0, 0.9],
                             [53.0, 43.0, 63.0, 53.0, 0.42, 0.0, 0.7],
                             [16.0, 15.0, 26.0, 25.0, 0.40, 1.0, 0.8]])
    assert torch.allclose(dets, expected, atol=1e-5)
    clipped = model.postprocess(head, conf_threshold=0.1, nms_iou=0.45, max_detections=300, clip=True)[0]
    expected[1, 2:4] = torch.tensor([60.0, 50.0])
    assert torch.allclose(clipped, expected, atol=1e-5)
    limited = model.postprocess(head, conf_threshold=0.1, nms_iou=0.45, max_detections=2, clip=True)[0]
    assert torch.allclose(limited, expected[:2], atol=1e-5)
    none = model.postprocess(head, conf_threshold=0.95)[0]
    assert none.shape == (0, 7)


def test_uint8_input_is_cast_without_scaling(model):
    x = torch.randint(0, 11, (1, 20, *HW), dtype=torch.uint8)
    with torch.no_grad():
        a = model(x).head.obj_logits
        b = model(x.float()).head.obj_logits
    assert torch.equal(a, b)


def test_single_step_select_by_item(model):
    x = torch.rand(3, 20, *HW)
    with torch.no_grad():
        every = model(x)
        picked = model(x, select=torch.tensor([True, False, True]))
    assert torch.allclose(picked.head.boxes, every.head.boxes[[0, 2]], atol=1e-5)


def test_an_input_that_does_not_fit_the_partitions_is_refused_in_one_line():
    """Built for 64x96 with split 1 (pad 32): partitions (2, 3) of the stride-32 map; a 64x64 input
    pads to 64x64, whose 2x2 stride-32 map is not 3 partitions wide."""
    from evdet.models.build import build_model
    from evdet.models.config import ModelConfig

    m = build_model(ModelConfig(preset="nano", partition_split=1), 2, (64, 96), 20)
    assert m.backbone.partition_size == (2, 3)
    with pytest.raises(ValueError, match=r"^input 64x64 \(padded 64x64\) does not fit the attention partitions 3x2"):
        m(torch.zeros(1, 20, 64, 64))
    with torch.no_grad():
        m(torch.zeros(1, 20, 128, 192))          # twice the size: whole partitions, runs (more windows)


def test_channels_last_memory_gives_the_same_outputs_and_gradients():
    # model.memory_format=channels_last changes where values live, not what they are (float32 rounding aside)
    torch.manual_seed(0)
    plain = build_model(ModelConfig(preset="nano"), 2, (64, 96), 20)
    nhwc = build_model(ModelConfig(preset="nano", memory_format="channels_last"), 2, (64, 96), 20)
    nhwc.load_state_dict(plain.state_dict())
    stem = next(m for m in nhwc.modules() if isinstance(m, torch.nn.Conv2d))
    assert stem.weight.is_contiguous(memory_format=torch.channels_last)
    x = (torch.rand(2, 3, 20, 64, 96) < 0.1).to(torch.uint8)
    select = torch.tensor([[False, False, True]] * 2)
    criterion = build_loss(LossConfig(), 2)
    targets = [torch.tensor([[0.0, 30.0, 20.0, 12.0, 16.0]])] * 2
    logits, grads = [], []
    for model in (plain, nhwc):
        out = model(x, select=select)
        criterion(out.head, targets)["loss"].backward()
        logits.append(out.head.obj_logits.detach())
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    torch.testing.assert_close(logits[1], logits[0], rtol=1e-4, atol=1e-5)
    assert grads[1].shape == grads[0].shape
    assert float((grads[1] - grads[0]).norm() / grads[0].norm()) < 1e-5
