"""Pseudo-label quality: precision / recall per class, size bucket and small road users, by hand."""

from __future__ import annotations

import numpy as np
import pytest

from evdet.data.labels import BBOX_DTYPE
from evdet.pseudo.quality import format_quality_table, match_frame, match_frames, plot_quality_sweep, quality_table

CLASSES = ("car", "pedestrian")


def boxes(rows) -> np.ndarray:
    """rows of (t, x, y, w, h, class_id, score)."""
    out = np.zeros(len(rows), dtype=BBOX_DTYPE)
    for i, (t, x, y, w, h, c, s) in enumerate(rows):
        out[i] = (t, x, y, w, h, c, 0, s)
    return out


GT = boxes([(1, 0, 0, 10, 10, 0, 1), (1, 20, 20, 10, 10, 1, 1), (1, 50, 50, 4, 4, 1, 1),   # A car, B ped, C ped
            (2, 0, 0, 20, 20, 0, 1)])                                                    # D car
PSEUDO = boxes([(1, 0, 0, 10, 10, 0, 0.9),     # p1 = A (IoU 1)
                (1, 21, 20, 10, 10, 1, 0.6),   # p2 ~ B (IoU 90/110)
                (1, 20, 20, 10, 10, 0, 0.8),   # p3 on B but car: false positive
                (1, 100, 100, 10, 10, 1, 0.3),  # p4 nothing there
                (2, 0, 0, 20, 10, 0, 0.5),     # p5 ~ D (IoU 200/400 = 0.5, counts)
                (2, 0, 0, 20, 20, 0, 0.4)])    # p6 = D but D is taken by the higher-scored p5: FP


def test_greedy_matching_by_score():
    matched, gt_score = match_frame(GT[GT["t"] == 2], PSEUDO[PSEUDO["t"] == 2])
    assert matched.tolist() == [True, False]
    assert gt_score.tolist() == [0.5]


def test_sweep_by_hand():
    rows = quality_table(match_frames([GT], [PSEUDO]), CLASSES, thresholds=(0.35, 0.55, 0.85))
    o = [r["overall"] for r in rows]
    # 0.35: kept p1 p2 p3 p5 p6 -> TP p1 p2 p5; GT A B D found of 4
    assert (o[0]["tp"], o[0]["fp"], o[0]["fn"], o[0]["pseudo"]) == (3, 2, 1, 5)
    assert o[0]["precision"] == pytest.approx(3 / 5) and o[0]["recall"] == pytest.approx(3 / 4)
    # 0.55: p1 p2 p3 -> 2 TP; D's match (p5, 0.5) is below
    assert o[1]["precision"] == pytest.approx(2 / 3) and o[1]["recall"] == pytest.approx(2 / 4)
    assert o[2]["precision"] == pytest.approx(1.0) and o[2]["recall"] == pytest.approx(1 / 4)
    first = rows[0]
    car, ped = first["per_class"]["car"], first["per_class"]["pedestrian"]
    assert car["precision"] == pytest.approx(2 / 4) and car["recall"] == pytest.approx(1.0)
    assert ped["precision"] == pytest.approx(1.0) and ped["recall"] == pytest.approx(1 / 2)
    assert first["small_road_users"]["recall"] == pytest.approx(1 / 2)      # pedestrians only here
    tiny, small = first["per_size"]["tiny"], first["per_size"]["S"]
    assert tiny["recall"] == pytest.approx(2 / 3) and tiny["precision"] == pytest.approx(3 / 4)
    assert small["recall"] == pytest.approx(1.0) and small["precision"] == pytest.approx(0.0)
    assert first["per_size"]["L"]["precision"] is None and first["per_size"]["L"]["recall"] is None


def test_class_map_without_small_road_users():
    rows = quality_table(match_frames([GT], [PSEUDO]), ("car", "truck"), thresholds=(0.5,))
    assert rows[0]["small_road_users"] is None


def test_table_and_plot(tmp_path):
    rows = quality_table(match_frames([GT], [PSEUDO]), CLASSES, thresholds=(0.35, 0.55, 0.85))
    text = format_quality_table(rows, CLASSES)
    assert text.splitlines()[1].split()[:3] == ["0.35", "0.600", "0.750"]
    png = plot_quality_sweep(rows, CLASSES, tmp_path / "sweep.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
