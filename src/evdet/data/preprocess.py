"""Preprocessing: raw recordings + box labels -> the RVT-compatible preprocessed layout.

Input (raw dataset)::

    <src>/dataset.yaml                       class map (optional; default eTraM)
    <src>/{train,val,test}/<seq>_td.h5       events (or <seq>_td.dat, <seq>_td.raw / <seq>.raw, <seq>_td.npy)
    <src>/{train,val,test}/<seq>_bbox.npy    Prophesee boxes

Output (see ``evdet.data.sequence`` for the reader)::

    <dst>/dataset.yaml, <dst>/preprocess.json
    <dst>/<split>/<seq>/labels_v2/{labels.npz, timestamps_us.npy}
    <dst>/<split>/<seq>/event_representations_v2/<repr_name>/
        event_representations[_ds2_nearest|_ds2_sum].h5   'data' (N, C, H, W), chunks (1, C, H, W),
                                                          Blosc zstd level 1, byte shuffle
        objframe_idx_2_repr_idx.npy, timestamps_us.npy

Semantics follow the reference ``scripts/genx/preprocess_dataset.py``:

* Boxes are filtered (``evdet.data.label_filter``) and label frames thinned to about 10 Hz; labels
  stay at SOURCE resolution.
* Representation windows END at every kept label time. Between two kept label frames the end
  times are ``int64(linspace(t_a, t_b, n + 1))`` with ``n = periods * round(base_period / window)``;
  before the first label frame they step back by ``window_us`` (the earliest, partial one dropped).
  There are no windows after the last label frame.
* Window ``i`` holds the events with ``t_end[i] - window_us <= t <= t_end[i]`` (both ends included,
  as the reference's ``searchsorted(left)`` / ``searchsorted(right)``).

* A sequence with no box left after filtering is not written (the reference deletes it).

Deliberate differences from the reference: the label rate is measured for any source rate (the
reference accepts only 30/60 Hz for Gen4; for Gen1 it uses a fixed 250 ms label grid with two
windows per grid step, where evdet steps by ``window_ms`` everywhere); class ids outside the dataset's class map are dropped (with the
3-class Gen4 map this is the reference's Gen4 class filter); decreasing event times are an error
naming the file (the reference silently flattens them); recordings whose clock starts at or
after 1 s get windows from their first event on, not from t = 0; the events are never loaded
whole (the reference loads every timestamp of a recording).

A sequence is written into ``<seq>.tmp/`` and renamed to ``<seq>/`` once complete, so a killed run
resumes: finished sequences are skipped and leftover ``.tmp`` folders are redone.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path
from typing import Literal

import numpy as np

from evdet.data.classes import DATASET_YAML, load_class_map, write_dataset_yaml
from evdet.data.label_filter import (
    DROP_REASONS,
    MIN_SIDE_PX,
    filter_boxes,
    group_by_frame,
    select_label_frames,
)
from evdet.data.labels import LabelFormatError, load_labels
from evdet.data.processes import process_alive
from evdet.data.sequence import LABELS_DIR, PREPROCESS_JSON, REPR_DIR, REPR_FILES, is_sequence_dir
from evdet.events.atomic import atomic_path, write_text_atomic

DownsampleChoice = Literal["auto", "none", "nearest", "sum"]
SPLITS = ("train", "val", "test")
_MODES = {"none": "none", "nearest": "ds2_nearest", "sum": "ds2_sum"}
# Event-file names for sequence <seq>, in order of preference.
_EVENT_SUFFIXES = ("_td.h5", "_td.hdf5", "_td.dat", "_td.raw", ".raw", "_td.npy", ".h5")
_BBOX_SUFFIX = "_bbox.npy"
_BINNED = ("stacked_histogram", "voxel_grid", "vtei")
_CHUNK_US = 500_000          # events are read from the source in blocks of this duration
_LATE_START_US = 1_000_000   # recordings starting later than this get windows from their first event
_RAW_CHUNK_US = 5_000_000    # RAW files decode from the start at every read: fewer, longer blocks


class PreprocessError(ValueError):
    """The raw dataset cannot be preprocessed (the message names the file and the problem)."""


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


def preprocess_dataset(src: str | Path, dst: str | Path, *, downsample: DownsampleChoice = "auto",
                       representation: str = "stacked_histogram", window_ms: int = 50,
                       nbins: int = 10, workers: int = 2, label_rate_hz: float = 10.0,
                       progress: bool = True, splits: tuple[str, ...] = SPLITS,
                       min_box_side_px: float = MIN_SIDE_PX) -> dict:
    """Convert a raw dataset into the RVT-compatible layout (resumable, one process per sequence).

    Args:
        src: raw dataset root (``<src>/<split>/<seq>_td.h5`` + ``<seq>_bbox.npy``).
        dst: output root.
        downsample: "auto" (ds2_nearest for sources of 1280x720 pixels or more, else none),
            "none", "nearest" (keep pixel (2i+1, 2j+1), the reference) or "sum" (2x2 sums).
        representation: representation kind (see ``evdet.events.build_representation``).
        window_ms: window length and step, milliseconds.
        nbins: temporal bins per polarity.
        workers: worker processes (1 = in this process).
        label_rate_hz: label frames are thinned to about this rate.
        progress: show a tqdm progress bar.
        splits: split folders to look for (missing ones are skipped).
        min_box_side_px: boxes with a side under this (source pixels) are dropped (reference: 5).

    Returns:
        summary dict: ``sequences``, ``done``, ``skipped`` (already finished), ``empty`` (no label
        left after filtering, not written), ``label_frames``, ``reprs``, ``events``,
        ``labels_kept``, ``labels_dropped`` {reason: n}, ``labels_thinned`` (boxes of label
        frames removed by the ~10 Hz thinning), ``events_out_of_range`` (dropped events outside
        the sensor), ``seconds``, ``downsample``, ``repr_hw``, ``representation``. Counts cover
        the sequences processed in this call; ``preprocess.json`` keeps them per sequence.

    Raises:
        PreprocessError: bad layout, missing label / event file, bad labels, mixed resolutions,
            settings that differ from an earlier run into ``dst``, or sequences that failed.
    """
    from evdet.events import representation_name

    t0 = time.perf_counter()
    src, dst = Path(src), Path(dst)
    if window_ms <= 0 or nbins <= 0:
        raise PreprocessError(f"window_ms and nbins must be positive, got {window_ms}, {nbins}")
    if downsample not in ("auto", *_MODES):
        raise PreprocessError(f"unknown downsample {downsample!r}; expected auto, none, nearest or sum")
    class_map = _load_class_map(src)
    found = discover_sequences(src, splits)
    source_hw = _common_sensor_size(found, _yaml_resolution(src))
    mode = _resolve_downsample(downsample, source_hw)
    repr_hw = (source_hw[0] // 2, source_hw[1] // 2) if mode != "none" else source_hw
    repr_name = representation_name(representation, window_ms=window_ms, nbins=nbins)
    settings = {
        "representation": repr_name, "representation_kind": representation, "downsample": mode,
        "window_ms": int(window_ms), "nbins": int(nbins), "label_rate_hz": float(label_rate_hz),
        "source_hw": list(source_hw), "repr_hw": list(repr_hw), "min_box_side_px": float(min_box_side_px),
    }
    dst.mkdir(parents=True, exist_ok=True)
    with _OutputLock(dst):
        info = _start_info(dst, settings, class_map.names)
        _remove_stale_tmp(dst, splits)
        if not (dst / DATASET_YAML).is_file():
            _copy_dataset_yaml(src, dst, class_map)
        return _convert(found, dst, settings, info, class_map.num_classes, workers, progress, t0)


def _convert(found, dst: Path, settings: dict, info: dict, num_classes: int, workers: int,
             progress: bool, t0: float) -> dict:
    """Skip finished sequences, run the others, record the results (under the output lock)."""
    source_hw = tuple(settings["source_hw"])
    mode, repr_name = settings["downsample"], settings["representation"]

    tasks, skipped = [], []
    for split, name, events_path, bbox_path in found:
        out_dir = dst / split / name
        if is_sequence_dir(out_dir):
            skipped.append((split, name, out_dir))
            continue
        tasks.append(SequenceTask(
            split=split, name=name, events_path=str(events_path), bbox_path=str(bbox_path),
            out_dir=str(out_dir), source_hw=source_hw, downsample=mode,
            representation_kind=settings["representation_kind"], repr_name=repr_name,
            window_us=settings["window_ms"] * 1000, nbins=settings["nbins"],
            label_rate_hz=settings["label_rate_hz"], num_classes=num_classes,
            min_box_side_px=settings["min_box_side_px"]))
    for split, name, out_dir in skipped:
        key = f"{split}/{name}"
        if key not in info["sequences"]:
            info["sequences"][key] = _counts_from_files(out_dir, repr_name)

    results, failures = _run_tasks(tasks, workers, progress, dst, info)
    info["complete"] = not failures
    info["failed"] = failures
    _write_json(dst / PREPROCESS_JSON, info)
    if failures:
        first = next(iter(failures.items()))
        raise PreprocessError(f"{len(failures)} sequence(s) failed; first: {first[0]}: {first[1]}")
    return _summarize(found, results, skipped, settings, time.perf_counter() - t0)


# ---- discovery and settings -------------------------------------------------------------------
def discover_sequences(src: Path, splits: tuple[str, ...] = SPLITS) -> list[tuple[str, str, Path, Path]]:
    """(split, sequence name, event file, bbox file) of every sequence, validated.

    Every event file needs its ``<seq>_bbox.npy`` and every bbox file an event file; label files
    are loaded once here so that bad labels stop the run before any heavy work.

    Raises:
        PreprocessError: naming the first missing or unreadable file.
    """
    src = Path(src)
    if not src.is_dir():
        raise PreprocessError(f"{src}: raw dataset folder does not exist")
    present = [s for s in splits if (src / s).is_dir()]
    if not present:
        raise PreprocessError(f"{src}: no split folder (expected some of {list(splits)})")
    out = []
    for split in present:
        events: dict[str, Path] = {}
        for path in sorted((src / split).iterdir()):
            name = _sequence_name(path)
            if name is not None and name not in events:
                events[name] = path
        bboxes = {p.name[: -len(_BBOX_SUFFIX)]: p for p in (src / split).glob(f"*{_BBOX_SUFFIX}")}
        for name in sorted(set(events) | set(bboxes)):
            if name not in bboxes:
                raise PreprocessError(f"{events[name]}: no label file {name}{_BBOX_SUFFIX} beside it")
            if name not in events:
                raise PreprocessError(f"{bboxes[name]}: no event file for sequence {name!r} "
                                      f"(looked for {[name + s for s in _EVENT_SUFFIXES]})")
            try:
                load_labels(bboxes[name])
            except LabelFormatError as err:
                raise PreprocessError(str(err)) from err
            out.append((split, name, events[name], bboxes[name]))
    if not out:
        raise PreprocessError(f"{src}: no sequence found in {present}")
    return out


def _sequence_name(path: Path) -> str | None:
    if not path.is_file():
        return None
    for suffix in _EVENT_SUFFIXES:
        if path.name.endswith(suffix) and len(path.name) > len(suffix):
            return path.name[: -len(suffix)]
    return None


def _load_class_map(src: Path):
    try:
        return load_class_map(src)
    except (ValueError, KeyError, TypeError) as err:
        raise PreprocessError(f"{src / DATASET_YAML}: {err}") from err


def _yaml_resolution(src: Path) -> tuple[int, int] | None:
    """(height, width) from the raw ``dataset.yaml`` (``resolution: [h, w]`` or
    ``{height, width}``), used for event files that do not state their size."""
    path = src / DATASET_YAML
    if not path.is_file():
        return None
    import yaml

    doc = yaml.safe_load(path.read_text()) or {}
    res = doc.get("resolution")
    if res is None and "height" in doc and "width" in doc:
        res = {"height": doc["height"], "width": doc["width"]}
    if res is None:
        return None
    try:
        if isinstance(res, dict):
            return int(res["height"]), int(res["width"])
        h, w = res
        return int(h), int(w)
    except (KeyError, TypeError, ValueError) as err:
        raise PreprocessError(f"{path}: field 'resolution' must be [height, width] ({err})") from err


def _common_sensor_size(found, default: tuple[int, int] | None) -> tuple[int, int]:
    from evdet.events import EventFormatError, sensor_size

    sizes = {}
    for _split, _name, events_path, _ in found:
        try:
            sizes[events_path] = tuple(sensor_size(events_path, default=default))
        except EventFormatError as err:
            raise PreprocessError(f"{err} (or give 'resolution: [h, w]' in dataset.yaml)") from err
    first_path, first = next(iter(sizes.items()))
    for path, size in sizes.items():
        if size != first:
            raise PreprocessError(f"{path}: sensor {size[0]}x{size[1]} differs from "
                                  f"{first[0]}x{first[1]} of {first_path}; one resolution per dataset")
    return int(first[0]), int(first[1])


def _resolve_downsample(choice: str, source_hw: tuple[int, int]) -> str:
    if choice == "auto":
        # The reference halves Gen4 / 1 Mpx (1280x720) data with nearest-exact; smaller sensors stay.
        return "ds2_nearest" if source_hw[0] * source_hw[1] >= 720 * 1280 else "none"
    return _MODES[choice]


def _start_info(dst: Path, settings: dict, class_names) -> dict:
    """preprocess.json of an earlier run (checked against ``settings``), or a new one."""
    path = dst / PREPROCESS_JSON
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise PreprocessError(f"{path}: not valid JSON ({err})") from err
        changed = {k: (old.get(k), v) for k, v in settings.items() if old.get(k) != v}
        if changed:
            detail = ", ".join(f"{k}: {a!r} -> {b!r}" for k, (a, b) in changed.items())
            raise PreprocessError(f"{path}: {dst} was preprocessed with other settings ({detail}); "
                                  "use a new output folder")
        old.setdefault("sequences", {})
        old.setdefault("empty_sequences", [])
        return old
    info = {"schema_version": 1, "complete": False, **settings,
            "repr_file": REPR_FILES[settings["downsample"]], "class_names": list(class_names),
            "sequences": {}, "empty_sequences": []}
    _write_json(path, info)
    return info


def _copy_dataset_yaml(src: Path, dst: Path, class_map) -> None:
    if (src / DATASET_YAML).is_file():
        with atomic_path(dst / DATASET_YAML) as tmp:
            shutil.copyfile(src / DATASET_YAML, tmp)
    else:
        write_dataset_yaml(dst, class_map)


def _remove_stale_tmp(dst: Path, splits: tuple[str, ...]) -> None:
    """Remove ``<seq>.tmp`` folders left by a killed run (they are redone)."""
    for split in splits:
        if (dst / split).is_dir():
            for path in (dst / split).glob("*.tmp"):
                if path.is_dir():
                    shutil.rmtree(path)


class _OutputLock:
    """``<dst>/.preprocess.lock`` holding this process id: one run per output folder at a time
    (a second run would remove the first one's ``.tmp`` folders). A lock left by a dead process
    is taken over."""

    def __init__(self, dst: Path):
        self.path = dst / ".preprocess.lock"

    def __enter__(self) -> "_OutputLock":
        for _ in range(2):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                pid = _read_pid(self.path)
                if pid is not None and process_alive(pid):
                    raise PreprocessError(f"{self.path}: {self.path.parent} is being written by process "
                                          f"{pid}; wait for it or remove the lock if that is wrong") from None
                self.path.unlink(missing_ok=True)          # stale: its process is gone
                continue
            with os.fdopen(fd, "w") as fh:
                fh.write(str(os.getpid()))
            return self
        raise PreprocessError(f"{self.path}: cannot take the output lock")

    def __exit__(self, *exc) -> None:
        self.path.unlink(missing_ok=True)


def _read_pid(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _write_json(path: Path, obj: dict) -> None:
    write_text_atomic(path, json.dumps(obj, indent=1))


# ---- running ----------------------------------------------------------------------------------
def _run_tasks(tasks: list[SequenceTask], workers: int, progress: bool, dst: Path,
               info: dict) -> tuple[list[dict], dict[str, str]]:
    """Run the tasks (in worker processes when workers > 1); record each result in preprocess.json."""
    from tqdm import tqdm

    results, failures = [], {}

    def record(task: SequenceTask, result: dict | None, error: BaseException | None) -> None:
        key = f"{task.split}/{task.name}"
        if error is not None:
            failures[key] = f"{type(error).__name__}: {error}"
            return
        results.append(result)
        if result["status"] == "empty":
            if key not in info["empty_sequences"]:
                info["empty_sequences"].append(key)
        else:
            info["sequences"][key] = {k: v for k, v in result.items() if k not in ("split", "name", "status")}
        _write_json(dst / PREPROCESS_JSON, info)

    bar = tqdm(total=len(tasks), desc="preprocess", unit="seq", disable=not progress)
    try:
        if workers <= 1 or len(tasks) <= 1:
            for task in tasks:
                try:
                    record(task, process_sequence(task), None)
                except (OSError, ValueError) as err:
                    record(task, None, err)
                bar.update()
        else:
            with ProcessPoolExecutor(max_workers=min(workers, len(tasks)),
                                     mp_context=get_context("spawn")) as pool:
                futures = {pool.submit(process_sequence, task): task for task in tasks}
                for future in as_completed(futures):
                    err = future.exception()
                    if err is not None and not isinstance(err, (OSError, ValueError)):
                        raise err
                    record(futures[future], None if err else future.result(), err)
                    bar.update()
    finally:
        bar.close()
    return results, failures


def _summarize(found, results: list[dict], skipped, settings: dict, seconds: float) -> dict:
    done = [r for r in results if r["status"] == "done"]
    dropped = dict.fromkeys(DROP_REASONS, 0)
    for r in results:
        for k, v in r["labels_dropped"].items():
            dropped[k] += v
    return {
        "sequences": len(found),
        "done": len(done),
        "skipped": len(skipped),
        "empty": sum(r["status"] == "empty" for r in results),
        "label_frames": sum(r["label_frames"] for r in done),
        "reprs": sum(r["reprs"] for r in done),
        "events": sum(r["events"] for r in done),
        "labels_kept": sum(r["labels_kept"] for r in results),
        "labels_dropped": dropped,
        "labels_thinned": sum(r["labels_thinned"] for r in results),
        "events_out_of_range": sum(r["events_out_of_range"] for r in done),
        "seconds": round(seconds, 3),
        "downsample": settings["downsample"],
        "repr_hw": settings["repr_hw"],
        "representation": settings["representation"],
    }


def _counts_from_files(seq_dir: Path, repr_name: str) -> dict:
    """Counts of a finished sequence whose result was not recorded (run killed right after it)."""
    repr_dir = seq_dir / REPR_DIR / repr_name
    with np.load(seq_dir / LABELS_DIR / "labels.npz") as data:
        kept = int(data["labels"].shape[0])
        frames = int(data["objframe_idx_2_label_idx"].shape[0])
    return {"reprs": int(np.load(repr_dir / "timestamps_us.npy").shape[0]), "label_frames": frames,
            "labels_kept": kept}


# ---- one sequence -----------------------------------------------------------------------------
def process_sequence(task: SequenceTask) -> dict:
    """Preprocess one sequence into ``<out_dir>.tmp`` and rename it to ``<out_dir>`` when complete.

    Returns:
        counts: ``status`` ("done" or "empty"), ``label_frames``, ``label_frames_source``,
        ``reprs``, ``events``, ``labels_kept``, ``labels_dropped`` {reason: n}, ``labels_thinned``,
        ``events_out_of_range``, ``duration_s``, ``seconds``.
    """
    t0 = time.perf_counter()
    out_dir = Path(task.out_dir)
    tmp_dir = out_dir.with_name(out_dir.name + ".tmp")
    height, width = task.source_hw
    boxes = load_labels(task.bbox_path)
    kept, dropped = filter_boxes(boxes, height, width, train=task.split == "train",
                                 num_classes=task.num_classes, min_side_px=task.min_box_side_px)
    t_origin_us = _events_origin_us(task)
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
        os.rename(tmp_dir, out_dir)
    except BaseException:
        shutil.rmtree(tmp_dir, ignore_errors=True)
        raise
    result.update(status="done", label_frames=int(frames.t_us.size), reprs=int(repr_t_us.size),
                  events=n_events, labels_kept=int(labels.size),
                  labels_thinned=int(kept.size - labels.size), events_out_of_range=n_out,
                  duration_s=round((int(repr_t_us[-1]) - int(repr_t_us[0]) + task.window_us) / 1e6, 6),
                  seconds=round(time.perf_counter() - t0, 3))
    return result


def representation_timestamps(frame_t_us: np.ndarray, steps_between: np.ndarray, window_us: int,
                              t_origin_us: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """End times of the representation windows, and the window index of each label frame.

    Args:
        frame_t_us: (F,) kept label frame times, increasing.
        steps_between: (F-1,) windows between consecutive label frames.
        window_us: window step before the first label frame, microseconds.
        t_origin_us: recording start; windows before the first frame end after it.

    Returns:
        (repr_t_us (N,) int64 end times, frame_to_repr (F,) int64 with
         ``repr_t_us[frame_to_repr] == frame_t_us``).
    """
    f0 = int(frame_t_us[0])
    # Step back from the first frame; drop the earliest (partial) window and f0 itself (added below).
    ends = list(reversed(range(f0, t_origin_us, -window_us)))[1:-1]
    for i, (n, a, b) in enumerate(zip(steps_between, frame_t_us[:-1], frame_t_us[1:])):
        edges = np.asarray(np.linspace(a, b, int(n) + 1), dtype=np.int64).tolist()
        ends.extend(edges if i == len(steps_between) - 1 else edges[:-1])
    if len(frame_t_us) == 1:
        ends.append(f0)
    repr_t_us = np.asarray(ends, dtype=np.int64)
    frame_to_repr = np.searchsorted(repr_t_us, frame_t_us, side="left").astype(np.int64)
    if not np.array_equal(repr_t_us[frame_to_repr], frame_t_us):
        raise AssertionError("a label frame time is not the end of a representation window")
    return repr_t_us, frame_to_repr


def write_representations(task: SequenceTask, out_file: Path, repr_t_us: np.ndarray) -> tuple[int, int]:
    """Build and write one representation per window end time.

    Returns:
        (events represented, summed over windows; events dropped for lying outside the sensor).
    """
    import hdf5plugin
    import h5py

    from evdet.events import OutOfRangeEventsWarning, build_representation

    height, width = task.source_hw
    compression = hdf5plugin.Blosc(cname="zstd", clevel=1, shuffle=hdf5plugin.Blosc.SHUFFLE)
    # Only the binned representations take nbins (time surface and event frame have no bins).
    params = {"nbins": task.nbins} if task.representation_kind in _BINNED else {}
    n_events = 0
    with warnings.catch_warnings(record=True) as caught, open_source(task) as source, \
            h5py.File(out_file, "w") as fh:
        warnings.simplefilter("always", OutOfRangeEventsWarning)
        windows = EventWindows(source.read, task.window_us, chunk_us=source.chunk_us)
        dataset = None
        for i, t_end in enumerate(repr_t_us):
            ev = windows.window(int(t_end))
            n_events += int(ev.size)
            if task.representation_kind == "time_surface":
                params["t_ref_us"] = int(t_end)      # decay measured from the window end
            rep = build_representation(task.representation_kind, ev, height, width,
                                       downsample=task.downsample, **params)
            if dataset is None:
                dataset = fh.create_dataset("data", shape=(len(repr_t_us), *rep.shape), dtype=rep.dtype,
                                            chunks=(1, *rep.shape), maxshape=(None, *rep.shape),
                                            **compression)
            dataset[i] = rep
    n_out = _count_dropped(caught)
    for w in caught:        # pass on every other warning unchanged
        if not issubclass(w.category, OutOfRangeEventsWarning):
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    if n_out:
        warnings.warn(f"{task.events_path}: dropped {n_out} events outside the {width}x{height} sensor",
                      OutOfRangeEventsWarning, stacklevel=2)
    return n_events, n_out


class EventWindows:
    """Events of consecutive windows ``[t_end - window_us, t_end]`` from a half-open time reader.

    Reads the source in blocks of ``chunk_us`` and keeps only the blocks later windows can still
    need, so a recording is never loaded whole. A window inside one block is a view of it; only
    windows that straddle two blocks are copied. Window end times must not decrease.

    Args:
        read: ``read(t_start_us, t_end_us)`` -> events with ``t_start_us <= t < t_end_us``.
        window_us: window length, microseconds.
        chunk_us: duration of one block read from the source.
    """

    def __init__(self, read, window_us: int, chunk_us: int = _CHUNK_US):
        self._read = read
        self.window_us = int(window_us)
        self.chunk_us = max(int(chunk_us), self.window_us)
        # Blocks in time order: (events, contiguous t, t_start_us, t_stop_us), half-open in time.
        self._blocks: list[tuple[np.ndarray, np.ndarray, int, int]] = []
        self._read_until_us: int | None = None     # every event with t < this has been read
        self._last_end_us: int | None = None

    def window(self, t_end_us: int) -> np.ndarray:
        """Events with ``t_end_us - window_us <= t <= t_end_us`` (may be a view; do not modify)."""
        from evdet.events.types import empty_events

        if self._last_end_us is not None and t_end_us < self._last_end_us:
            raise ValueError(f"window ends must not decrease ({t_end_us} after {self._last_end_us})")
        self._last_end_us = t_end_us
        lo, hi = t_end_us - self.window_us, t_end_us + 1        # half-open [lo, hi)
        if self._read_until_us is None or lo >= self._read_until_us:
            self._blocks, self._read_until_us = [], lo           # skip the gap without reading it
        self._blocks = [b for b in self._blocks if b[3] > lo]   # later windows start later
        while self._read_until_us < hi:
            stop = max(self._read_until_us + self.chunk_us, hi)
            ev = self._read(self._read_until_us, stop)
            self._blocks.append((ev, np.ascontiguousarray(ev["t"]), self._read_until_us, stop))
            self._read_until_us = stop
        pieces = []
        for ev, t, start_us, stop_us in self._blocks:
            if start_us >= hi:
                break
            i = int(np.searchsorted(t, lo, side="left")) if start_us < lo else 0
            j = int(np.searchsorted(t, hi, side="left")) if stop_us > hi else t.size
            if j > i:
                pieces.append(ev[i:j])
        if not pieces:
            return empty_events()
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)


class EventSource:
    """Half-open time-window reader over any recording format (context manager).

    HDF5 windows are found by binary search, DAT and NPY windows in a memory map. RAW (EVT) files
    have no index and every read decodes from the start, so they are read in longer blocks
    (``chunk_us``) to limit the repeated decoding, at the cost of memory.
    """

    def __init__(self, path: str, height: int, width: int):
        from evdet.events import H5EventReader, recording_format

        self.path, self.height, self.width = path, height, width
        fmt = recording_format(path)
        self._h5 = H5EventReader(path, height=height, width=width) if fmt == "h5" else None
        self.chunk_us = _RAW_CHUNK_US if fmt == "raw" else _CHUNK_US

    def read(self, t_start_us: int, t_end_us: int) -> np.ndarray:
        if self._h5 is not None:
            return self._h5.read(t_start_us, t_end_us)
        from evdet.events import read_events

        return read_events(self.path, t_start_us, t_end_us, height=self.height, width=self.width)

    def first_time_us(self) -> int | None:
        if self._h5 is not None:
            return self._h5.t_first_us
        return None

    def __enter__(self) -> "EventSource":
        return self

    def __exit__(self, *exc) -> None:
        if self._h5 is not None:
            self._h5.close()


def open_source(task: SequenceTask) -> EventSource:
    return EventSource(task.events_path, *task.source_hw)


def _events_origin_us(task: SequenceTask) -> int:
    """Where the windows before the first label frame may start: 0 as the reference, except for
    recordings whose clock starts at or after 1 s (their first event time; avoids long runs of
    empty windows, and the first label frame is then the first at or after origin + 100 ms)."""
    with open_source(task) as source:
        t_first = source.first_time_us()
    return int(t_first) if t_first is not None and t_first >= _LATE_START_US else 0


def _count_dropped(caught) -> int:
    """Events dropped as out of range, summed from the readers' warnings ("dropped N of M")."""
    import re

    from evdet.events import OutOfRangeEventsWarning

    total = 0
    for w in caught:
        if not issubclass(w.category, OutOfRangeEventsWarning):
            continue
        match = re.search(r"dropped (\d+) of", str(w.message))
        if match:
            total += int(match.group(1))
    return total


__all__ = ["preprocess_dataset", "process_sequence", "discover_sequences", "representation_timestamps",
           "EventWindows", "EventSource", "SequenceTask", "PreprocessError"]
