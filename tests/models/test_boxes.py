"""Box ops against hand-computed values and a plain-loop NMS oracle."""

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from evdet.models.boxes import (batched_nms, box_iou, cxcywh_to_xyxy, nms, paired_iou_giou,
                                xyxy_to_cxcywh)


def test_format_round_trip():
    boxes = torch.tensor([[10.0, 20.0, 4.0, 6.0], [0.5, 0.5, 1.0, 1.0]])
    xyxy = cxcywh_to_xyxy(boxes)
    assert torch.equal(xyxy, torch.tensor([[8.0, 17.0, 12.0, 23.0], [0.0, 0.0, 1.0, 1.0]]))
    assert torch.allclose(xyxy_to_cxcywh(xyxy), boxes)


def test_box_iou_hand_values():
    a = torch.tensor([[0.0, 0.0, 2.0, 2.0], [0.0, 0.0, 4.0, 4.0]])
    b = torch.tensor([[1.0, 1.0, 3.0, 3.0], [5.0, 5.0, 6.0, 6.0], [0.0, 0.0, 2.0, 2.0]])
    expected = torch.tensor([[1 / 7, 0.0, 1.0], [4 / 16, 0.0, 4 / 16]])
    assert torch.allclose(box_iou(a, b), expected)


def test_paired_iou_and_giou_hand_values():
    # pred [0,2]x[0,2], target [1,3]x[1,3]: inter 1, union 7, hull 3x3 = 9.
    pred = torch.tensor([[1.0, 1.0, 2.0, 2.0], [1.0, 1.0, 2.0, 2.0]])
    # second: target [4,6]x[0,2], disjoint: union 8, hull 6x2 = 12 -> giou = 0 - 4/12.
    target = torch.tensor([[2.0, 2.0, 2.0, 2.0], [5.0, 1.0, 2.0, 2.0]])
    iou, giou = paired_iou_giou(pred, target)
    assert torch.allclose(iou, torch.tensor([1 / 7, 0.0]))
    assert torch.allclose(giou, torch.tensor([1 / 7 - 2 / 9, -1 / 3]))


def nms_oracle(boxes, scores, thr):
    """Plain-loop greedy NMS on Python floats."""
    def iou(a, b):
        iw = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        ih = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = iw * ih
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / max(union, 1e-16)

    order = sorted(range(len(boxes)), key=lambda i: -scores[i])  # sorted() is stable
    keep = []
    for i in order:
        if all(iou(boxes[i], boxes[k]) <= thr for k in keep):
            keep.append(i)
    return keep


box_strategy = st.tuples(st.integers(0, 20), st.integers(0, 20), st.integers(1, 10), st.integers(1, 10))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(box_strategy, st.integers(0, 50), st.integers(0, 2)), min_size=0, max_size=25),
       st.sampled_from([0.0, 0.3, 0.45, 0.5, 0.7]))
def test_nms_matches_plain_loop(items, thr):
    boxes = [[float(x), float(y), float(x + w), float(y + h)] for (x, y, w, h), _, _ in items]
    scores = [float(s) for _, s, _ in items]
    classes = [c for _, _, c in items]
    t_boxes = torch.tensor(boxes, dtype=torch.float64).reshape(-1, 4)
    t_scores = torch.tensor(scores, dtype=torch.float64)
    assert nms(t_boxes, t_scores, thr).tolist() == nms_oracle(boxes, scores, thr)

    # Class-aware: the union of per-class oracles, ordered by score (stable).
    per_class = []
    for c in set(classes):
        idx = [k for k in range(len(boxes)) if classes[k] == c]
        kept = nms_oracle([boxes[i] for i in idx], [scores[i] for i in idx], thr)
        per_class += [idx[j] for j in kept]
    expected = sorted(per_class, key=lambda i: (-scores[i], i))
    got = batched_nms(t_boxes, t_scores, torch.tensor(classes, dtype=torch.long), thr).tolist()
    assert got == expected


def test_nms_hand_case():
    boxes = torch.tensor([[0.0, 0.0, 10.0, 10.0], [1.0, 1.0, 11.0, 11.0], [20.0, 20.0, 30.0, 30.0],
                          [0.0, 0.0, 10.0, 9.0]])
    scores = torch.tensor([0.9, 0.8, 0.7, 0.95])
    # box 3 (0.95) suppresses box 0 (IoU 0.9) and box 1 (IoU 72/(90+100-72) = 0.61); box 2 is apart.
    assert nms(boxes, scores, 0.45).tolist() == [3, 2]
    assert batched_nms(boxes, scores, torch.tensor([0, 1, 0, 0]), 0.45).tolist() == [3, 1, 2]
    assert nms(boxes[:0], scores[:0], 0.5).numel() == 0


@pytest.mark.parametrize("iou_type_value", [0.0, 1.0])
def test_iou_identity_and_disjoint(iou_type_value):
    box = torch.tensor([[5.0, 5.0, 2.0, 2.0]])
    other = box if iou_type_value == 1.0 else torch.tensor([[50.0, 5.0, 2.0, 2.0]])
    iou, giou = paired_iou_giou(box, other)
    assert math.isclose(float(iou), iou_type_value, abs_tol=1e-6)
    assert float(giou) <= float(iou) + 1e-7
