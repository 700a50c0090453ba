"""Tiny preprocessed datasets in the RVT layout, written directly (no events, no preprocessing).

Representation ``r`` of every sequence holds the value ``(r % 200) + 1`` in channel 0 at pixel
(0, 0) (so a batch tells which representation it came from) plus sparse random counts elsewhere;
label frames sit on the odd representations (1, 3, 5, ...) and hold one box that moves right by one
pixel per label frame, class ``frame % num_classes``.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import yaml

from evdet.data.labels import BBOX_DTYPE

REPR_NAME = "stacked_histogram_dt=50_nbins=2"
REPR_US = 50_000


def label_reprs(num_reprs: int) -> np.ndarray:
    """Representation indices that carry a label frame."""
    return np.arange(1, num_reprs, 2, dtype=np.int64)


def box_of_frame(frame: int, num_classes: int) -> tuple[float, float, float, float, int]:
    """(x, y, w, h, class_id) of the single box of label frame ``frame``."""
    return 8.0 + frame, 10.0, 24.0, 20.0, frame % num_classes


def write_sequence(seq_dir: Path, num_reprs: int, *, height: int, width: int, channels: int,
                   num_classes: int, seed: int) -> None:
    """One sequence folder (labels_v2 + event_representations_v2/<REPR_NAME>)."""
    rng = np.random.default_rng(seed)
    data = (rng.random((num_reprs, channels, height, width)) < 0.05).astype(np.uint8) * 3
    data[:, 0, 0, 0] = (np.arange(num_reprs) % 200) + 1
    repr_t = (np.arange(num_reprs, dtype=np.int64) + 1) * REPR_US
    frames = label_reprs(num_reprs)
    boxes = np.zeros(len(frames), dtype=BBOX_DTYPE)
    for i, r in enumerate(frames):
        x, y, w, h, c = box_of_frame(i, num_classes)
        boxes[i] = (repr_t[r], x, y, w, h, c, i, 1.0)
        # the object's events, so that a model can learn something
        data[r, 1, int(y):int(y + h), int(x):int(x + w)] = 2
    rdir = seq_dir / "event_representations_v2" / REPR_NAME
    ldir = seq_dir / "labels_v2"
    rdir.mkdir(parents=True)
    ldir.mkdir(parents=True)
    with h5py.File(rdir / "event_representations.h5", "w") as fh:
        fh.create_dataset("data", data=data, chunks=(1, channels, height, width))
    np.save(rdir / "objframe_idx_2_repr_idx.npy", frames)
    np.save(rdir / "timestamps_us.npy", repr_t)
    np.savez(ldir / "labels.npz", labels=boxes, objframe_idx_2_label_idx=np.arange(len(frames), dtype=np.int64))
    np.save(ldir / "timestamps_us.npy", repr_t[frames])


def make_tiny_dataset(root: Path, *, lengths: dict[str, list[int]], height: int = 64, width: int = 96,
                      channels: int = 4, class_names=("car", "pedestrian")) -> Path:
    """Write ``root/<split>/seq_<split>_<i>`` with the given numbers of representations."""
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    (root / "dataset.yaml").write_text(yaml.safe_dump({"classes": {"names": list(class_names), "groups": {}}}))
    for split, lens in lengths.items():
        for i, n in enumerate(lens):
            write_sequence(root / split / f"seq_{split}_{i}", n, height=height, width=width, channels=channels,
                           num_classes=len(class_names), seed=100 * i + len(split))
    return root
