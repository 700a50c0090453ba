"""Preprocess one sequence: filter its labels, build its representations, write its folder.

Output (see ``evdet.data.preprocessed`` for the reader)::

    <dst>/<split>/<seq>/labels_v2/{labels.npz, timestamps_us.npy}
    <dst>/<split>/<seq>/event_representations_v2/<repr_name>/
        event_representations[_ds2_nearest|_ds2_sum].h5   'data' (N, C, H, W), chunks (1, C, H, W),
                                                          Blosc zstd level 1, byte shuffle
        objframe_idx_2_repr_idx.npy, timestamps_us.npy
    <dst>/<split>/<seq>/manifest.json                     written last (``preprocess_manifest``)

The folder is built as ``<seq>.tmp/`` and renamed to ``<seq>/`` only once its manifest is written.
"""

from __future__ import annotations

import os
import re
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evdet.data.label_filter import MIN_SIDE_PX, filter_boxes, group_by_frame, select_label_frames
from evdet.data.labels import load_labels
from evdet.data.preprocess.manifest import write_manifest
from evdet.data.preprocess.windows import EventSource, EventWindows, events_origin_us, representation_timestamps
from evdet.data.preprocessed import LABELS_DIR, REPR_DIR, REPR_FILES

BINNED = ("stacked_histogram", "voxel_grid", "vtei")   # representations that take nbins
TMP_SUFFIX = ".tmp"


@dataclass(frozen=True)
class SequenceTask:
    """Everything a worker needs to preprocess one sequence (picklable)."""

    split: str
    name: str
    events_path: str
    bbox_path: str
    out_dir: str                  # final folder <dst>/<split>/<seq>
    source_hw: tuple[int, int]
    downsample: str               # "none" | "ds2_nearest" | "ds2_sum"
    representation_kind: str
    repr_name: str
    window_us: int
    nbins: int
    label_rate_hz: float
    num_classes: int
    min_box_side_px: float = MIN_SIDE_PX
    min_box_diag_px: float = 0.0
    histogram_overflow: str = "rvt"     # stacked histogram: "rvt" (uint8 wrap before the cutoff) | "saturate"


def process_sequence(task: SequenceTask) -> dict:
    """Preprocess one sequence into ``<out_dir>.tmp`` and rename it to ``<out_dir>`` when complete.

    Returns:
        counts: ``status`` ("done" or "empty"), ``label_frames``, ``label_frames_source``,
        ``reprs``, ``events``, ``labels_kept``, ``labels_dropped`` {reason: n}, ``labels_thinned``,
        ``events_out_of_range``, ``duration_s``, ``seconds``.
    """
    t0 = time.perf_counter()
    out_dir = Path(task.out_dir)
    tmp_dir = out_dir.with_name(out_dir.name + TMP_SUFFIX)
    height, width = task.source_hw
    boxes = load_labels(task.bbox_path)
    kept, dropped = filter_boxes(boxes, height, width, train=task.split == "train",
                                 num_classes=task.num_classes, min_side_px=task.min_box_side_px,
                                 min_diag_px=task.min_box_diag_px)
    t_origin_us = events_origin_us(task.events_path, height, width)
    frames = select_label_frames(kept["t"], label_rate_hz=task.label_rate_hz,
                                 align_t_us=t_origin_us + 100_000)
    result = {"split": task.split, "name": task.name, "status": "empty", "label_frames": 0,
              "label_frames_source": int(np.unique(boxes["t"]).size), "reprs": 0, "events": 0,
              "labels_kept": 0, "labels_dropped": dropped, "labels_thinned": int(kept.size),
              "events_out_of_range": 0, "duration_s": 0.0}
    if frames.t_us.size == 0:
        result["seconds"] = round(time.perf_counter() - t0, 3)
        return result
    labels, frame_start = group_by_frame(kept, frames.t_us)
    steps = max(1, round(frames.base_period_us / task.window_us))
    repr_t_us, frame_to_repr = representation_timestamps(frames.t_us, frames.periods * steps,
                                                         task.window_us, t_origin_us)
    if tmp_dir.exists():
        shutil.rmtree(tmp_dir)
    try:
        labels_dir = tmp_dir / LABELS_DIR
        repr_dir = tmp_dir / REPR_DIR / task.repr_name
        labels_dir.mkdir(parents=True)
        repr_dir.mkdir(parents=True)
        np.savez(labels_dir / "labels.npz", labels=labels, objframe_idx_2_label_idx=frame_start)
        np.save(labels_dir / "timestamps_us.npy", frames.t_us)
        np.save(repr_dir / "objframe_idx_2_repr_idx.npy", frame_to_repr)
        np.save(repr_dir / "timestamps_us.npy", repr_t_us)
        n_events, n_out = write_representations(task, repr_dir / REPR_FILES[task.downsample], repr_t_us)
        result.update(status="done", label_frames=int(frames.t_us.size), reprs=int(repr_t_us.size),
                      events=n_events, labels_kept=int(labels.size),
                      labels_thinned=int(kept.size - labels.size), events_out_of_range=n_out,
                      duration_s=round((int(repr_t_us[-1]) - int(repr_t_us[0]) + task.window_us) / 1e6, 6))
        write_manifest(tmp_dir, {k: v for k, v in result.items() if k not in ("split", "name", "status")})
        os.rename(tmp_dir, out_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    result["seconds"] = round(time.perf_counter() - t0, 3)
    return result


def write_representations(task: SequenceTask, out_file: Path, repr_t_us: np.ndarray) -> tuple[int, int]:
    """Build and write one representation per window end time.

    Returns:
        (events represented, summed over windows; events dropped for lying outside the sensor).
    """
    import h5py

    from evdet.data.preprocess.repr_writer import ReprWriter
    from evdet.events import OutOfRangeEventsWarning, build_representation

    height, width = task.source_hw
    params = {"nbins": task.nbins} if task.representation_kind in BINNED else {}
    if task.representation_kind == "stacked_histogram":
        params["overflow"] = task.histogram_overflow
    n_events = 0
    with warnings.catch_warnings(record=True) as caught, \
            EventSource(task.events_path, height, width) as source, h5py.File(out_file, "w") as fh, \
            ReprWriter(fh, len(repr_t_us)) as writer:
        warnings.simplefilter("always", OutOfRangeEventsWarning)
        windows = EventWindows(source.read, task.window_us, chunk_us=source.chunk_us)
        for i, t_end in enumerate(repr_t_us):
            ev = windows.window(int(t_end))
            n_events += int(ev.size)
            if task.representation_kind == "time_surface":
                params["t_ref_us"] = int(t_end)      # decay measured from the window end
            rep = build_representation(task.representation_kind, ev, height, width,
                                       downsample=task.downsample, **params)
            writer.write(i, rep)
    n_out = _count_dropped(caught)
    for w in caught:        # pass on every other warning unchanged
        if not issubclass(w.category, OutOfRangeEventsWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if n_out:
        warnings.warn(f"{task.events_path}: dropped {n_out} events outside the {width}x{height} sensor",
                      OutOfRangeEventsWarning, stacklevel=2)
    return n_events, n_out


def _count_dropped(caught) -> int:
    """Events dropped as out of range, summed from the readers' warnings ("dropped N of M")."""
    from evdet.events import OutOfRangeEventsWarning

    total = 0
    for w in caught:
        if not issubclass(w.category, OutOfRangeEventsWarning):
            continue
        match = re.search(r"dropped (\d+) of", str(w.message))
        if match:
            total += int(match.group(1))
    return total
