"""YOLO text formats: label lines, prediction files and their one-line errors, frame stems."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from evdet.data.labels import empty_boxes
from evdet.interop.yolo import (
    YoloFormatError,
    frame_stem,
    label_lines,
    parse_stem,
    read_prediction_file,
)


def one_box(x, y, w, h, c=0):
    b = empty_boxes(1)
    b["x"], b["y"], b["w"], b["h"], b["class_id"] = x, y, w, h, c
    return b


def test_label_line_hand_case():
    # 96 x 64 image, box x 8..32, y 10..30: centre (20, 20)
    assert label_lines(one_box(8, 10, 24, 20, 1), 64, 96) == ["1 0.208333 0.312500 0.250000 0.312500"]


def test_label_lines_clip_to_the_image_and_drop_empty_boxes():
    boxes = np.concatenate([one_box(-10, 50, 30, 30), one_box(100, 0, 5, 5)])
    # first box clipped to x 0..20, y 50..64 (height 64); second lies right of the 96 px image
    assert label_lines(boxes, 64, 96) == [f"0 {10 / 96:.6f} {57 / 64:.6f} {20 / 96:.6f} {14 / 64:.6f}"]


def test_read_prediction_file_to_pixels(tmp_path):
    path = tmp_path / "seq_t100.txt"
    path.write_text("1 0.5 0.25 0.2 0.1 0.75\n\n0 0.1 0.1 0.2 0.2 1\n")
    boxes = read_prediction_file(path, t_us=100, height=200, width=400, num_classes=2)
    assert boxes.size == 2
    np.testing.assert_allclose([boxes["x"][0], boxes["y"][0], boxes["w"][0], boxes["h"][0]], [160, 40, 80, 20])
    assert boxes["class_id"].tolist() == [1, 0] and boxes["t"].tolist() == [100, 100]
    np.testing.assert_allclose(boxes["class_confidence"], [0.75, 1.0])


@pytest.mark.parametrize("line, problem", [
    ("0 0.5 0.5 0.1 0.1", "expected 6 columns (class cx cy w h conf), got 5"),
    ("0 0.5 0.5 0.1 0.1 0.9 7", "expected 6 columns (class cx cy w h conf), got 7"),
    ("0 0.5 abc 0.1 0.1 0.9", "'abc' is not a number"),
    ("0 1.5 0.5 0.1 0.1 0.9", "cx = 1.5 is outside [0, 1]"),
    ("0 0.5 0.5 0.1 -0.2 0.9", "h = -0.2 is outside [0, 1]"),
    ("0 120 80 30 20 0.9", "cx = 120 is outside [0, 1] (coordinates must be normalised)"),
    ("3 0.5 0.5 0.1 0.1 0.9", "class '3' is not one of the 3 class ids 0..2"),
    ("1.5 0.5 0.5 0.1 0.1 0.9", "class '1.5' is not one of the 3 class ids"),
    ("0 0.5 0.5 0.1 0.1 1.2", "conf = 1.2 is outside [0, 1]"),
    ("0 0.5 0.5 0.1 nan 0.9", "non-finite value"),
])
def test_bad_lines_name_file_and_line(tmp_path, line, problem):
    path = tmp_path / "frame_t5.txt"
    path.write_text("0 0.5 0.5 0.1 0.1 0.9\n" + line + "\n")
    with pytest.raises(YoloFormatError) as err:
        read_prediction_file(path, t_us=5, height=10, width=10, num_classes=3)
    assert str(err.value).startswith(f"{path}:2: ")
    assert problem in str(err.value)


@given(seq=st.text(alphabet="abc_t019-.", min_size=1, max_size=12), t_us=st.integers(0, 10**12))
def test_frame_stem_round_trip(seq, t_us):
    assert parse_stem(frame_stem(seq, t_us)) == (seq, t_us)
