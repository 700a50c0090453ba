"""SimOTA on hand-made cases: one 4 x 4 level, stride 8, anchor centres at 4, 12, 20, 28."""

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


def test_class_cost_breaks_iou_ties():
    centers, strides = grid()
    preds = torch.tensor([FAR] * 16)
    a, b = anchor(12, 12), anchor(20, 20)
    preds[a] = preds[b] = torch.tensor([16.0, 16.0, 16.0, 16.0])
    preds[anchor(12, 20)] = torch.tensor([16.0, 16.0, 32.0, 32.0])  # IoU 0.25: k = int(2.25) = 2
    cls = torch.zeros(16, 2)
    cls[b, 1] = 4.0   # anchor b is confident in class 1, the GT's class
    cls[anchor(12, 20), 1] = 8.0
    result = simota_assign(preds, torch.zeros(16), cls, centers, strides,
                           torch.tensor([[16.0, 16.0, 16.0, 16.0]]), torch.tensor([1]))
    # costs: a and b have IoU 1, b's class cost is lower; (12, 20) has IoU 0.25 -> cost 3 * 1.386 more
    assert sorted(result.fg_mask.nonzero().squeeze(1).tolist()) == sorted([a, b])


def test_no_gt_or_no_candidate_gives_empty_assignment():
    preds = [FAR] * 16
    assert assign(preds, [], []).num_fg == 0
    far_gt = assign(preds, [[500.0, 500.0, 10.0, 10.0]], [0])
    assert far_gt.num_fg == 0 and not far_gt.fg_mask.any()
