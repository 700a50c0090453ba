"""Loss formulas against values computed by hand (math module) on a 4-anchor head."""

import math

import pytest
import torch

from evdet.models import HeadOutput, YoloxLoss, build_loss
from evdet.models.config import FocalConfig, LossConfig, SizeAwareConfig
from evdet.models.losses import focal_bce_with_logits, size_aware_weight

OBJ_LOGIT = 0.3
CLS_LOGITS = (-0.5, 0.2)
GT_AREA = 64.0
IOU_A0 = 56 / 72  # pred (9, 8, 8, 8) vs GT (8, 8, 8, 8): inter 7 * 8, union 128 - 56


def bce(logit, target):
    return max(logit, 0) - logit * target + math.log1p(math.exp(-abs(logit)))


def focal(logit, target, gamma, alpha):
    p = 1 / (1 + math.exp(-logit))
    return (alpha * target + (1 - alpha) * (1 - target)) * abs(target - p) ** gamma * bce(logit, target)


def make_head(batch=1):
    """2 x 2 anchors of stride 8; anchor 0 predicts the GT best (k = int(0.78 + 0.44) = 1)."""
    boxes = torch.tensor([[9.0, 8.0, 8.0, 8.0], [8.0, 8.0, 12.0, 12.0], [100.0, 100.0, 2.0, 2.0],
                          [100.0, 100.0, 2.0, 2.0]])
    centers = torch.tensor([[4.0, 4.0], [12.0, 4.0], [4.0, 12.0], [12.0, 12.0]])
    return HeadOutput(boxes=boxes.repeat(batch, 1, 1).requires_grad_(True),
                      obj_logits=torch.full((batch, 4), OBJ_LOGIT, requires_grad=True),
                      cls_logits=torch.tensor(CLS_LOGITS).repeat(batch, 4, 1).requires_grad_(True),
                      anchor_centers=centers, strides=torch.full((4,), 8.0), input_hw=(16, 16))


TARGET = torch.tensor([[1.0, 8.0, 8.0, 8.0, 8.0]])


def expected_terms(weight, gamma=0.0, alpha=0.25, giou=None):
    f = (lambda x, t: bce(x, t)) if gamma == 0 else (lambda x, t: focal(x, t, gamma, alpha))
    box = 1 - IOU_A0 ** 2 if giou is None else 1 - giou
    iou = 5.0 * weight * box
    obj = weight * f(OBJ_LOGIT, 1.0) + 3 * f(OBJ_LOGIT, 0.0)
    cls = weight * (f(CLS_LOGITS[0], 0.0) + f(CLS_LOGITS[1], IOU_A0))
    return iou, obj, cls


def check(losses, iou, obj, cls, num_fg=1):
    assert math.isclose(float(losses["iou"].detach()), iou, rel_tol=1e-5)
    assert math.isclose(float(losses["obj"].detach()), obj, rel_tol=1e-5)
    assert math.isclose(float(losses["cls"].detach()), cls, rel_tol=1e-5)
    assert math.isclose(float(losses["loss"].detach()), iou + obj + cls, rel_tol=1e-5)
    assert float(losses["num_fg"].detach()) == num_fg


def test_size_aware_weight_values():
    w = size_aware_weight(torch.tensor([16.0 * 16, 32.0 * 32, 64.0 * 64, 0.0]), 2.5, 1024.0)
    assert torch.allclose(w, torch.tensor([2.5 * math.exp(-0.25), 1.0, 1.0, 2.5]))
    assert round(float(w[0]), 2) == 1.95
    assert torch.equal(size_aware_weight(torch.tensor([1.0]), 1.0, 1024.0), torch.ones(1))


def test_focal_matches_formula_and_reduces_to_bce():
    logits = torch.tensor([-2.0, 0.1, 1.5])
    targets = torch.tensor([0.0, 0.4, 1.0])
    plain = focal_bce_with_logits(logits, targets, 0.0, 0.25)
    assert torch.allclose(plain, torch.tensor([bce(-2.0, 0.0), bce(0.1, 0.4), bce(1.5, 1.0)]))
    mod = focal_bce_with_logits(logits, targets, 2.0, 0.25)
    assert torch.allclose(mod, torch.tensor([focal(-2.0, 0.0, 2, 0.25), focal(0.1, 0.4, 2, 0.25),
                                             focal(1.5, 1.0, 2, 0.25)]))


def test_plain_yolox_loss_by_hand():
    losses = build_loss(LossConfig(), num_classes=2)(make_head(), [TARGET])
    check(losses, *expected_terms(1.0))


def test_size_aware_loss_by_hand():
    cfg = LossConfig(size_aware=SizeAwareConfig(alpha=2.5, tau_px2=1024.0))
    losses = build_loss(cfg, 2)(make_head(), [TARGET])
    check(losses, *expected_terms(2.5 * math.exp(-GT_AREA / 1024.0)))


def test_focal_loss_by_hand():
    cfg = LossConfig(focal=FocalConfig(gamma=2.0, alpha=0.25))
    losses = build_loss(cfg, 2)(make_head(), [TARGET])
    check(losses, *expected_terms(1.0, gamma=2.0, alpha=0.25))


def test_giou_loss_by_hand():
    # pred [5, 13] x [4, 12] vs GT [4, 12] x [4, 12]: hull 9 x 8 = 72 = union, so GIoU = IoU here.
    losses = build_loss(LossConfig(iou_type="giou"), 2)(make_head(), [TARGET])
    check(losses, *expected_terms(1.0, giou=IOU_A0))


def test_batch_normalises_by_total_foreground():
    losses = YoloxLoss(2)(make_head(batch=2), [TARGET, torch.zeros(0, 5)])
    iou, obj, cls = expected_terms(1.0)
    obj += 4 * bce(OBJ_LOGIT, 0.0)  # the empty image adds 4 negatives, num_fg stays 1
    check(losses, iou, obj, cls, num_fg=1)


def test_no_objects_still_backpropagates():
    head = make_head()
    losses = YoloxLoss(2)(head, [torch.zeros(0, 5)])
    assert math.isclose(float(losses["loss"].detach()), 4 * bce(OBJ_LOGIT, 0.0), rel_tol=1e-5)
    losses["loss"].backward()
    assert head.obj_logits.grad is not None and head.boxes.grad is not None


@pytest.mark.parametrize("targets, match", [
    ([], "expected 1 tensors"),
    ([torch.zeros(1, 4)], r"targets\[0\]: expected shape"),
    ([torch.tensor([[2.0, 8.0, 8.0, 8.0, 8.0]])], r"targets\[0\]: class_id"),
    ([torch.tensor([[0.0, 8.0, 8.0, 0.0, 8.0]])], r"targets\[0\]: box width"),
])
def test_bad_targets_are_named(targets, match):
    with pytest.raises(ValueError, match=match):
        YoloxLoss(2)(make_head(), targets)


def test_bad_loss_config_is_named():
    with pytest.raises(ValueError, match="loss.iou_type"):
        build_loss(LossConfig(iou_type="diou"), 2)
    with pytest.raises(ValueError, match="alpha: must be a finite number >= 1, got 0.5"):
        build_loss(LossConfig(size_aware=SizeAwareConfig(alpha=0.5)), 2)   # refused by the config itself
    from evdet.experiments.records.run_config import load_run_config

    with pytest.raises(ValueError, match="loss.size_aware.alpha"):      # from YAML / overrides: the full key
        load_run_config([], ["loss.size_aware.alpha=0.5"])
