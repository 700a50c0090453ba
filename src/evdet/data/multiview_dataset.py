"""Multi-view data: preprocessing that keeps a scene's views together, time-aligned loading, and
random / stream batches that carry all views of a scene.

Preprocessed layout (each view folder is a normal RVT sequence folder, ``evdet.data.preprocessed``)::

    <pre_root>/dataset.yaml, preprocess.json
    <pre_root>/<split>/<scene>/views.yaml
    <pre_root>/<split>/<scene>/<view>/labels_v2/..., event_representations_v2/...

Alignment: the views of a scene share one clock and one label grid (the generator writes every view at
``MULTIVIEW_LABEL_RATE_HZ``), so their 50 ms windows end at the same times; a scene keeps the window end
times that every view has (checked: the kept windows are consecutive in each view), and step ``k`` of
the scene is the same window ``[t_k - 50 ms, t_k]`` in every view.

Batches follow the single-view batch (``evdet.data.datamodule``), with the views of a scene as
consecutive items: item ``b`` is view ``b % V`` of scene slot ``b // V``. ``label_mask`` is the same
for all views of a scene (a step with a label frame in any view; the others then have no box there:
the generator labels every road user that fired events). No augmentation.
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from evdet.data.preprocessed import PreprocessedSequence
from evdet.data.synthetic.multiview_io import VIEWS_YAML, list_scenes, read_views_yaml

FLAT_SEP = "__"          # <scene>__<view>: flat names while the single-view preprocessing runs
POSE_DIM = 6             # cos yaw, sin yaw, pitch rad, height / 10 m, x / 20 m, z / 20 m (models.fusion)


def preprocess_multiview(src: str | Path, dst: str | Path, *, splits=("train", "val", "test"),
                         workers: int = 1, **options) -> dict:
    """Preprocess a multi-view raw dataset (``evdet.data.synthetic.multiview_io`` layout) into ``dst``.

    Every view runs through the single-view preprocessing (``options`` are its keyword arguments:
    downsample, representation, window_ms, ...), then lands in ``dst/<split>/<scene>/<view>``.
    A scene with a view that preprocessing dropped (no box left) is dropped whole.

    Returns:
        {"scenes": {split: [names]}, "dropped": [scene names], "preprocess": the single-view summary}.
    """
    from evdet.data.preprocess.dataset import preprocess_dataset

    src, dst = Path(src), Path(dst)
    stage, flat = dst / "_stage_raw", dst / "_stage_pre"
    for p in (stage, flat):
        shutil.rmtree(p, ignore_errors=True)
    views_of: dict[tuple[str, str], list[str]] = {}
    for split in splits:
        (stage / split).mkdir(parents=True, exist_ok=True)
        for scene in list_scenes(src, split):
            names = list(read_views_yaml(scene)["views"])
            views_of[(split, scene.name)] = names
            for v in names:
                for f in (scene / v).iterdir():
                    if f.name.endswith(("_td.h5", "_bbox.npy")):
                        kind = "_td.h5" if f.name.endswith("_td.h5") else "_bbox.npy"
                        (stage / split / f"{scene.name}{FLAT_SEP}{v}{kind}").symlink_to(f.resolve())
    if not views_of:
        raise FileNotFoundError(f"{src}: no scene folder with a {VIEWS_YAML} in {list(splits)}")
    shutil.copy(src / "dataset.yaml", stage / "dataset.yaml")
    summary = preprocess_dataset(stage, flat, splits=tuple(splits), workers=workers, progress=False, **options)
    kept: dict[str, list[str]] = {s: [] for s in splits}
    dropped = []
    for (split, scene), names in sorted(views_of.items()):
        folders = [flat / split / f"{scene}{FLAT_SEP}{v}" for v in names]
        if not all(f.is_dir() for f in folders):
            dropped.append(scene)
            continue
        out = dst / split / scene
        shutil.rmtree(out, ignore_errors=True)
        out.mkdir(parents=True)
        for v, f in zip(names, folders):
            f.rename(out / v)
        shutil.copy(src / split / scene / VIEWS_YAML, out / VIEWS_YAML)
        kept[split].append(scene)
    for name in ("dataset.yaml", "preprocess.json"):
        if (flat / name).exists():
            shutil.copy(flat / name, dst / name)
    shutil.rmtree(stage)
    shutil.rmtree(flat)
    return {"scenes": kept, "dropped": dropped, "preprocess": summary}


def pose_vector(view: dict) -> np.ndarray:
    """(POSE_DIM,) float32 pose of one ``views.yaml`` entry (see ``POSE_DIM``)."""
    pose = view["pose"]
    yaw, x, _, z = math.radians(pose["yaw_deg"]), *pose["centre_m"]
    return np.array([math.cos(yaw), math.sin(yaw), math.radians(pose["pitch_deg"]), pose["height_m"] / 10.0,
                     x / 20.0, z / 20.0], dtype=np.float32)


class MultiViewScene:
    """The views of one preprocessed scene on their common windows.

    Attributes:
        name, views (view names), num_steps (common windows), timestamps_us (num_steps,) their end times,
        height, width, channels, poses (V, POSE_DIM) float32, label_mask (num_steps,) bool.
    """

    def __init__(self, scene_dir: str | Path, representation: str = "stacked_histogram_dt=50_nbins=10"):
        self.path = Path(scene_dir)
        self.name = self.path.name
        doc = read_views_yaml(self.path)
        self.views = list(doc["views"])
        self.seqs = [PreprocessedSequence(self.path / v, representation) for v in self.views]
        self.poses = np.stack([pose_vector(doc["views"][v]) for v in self.views])
        common = self.seqs[0].repr_timestamps_us
        for s in self.seqs[1:]:
            common = np.intersect1d(common, s.repr_timestamps_us)
        if common.size == 0:
            raise ValueError(f"{self.path}: its views share no representation window end time")
        self.timestamps_us = common
        self.offsets = []
        for v, s in zip(self.views, self.seqs):
            idx = np.searchsorted(s.repr_timestamps_us, common)
            if not np.array_equal(idx, idx[0] + np.arange(idx.size)):
                raise ValueError(f"{self.path / v}: the windows shared with the other views are not consecutive "
                                 "(views not on one label grid)")
            self.offsets.append(int(idx[0]))
        self.num_steps = int(common.size)
        s0 = self.seqs[0]
        self.height, self.width, self.channels = s0.height, s0.width, s0.channels
        if any((s.height, s.width, s.channels) != (self.height, self.width, self.channels) for s in self.seqs):
            raise ValueError(f"{self.path}: views differ in representation size")
        self.label_mask = np.zeros(self.num_steps, bool)
        for off, s in zip(self.offsets, self.seqs):
            frames = s.label_repr_idx - off
            frames = frames[(frames >= 0) & (frames < self.num_steps)]
            self.label_mask[frames] = True

    def reprs(self, start: int, stop: int) -> np.ndarray:
        """(V, T, C, H, W) uint8 of common steps ``start:stop``."""
        return np.stack([s.reprs(off + start, off + stop) for off, s in zip(self.offsets, self.seqs)])

    def labels(self, view: int, step: int) -> np.ndarray:
        """Boxes (BBOX_DTYPE, representation pixels) of ``view`` at common ``step`` (empty when none)."""
        boxes = self.seqs[view].labels_at_repr(self.offsets[view] + step)
        return boxes if boxes is not None else self.seqs[view].all_labels()[:0]

    def ground_truth(self, view: int) -> np.ndarray:
        """All label boxes of ``view`` on the common steps (evaluation ground truth)."""
        b = self.seqs[view].all_labels()
        return b[np.isin(b["t"], self.timestamps_us)]


def load_scenes(pre_root: str | Path, split: str, representation: str = "stacked_histogram_dt=50_nbins=10"
                ) -> list[MultiViewScene]:
    scenes = [MultiViewScene(p, representation) for p in list_scenes(pre_root, split)]
    if not scenes:
        raise FileNotFoundError(f"{Path(pre_root) / split}: no multi-view scene (folders with {VIEWS_YAML})")
    return scenes


def _targets(boxes: np.ndarray) -> torch.Tensor:
    """BBOX array -> (n, 5) class_id, cx, cy, w, h."""
    out = np.stack([boxes["class_id"].astype(np.float32), boxes["x"] + boxes["w"] / 2, boxes["y"] + boxes["h"] / 2,
                    boxes["w"], boxes["h"]], axis=1)
    return torch.from_numpy(out.astype(np.float32).reshape(-1, 5))


@dataclass(frozen=True)
class Window:
    """Steps ``start:stop`` of scene ``scene``; ``first``: the recurrent state starts fresh here."""

    scene: int
    start: int
    stop: int
    first: bool


def make_batch(scenes: list[MultiViewScene], windows: list[Window]) -> dict:
    """One batch (see the module docstring); windows of one batch have the same length."""
    frames, targets, mask, first, t_us, names, poses = [], [], [], [], [], [], []
    for w in windows:
        sc = scenes[w.scene]
        x = sc.reprs(w.start, w.stop)
        m = sc.label_mask[w.start:w.stop]
        for v in range(len(sc.views)):
            frames.append(torch.from_numpy(x[v].astype(np.float32)))
            targets.append([_targets(sc.labels(v, k)) if m[k - w.start] else torch.zeros(0, 5)
                            for k in range(w.start, w.stop)])
            mask.append(torch.from_numpy(m.copy()))
            first.append(w.first)
            t_us.append(torch.from_numpy(sc.timestamps_us[w.start:w.stop].astype(np.int64)))
            names.append(f"{sc.name}/{sc.views[v]}")
            poses.append(torch.from_numpy(sc.poses[v]))
    return {"frames": torch.stack(frames), "targets": targets, "label_mask": torch.stack(mask),
            "is_first": torch.tensor(first), "t_us": torch.stack(t_us), "seq_names": names,
            "view_pose": torch.stack(poses)}


def random_windows(scenes: list[MultiViewScene], seq_len: int, rng: np.random.Generator, count: int) -> list[Window]:
    """``count`` windows of ``seq_len`` steps ending at a labelled step, drawn uniformly over those steps."""
    ends = [(i, k) for i, s in enumerate(scenes) for k in np.flatnonzero(s.label_mask) if k + 1 >= seq_len]
    if not ends:
        raise ValueError(f"no labelled step with {seq_len} steps before it")
    pick = rng.integers(0, len(ends), count)
    return [Window(ends[j][0], ends[j][1] + 1 - seq_len, ends[j][1] + 1, True) for j in pick]


def stream_windows(scenes: list[MultiViewScene], seq_len: int, slots: int, rng: np.random.Generator
                   ) -> list[list[Window]]:
    """Batches of ``slots`` streams: each slot walks whole scenes (random order) in chunks of ``seq_len``;
    ``first`` at each scene's first chunk. Ends when the shortest slot runs out (a rest is dropped)."""
    if not 1 <= slots <= len(scenes):
        raise ValueError(f"stream slots must lie in [1, {len(scenes)}] (the number of scenes), got {slots}")
    order = rng.permutation(len(scenes))
    lanes: list[list[Window]] = [[] for _ in range(slots)]
    for n, i in enumerate(order):
        chunks = [Window(int(i), k, k + seq_len, k == 0) for k in range(0, scenes[i].num_steps - seq_len + 1, seq_len)]
        lane = lanes[n] if n < slots else min(lanes, key=len)
        lane.extend(chunks)
    steps = min(len(lane) for lane in lanes)
    return [[lane[k] for lane in lanes] for k in range(steps)]


__all__ = ["MultiViewScene", "POSE_DIM", "Window", "load_scenes", "make_batch", "pose_vector",
           "preprocess_multiview", "random_windows", "stream_windows"]
