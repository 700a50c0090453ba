"""SimOTA on hand-made cases: one 4 x 4 level, stride 8, anchor centres at 4, 12, 20, 28."""

import math

import torch

from evdet.models.simota import center_prior, simota_assign

STRIDE = 8.0
FAR = [200.0, 200.0, 2.0, 2.0]  # a predicted box that overlaps nothing


def grid():
    ys, xs = torch.meshgrid(torch.arange(4.0), torch.arange(4.0), indexing="ij")
    centers = (torch.stack([xs, ys], -1).reshape(-1, 2) + 0.5) * STRIDE
    return centers, torch.full((16,), STRIDE)


def anchor(x, y):
    """Index of the anchor whose centre is (x, y) pixels."""
    return int((y - 4) / 8) * 4 + int((x - 4) / 8)


def assign(pred_boxes, gt_boxes, gt_classes, num_classes=2):
    centers, strides = grid()
    return simota_assign(torch.tensor(pred_boxes), torch.zeros(16), torch.zeros(16, num_classes),
                         centers, strides, torch.tensor(gt_boxes, dtype=torch.float32).reshape(-1, 4),
                         torch.tensor(gt_classes, dtype=torch.long))


def test_center_prior_is_strict_square_of_radius_1p5_stride():
    centers, strides = grid()
    inside = center_prior(centers, strides, torch.tensor([[16.0, 16.0, 16.0, 16.0]]), 1.5)[0]
    # |dx| < 12 and |dy| < 12: centres 12 and 20 on each axis; 4 and 28 are exactly 12 away (excluded)
    expected = {anchor(x, y) for x in (12, 20) for y in (12, 20)}
    assert set(inside.nonzero().squeeze(1).tolist()) == expected


def test_single_gt_takes_the_best_candidate():
    preds = [FAR] * 16
    preds[anchor(12, 12)] = [16.0, 16.0, 16.0, 16.0]   # IoU 1
    preds[anchor(20, 20)] = [18.0, 16.0, 16.0, 16.0]   # IoU 14*16 / (512 - 224) = 0.778
    preds[anchor(28, 28)] = [16.0, 16.0, 16.0, 16.0]   # perfect box, but outside the centre region
    result = assign(preds, [[16.0, 16.0, 16.0, 16.0]], [1])
    # dynamic k = int(1 + 0.778) = 1
    assert result.fg_mask.nonzero().squeeze(1).tolist() == [anchor(12, 12)]
    assert result.matched_gt.tolist() == [0]
    assert torch.allclose(result.matched_iou, torch.tensor([1.0]))


def test_dynamic_k_counts_top_ious():
    preds = [FAR] * 16
    preds[anchor(12, 12)] = [16.0, 16.0, 16.0, 16.0]   # IoU 1
    preds[anchor(20, 12)] = [16.0, 16.0, 16.0, 16.0]   # IoU 1
    preds[anchor(12, 20)] = [17.0, 16.0, 16.0, 16.0]   # IoU 15/17 = 0.882
    result = assign(preds, [[16.0, 16.0, 16.0, 16.0]], [0])
    # k = int(2.88) = 2: the two lowest costs are the two perfect boxes
    assert sorted(result.fg_mask.nonzero().squeeze(1).tolist()) == sorted([anchor(12, 12), anchor(20, 12)])
    assert torch.allclose(result.matched_iou, torch.ones(2))


def test_anchor_wanted_by_two_gts_goes_to_the_cheaper_one():
    preds = [FAR] * 16
    preds[anchor(12, 12)] = [16.0, 16.0, 16.0, 16.0]
    gts = [[16.0, 16.0, 16.0, 16.0],   # IoU 1 with the shared anchor
           [20.0, 16.0, 16.0, 16.0]]   # IoU 192 / 320 = 0.6, k = 1, also picks the shared anchor
    result = assign(preds, gts, [0, 1])
    assert result.fg_mask.nonzero().squeeze(1).tolist() == [anchor(12, 12)]
    assert result.matched_gt.tolist() == [0]
    # with the GTs swapped the winner is still the exact match, now index 1
    swapped = assign(preds, gts[::-1], [1, 0])
    assert swapped.matched_gt.tolist() == [1]


