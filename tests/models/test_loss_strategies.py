"""Loss strategies against hand-computed cases: class-balanced weights, hard negatives, size feedback."""

import math

import pytest
import torch

from evdet.models import HeadOutput, build_loss
from evdet.models.config import ClassBalanceConfig, HardNegativeConfig, LossConfig, SizeFeedbackConfig
from evdet.models.loss_strategies import SizeFeedback, hard_negative_weights, size_buckets
from evdet.utils.class_balance import class_balanced_weights


def test_effective_number_weights_of_a_three_class_case():
    # (1 - 0.99) / (1 - 0.99^n) for n = 10, 100, 1000 = 0.104582, 0.015774, 0.010000; scaled to mean 1
    w = class_balanced_weights([10, 100, 1000], "effective", beta=0.99)
    assert w.tolist() == pytest.approx([2.406842, 0.363011, 0.230147], abs=1e-6)


def test_inverse_frequency_weights_and_absent_classes():
    # raw 1, 1/3, (absent) -> mean 1 over the two present: 1.5, 0.5, 0
    assert class_balanced_weights([1, 3, 0], "inverse").tolist() == pytest.approx([1.5, 0.5, 0.0])
    with pytest.raises(ValueError, match="mode"):
        class_balanced_weights([1, 2], "sqrt")


def test_hard_negatives_are_the_highest_loss_negatives_near_a_small_box():
    # ten anchors on a line at x = 0..9; small GT at x = 3 (4x4), large GT at x = 8 (50x50, ignored)
    centers = torch.stack([torch.arange(10.0), torch.zeros(10)], 1)
    gt = torch.tensor([[3.0, 0.0, 4.0, 4.0], [8.0, 0.0, 50.0, 50.0]])
    fg = torch.zeros(10, dtype=torch.bool)
    fg[3] = True
    loss = torch.tensor([9.0, 0.5, 0.1, 5.0, 0.7, 0.3, 0.2, 8.0, 9.0, 9.0])
    w = hard_negative_weights(loss, fg, centers, gt, ratio=2.0, radius_px=2.5, small_area_px2=100.0, weight=3.0)
    # near and negative: x = 1, 2, 4, 5 (losses 0.5, 0.1, 0.7, 0.3): the two highest are x = 4 and x = 1
    assert w.tolist() == [1, 3, 1, 1, 3, 1, 1, 1, 1, 1]
    none = hard_negative_weights(loss, fg, centers, gt[1:], ratio=2.0, radius_px=2.5, small_area_px2=100.0,
                                 weight=3.0)
    assert none.tolist() == [1.0] * 10


def test_size_buckets_and_feedback_weights_by_hand():
    assert size_buckets(torch.tensor([15.0 ** 2, 16.0 ** 2, 40.0 ** 2, 100.0 ** 2]), (16, 32, 96)).tolist() == [
        0, 1, 2, 3]
    fb = SizeFeedback((32.0,), momentum=0.5, gamma=1.0, min_weight=1.0, max_weight=2.5)
    areas = torch.tensor([10.0 ** 2, 10.0 ** 2, 50.0 ** 2, 50.0 ** 2])
    fb.update(areas, torch.tensor([3.0, 3.0, 1.0, 1.0]))
    # S = (6, 2), n = (2, 2): loss share / count share = (6/8)/(1/2) = 1.5 and (2/8)/(1/2) = 0.5 -> clamp to 1
    assert fb.weights.tolist() == pytest.approx([1.5, 1.0])
    fb.update(areas, torch.tensor([1.0, 1.0, 1.0, 1.0]))
    # EMA with momentum 0.5: S = (4, 2), n = (2, 2): (4/6)/(1/2) = 4/3
    assert fb.weights.tolist() == pytest.approx([4 / 3, 1.0])
    assert fb.weight_of(torch.tensor([4.0, 4000.0])).tolist() == pytest.approx([4 / 3, 1.0])


def _head():
    """4 anchors of stride 8, one GT of class 1 at (8, 8, 8, 8) (as tests/models/test_losses.py)."""
    boxes = torch.tensor([[9.0, 8.0, 8.0, 8.0], [8.0, 8.0, 12.0, 12.0], [100.0, 100.0, 2.0, 2.0],
                          [100.0, 100.0, 2.0, 2.0]])
    centers = torch.tensor([[4.0, 4.0], [12.0, 4.0], [4.0, 12.0], [12.0, 12.0]])
    return HeadOutput(boxes=boxes[None].clone().requires_grad_(True), obj_logits=torch.full((1, 4), 0.3),
                      cls_logits=torch.tensor([-0.5, 0.2]).repeat(1, 4, 1), anchor_centers=centers,
                      strides=torch.full((4,), 8.0), input_hw=(16, 16))


TARGET = [torch.tensor([[1.0, 8.0, 8.0, 8.0, 8.0]])]


def test_class_balanced_loss_scales_the_positive_terms_by_the_class_weight():
    base = build_loss(LossConfig(), 2)(_head(), TARGET)
    crit = build_loss(LossConfig(class_balance=ClassBalanceConfig(mode="inverse")), 2)
    crit.set_class_counts([1, 3])            # class 1 weight 0.5 (see the inverse case above)
    out = crit(_head(), TARGET)
    assert out["iou"].item() == pytest.approx(0.5 * base["iou"].item())
    assert out["cls"].item() == pytest.approx(0.5 * base["cls"].item())
    bce_pos = math.log1p(math.exp(-0.3))     # the positive's objectness BCE, weighted 0.5 instead of 1
    assert out["obj"].item() == pytest.approx(base["obj"].item() - 0.5 * bce_pos)


def test_hard_negative_mining_raises_only_the_objectness_term():
    base = build_loss(LossConfig(), 2)(_head(), TARGET)
    cfg = LossConfig(hard_negative=HardNegativeConfig(ratio=1.0, radius_px=20.0, small_area_px2=100.0, weight=3.0))
    out = build_loss(cfg, 2)(_head(), TARGET)
    # one negative (all have BCE(0.3, 0)) gets weight 3: obj rises by 2 * BCE(0.3, 0)
    bce_neg = 0.3 + math.log1p(math.exp(-0.3))
    assert out["obj"].item() == pytest.approx(base["obj"].item() + 2 * bce_neg)
    assert out["iou"].item() == pytest.approx(base["iou"].item())


def test_size_feedback_updates_in_training_only_and_refuses_v1_together():
    crit = build_loss(LossConfig(size_feedback=SizeFeedbackConfig(enabled=True)), 2)
    crit.eval()
    crit(_head(), TARGET)
    assert int(crit.size_feedback.steps) == 0
    crit.train()
    out = crit(_head(), TARGET)
    assert int(crit.size_feedback.steps) == 1 and torch.isfinite(out["loss"])
    assert "size_feedback.weights" in crit.state_dict()
    from evdet.models.config import SizeAwareConfig
    with pytest.raises(ValueError, match="size_feedback"):
        build_loss(LossConfig(size_aware=SizeAwareConfig(alpha=2.0), size_feedback=SizeFeedbackConfig(enabled=True)), 2)
