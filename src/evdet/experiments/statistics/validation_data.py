"""The saved validation data of a seed run (``validation/detections.npz``): write, read, cut into
resampling units, evaluate again."""

from __future__ import annotations

import io
import json
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from evdet.experiments.statistics.difference import IntervalError
from evdet.utils.atomic import write_bytes_atomic

MIN_SEQUENCES = 10
BLOCK_FRAMES = 10
DETECTIONS_FILE = "detections.npz"   # inside <run dir>/validation/


def save_validation_detections(path: Path, names: Sequence[str], gts: Sequence[np.ndarray],
                               dts: Sequence[np.ndarray], eval_kwargs: dict) -> Path:
    """Write one validation's per-sequence ground truth and detections (BBOX arrays) atomically.

    Layout (npz, no pickles): ``meta`` (JSON text: sequence names, step, and the keyword arguments
    of ``evaluate`` other than the protocol), ``gt_<i>`` and ``dt_<i>`` for sequence ``i``.
    """
    buf = io.BytesIO()
    arrays = {"meta": np.array(json.dumps({"sequences": list(names), "evaluate": eval_kwargs}))}
    for i, (g, d) in enumerate(zip(gts, dts)):
        arrays[f"gt_{i}"], arrays[f"dt_{i}"] = np.asarray(g), np.asarray(d)
    np.savez_compressed(buf, **arrays)
    return write_bytes_atomic(path, buf.getvalue())


@dataclass(frozen=True)
class ValidationData:
    """What ``save_validation_detections`` wrote."""

    names: tuple[str, ...]
    gts: tuple[np.ndarray, ...]
    dts: tuple[np.ndarray, ...]
    eval_kwargs: dict


def load_validation_detections(path: Path) -> ValidationData:
    """Read a ``detections.npz``; errors (truncated, a plain array, missing or malformed entries) name the file."""
    import zipfile

    try:
        loaded = np.load(path, allow_pickle=False)
        if not isinstance(loaded, np.lib.npyio.NpzFile):
            raise ValueError(f"a plain {type(loaded).__name__}, not an .npz archive of evdet's detections")
        with loaded as z:
            meta = json.loads(str(z["meta"]))
            n = len(meta["sequences"])
            gts = tuple(z[f"gt_{i}"] for i in range(n))
            dts = tuple(z[f"dt_{i}"] for i in range(n))
        return ValidationData(tuple(meta["sequences"]), gts, dts, dict(meta["evaluate"]))
    except (OSError, KeyError, ValueError, TypeError, EOFError, zipfile.BadZipFile) as err:
        what = f"missing entry {err}" if isinstance(err, KeyError) else str(err) or type(err).__name__
        raise IntervalError(f"{path}: cannot read saved validation detections ({what})") from None


def evaluation_units(data: ValidationData, time_tolerance_us: int, *, min_sequences: int = MIN_SEQUENCES,
                     block_frames: int = BLOCK_FRAMES) -> tuple[list[np.ndarray], list[np.ndarray], str]:
    """Split the validation data into resampling units: (unit GT arrays, unit detection arrays, kind).

    Kind ``sequences``: one unit per sequence (when there are at least ``min_sequences``). Kind
    ``blocks``: each sequence cut into blocks of ``block_frames`` consecutive GT timestamps; a block
    holds the GT of its timestamps and the detections within the matching tolerance of them, so
    evaluating all blocks gives the same images (and metrics) as evaluating the sequences.
    """
    if len(data.names) >= min_sequences:
        return list(data.gts), list(data.dts), "sequences"
    unit_gts, unit_dts = [], []
    for gt, dt in zip(data.gts, data.dts):
        gt = gt[np.argsort(gt["t"], kind="stable")]
        dt = dt[np.argsort(dt["t"], kind="stable")]
        ts = np.unique(gt["t"])
        for k in range(0, len(ts), block_frames):
            first, last = ts[k], ts[min(k + block_frames, len(ts)) - 1]
            g_lo = np.searchsorted(gt["t"], first, side="left")
            g_hi = np.searchsorted(gt["t"], last, side="right")
            d_lo = np.searchsorted(dt["t"], first - time_tolerance_us, side="left")
            d_hi = np.searchsorted(dt["t"], last + time_tolerance_us, side="right")
            unit_gts.append(gt[g_lo:g_hi])
            unit_dts.append(dt[d_lo:d_hi])
    return unit_gts, unit_dts, "blocks"


def evaluate_saved(gts: Sequence[np.ndarray], dts: Sequence[np.ndarray], protocol: str, eval_kwargs: dict) -> dict:
    """``evaluate(...).to_dict()`` of saved ground truth and detections with the saved keyword arguments."""
    from evdet.data.classes import ClassMap
    from evdet.evaluation import evaluate

    kwargs = dict(eval_kwargs)
    kwargs["class_names"] = ClassMap(tuple(kwargs["class_names"]),
                                     {g: tuple(m) for g, m in (kwargs.pop("class_groups", None) or {}).items()})
    if kwargs.get("source_hw") is not None:
        kwargs["source_hw"] = tuple(kwargs["source_hw"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return evaluate(list(gts), list(dts), protocol=protocol, **kwargs).to_dict()
