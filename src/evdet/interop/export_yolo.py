"""Export a preprocessed dataset as an Ultralytics YOLO dataset (one image per label frame).

Layout written (Ultralytics finds each label file by swapping ``images`` for ``labels``)::

    <out>/data.yaml                    path, train/val/test image folders, nc, names (class-id order)
    <out>/evdet_export.json            source dataset and rendering settings (for resuming)
    <out>/images/<split>/<seq>_t<t_us>.png      8-bit RGB frame rendered from the representation
    <out>/labels/<split>/<seq>_t<t_us>.txt      one ``class cx cy w h`` line per box, normalised

Frames are rendered from the representation that ends at each label frame, in representation
pixels, with ON events in red and OFF events in blue (green stays 0):
- ``histogram``: event counts per polarity (the stacked histogram summed over its time bins, as
  eTraM's frame baseline), ``min(count, count_cap) / count_cap * 255``;
- ``time_surface``: recency of the last event per polarity, ``255 * (b + 1) / nbins`` for the
  latest time bin ``b`` holding events (0 where none); a dataset preprocessed as a time surface is
  used as is (``255 * value``).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from evdet.interop.yolo import frame_stem, label_lines
from evdet.utils.atomic import atomic_path, write_text_atomic

FrameRepresentation = Literal["histogram", "time_surface"]
FRAME_REPRESENTATIONS = ("histogram", "time_surface")
SETTINGS_FILE = "evdet_export.json"


def _polarity_bins(rep: np.ndarray, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """(OFF bins, ON bins), each (nbins, H, W), of a stacked histogram / event frame."""
    if kind not in ("stacked_histogram", "event_frame"):
        raise ValueError(f"cannot render a {kind} representation as event counts; "
                         f"preprocess with stacked_histogram, event_frame or time_surface")
    nbins = rep.shape[0] // 2
    return rep[:nbins], rep[nbins:]


def _to_rgb(on: np.ndarray, off: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 from ON / OFF intensities in [0, 1]."""
    rgb = np.zeros((*on.shape, 3), dtype=np.uint8)
    rgb[..., 0] = np.rint(np.clip(on, 0, 1) * 255)
    rgb[..., 2] = np.rint(np.clip(off, 0, 1) * 255)
    return rgb


def render_frame(rep: np.ndarray, kind: str, representation: FrameRepresentation = "histogram", *,
                 count_cap: int = 10) -> np.ndarray:
    """One 8-bit RGB image (H, W, 3) from one representation (C, H, W).

    Args:
        rep: the dataset's representation of one window.
        kind: its kind (``stacked_histogram``, ``event_frame`` or ``time_surface``).
        representation: what the image shows (module docstring).
        count_cap: event count that maps to 255 (``histogram``).
    """
    if representation == "histogram":
        if count_cap < 1:
            raise ValueError(f"count_cap must be >= 1, got {count_cap}")
        off, on = _polarity_bins(rep, kind)
        return _to_rgb(on.sum(0, dtype=np.int64) / count_cap, off.sum(0, dtype=np.int64) / count_cap)
    if representation == "time_surface":
        if kind == "time_surface":
            return _to_rgb(rep[1].astype(np.float64), rep[0].astype(np.float64))
        planes = []
        for bins in _polarity_bins(rep, kind):
            nbins = bins.shape[0]
            active = bins > 0
            latest = nbins - 1 - np.argmax(active[::-1], axis=0)
            planes.append(np.where(active.any(0), (latest + 1) / nbins, 0.0))
        return _to_rgb(planes[1], planes[0])
    raise ValueError(f"representation must be one of {FRAME_REPRESENTATIONS}, got {representation!r}")


def _write_png(path: Path, rgb: np.ndarray) -> None:
    from PIL import Image

    with atomic_path(path) as tmp:
        Image.fromarray(rgb).save(tmp, format="PNG", compress_level=1)   # lossless; level 1 is ~2x faster


def data_yaml_text(out_dir: Path, splits: Sequence[str], class_names: Sequence[str]) -> str:
    """Ultralytics ``data.yaml``: absolute root, image folders per split, class names by id."""
    import yaml

    doc = {"path": str(out_dir.resolve())}
    doc.update({split: f"images/{split}" for split in splits})
    doc["nc"] = len(class_names)
    doc["names"] = {i: str(n) for i, n in enumerate(class_names)}
    return yaml.safe_dump(doc, sort_keys=False)


