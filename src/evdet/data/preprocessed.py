"""Reader of one preprocessed sequence (the RVT layout), and of a preprocessed dataset's metadata.

Layout of a preprocessed dataset (written by ``evdet.data.preprocess.dataset`` or by the reference RVT
scripts, which lack the two root files)::

    <pre_root>/
      dataset.yaml                       class map (ours)
      preprocess.json                    settings and per-sequence counts (ours)
      INCOMPLETE                         only while a writer (pseudo-label) has not finished: refused
      <split>/<sequence>/
        labels_v2/labels.npz             'labels' (K,) boxes at SOURCE resolution,
                                         'objframe_idx_2_label_idx' (F,) first row of each label frame
        labels_v2/timestamps_us.npy      (F,) int64 label frame times
        event_representations_v2/<representation>/
          event_representations[_ds2_nearest|_ds2_sum].h5   dataset 'data' (N, C, H, W)
          objframe_idx_2_repr_idx.npy    (F,) representation index of each label frame
          timestamps_us.npy              (N,) int64 end time of each representation window

Boxes are returned in REPRESENTATION pixels: for ``_ds2_*`` files they are scaled by 0.5 as the
reference loader does (corners clamped to the last pixel, flat boxes dropped).
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from pathlib import Path
from typing import Literal, Optional

import numpy as np

from evdet.data.labels import LabelFormatError, to_bbox_array

DownsampleMode = Literal["none", "ds2_nearest", "ds2_sum"]
DEFAULT_REPRESENTATION = "stacked_histogram_dt=50_nbins=10"
PREPROCESS_JSON = "preprocess.json"
LABELS_DIR = "labels_v2"
REPR_DIR = "event_representations_v2"
REPR_FILES: dict[str, str] = {
    "none": "event_representations.h5",
    "ds2_nearest": "event_representations_ds2_nearest.h5",
    "ds2_sum": "event_representations_ds2_sum.h5",
}
_SCALE = {"none": 1.0, "ds2_nearest": 0.5, "ds2_sum": 0.5}
_REPR_NAME = re.compile(r"^(?P<kind>.+?)_dt=(?P<dt>\d+)(?:_nbins=(?P<nbins>\d+))?")


class PreprocessedFormatError(ValueError):
    """A preprocessed sequence or dataset is incomplete or inconsistent (names the file)."""


def _h5py():
    import hdf5plugin  # noqa: F401  registers the Blosc filter before h5py opens a file
    import h5py

    return h5py


class PreprocessedSequence:
    """One preprocessed sequence: event representations plus its label frames.

    The HDF5 file is opened on first access in each process, so the object can be pickled into
    DataLoader workers.

    Args:
        seq_dir: ``<pre_root>/<split>/<sequence>``.
        representation: folder name under ``event_representations_v2``.
        downsample: which representation file to use; None = the only one present.

    Attributes:
        name: sequence name (folder name).
        height, width: representation size in pixels.
        channels: representation channels (20 for the stacked histogram with 10 bins).
        downsample: "none", "ds2_nearest" or "ds2_sum".
        num_reprs: N.
        repr_timestamps_us: (N,) int64 end time of each representation window.
        label_repr_idx: (F,) int64 representation index of each label frame.
        label_timestamps_us: (F,) int64 time of each label frame.
    """

    def __init__(self, seq_dir: str | Path, representation: str = DEFAULT_REPRESENTATION, *,
                 downsample: DownsampleMode | None = None):
        self.path = Path(seq_dir)
        self.name = self.path.name
        self.representation = representation
        repr_dir = self.path / REPR_DIR / representation
        if not repr_dir.is_dir():
            found = sorted(p.name for p in (self.path / REPR_DIR).glob("*")) \
                if (self.path / REPR_DIR).is_dir() else []
            raise PreprocessedFormatError(
                f"{repr_dir}: representation folder missing (found {found})")
        self.downsample, self.repr_file = _find_repr_file(repr_dir, downsample)
        self._scale = _SCALE[self.downsample]
        self.repr_timestamps_us = _load_int_array(repr_dir / "timestamps_us.npy")
        self.label_repr_idx = _load_int_array(repr_dir / "objframe_idx_2_repr_idx.npy")
        self.label_timestamps_us = _load_int_array(self.path / LABELS_DIR / "timestamps_us.npy")
        self._labels, self._frame_start = _load_labels_npz(self.path / LABELS_DIR / "labels.npz")
        shape, self.dtype = _repr_shape(self.repr_file)
        self.num_reprs = int(shape[0])
        self.channels, self.height, self.width = (int(s) for s in shape[1:])
        self._check_consistency()
        self._frame_of_repr = np.full(self.num_reprs, -1, dtype=np.int64)
        self._frame_of_repr[self.label_repr_idx] = np.arange(self.label_repr_idx.size)
        self._h5 = None
        self._h5_pid: int | None = None

    # ---- representations ------------------------------------------------------------------
    def reprs(self, start: int, stop: int, out: Optional[np.ndarray] = None) -> np.ndarray:
        """Representations ``start:stop`` as an array (T, C, H, W) of the file's dtype (uint8), read into
        ``out`` (C-contiguous, that shape and dtype) when given."""
        if not 0 <= start < stop <= self.num_reprs:
            raise IndexError(f"{self.repr_file}: representation range {start}:{stop} outside "
                             f"0:{self.num_reprs}")
        if out is None:
            return np.asarray(self._dataset()[start:stop])
        self._dataset().read_direct(out, np.s_[start:stop])
        return out

    def all_written(self) -> bool:
        """Whether every representation is stored in the file: all chunks allocated (HDF5 reads
        chunks that were never written back as zeros, without error, so a writer killed midway
        leaves a file that reads)."""
        ds = self._dataset()
        if ds.chunks is None:
            return ds.id.get_storage_size() >= ds.size * ds.dtype.itemsize
        expected = int(np.prod([-(-size // chunk) for size, chunk in zip(ds.shape, ds.chunks)]))
        return ds.id.get_num_chunks() == expected

    def close(self) -> None:
        """Close the HDF5 file if this process opened it (it reopens on the next access)."""
        if self._h5 is not None and self._h5_pid == os.getpid():
            self._h5.close()
        self._h5 = None
        self._h5_pid = None

    def __enter__(self) -> "PreprocessedSequence":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["_h5"] = None
        state["_h5_pid"] = None
        return state

    def __len__(self) -> int:
        return self.num_reprs

    def __repr__(self) -> str:
        return (f"PreprocessedSequence({self.name!r}, reprs={self.num_reprs}, "
                f"label_frames={self.num_label_frames}, size={self.height}x{self.width}, "
                f"downsample={self.downsample!r})")

    # ---- labels -------------------------------------------------------------------------------
    @property
    def num_label_frames(self) -> int:
        return int(self.label_timestamps_us.size)

    def label_frame(self, frame_idx: int, in_repr_pixels: bool = True) -> np.ndarray:
        """Boxes of label frame ``frame_idx`` (a new ``BBOX_DTYPE`` array)."""
        if not 0 <= frame_idx < self.num_label_frames:
            raise IndexError(f"{self.path}: label frame {frame_idx} outside 0:{self.num_label_frames}")
        stop = self._frame_start[frame_idx + 1] if frame_idx + 1 < self.num_label_frames \
            else self._labels.size
        boxes = self._labels[self._frame_start[frame_idx]:stop].copy()
        return self._to_repr_pixels(boxes) if in_repr_pixels else boxes

    def labels_at_repr(self, repr_idx: int) -> np.ndarray | None:
        """Boxes of the label frame ending at representation ``repr_idx``, in representation
        pixels; None when that representation has no label frame."""
        if not 0 <= repr_idx < self.num_reprs:
            raise IndexError(f"{self.repr_file}: representation {repr_idx} outside 0:{self.num_reprs}")
        frame = int(self._frame_of_repr[repr_idx])
        return None if frame < 0 else self.label_frame(frame)

    def all_labels(self, in_repr_pixels: bool = True) -> np.ndarray:
        """Boxes of every label frame (K,) ``BBOX_DTYPE``, in frame order."""
        boxes = self._labels.copy()
        return self._to_repr_pixels(boxes) if in_repr_pixels else boxes

    # ---- internals ----------------------------------------------------------------------------
    def _dataset(self):
        pid = os.getpid()
        if self._h5 is None or self._h5_pid != pid:
            self._h5 = _h5py().File(self.repr_file, "r")
            self._h5_pid = pid
        return self._h5["data"]

    def _to_repr_pixels(self, boxes: np.ndarray) -> np.ndarray:
        """Scale source-pixel boxes into the representation, as the reference loader does."""
        s = self._scale
        if s == 1.0:
            return boxes
        x2 = np.minimum((boxes["x"] + boxes["w"]) * s, self.width - 1)
        y2 = np.minimum((boxes["y"] + boxes["h"]) * s, self.height - 1)
        boxes["x"] = boxes["x"] * s
        boxes["y"] = boxes["y"] * s
        boxes["w"] = x2 - boxes["x"]
        boxes["h"] = y2 - boxes["y"]
        return boxes[(boxes["w"] > 0) & (boxes["h"] > 0)]

    def _check_consistency(self) -> None:
        repr_dir = self.repr_file.parent
        n, f = self.num_reprs, self.label_timestamps_us.size
        if self.repr_timestamps_us.size != n:
            raise PreprocessedFormatError(
                f"{repr_dir / 'timestamps_us.npy'}: {self.repr_timestamps_us.size} timestamps but "
                f"{self.repr_file.name} holds {n} representations")
        if self.label_repr_idx.size != f:
            raise PreprocessedFormatError(
                f"{repr_dir / 'objframe_idx_2_repr_idx.npy'}: {self.label_repr_idx.size} entries but "
                f"{LABELS_DIR}/timestamps_us.npy has {f} label frames")
        if self._frame_start.size != f:
            raise PreprocessedFormatError(
                f"{self.path / LABELS_DIR / 'labels.npz'}: objframe_idx_2_label_idx has "
                f"{self._frame_start.size} entries but {LABELS_DIR}/timestamps_us.npy has {f}")
        if f and (self.label_repr_idx.min() < 0 or self.label_repr_idx.max() >= n):
            raise PreprocessedFormatError(
                f"{repr_dir / 'objframe_idx_2_repr_idx.npy'}: index outside 0:{n}")
        if np.any(np.diff(self.label_repr_idx) <= 0):
            raise PreprocessedFormatError(
                f"{repr_dir / 'objframe_idx_2_repr_idx.npy'}: indices are not increasing")
        if np.any(np.diff(self.repr_timestamps_us) < 0):
            raise PreprocessedFormatError(f"{repr_dir / 'timestamps_us.npy'}: timestamps decrease")
        labels_file = self.path / LABELS_DIR / "labels.npz"
        bad = np.flatnonzero((np.diff(self._frame_start) <= 0))
        if f and (self._frame_start[0] != 0 or bad.size or self._frame_start[-1] >= self._labels.size):
            raise PreprocessedFormatError(
                f"{labels_file}: objframe_idx_2_label_idx must start at 0, increase and stay below "
                f"{self._labels.size}")
        # Every label row must carry its frame's time (the reference asserts the same).
        frame_of_row = np.repeat(np.arange(f), np.diff(np.append(self._frame_start, self._labels.size)))
        if f and not np.array_equal(self._labels["t"], self.label_timestamps_us[frame_of_row]):
            raise PreprocessedFormatError(
                f"{labels_file}: label 't' does not match {LABELS_DIR}/timestamps_us.npy of its frame")


def _find_repr_file(repr_dir: Path, downsample: DownsampleMode | None) -> tuple[str, Path]:
    present = {mode: repr_dir / name for mode, name in REPR_FILES.items() if (repr_dir / name).is_file()}
    if downsample is not None:
        if downsample not in REPR_FILES:
            raise ValueError(f"unknown downsample mode {downsample!r}; expected one of {list(REPR_FILES)}")
        if downsample not in present:
            raise PreprocessedFormatError(f"{repr_dir / REPR_FILES[downsample]}: no such file "
                                          f"(present: {[p.name for p in present.values()]})")
        return downsample, present[downsample]
    if len(present) == 1:
        mode, path = next(iter(present.items()))
        return mode, path
    if not present:
        raise PreprocessedFormatError(f"{repr_dir}: no event_representations*.h5 file")
    raise PreprocessedFormatError(f"{repr_dir}: several representation files "
                                  f"{[p.name for p in present.values()]}; pass downsample=")


def _repr_shape(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    h5py = _h5py()
    try:
        with h5py.File(path, "r") as fh:
            if "data" not in fh:
                raise PreprocessedFormatError(f"{path}: no dataset 'data' (found {list(fh.keys())})")
            ds = fh["data"]
            if ds.ndim != 4:
                raise PreprocessedFormatError(f"{path}: 'data' must be (N, C, H, W), got shape {ds.shape}")
            return tuple(ds.shape), ds.dtype
    except OSError as err:
        raise PreprocessedFormatError(f"{path}: cannot open as HDF5 ({err})") from err


def _load_int_array(path: Path) -> np.ndarray:
    if not path.is_file():
        raise PreprocessedFormatError(f"{path}: no such file")
    try:
        arr = np.load(path, allow_pickle=False)
    except (OSError, ValueError, EOFError) as err:          # EOFError: empty or truncated file
        raise PreprocessedFormatError(f"{path}: cannot read ({err or type(err).__name__})") from err
    if arr.ndim != 1 or arr.dtype.kind not in "iu":
        raise PreprocessedFormatError(f"{path}: expected a 1-D integer array, got {arr.dtype} {arr.shape}")
    return arr.astype(np.int64)


def _load_labels_npz(path: Path) -> tuple[np.ndarray, np.ndarray]:
    if not path.is_file():
        raise PreprocessedFormatError(f"{path}: no such file")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [k for k in ("labels", "objframe_idx_2_label_idx") if k not in data.files]
            if missing:
                raise PreprocessedFormatError(f"{path}: missing array(s) {missing}; found {data.files}")
            labels = data["labels"]
            starts = data["objframe_idx_2_label_idx"]
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as err:   # bad CRC, cut archive
        if isinstance(err, PreprocessedFormatError):
            raise
        raise PreprocessedFormatError(f"{path}: cannot read ({err or type(err).__name__})") from err
    try:
        boxes = to_bbox_array(labels, source=f"{path}:labels")
    except LabelFormatError as err:
        raise PreprocessedFormatError(str(err)) from err
    if starts.ndim != 1 or starts.dtype.kind not in "iu":
        raise PreprocessedFormatError(f"{path}: objframe_idx_2_label_idx must be 1-D integers")
    return boxes, starts.astype(np.int64)


# ---- dataset level --------------------------------------------------------------------------------
INCOMPLETE_FILE = "INCOMPLETE"


class IncompleteDatasetError(FileNotFoundError):
    """A dataset whose writer has not finished (its ``INCOMPLETE`` file says which command)."""


def check_complete(pre_root: str | Path) -> None:
    """Raise ``IncompleteDatasetError`` while ``<pre_root>/INCOMPLETE`` exists (an interrupted writer)."""
    marker = Path(pre_root) / INCOMPLETE_FILE
    if marker.is_file():
        raise IncompleteDatasetError(f"{pre_root}: the dataset is incomplete ({marker.read_text().strip()}); rerun "
                                     f"that command to finish it before training or evaluating on it")


def is_sequence_dir(path: Path) -> bool:
    """True for a finished preprocessed sequence folder (not a ``.tmp`` work folder)."""
    return (path.is_dir() and not path.name.endswith(".tmp") and (path / LABELS_DIR).is_dir()
            and (path / REPR_DIR).is_dir())


def list_sequences(pre_root: str | Path, split: str) -> list[Path]:
    """Sorted sequence folders of one split of a preprocessed dataset.

    Raises:
        FileNotFoundError: ``<pre_root>/<split>`` does not exist.
        IncompleteDatasetError: the dataset's writer has not finished (``check_complete``).
    """
    check_complete(pre_root)
    split_dir = Path(pre_root) / split
    if not split_dir.is_dir():
        found = sorted(p.name for p in Path(pre_root).iterdir() if p.is_dir()) \
            if Path(pre_root).is_dir() else []
        raise FileNotFoundError(f"{split_dir}: no such split folder (found {found})")
    return sorted(p for p in split_dir.iterdir() if is_sequence_dir(p))


def read_preprocess_info(pre_root: str | Path) -> dict:
    """Settings of a preprocessed dataset: ``preprocess.json``, or inferred from the files.

    Returns:
        dict with at least ``source_hw`` [h, w], ``repr_hw`` [h, w], ``downsample``,
        ``representation`` (folder name), ``channels``, ``window_ms``, ``nbins`` (None when the name
        has none), ``splits`` {split: number of sequences}; ``inferred`` is True when there was no
        ``preprocess.json`` (data made by the reference scripts).

    Raises:
        PreprocessedFormatError: no preprocess.json and no sequence to infer from, or a bad json.
    """
    root = Path(pre_root)
    splits = {p.name: len([q for q in p.iterdir() if is_sequence_dir(q)])
              for p in sorted(root.iterdir()) if p.is_dir()} if root.is_dir() else {}
    splits = {k: v for k, v in splits.items() if v}
    info_path = root / PREPROCESS_JSON
    if info_path.is_file():
        try:
            info = json.loads(info_path.read_text())
        except json.JSONDecodeError as err:
            raise PreprocessedFormatError(f"{info_path}: not valid JSON ({err})") from err
        missing = [k for k in ("source_hw", "repr_hw", "downsample", "representation") if k not in info]
        if missing:
            raise PreprocessedFormatError(f"{info_path}: missing field(s) {missing}")
        info.setdefault("inferred", False)
        info["splits"] = splits
        return info
    return _infer_info(root, splits)


def _infer_info(root: Path, splits: dict[str, int]) -> dict:
    """Settings of RVT-made data: read from the first sequence's files."""
    for split in splits:
        for seq_dir in list_sequences(root, split):
            reprs = sorted(p for p in (seq_dir / REPR_DIR).iterdir() if p.is_dir())
            if not reprs:
                continue
            repr_dir = reprs[0]
            modes = [m for m, name in REPR_FILES.items() if (repr_dir / name).is_file()]
            if not modes:
                continue
            mode = modes[0]
            shape, _ = _repr_shape(repr_dir / REPR_FILES[mode])
            c, h, w = (int(s) for s in shape[1:])
            factor = 2 if mode != "none" else 1
            match = _REPR_NAME.match(repr_dir.name)
            return {
                "inferred": True,
                "source_hw": [h * factor, w * factor],
                "repr_hw": [h, w],
                "downsample": mode,
                "representation": repr_dir.name,
                "representation_kind": match["kind"] if match else repr_dir.name,
                "channels": c,
                "window_ms": int(match["dt"]) if match else None,
                "nbins": int(match["nbins"]) if match and match["nbins"] else None,
                "splits": splits,
            }
    raise PreprocessedFormatError(
        f"{root}: no {PREPROCESS_JSON} and no preprocessed sequence to infer the settings from")
