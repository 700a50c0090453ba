"""Dataset statistics: boxes per class, box size and shape percentiles, event rates.

Works on a raw dataset (``<root>/<split>/<seq>_bbox.npy`` + event files) or a preprocessed one
(``<root>/<split>/<seq>/labels_v2/labels.npz``); the kind is detected from the files. Box sizes are
in SOURCE pixels in both cases (preprocessed labels stay at source resolution). Raw labels are
counted as given; preprocessed ones after filtering and 10 Hz thinning.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evdet.data.classes import load_class_map
from evdet.data.labels import BBOX_DTYPE, load_labels, to_bbox_array
from evdet.data.sequence import LABELS_DIR, is_sequence_dir, read_preprocess_info

PERCENTILES = (5, 25, 50, 75, 95)
SMALL_AREA_PX2 = 32 * 32          # COCO "small", at source resolution
TINY_AREA_PX2 = 16 * 16           # the "full" protocol's tiny bucket
_BBOX_SUFFIX = "_bbox.npy"


def dataset_stats(path: str | Path) -> dict:
    """Statistics of a raw or preprocessed dataset.

    Returns:
        dict with ``kind`` ("raw" | "preprocessed"), ``path``, ``class_names``, ``resolution``
        [h, w] (source; None when unknown), ``splits`` {split: {sequences, label_frames, boxes}},
        ``overall`` and ``classes`` {name: {count, share, area_px2 {P5..P95}, aspect_ratio {P5..P95}
        (w / h), small_share (area < 32^2), tiny_share (area < 16^2)}}, ``event_rates``
        {"split/seq": {events, duration_s, events_per_s}} (raw data only), ``thresholds``.

    Raises:
        FileNotFoundError: ``path`` holds neither layout.
    """
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder")
    kind, per_split = _find_sequences(root)
    class_names = list(load_class_map(root).names)
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
    boxes = np.concatenate(boxes_all) if boxes_all else np.zeros(0, dtype=BBOX_DTYPE)
    max_id = int(boxes["class_id"].max()) if boxes.size else -1
    names = class_names + [f"class_{i}" for i in range(len(class_names), max_id + 1)]
    classes = {name: box_stats(boxes[boxes["class_id"] == i], total=boxes.size)
               for i, name in enumerate(names)}
    return {
        "kind": kind,
        "path": str(root),
        "class_names": names,
        "resolution": _resolution(root, kind, per_split),
        "splits": splits,
        "overall": box_stats(boxes, total=boxes.size),
        "classes": classes,
        "event_rates": rates,
        "thresholds": {"small_area_px2": SMALL_AREA_PX2, "tiny_area_px2": TINY_AREA_PX2},
    }


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
    """Events, duration and events per second of a recording.

    .dat and .npy files are memory-mapped (count from the file size, first and last t only); .h5
    files are summarised from their metadata; .raw files have no index and are decoded.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".dat":
        from evdet.events.dat import read_dat_header

        header = read_dat_header(path)
        n = (path.stat().st_size - header.data_offset) // 8          # 8-byte records, t first
        t = np.memmap(path, dtype="<u4", mode="r", offset=header.data_offset, shape=(2 * n,))[::2] \
            if n else np.zeros(0, "<u4")
        t0, t1 = (int(t[0]), int(t[-1])) if n else (0, 0)
    elif suffix == ".npy":
        arr = np.load(path, mmap_mode="r")
        n = int(arr.shape[0])
        tname = "t" if "t" in (arr.dtype.names or ()) else "ts"
        t0, t1 = (int(arr[tname][0]), int(arr[tname][-1])) if n else (0, 0)
    else:
        from evdet.events.recording import describe_recording

        d = describe_recording(path)
        n = d["num_events"]
        t0, t1 = (d["t_first_us"], d["t_last_us"]) if n else (0, 0)
    duration_s = (t1 - t0) / 1e6
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
    for suffix in ("_td.h5", "_td.hdf5", "_td.dat", "_td.npy", "_td.raw", ".raw", ".h5"):
        candidate = bbox.with_name(name + suffix)
        if candidate.is_file():
            return candidate
    return None


def _read_boxes(path: Path, kind: str) -> np.ndarray:
    if kind == "raw":
        return load_labels(path)
    with np.load(path, allow_pickle=False) as data:
        if "labels" not in data.files:
            raise ValueError(f"{path}: no array 'labels' (found {data.files})")
        return to_bbox_array(data["labels"], source=f"{path}:labels")


def _resolution(root: Path, kind: str, per_split) -> list[int] | None:
    if kind == "preprocessed":
        try:
            return list(read_preprocess_info(root)["source_hw"])
        except ValueError:
            return None
    from evdet.events import EventFormatError, sensor_size

    for items in per_split.values():
        for _name, _labels, events_path in items:
            if events_path is not None:
                try:
                    return list(sensor_size(events_path))
                except EventFormatError:
                    return None
    return None


def _percentiles(values: np.ndarray) -> dict[str, float]:
    return {f"P{q}": float(v) for q, v in zip(PERCENTILES, np.percentile(values, PERCENTILES))}

