"""Temporal consistency loss on hand-built head outputs."""

import pytest
import torch

from evdet.models import HeadOutput
from evdet.training.temporal_consistency import match_gt_anchors, temporal_consistency_loss

CENTERS = torch.tensor([[4.0, 4.0], [12.0, 4.0], [4.0, 12.0], [12.0, 12.0]])


def head(boxes, cls):
    """N items x 4 anchors of stride 8."""
    return HeadOutput(boxes=boxes.clone().requires_grad_(True), obj_logits=torch.zeros(boxes.shape[:2]),
                      cls_logits=cls.clone().requires_grad_(True), anchor_centers=CENTERS,
                      strides=torch.full((4,), 8.0), input_hw=(16, 16))


BOXES = torch.tensor([[9.0, 8.0, 8.0, 8.0], [8.0, 8.0, 12.0, 12.0], [100.0, 100.0, 2.0, 2.0], [1.0, 1.0, 2.0, 2.0]])
GT = torch.tensor([[1.0, 8.0, 8.0, 8.0, 8.0]])


def test_matching_takes_the_best_iou_anchor_inside_the_centre_region():
    assert match_gt_anchors(BOXES, CENTERS, torch.full((4,), 8.0), GT[:, 1:]).tolist() == [0]


def test_identical_predictions_of_one_track_give_zero():
    h = head(BOXES.repeat(2, 1, 1), torch.zeros(2, 4, 2))
    loss, pairs = temporal_consistency_loss(h, [(0, 1), (0, 3)], [GT, GT], [torch.tensor([5]), torch.tensor([5])])
    assert pairs == 1 and loss.item() == 0.0


def test_a_changed_prediction_is_pulled_back_by_hand():
    boxes = BOXES.repeat(2, 1, 1)
    boxes[1, 0, 0] = 9.5          # step 2: cx 9.5 instead of 9 -> residual x 1.5/8 vs 1/8: diff 0.0625
    cls = torch.zeros(2, 4, 2)
    cls[1, 0, 1] = 2.0            # class 1 probability 0.5 -> sigmoid(2)
    h = head(boxes, cls)
    loss, pairs = temporal_consistency_loss(h, [(0, 1), (0, 3)], [GT, GT], [torch.tensor([5]), torch.tensor([5])],
                                            box_weight=1.0, cls_weight=2.0)
    box = 0.5 * 0.0625 ** 2                                  # smooth-L1 (beta 1) of 0.0625
    cls_term = (torch.sigmoid(torch.tensor(2.0)) - 0.5) ** 2
    assert pairs == 1 and loss.item() == pytest.approx(box + 2.0 * float(cls_term))
    loss.backward()
    assert h.boxes.grad[0].abs().sum() > 0 and h.boxes.grad[1].abs().sum() > 0   # both steps pulled


def test_other_tracks_items_and_single_steps_give_no_pair():
    h = head(BOXES.repeat(3, 1, 1), torch.zeros(3, 4, 2))
    # items 0 and 1 have one labelled step each; different track ids never pair
    loss, pairs = temporal_consistency_loss(h, [(0, 1), (1, 1), (1, 2)], [GT, GT, GT],
                                            [torch.tensor([5]), torch.tensor([6]), torch.tensor([7])])
    assert pairs == 0 and loss.item() == 0.0 and loss.requires_grad