def export_yolo(pre_root: str | Path, out_dir: str | Path, *, representation: FrameRepresentation = "histogram",
                splits: Sequence[str] | None = None, count_cap: int = 10, overwrite: bool = False,
                progress: bool = True) -> dict:
    """Write a preprocessed dataset as an Ultralytics YOLO dataset (module docstring).

    Resumable: frames whose label file exists are skipped; the settings are stored in
    ``evdet_export.json`` and a rerun with other settings is refused unless ``overwrite``.

    Args:
        pre_root: preprocessed dataset root (evdet or RVT layout).
        out_dir: output root.
        representation: ``histogram`` or ``time_surface`` (module docstring).
        splits: splits to export (default: every split present).
        count_cap: event count shown as full intensity (``histogram``).
    Returns:
        {"images": {split: n}, "boxes": n, "skipped": n, "data_yaml": path, "size": [h, w]}.
    Raises:
        ValueError: unknown representation / split, settings mismatch, unrenderable representation.
    """
    from tqdm import tqdm

    from evdet.data.classes import load_class_map
    from evdet.data.preprocessed import (
        PreprocessedSequence,
        list_sequences,
        read_preprocess_info,
    )
    from evdet.events.build import parse_representation_name

    if representation not in FRAME_REPRESENTATIONS:
        raise ValueError(f"representation must be one of {FRAME_REPRESENTATIONS}, got {representation!r}")
    pre_root, out_dir = Path(pre_root), Path(out_dir)
    info = read_preprocess_info(pre_root)
    present = [s for s in ("train", "val", "test") if info["splits"].get(s)]
    splits = list(present if splits is None else splits)
    missing = [s for s in splits if s not in info["splits"]]
    if missing:
        raise ValueError(f"{pre_root}: no split(s) {missing}; found {sorted(info['splits'])}")
    class_names = load_class_map(pre_root).names
    kind, _ = parse_representation_name(info["representation"])
    settings = {"source": str(pre_root.resolve()), "dataset_representation": info["representation"],
                "representation": representation, "count_cap": int(count_cap)}
    _write_settings(out_dir, settings, overwrite)

    seqs = {s: [PreprocessedSequence(d, info["representation"]) for d in list_sequences(pre_root, s)]
            for s in splits}
    total = sum(seq.num_label_frames for ss in seqs.values() for seq in ss)
    summary = {"images": {s: 0 for s in splits}, "boxes": 0, "skipped": 0, "size": [0, 0]}
    bar = tqdm(total=total, desc="export yolo", unit="frame", disable=not progress)
    try:
        for split, ss in seqs.items():
            for seq in ss:
                summary["size"] = [seq.height, seq.width]
                with seq:
                    _export_sequence(seq, out_dir, split, kind, representation, count_cap, overwrite, summary, bar)
    finally:
        bar.close()
    summary["data_yaml"] = str(write_text_atomic(out_dir / "data.yaml", data_yaml_text(out_dir, splits, class_names)))
    return summary


def _write_settings(out_dir: Path, settings: dict, overwrite: bool) -> None:
    """Write ``evdet_export.json``; refuse an earlier export with other settings unless ``overwrite``."""
    settings_path = out_dir / SETTINGS_FILE
    if settings_path.is_file() and not overwrite:
        previous = json.loads(settings_path.read_text())
        if previous != settings:
            raise ValueError(f"{settings_path}: {out_dir} was exported with other settings {previous}; "
                             f"use another folder or overwrite")
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(settings_path, json.dumps(settings, indent=2) + "\n")


def _export_sequence(seq, out_dir: Path, split: str, kind: str, representation: FrameRepresentation,
                     count_cap: int, overwrite: bool, summary: dict, bar) -> None:
    """Write the image and label file of every label frame of one open sequence (frames whose label file
    exists are skipped unless ``overwrite``); counts go into ``summary``, progress into ``bar``."""
    for i, t_us in enumerate(seq.label_timestamps_us):
        stem = frame_stem(seq.name, int(t_us))
        label_path = out_dir / "labels" / split / f"{stem}.txt"
        bar.update(1)
        summary["images"][split] += 1
        if label_path.exists() and not overwrite:
            summary["skipped"] += 1
            continue
        r = int(seq.label_repr_idx[i])
        rgb = render_frame(seq.reprs(r, r + 1)[0], kind, representation, count_cap=count_cap)
        lines = label_lines(seq.label_frame(i), seq.height, seq.width)
        _write_png(out_dir / "images" / split / f"{stem}.png", rgb)
        write_text_atomic(label_path, "".join(line + "\n" for line in lines))
        summary["boxes"] += len(lines)
