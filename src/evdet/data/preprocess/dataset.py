"""Preprocessing: raw recordings + box labels -> the RVT-compatible preprocessed layout.

Input: see ``evdet.data.preprocess.inputs``. Output (see ``evdet.data.preprocessed`` for the reader)::

    <dst>/dataset.yaml, <dst>/preprocess.json
    <dst>/<split>/<seq>/labels_v2/{labels.npz, timestamps_us.npy}
    <dst>/<split>/<seq>/event_representations_v2/<repr_name>/
        event_representations[_ds2_nearest|_ds2_sum].h5, objframe_idx_2_repr_idx.npy, timestamps_us.npy
    <dst>/<split>/<seq>/manifest.json

The modules, one concern each: ``preprocess_inputs`` (the raw dataset), ``preprocess_windows``
(window times and their events), ``preprocess_sequence`` (one sequence's files),
``preprocess_manifest`` (when a sequence counts as done), ``preprocess_workers`` (the output lock
and worker processes); this one runs them and keeps ``preprocess.json``.

Semantics follow the reference ``scripts/genx/preprocess_dataset.py``: boxes are filtered
(``evdet.data.label_filter``) and label frames thinned to about 10 Hz, labels stay at SOURCE
resolution, windows end at every kept label time (``preprocess_windows``), and a sequence with no
box left after filtering is not written (the reference deletes it).

Deliberate differences from the reference: the label rate is measured for any source rate (the
reference accepts only 30/60 Hz for Gen4; for Gen1 it uses a fixed 250 ms label grid with two
windows per grid step, where evdet steps by ``window_ms`` everywhere); class ids outside the
dataset's class map are dropped (with the 3-class Gen4 map this is the reference's Gen4 class
filter); decreasing event times are an error naming the file (the reference silently flattens
them); recordings whose clock starts at or after 1 s get windows from their first event on, not
from t = 0; the events are never loaded whole (the reference loads every timestamp of a recording).

Resuming: a killed run (or one whose main process alone was killed: its workers die with it) is
resumed by running it again. Finished sequences are skipped only if their manifest verifies
(``preprocess_manifest.verify_sequence``; folders from before manifests only after a full check,
``adopt_sequence``); leftover ``.tmp`` folders and folders that fail the check are redone.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path
from typing import Literal

from evdet.data.classes import DATASET_YAML
from evdet.data.label_filter import DROP_REASONS, MIN_SIDE_PX, prophesee_label_filter
from evdet.data.preprocess.inputs import (
    SPLITS,
    PreprocessError,
    common_sensor_size,
    copy_dataset_yaml,
    discover_sequences,
    raw_class_map,
    yaml_resolution,
)
from evdet.data.preprocess.manifest import MANIFEST, IncompleteSequenceError, adopt_sequence, verify_sequence
from evdet.data.preprocess.sequence_task import TMP_SUFFIX, SequenceTask, process_sequence
from evdet.data.preprocess.windows import EventSource, EventWindows, representation_timestamps
from evdet.data.preprocess.workers import OutputLock, run_tasks
from evdet.data.preprocessed import PREPROCESS_JSON, REPR_FILES
from evdet.utils.atomic import write_text_atomic

DownsampleChoice = Literal["auto", "none", "nearest", "sum"]
_MODES = {"none": "none", "nearest": "ds2_nearest", "sum": "ds2_sum"}


def preprocess_dataset(src: str | Path, dst: str | Path, *, downsample: DownsampleChoice = "auto",
                       representation: str = "stacked_histogram", window_ms: int = 50,
                       nbins: int = 10, workers: int = 2, label_rate_hz: float = 10.0,
                       progress: bool = True, splits: tuple[str, ...] = SPLITS,
                       min_box_side_px: float = MIN_SIDE_PX,
                       label_filter: Literal["conservative", "prophesee"] = "conservative",
                       histogram_overflow: Literal["rvt", "saturate"] = "rvt") -> dict:
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
        label_filter: "conservative" (RVT's 1 Mpx rule: the side filter above) or "prophesee" (RVT's
            Gen1 rule: the Prophesee side and diagonal filter, ``label_filter.prophesee_label_filter``,
            in place of ``min_box_side_px``).
        histogram_overflow: stacked histogram counts above 255 in one cell and bin: "rvt" (RVT's uint8
            accumulation wraps them before the cutoff: 260 events store 4) or "saturate" (10, evlib's).

    Returns:
        summary dict: ``sequences``, ``done``, ``skipped`` (already finished and verified),
        ``redone`` (finished-looking folders that failed verification and were rewritten),
        ``empty`` (no label left after filtering, not written), ``label_frames``, ``reprs``,
        ``events``, ``labels_kept``, ``labels_dropped`` {reason: n}, ``labels_thinned`` (boxes of
        label frames removed by the ~10 Hz thinning), ``events_out_of_range`` (dropped events
        outside the sensor), ``seconds``, ``downsample``, ``repr_hw``, ``representation``. Counts
        cover the sequences processed in this call; ``preprocess.json`` keeps them per sequence.

    Raises:
        PreprocessError: bad layout, missing label / event file, bad labels, mixed resolutions,
            settings that differ from an earlier run into ``dst``, another run (or a survivor of
            one) writing into ``dst``, or sequences that failed.
    """
    from evdet.events import representation_name

    t0 = time.perf_counter()
    src, dst = Path(src), Path(dst)
    _check_choices(window_ms, nbins, downsample, label_filter, histogram_overflow)
    class_map = raw_class_map(src)
    found = discover_sequences(src, splits)
    source_hw = common_sensor_size(found, yaml_resolution(src))
    mode = _resolve_downsample(downsample, source_hw)
    repr_hw = (source_hw[0] // 2, source_hw[1] // 2) if mode != "none" else source_hw
    repr_name = representation_name(representation, window_ms=window_ms, nbins=nbins)
    min_diag = 0.0
    if label_filter == "prophesee":
        min_box_side_px, min_diag = prophesee_label_filter(*source_hw)
    settings = {
        "representation": repr_name, "representation_kind": representation, "downsample": mode,
        "window_ms": int(window_ms), "nbins": int(nbins), "label_rate_hz": float(label_rate_hz),
        "source_hw": list(source_hw), "repr_hw": list(repr_hw), "min_box_side_px": float(min_box_side_px),
        "min_box_diag_px": float(min_diag), "histogram_overflow": histogram_overflow,
    }
    dst.mkdir(parents=True, exist_ok=True)
    with OutputLock(dst) as lock:
        info = _start_info(dst, settings, class_map.names)
        _remove_stale_tmp(dst, splits)
        if not (dst / DATASET_YAML).is_file():
            copy_dataset_yaml(src, dst, class_map)
        return _convert(found, dst, settings, info, class_map.num_classes, workers, progress, lock, t0)


def _check_choices(window_ms: int, nbins: int, downsample: str, label_filter: str, histogram_overflow: str) -> None:
    """Refuse a non-positive window or bin count and unknown choices (one line naming the option)."""
    if window_ms <= 0 or nbins <= 0:
        raise PreprocessError(f"window_ms and nbins must be positive, got {window_ms}, {nbins}")
    if downsample not in ("auto", *_MODES):
        raise PreprocessError(f"unknown downsample {downsample!r}; expected auto, none, nearest or sum")
    if label_filter not in ("conservative", "prophesee"):
        raise PreprocessError(f"unknown label filter {label_filter!r}; expected conservative or prophesee")
    if histogram_overflow not in ("rvt", "saturate"):
        raise PreprocessError(f"unknown histogram overflow {histogram_overflow!r}; expected rvt or saturate")


def _convert(found, dst: Path, settings: dict, info: dict, num_classes: int, workers: int,
             progress: bool, lock: OutputLock, t0: float) -> dict:
    """Skip verified sequences, run the others, record the results (under the output lock)."""
    mode, repr_name = settings["downsample"], settings["representation"]
    tasks, skipped, redone = [], [], 0
    for split, name, events_path, bbox_path in found:
        out_dir = dst / split / name
        key = f"{split}/{name}"
        if out_dir.exists():
            try:
                if (out_dir / MANIFEST).exists():
                    counts = verify_sequence(out_dir, repr_name, mode)
                else:                                    # written before manifests existed
                    counts = adopt_sequence(out_dir, repr_name, mode)
            except IncompleteSequenceError:
                _discard(out_dir)
                info["sequences"].pop(key, None)
                redone += 1
            else:
                skipped.append(key)
                info["sequences"].setdefault(key, counts)
                continue
        tasks.append(SequenceTask(
            split=split, name=name, events_path=str(events_path), bbox_path=str(bbox_path),
            out_dir=str(out_dir), source_hw=tuple(settings["source_hw"]), downsample=mode,
            representation_kind=settings["representation_kind"], repr_name=repr_name,
            window_us=settings["window_ms"] * 1000, nbins=settings["nbins"],
            label_rate_hz=settings["label_rate_hz"], num_classes=num_classes,
            min_box_side_px=settings["min_box_side_px"], min_box_diag_px=settings["min_box_diag_px"],
            histogram_overflow=settings["histogram_overflow"]))

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

    run_tasks(tasks, process_sequence, workers, lock, record, progress)
    info["complete"] = not failures
    info["failed"] = failures
    _write_json(dst / PREPROCESS_JSON, info)
    if failures:
        first = next(iter(failures.items()))
        raise PreprocessError(f"{len(failures)} sequence(s) failed; first: {first[0]}: {first[1]}")
    return _summarize(found, results, len(skipped), redone, settings, time.perf_counter() - t0)


def _resolve_downsample(choice: str, source_hw: tuple[int, int]) -> str:
    if choice == "auto":
        # The reference halves Gen4 / 1 Mpx (1280x720) data with nearest-exact; smaller sensors stay.
        return "ds2_nearest" if source_hw[0] * source_hw[1] >= 720 * 1280 else "none"
    return _MODES[choice]


# settings older preprocess.json files lack, as those runs applied them (histograms saturated before 2026-12)
LEGACY = {"min_box_diag_px": 0.0, "histogram_overflow": "saturate"}


def _start_info(dst: Path, settings: dict, class_names) -> dict:
    """preprocess.json of an earlier run (checked against ``settings``), or a new one."""
    path = dst / PREPROCESS_JSON
    if path.is_file():
        try:
            old = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise PreprocessError(f"{path}: not valid JSON ({err})") from err
        changed = {k: (old.get(k, LEGACY.get(k)), v) for k, v in settings.items() if old.get(k, LEGACY.get(k)) != v}
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


def _remove_stale_tmp(dst: Path, splits: tuple[str, ...]) -> None:
    """Remove ``<seq>.tmp`` folders left by a killed run (they are redone)."""
    for split in splits:
        if (dst / split).is_dir():
            for path in (dst / split).glob(f"*{TMP_SUFFIX}"):
                if path.is_dir():
                    shutil.rmtree(path)


def _discard(seq_dir: Path) -> None:
    """Remove a sequence folder that failed verification: first renamed to a ``.tmp`` name (one
    atomic step, so a kill midway leaves only a stale ``.tmp`` folder), then deleted."""
    doomed = seq_dir.with_name(f"{seq_dir.name}.invalid{TMP_SUFFIX}")
    shutil.rmtree(doomed, ignore_errors=True)
    seq_dir.rename(doomed)
    shutil.rmtree(doomed)


def _write_json(path: Path, obj: dict) -> None:
    write_text_atomic(path, json.dumps(obj, indent=1))


def _summarize(found, results: list[dict], skipped: int, redone: int, settings: dict,
               seconds: float) -> dict:
    done = [r for r in results if r["status"] == "done"]
    dropped = dict.fromkeys(DROP_REASONS, 0)
    for r in results:
        for k, v in r["labels_dropped"].items():
            dropped[k] += v
    return {
        "sequences": len(found),
        "done": len(done),
        "skipped": skipped,
        "redone": redone,
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


__all__ = ["preprocess_dataset", "process_sequence", "discover_sequences", "representation_timestamps",
           "EventWindows", "EventSource", "SequenceTask", "PreprocessError"]
