"""Videos of predictions: event frames with predicted boxes (class, score, track id), ground truth beside.

One video frame per detection window (the windows the detector saw, t = window end):

    +--------------------------- header: file, t = 1.25 s ---------------------------+
    | events of (t - window, t] + predicted boxes | same events + ground-truth boxes   |
    +----------------------------------------------+-----------------------------------+

Event frames are drawn as in ``evdet.data.pictures`` (white background, red ON, blue OFF), scaled to
``panel_width`` pixels. A box is coloured by its track id when it has one (``track_id`` >= 1,
label ``name score #id``), else by its class. Frames are padded with white to multiples of 16
pixels (video codecs work on 16x16 blocks), so the size is known in advance: see ``frame_size``.
MP4 (H.264 through the ffmpeg that imageio-ffmpeg ships) or GIF (Pillow), written atomically.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Sequence

import numpy as np

from evdet.utils.atomic import atomic_path

HEADER_PX = 18
BLOCK_PX = 16
PALETTE = [(31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40), (148, 103, 189), (140, 86, 75),
           (227, 119, 194), (127, 127, 127), (188, 189, 34), (23, 190, 207)]
GT_RGB = (20, 150, 60)


def _round_up(value: int, multiple: int) -> int:
    return -(-int(value) // multiple) * multiple


def panel_size(sensor_hw: Sequence[int], panel_width: int) -> tuple[int, int]:
    """(height, width) of one event panel: the sensor scaled to panel_width pixels wide."""
    height, width = int(sensor_hw[0]), int(sensor_hw[1])
    return max(1, round(height * panel_width / width)), int(panel_width)


def frame_size(sensor_hw: Sequence[int], panel_width: int, with_gt: bool) -> tuple[int, int]:
    """(height, width) of every video frame: header + panel(s), padded to multiples of 16."""
    ph, pw = panel_size(sensor_hw, panel_width)
    return _round_up(ph + HEADER_PX, BLOCK_PX), _round_up(pw * (2 if with_gt else 1), BLOCK_PX)


def merge_track_ids(boxes: np.ndarray, tracked: np.ndarray) -> np.ndarray:
    """Copy of ``boxes`` whose rows found in ``tracked`` (same t and box) carry its track_id; others 0.

    ``tracked`` is a tracker's output for these detections (e.g. ``evdet.tracking.track_sequence``),
    which keeps the boxes of confirmed tracks only.
    """
    out = boxes.copy()
    out["track_id"] = 0
    keys = {(int(r["t"]), float(r["x"]), float(r["y"]), float(r["w"]), float(r["h"])): int(r["track_id"])
            for r in tracked}
    for i, r in enumerate(out):
        out["track_id"][i] = keys.get((int(r["t"]), float(r["x"]), float(r["y"]), float(r["w"]), float(r["h"])), 0)
    return out


def _draw_boxes(draw, font, boxes: np.ndarray, scale: float, offset_x: int, class_names: Sequence[str],
                ground_truth: bool) -> None:
    for b in boxes:
        cid, tid = int(b["class_id"]), int(b["track_id"])
        name = class_names[cid] if cid < len(class_names) else str(cid)
        if ground_truth:
            color, label = GT_RGB, name + (f" #{tid}" if tid else "")
        else:
            color = PALETTE[(tid if tid else cid) % len(PALETTE)]
            label = f"{name} {float(b['class_confidence']):.2f}" + (f" #{tid}" if tid else "")
        x0, y0 = offset_x + float(b["x"]) * scale, HEADER_PX + float(b["y"]) * scale
        x1, y1 = x0 + float(b["w"]) * scale, y0 + float(b["h"]) * scale
        draw.rectangle([x0, y0, x1, y1], outline=color, width=2 if tid else 1)
        # white text on a filled tag above the box: readable over dense events
        tag = draw.textbbox((x0, max(HEADER_PX, y0 - 11)), label, font=font)
        draw.rectangle([tag[0] - 1, tag[1] - 1, tag[2] + 1, tag[3] + 1], fill=color)
        draw.text((x0, max(HEADER_PX, y0 - 11)), label, fill=(255, 255, 255), font=font)


def render_frame(events: np.ndarray, boxes: np.ndarray, *, sensor_hw: Sequence[int], class_names: Sequence[str],
                 title: str, gt: Optional[np.ndarray] = None, panel_width: int = 480) -> np.ndarray:
    """One video frame (H, W, 3) uint8; sizes as ``frame_size(sensor_hw, panel_width, gt is not None)``.

    Args:
        events: the window's events (sensor pixels); boxes / gt: BBOX arrays in sensor pixels.
    """
    from PIL import Image, ImageDraw, ImageFont

    from evdet.data.pictures import event_frame_rgb

    ph, pw = panel_size(sensor_hw, panel_width)
    height, width = frame_size(sensor_hw, panel_width, gt is not None)
    rgb = (event_frame_rgb(events, int(sensor_hw[0]), int(sensor_hw[1])) * 255).astype(np.uint8)
    panel = Image.fromarray(rgb).resize((pw, ph), Image.Resampling.BOX)
    canvas = Image.new("RGB", (width, height), (255, 255, 255))
    canvas.paste(panel, (0, HEADER_PX))
    if gt is not None:
        canvas.paste(panel, (pw, HEADER_PX))
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default()
    scale = pw / int(sensor_hw[1])
    draw.text((2, 2), title, fill=(0, 0, 0), font=font)
    _draw_boxes(draw, font, boxes, scale, 0, class_names, ground_truth=False)
    if gt is not None:
        draw.text((pw + 2, 2), "ground truth", fill=GT_RGB, font=font)
        _draw_boxes(draw, font, gt, scale, pw, class_names, ground_truth=True)
        draw.line([pw, HEADER_PX, pw, HEADER_PX + ph], fill=(0, 0, 0), width=1)
    return np.asarray(canvas)


def gt_at(gt: np.ndarray, t_end_us: int, window_us: int) -> np.ndarray:
    """Ground-truth boxes of the latest label frame in the window (t_end - window, t_end] (may be empty)."""
    inside = gt[(gt["t"] > t_end_us - window_us) & (gt["t"] <= t_end_us)]
    return inside[inside["t"] == inside["t"].max()] if inside.size else inside


def write_prediction_video(recording: str | Path, boxes: np.ndarray, out_path: str | Path, *,
                           class_names: Sequence[str], window_us: int, sensor_hw: Sequence[int],
                           gt: Optional[np.ndarray] = None, min_score: float = 0.3, fps: float = 10.0,
                           panel_width: int = 480, max_frames: Optional[int] = None,
                           window_ends_us: Optional[np.ndarray] = None, progress: bool = False) -> dict:
    """Write an MP4 or GIF (by ``out_path``'s suffix) with one frame per detection window.

    Args:
        recording: the raw recording the boxes come from (events are read again per window).
        boxes: detections (BBOX / detection array, sensor pixels, t = window end); rows with a
            ``track_id`` >= 1 are drawn as tracks.
        class_names: names by class id.
        window_us: window length of the detector (the events shown per frame).
        sensor_hw: (height, width) of the recording.
        gt: ground-truth boxes (sensor pixels) to show beside the predictions, or None.
        min_score: detections scoring less are not drawn.
        fps: frames per second of the video (10 fps at 50 ms windows is half speed).
        max_frames: only the first N windows.
        window_ends_us: end time of every window (default: the 50 ms grid from the recording's first
            event, as ``predict_recording`` uses), one frame each, with or without detections.
    Returns:
        {"path", "frames", "size_hw", "fps"}.
    Raises:
        ValueError: an unsupported suffix, or no window to show.
    """
    from evdet.events import read_events
    from evdet.events.recording import describe_recording

    out_path = Path(out_path)
    suffix = out_path.suffix.lower()
    if suffix not in (".mp4", ".gif"):
        raise ValueError(f"{out_path}: video must be .mp4 or .gif")
    if window_ends_us is None:
        summary = describe_recording(recording, height=int(sensor_hw[0]), width=int(sensor_hw[1]))
        first, last = summary["t_first_us"], summary["t_last_us"]
        window_ends_us = (np.arange(first + window_us, last + 1, window_us, dtype=np.int64)
                          if summary["num_events"] else np.zeros(0, np.int64))
    ends = np.asarray(window_ends_us, dtype=np.int64)[:max_frames]
    if not ends.size:
        raise ValueError(f"{recording}: no complete {window_us // 1000} ms window to show")
    shown = boxes[boxes["class_confidence"] >= min_score]
    steps = ends
    if progress:
        from rich.progress import track

        steps = track(ends, description=f"video {out_path.name}")
    frames = []
    for t in steps:
        events = read_events(recording, int(t) - window_us, int(t) + 1, height=int(sensor_hw[0]),
                             width=int(sensor_hw[1]))
        title = f"{Path(recording).name}  t = {int(t) / 1e6:.2f} s"
        frames.append(render_frame(events, shown[shown["t"] == t], sensor_hw=sensor_hw, class_names=class_names,
                                   title=title, gt=None if gt is None else gt_at(gt, int(t), window_us),
                                   panel_width=panel_width))
    write_frames(frames, out_path, fps)
    return {"path": str(out_path), "frames": len(frames), "size_hw": list(frames[0].shape[:2]), "fps": fps}


def write_frames(frames: Sequence[np.ndarray], out_path: str | Path, fps: float) -> Path:
    """Encode (H, W, 3) uint8 frames as MP4 (H.264, yuv420p) or GIF (looping), atomically."""
    import imageio.v3 as iio

    out_path = Path(out_path)
    stack = np.stack(frames)
    with atomic_path(out_path) as tmp:
        if out_path.suffix.lower() == ".gif":
            iio.imwrite(tmp, stack, extension=".gif", duration=1000.0 / fps, loop=0)
        else:
            iio.imwrite(tmp, stack, extension=".mp4", plugin="FFMPEG", fps=fps, codec="libx264",
                        macro_block_size=BLOCK_PX, ffmpeg_log_level="error",
                        output_params=["-pix_fmt", "yuv420p", "-f", "mp4"])
    return out_path


def prediction_clip(ckpt: str | Path, recording: str | Path, out_gif: str | Path, *, max_frames: int = 20,
                    gt: Optional[np.ndarray] = None, track_fn: Optional[Callable[[np.ndarray], np.ndarray]] = None,
                    min_score: float = 0.3, panel_width: int = 320, fps: float = 5.0,
                    trusted: bool = False) -> Path:
    """Report hook: a short animated GIF of a checkpoint's predictions on the start of a recording.

    Args:
        ckpt: evdet checkpoint; recording: a raw recording at the model's size (or twice it).
        max_frames: windows shown (from the start; the detector runs only over those).
        gt: ground-truth boxes of the recording (sensor pixels), shown beside, or None.
        track_fn: detections -> tracked boxes (e.g. ``evdet.tracking.track_sequence``) to label track ids.
        trusted: read a checkpoint holding arbitrary pickled objects (``--trusted``; can run code).
    Returns:
        out_gif.
    """
    from evdet.events import parse_representation_name
    from evdet.events.recording import describe_recording
    from evdet.training.predict import load_module, predict_recording

    module = load_module(ckpt, trusted=trusted)
    window_us = parse_representation_name(module.data_cfg.representation)[1]["window_ms"] * 1000
    summary = describe_recording(recording)
    if not summary["num_events"]:
        raise ValueError(f"{recording}: the recording holds no events")
    t0 = int(summary["t_first_us"])
    boxes, info = predict_recording(module, recording, t_start_us=t0, t_end_us=t0 + max_frames * window_us,
                                    progress=False)
    if track_fn is not None:
        boxes = merge_track_ids(boxes, track_fn(boxes))
    write_prediction_video(recording, boxes, out_gif, class_names=module.class_names, window_us=window_us,
                           sensor_hw=info["sensor_hw"], gt=gt, min_score=min_score, fps=fps,
                           panel_width=panel_width, window_ends_us=t0 + window_us * np.arange(1, max_frames + 1))
    return Path(out_gif)


def write_recording_video(recording: str | Path, boxes: np.ndarray, info: dict, out_path: str | Path, *,
                          gt_path: Optional[str | Path] = None,
                          track_fn: Optional[Callable[[np.ndarray], np.ndarray]] = None,
                          min_score: float = 0.3, fps: float = 10.0) -> dict:
    """The video of ``predict_recording``'s output (or an ONNX runtime's: same ``info`` keys).

    Args:
        gt_path: a ``*_bbox.npy`` of the recording (sensor pixels), shown beside the predictions.
        track_fn: detections -> tracked boxes (e.g. ``evdet.tracking.track_sequence``): track ids on the boxes.
    Returns:
        as ``write_prediction_video``.
    """
    from evdet.data.labels import load_labels
    from evdet.events import parse_representation_name

    gt = load_labels(gt_path) if gt_path is not None else None
    if track_fn is not None:
        boxes = merge_track_ids(boxes, track_fn(boxes))
    window_us = parse_representation_name(info["representation"])[1]["window_ms"] * 1000
    return write_prediction_video(recording, boxes, out_path, class_names=info["class_names"], window_us=window_us,
                                  sensor_hw=info["sensor_hw"], gt=gt, min_score=min_score, fps=fps)
