"""Dataset statistics: boxes per class, box size and shape percentiles, where box centres lie
in the image, event rates.

Works on a raw dataset (``<root>/<split>/<seq>_bbox.npy`` + event files) or a preprocessed one
(``<root>/<split>/<seq>/labels_v2/labels.npz``); the kind is detected from the files. Box sizes are
in SOURCE pixels in both cases (preprocessed labels stay at source resolution). Raw labels are
counted as given; preprocessed ones after filtering and 10 Hz thinning. Class ids outside the
dataset's class map are counted apart as unknown (preprocessing drops them).
"""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from evdet.data.classes import load_class_map
from evdet.data.labels import BBOX_DTYPE, LabelFormatError, load_labels, to_bbox_array
from evdet.data.preprocess.inputs import EVENT_SUFFIXES, yaml_resolution
from evdet.data.preprocessed import LABELS_DIR, is_sequence_dir, read_preprocess_info

PERCENTILES = (5, 25, 50, 75, 95)
SMALL_AREA_PX2 = 32 * 32          # COCO "small", at source resolution
TINY_AREA_PX2 = 16 * 16           # the "full" protocol's tiny bucket
POSITION_GRID = (4, 4)            # (rows, columns) of the box-centre position grid
_BBOX_SUFFIX = "_bbox.npy"
_MAX_UNKNOWN_IDS = 20             # unknown class ids listed in the summary


