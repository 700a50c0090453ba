"""Prediction videos: frame count and size read back with imageio, drawing at hand-computed pixels."""

import imageio.v3 as iio
import numpy as np
import pytest
from typer.testing import CliRunner

from evdet.cli import app
from evdet.data.labels import empty_boxes, save_labels
from evdet.evaluation.video import (
    GT_RGB,
    HEADER_PX,
    merge_track_ids,
    render_frame,
    write_prediction_video,
)

SENSOR_HW = (64, 96)


def boxes_at(rows) -> np.ndarray:
    """BBOX array from (t, x, y, w, h, class_id, track_id, score) rows."""
    out = empty_boxes(len(rows))
    for i, row in enumerate(rows):
        out[i] = row
    return out


def test_render_frame_draws_ground_truth_at_scaled_position():
    gt = boxes_at([(50_000, 10.0, 10.0, 20.0, 10.0, 1, 7, 1.0)])
    frame = render_frame(np.zeros(0, dtype=[("t", "<i8"), ("x", "<u2"), ("y", "<u2"), ("p", "u1")]), gt[:0],
                         sensor_hw=SENSOR_HW, class_names=("car", "pedestrian"), title="t", gt=gt, panel_width=480)
    # panel 480 px wide for 96 sensor px: scale 5; the GT panel starts at x = 480, below an 18 px header
    assert frame.shape == (352, 960, 3)   # 18 + 320 = 338 -> 352 (multiple of 16); 2 x 480 = 960
    top, left, right = HEADER_PX + 50, 480 + 50, 480 + 150
    assert tuple(frame[top + 20, left]) == GT_RGB and tuple(frame[top + 20, right]) == GT_RGB
    assert tuple(frame[top + 20, left + 40]) == (255, 255, 255)   # inside the box: empty background


def test_merge_track_ids_joins_on_time_and_box():
    dets = boxes_at([(1, 1.0, 2.0, 3.0, 4.0, 0, 0, 0.9), (1, 5.0, 5.0, 3.0, 4.0, 1, 0, 0.8),
                     (2, 1.5, 2.0, 3.0, 4.0, 0, 0, 0.7)])
    tracked = boxes_at([(1, 1.0, 2.0, 3.0, 4.0, 0, 4, 0.9), (2, 1.5, 2.0, 3.0, 4.0, 0, 4, 0.7)])
    assert merge_track_ids(dets, tracked)["track_id"].tolist() == [4, 0, 4]
    assert dets["track_id"].tolist() == [0, 0, 0]   # the input is not modified


@pytest.mark.parametrize("suffix", [".mp4", ".gif"])
def test_video_has_one_frame_per_window(tmp_path, recording, suffix):
    dets = boxes_at([(100_000, 10.0, 20.0, 16.0, 20.0, 0, 3, 0.9), (250_000, 40.0, 20.0, 16.0, 20.0, 1, 0, 0.6)])
    out = tmp_path / f"clip{suffix}"
    res = write_prediction_video(recording, dets, out, class_names=("car", "pedestrian"), window_us=50_000,
                                 sensor_hw=SENSOR_HW, panel_width=200, fps=10)
    frames = iio.imread(out, index=None)
    # 0.4 s of events: 7 complete 50 ms windows from the first event on
    assert res["frames"] == 7 and len(frames) == 7
    # 200 px panel: 64 * 200 / 96 = 133 px + 18 header = 151 -> 160 rows; 200 -> 208 columns
    assert res["size_hw"] == [160, 208] and frames.shape[1:3] == (160, 208)
    with pytest.raises(ValueError, match="video must be .mp4 or .gif"):
        write_prediction_video(recording, dets, tmp_path / "clip.avi", class_names=("car", "pedestrian"),
                               window_us=50_000, sensor_hw=SENSOR_HW)


def test_predict_cli_writes_video_with_ground_truth(tmp_path, checkpoint, recording):
    gt = boxes_at([(100_000 + k * 50_000, 10.0 + 5 * k, 20.0, 16.0, 20.0, 0, 1, 1.0) for k in range(5)])
    save_labels(tmp_path / "gt_bbox.npy", gt)
    video = tmp_path / "pred.mp4"
    result = CliRunner().invoke(app, ["predict", str(checkpoint), str(recording), "--out", str(tmp_path / "p"),
                                      "--video", str(video), "--gt", str(tmp_path / "gt_bbox.npy")])
    assert result.exit_code == 0, result.output
    frames = iio.imread(video, index=None)
    # default 480 px panels, predictions + ground truth side by side
    assert frames.shape == (7, 352, 960, 3)


def test_prediction_clip_for_the_report(tmp_path, checkpoint, recording):
    from evdet.evaluation.video import prediction_clip
    from evdet.tracking import track_sequence

    gif = prediction_clip(checkpoint, recording, tmp_path / "clip.gif", max_frames=4, track_fn=track_sequence,
                          panel_width=96)
    frames = iio.imread(gif, index=None)
    # 4 windows; 96 px panel (scale 1): 64 + 18 = 82 -> 96 rows, 96 columns
    assert frames.shape[:3] == (4, 96, 96)
