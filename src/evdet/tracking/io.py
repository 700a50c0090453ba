"""Tracking on folders of Prophesee box files, and evaluation against a dataset's ground truth.

Detections and tracks are folders of ``<sequence>_bbox.npy`` files (``BBOX_DTYPE``; tracks carry
``track_id``), in SENSOR pixels like every Prophesee label file::

    <dets>/<sequence>_bbox.npy          (or <dets>/<split>/<sequence>_bbox.npy)
    <tracks>/<sequence>_bbox.npy        written by ``track_folder``, same relative paths
    <tracks>/tracker.json               the tracker settings used

Ground truth comes from a preprocessed root (``labels_v2/labels.npz`` of each sequence, at source
resolution) or from a raw root (``<split>/<sequence>_bbox.npy``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Literal

import numpy as np

from evdet.data.labels import load_labels, save_labels
from evdet.tracking.bytetrack import TrackerConfig, track_sequence
from evdet.tracking.evaluate import DEFAULT_TOLERANCE_US, evaluate_tracking
from evdet.utils.atomic import write_text_atomic

SUFFIX = "_bbox.npy"


def _progress(items: list, description: str, enabled: bool) -> Iterable:
    if not enabled:
        return items
    from rich.progress import track

    return track(items, description=description)


def track_folder(dets_dir: str | Path, out_dir: str | Path, config: TrackerConfig | None = None, *,
                 overwrite: bool = False, progress: bool = True) -> dict:
    """Track every ``*_bbox.npy`` under ``dets_dir`` into the same relative path under ``out_dir``.

    Resumable: a sequence whose output exists is skipped unless ``overwrite``; each output is
    written atomically, and ``tracker.json`` records the settings (a rerun with other settings
    refuses to mix outputs unless ``overwrite``).

    Returns:
        {"sequences", "tracked", "skipped", "detections", "tracked_boxes", "tracks", "out_dir"}.
    Raises:
        FileNotFoundError: no detection files. ValueError: bad file (names it), settings mismatch.
    """
    dets_dir, out_dir = Path(dets_dir), Path(out_dir)
    files = sorted(dets_dir.rglob(f"*{SUFFIX}")) if dets_dir.is_dir() else []
    if not files:
        raise FileNotFoundError(f"{dets_dir}: no *{SUFFIX} detection files")
    config = config or TrackerConfig()
    settings = asdict(config)
    meta_path = out_dir / "tracker.json"
    if meta_path.is_file() and not overwrite:
        previous = json.loads(meta_path.read_text()).get("config")
        if previous != settings:
            raise ValueError(f"{meta_path}: tracks were made with other settings {previous}; "
                             f"use another output folder or overwrite")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(meta_path, json.dumps({"config": settings, "detections": str(dets_dir)}, indent=2) + "\n")
    summary = {"sequences": len(files), "tracked": 0, "skipped": 0, "detections": 0, "tracked_boxes": 0,
               "tracks": 0, "out_dir": str(out_dir)}
    for path in _progress(files, "track", progress):
        target = out_dir / path.relative_to(dets_dir)
        if target.exists() and not overwrite:
            summary["skipped"] += 1
            continue
        dets = load_labels(path)
        tracks = track_sequence(dets, config)
        target.parent.mkdir(parents=True, exist_ok=True)
        save_labels(target, tracks)
        summary["tracked"] += 1
        summary["detections"] += int(dets.size)
        summary["tracked_boxes"] += int(tracks.size)
        summary["tracks"] += int(np.unique(tracks["track_id"]).size)
    return summary


def load_ground_truth(data_root: str | Path, split: str, pixels: Literal["source", "repr"] = "source"
                      ) -> tuple[dict[str, np.ndarray], tuple[str, ...]]:
    """Ground truth of one split: ({sequence: boxes}, class names).

    Args:
        data_root: a preprocessed root (sequence folders) or a raw root (``*_bbox.npy`` files).
        pixels: "source" (sensor pixels) or "repr" (representation pixels; preprocessed roots only).
    """
    if pixels not in ("source", "repr"):
        raise ValueError(f"pixels must be 'source' or 'repr', got {pixels!r}")
    from evdet.data.classes import load_class_map
    from evdet.data.preprocessed import (
        PreprocessedSequence,
        is_sequence_dir,
        read_preprocess_info,
    )

    root = Path(data_root)
    split_dir = root / split
    if not split_dir.is_dir():
        raise FileNotFoundError(f"{split_dir}: no such split folder")
    names = load_class_map(root).names
    seq_dirs = sorted(p for p in split_dir.iterdir() if is_sequence_dir(p))
    if seq_dirs:
        representation = read_preprocess_info(root)["representation"]
        out = {}
        for d in seq_dirs:
            with PreprocessedSequence(d, representation) as seq:
                out[d.name] = seq.all_labels(in_repr_pixels=pixels == "repr")
        return out, names
    files = sorted(split_dir.glob(f"*{SUFFIX}"))
    if not files:
        raise FileNotFoundError(f"{split_dir}: neither preprocessed sequences nor *{SUFFIX} label files")
    if pixels == "repr":
        raise ValueError(f"{root}: a raw dataset has no representation pixels; use pixels='source'")
    return {f.name[: -len(SUFFIX)]: load_labels(f) for f in files}, names


def find_sequence_file(folder: Path, split: str, seq: str) -> Path:
    """``<folder>/<seq>_bbox.npy`` or ``<folder>/<split>/<seq>_bbox.npy``; FileNotFoundError naming both."""
    for candidate in (folder / f"{seq}{SUFFIX}", folder / split / f"{seq}{SUFFIX}"):
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(f"{folder / (seq + SUFFIX)}: no such file (nor under {split}/) for sequence {seq!r}")


def evaluate_track_folder(data_root: str | Path, tracks_dir: str | Path, split: str = "val", *,
                          time_tolerance_us: int = DEFAULT_TOLERANCE_US,
                          pixels: Literal["source", "repr"] = "source") -> dict:
    """HOTA / MOTA / MOTP / IDF1 of a folder of tracks against a split's ground-truth track ids.

    ``pixels`` says in which pixels the tracks are: "source" (sensor, as Prophesee files and
    ``evdet predict`` write them) or "repr" (a preprocessed root's representation).

    Returns:
        ``evaluate_tracking``'s dict plus ``"sequences"`` (names) and ``"split"``.
    Raises:
        FileNotFoundError: a sequence's track file is missing. ValueError: a bad file (named).
    """
    gt, names = load_ground_truth(data_root, split, pixels)
    tracks_dir = Path(tracks_dir)
    track_list = [load_labels(find_sequence_file(tracks_dir, split, seq)) for seq in gt]
    for seq, tr in zip(gt, track_list):
        bad = np.flatnonzero(tr["class_id"] >= len(names))
        if bad.size:
            raise ValueError(f"{find_sequence_file(tracks_dir, split, seq)}: row {bad[0]}: class_id "
                             f"{tr['class_id'][bad[0]]} is not one of the {len(names)} classes {list(names)}")
    res = evaluate_tracking(list(gt.values()), track_list, class_names=names, time_tolerance_us=time_tolerance_us)
    return {**res, "split": split, "sequences": list(gt)}