def class_cost_by_hand(cls_logits, obj_logit, gt_class):
    """SimOTA class cost of one anchor: sum over classes of BCE(sqrt(sigmoid(cls) * sigmoid(obj)), onehot)."""
    obj = 1 / (1 + math.exp(-obj_logit))
    total = 0.0
    for k, logit in enumerate(cls_logits):
        p = math.sqrt(obj / (1 + math.exp(-logit)))
        total += -math.log(p) if k == gt_class else -math.log(1 - p)
    return total


def iou_cost_by_hand(shift_px):
    """3 * -log IoU of a 16 x 16 box and the same box shifted right by shift_px."""
    inter = (16 - shift_px) * 16
    return 3 * -math.log(inter / (2 * 256 - inter))


def test_class_cost_alone_decides_between_equal_ious():
    # anchors a = (12, 12) and b = (20, 20) predict boxes shifted left / right by 4 px: IoU 0.6 each,
    # so k = int(1.2) = 1 and only the class cost can choose; the winner follows the class logits
    gt, gt_class = [[16.0, 16.0, 16.0, 16.0]], 1
    a, b = anchor(12, 12), anchor(20, 20)
    preds = [FAR] * 16
    preds[a], preds[b] = [12.0, 16.0, 16.0, 16.0], [20.0, 16.0, 16.0, 16.0]
    for confident, other in ((a, b), (b, a)):
        cls = torch.zeros(16, 2)
        cls[confident] = torch.tensor([-2.0, 3.0])     # sure of class 1, the GT's class
        cls[other] = torch.tensor([3.0, -2.0])         # sure of class 0
        assert class_cost_by_hand([-2.0, 3.0], 0.0, gt_class) < class_cost_by_hand([3.0, -2.0], 0.0, gt_class)
        result = simota_assign(torch.tensor(preds), torch.zeros(16), cls, *grid(),
                               torch.tensor(gt), torch.tensor([gt_class]))
        assert result.fg_mask.nonzero().squeeze(1).tolist() == [confident]
        assert torch.allclose(result.matched_iou, torch.tensor([0.6]))


def test_class_cost_outweighs_a_small_iou_difference():
    # a: shift 4 px (IoU 0.6), b: shift 4.5 px (IoU 0.561), k = int(1.16) = 1. By hand, the IoU term
    # favours a by 3 * ln(0.6 / 0.561) = 0.20, and b's confident class-1 logit (8) gives b a class cost
    # lower by 0.35 than a's neutral logits: b wins. With neutral logits on both, a wins.
    gt, gt_class = [[16.0, 16.0, 16.0, 16.0]], 1
    a, b = anchor(12, 12), anchor(20, 20)
    preds = [FAR] * 16
    preds[a], preds[b] = [12.0, 16.0, 16.0, 16.0], [20.5, 16.0, 16.0, 16.0]
    cost_a = class_cost_by_hand([0.0, 0.0], 0.0, gt_class) + iou_cost_by_hand(4.0)
    cost_b = class_cost_by_hand([0.0, 8.0], 0.0, gt_class) + iou_cost_by_hand(4.5)
    assert cost_b < cost_a                                    # the hand computation of the case
    cls = torch.zeros(16, 2)
    cls[b, 1] = 8.0
    result = simota_assign(torch.tensor(preds), torch.zeros(16), cls, *grid(),
                           torch.tensor(gt), torch.tensor([gt_class]))
    assert result.fg_mask.nonzero().squeeze(1).tolist() == [b]
    neutral = simota_assign(torch.tensor(preds), torch.zeros(16), torch.zeros(16, 2), *grid(),
                            torch.tensor(gt), torch.tensor([gt_class]))
    assert neutral.fg_mask.nonzero().squeeze(1).tolist() == [a]


def test_no_gt_or_no_candidate_gives_empty_assignment():
    preds = [FAR] * 16
    assert assign(preds, [], []).num_fg == 0
    far_gt = assign(preds, [[500.0, 500.0, 10.0, 10.0]], [0])
    assert far_gt.num_fg == 0 and not far_gt.fg_mask.any()