def dataset_stats(path: str | Path, grid: tuple[int, int] = POSITION_GRID) -> dict:
    """Statistics of a raw or preprocessed dataset.

    Args:
        path: dataset root.
        grid: (rows, columns) of the box-centre position grid.

    Returns:
        dict with ``kind`` ("raw" | "preprocessed"), ``path``, ``class_names`` (the class map),
        ``resolution`` [h, w] (source; None when unknown), ``splits`` {split: {sequences,
        label_frames, boxes}}, ``overall`` and ``classes`` {name: {count, share, area_px2
        {P5..P95}, aspect_ratio {P5..P95} (w / h), small_share (area < 32^2), tiny_share
        (area < 16^2)}}, ``unknown_class`` {count, share, ids (the first 20 distinct ids outside
        the class map)}, ``positions`` {grid [rows, cols], overall, classes {name: grid or None}}
        with each grid a rows x cols list of box-centre shares (row 0 = image top; None when
        the resolution is unknown), ``event_rates`` {"split/seq": {events, duration_s,
        events_per_s}} (raw data only), ``thresholds``.

    Raises:
        FileNotFoundError: ``path`` holds neither layout.
        ValueError: an unreadable or malformed label or event file (named).
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    kind, per_split = _find_sequences(root)
    names = list(load_class_map(root).names)
    boxes, splits, rates = _read_splits(per_split, kind)
    of_class = {name: boxes[boxes["class_id"] == i] for i, name in enumerate(names)}
    unknown = boxes["class_id"] >= len(names)
    resolution = _resolution(root, kind, per_split)
    return {
        "kind": kind,
        "path": str(root),
        "class_names": names,
        "resolution": resolution,
        "splits": splits,
        "overall": box_stats(boxes, total=boxes.size),
        "classes": {name: box_stats(b, total=boxes.size) for name, b in of_class.items()},
        "unknown_class": {"count": int(unknown.sum()),
                          "share": float(unknown.mean()) if boxes.size else 0.0,
                          "ids": np.unique(boxes["class_id"][unknown])[:_MAX_UNKNOWN_IDS].tolist()},
        "positions": None if resolution is None else _positions(boxes, of_class, resolution, grid),
        "event_rates": rates,
        "thresholds": {"small_area_px2": SMALL_AREA_PX2, "tiny_area_px2": TINY_AREA_PX2},
    }


def _read_splits(per_split: dict, kind: str) -> tuple[np.ndarray, dict, dict]:
    """(every box of every split, {split: {sequences, label_frames, boxes}}, {"split/seq": event rate} of
    the sequences with an event file)."""
    boxes_all, splits, rates = [], {}, {}
    for split, items in per_split.items():
        n_frames = n_boxes = 0
        for name, label_path, events_path in items:
            boxes = _read_boxes(label_path, kind)
            boxes_all.append(boxes)
            n_frames += int(np.unique(boxes["t"]).size)
            n_boxes += int(boxes.size)
            if events_path is not None:
                rates[f"{split}/{name}"] = event_rate(events_path)
        splits[split] = {"sequences": len(items), "label_frames": n_frames, "boxes": n_boxes}
    return (np.concatenate(boxes_all) if boxes_all else np.zeros(0, dtype=BBOX_DTYPE)), splits, rates


def _positions(boxes: np.ndarray, of_class: dict[str, np.ndarray], resolution: tuple[int, int],
               grid: tuple[int, int]) -> dict:
    """The ``positions`` entry: box-centre grids of all boxes and of each class at ``resolution`` (h, w)."""
    h, w = resolution
    return {"grid": list(grid), "overall": _grid_or_none(boxes, h, w, grid),
            "classes": {name: _grid_or_none(b, h, w, grid) for name, b in of_class.items()}}


def position_grid(boxes: np.ndarray, height: int, width: int,
                  grid: tuple[int, int] = POSITION_GRID) -> np.ndarray:
    """Share of box centres in each cell of a ``rows x cols`` grid over the image.

    A centre ``(x + w/2, y + h/2)`` falls in cell ``(floor(cy * rows / height),
    floor(cx * cols / width))``; centres on or beyond the right / bottom edge count in the last
    cell, those left of / above the image in the first.

    Args:
        boxes: (M,) box array in the same pixels as ``height`` x ``width``.
        grid: (rows, cols).

    Returns:
        (rows, cols) float64 shares summing to 1 (all zeros when there are no boxes); row 0 is
        the top of the image.
    """
    rows, cols = grid
    counts = np.zeros((rows, cols), dtype=np.int64)
    if boxes.size:
        cx = boxes["x"].astype(np.float64) + boxes["w"].astype(np.float64) / 2
        cy = boxes["y"].astype(np.float64) + boxes["h"].astype(np.float64) / 2
        col = np.clip(np.floor(cx * cols / width), 0, cols - 1).astype(np.int64)
        row = np.clip(np.floor(cy * rows / height), 0, rows - 1).astype(np.int64)
        np.add.at(counts, (row, col), 1)
    return counts / max(int(boxes.size), 1)


def _grid_or_none(boxes: np.ndarray, height: int, width: int, grid: tuple[int, int]):
    return position_grid(boxes, height, width, grid).tolist() if boxes.size else None


def box_stats(boxes: np.ndarray, total: int) -> dict:
    """Count, share of ``total``, area / aspect-ratio percentiles and small/tiny shares of boxes.

    Args:
        boxes: (M,) box array (source pixels).
        total: number of boxes the share is relative to.
    """
    n = int(boxes.size)
    out = {"count": n, "share": n / total if total else 0.0}
    if n == 0:
        out.update(area_px2=None, aspect_ratio=None, small_share=None, tiny_share=None)
        return out
    w = boxes["w"].astype(np.float64)
    h = boxes["h"].astype(np.float64)
    area = w * h
    aspect = w[h > 0] / h[h > 0]
    out["area_px2"] = _percentiles(area)
    out["aspect_ratio"] = _percentiles(aspect) if aspect.size else None
    out["small_share"] = float(np.mean(area < SMALL_AREA_PX2))
    out["tiny_share"] = float(np.mean(area < TINY_AREA_PX2))
    return out


def event_rate(path: str | Path) -> dict:
    """Events, duration and events per second of a recording, validated as ``read_events`` does
    (``evdet.events.recording.describe_recording``).

    Raises:
        EventFormatError: unreadable file, decreasing time, ... (naming the file).
    """
    from evdet.events.recording import describe_recording

    d = describe_recording(path)
    n = d["num_events"]
    duration_s = d["duration_s"] or 0.0
    return {"events": int(n), "duration_s": duration_s,
            "events_per_s": n / duration_s if duration_s > 0 else None}


def _find_sequences(root: Path) -> tuple[str, dict[str, list[tuple[str, Path, Path | None]]]]:
    """('raw' | 'preprocessed', {split: [(sequence, label file, event file or None)]})."""
    pre, raw = {}, {}
    for split_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        seqs = sorted(p for p in split_dir.iterdir() if is_sequence_dir(p))
        if seqs:
            pre[split_dir.name] = [(p.name, p / LABELS_DIR / "labels.npz", None) for p in seqs]
        bboxes = sorted(split_dir.glob(f"*{_BBOX_SUFFIX}"))
        if bboxes:
            raw[split_dir.name] = [(b.name[: -len(_BBOX_SUFFIX)], b, _events_file(b)) for b in bboxes]
    if pre:
        return "preprocessed", pre
    if raw:
        return "raw", raw
    raise FileNotFoundError(f"{root}: neither a raw dataset (<split>/<seq>_bbox.npy) nor a "
                            f"preprocessed one (<split>/<seq>/labels_v2)")


def _events_file(bbox: Path) -> Path | None:
    name = bbox.name[: -len(_BBOX_SUFFIX)]
    for suffix in EVENT_SUFFIXES:
        candidate = bbox.with_name(name + suffix)
        if candidate.is_file():
            return candidate
    return None


def _read_boxes(path: Path, kind: str) -> np.ndarray:
    if kind == "raw":
        return load_labels(path)
    try:
        with np.load(path, allow_pickle=False) as data:
            if "labels" not in data.files:
                raise LabelFormatError(f"{path}: no array 'labels' (found {data.files})")
            labels = data["labels"]
    except (OSError, EOFError, zipfile.BadZipFile) as err:
        raise LabelFormatError(f"{path}: cannot read ({err or type(err).__name__})") from err
    return to_bbox_array(labels, source=f"{path}:labels")


def _resolution(root: Path, kind: str, per_split) -> list[int] | None:
    if kind == "preprocessed":
        try:
            return list(read_preprocess_info(root)["source_hw"])
        except ValueError:
            return None
    from evdet.events import EventFormatError, sensor_size

    default = yaml_resolution(root)
    for items in per_split.values():
        for _name, _labels, events_path in items:
            if events_path is not None:
                try:
                    return list(sensor_size(events_path, default=default))
                except EventFormatError:
                    return None
    return list(default) if default else None


def _percentiles(values: np.ndarray) -> dict[str, float]:
    return {f"P{q}": float(v) for q, v in zip(PERCENTILES, np.percentile(values, PERCENTILES))}

