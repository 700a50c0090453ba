"""Detections of other detectors (Ultralytics YOLO text files, Prophesee ``_bbox.npy``) evaluated
under evdet's named protocols, and optionally kept as an experiment record beside trained runs.

Inputs::

    yolo:      <dets>/<seq>_t<t_us>.txt     one per image exported by ``export_yolo`` (Ultralytics
               (or <dets>/labels/...)       ``predict save_txt=True save_conf=True``); lines
                                            ``class cx cy w h conf`` normalised; no file = no boxes
    prophesee: <dets>/<seq>_bbox.npy        (or <dets>/<split>/<seq>_bbox.npy) BBOX_DTYPE boxes,
                                            score in class_confidence, sensor pixels by default

Ground truth, geometry and fingerprints are those of ``evaluate_checkpoint`` (representation
pixels, ``evdet.evaluation.dataset``), so the numbers rank beside trained runs.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from evdet.data.labels import empty_boxes, load_labels
from evdet.interop.yolo import frame_stem, parse_stem, read_prediction_file

DetectionFormat = Literal["yolo", "prophesee"]
PixelSpace = Literal["source", "repr"]
PROPHESEE_SUFFIX = "_bbox.npy"


def _yolo_folder(dets: Path) -> Path:
    """The folder holding the txt files: ``dets`` or its ``labels`` subfolder (Ultralytics' run layout)."""
    if not any(dets.glob("*.txt")) and (dets / "labels").is_dir():
        return dets / "labels"
    return dets


def read_yolo_split(dets: str | Path, truth: dict, *, height: int, width: int, num_classes: int
                    ) -> tuple[dict[str, np.ndarray], dict]:
    """YOLO prediction files of one split: ({sequence: BBOX array in repr pixels}, {"files", "ignored"}).

    Args:
        truth: ``evdet.evaluation.dataset.load_ground_truth`` output (gives each frame's time).
    Raises:
        YoloFormatError: a bad line (file and line named).
        FileNotFoundError: no such folder, or no file in it for any labelled frame.
    """
    folder = _yolo_folder(Path(dets))
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: no such folder")
    files = {p.stem: p for p in folder.glob("*.txt")}
    used, out = 0, {}
    for seq, gt in truth.items():
        boxes = []
        for t_us in np.unique(gt.boxes["t"]):
            path = files.get(frame_stem(seq, int(t_us)))
            if path is not None:
                used += 1
                boxes.append(read_prediction_file(path, t_us=int(t_us), height=height, width=width,
                                                  num_classes=num_classes))
        out[seq] = np.concatenate(boxes) if boxes else empty_boxes(0)
    ignored = sorted(s for s in files if parse_stem(s) is None or parse_stem(s)[0] not in truth)
    if not used:   # scoring nothing would report AP 0 as if a detector had run
        raise FileNotFoundError(f"{folder}: no prediction file for any labelled frame of the split "
                                f"({len(files)} .txt files; expected <sequence>_t<t_us>.txt, e.g. "
                                f"{frame_stem(*_first_frame(truth))}.txt)")
    return out, {"files": used, "ignored": len(ignored), "folder": str(folder)}


def _first_frame(truth: dict) -> tuple[str, int]:
    """(sequence, time) of the first labelled frame, for examples of file names."""
    seq = sorted(truth)[0]
    return seq, int(np.unique(truth[seq].boxes["t"])[0]) if len(truth[seq].boxes) else 0


def read_prophesee_split(dets: str | Path, split: str, names: Sequence[str], *, scale: float, num_classes: int
                         ) -> tuple[dict[str, np.ndarray], dict]:
    """``<seq>_bbox.npy`` detections of the named sequences, multiplied by ``scale`` into repr pixels.

    Raises:
        FileNotFoundError: a sequence's file is missing. ValueError: a bad file or class id (named).
    """
    dets = Path(dets)
    out = {}
    for seq in names:
        candidates = [dets / f"{seq}{PROPHESEE_SUFFIX}", dets / split / f"{seq}{PROPHESEE_SUFFIX}"]
        path = next((p for p in candidates if p.is_file()), None)
        if path is None:
            raise FileNotFoundError(f"{candidates[0]}: no such file (nor under {split}/) for sequence {seq!r}")
        boxes = load_labels(path)
        bad = np.flatnonzero(boxes["class_id"] >= num_classes)
        if bad.size:
            raise ValueError(f"{path}: row {bad[0]}: class_id {boxes['class_id'][bad[0]]} is not one of the "
                             f"{num_classes} class ids")
        conf = boxes["class_confidence"]
        bad = np.flatnonzero(~((conf >= 0) & (conf <= 1)))
        if bad.size:
            raise ValueError(f"{path}: row {bad[0]}: class_confidence {conf[bad[0]]} is outside [0, 1]")
        for f in ("x", "y", "w", "h"):
            boxes[f] = boxes[f] * scale
        out[seq] = boxes
    return out, {"files": len(names), "ignored": 0, "folder": str(dets)}


def evaluate_external(pre_root: str | Path, dets: str | Path, fmt: DetectionFormat, split: str = "val", *,
                      protocols: Sequence[str] = ("prophesee", "full"), pixels: PixelSpace = "source",
                      pr_confidence: float = 0.5) -> tuple[dict, dict]:
    """Evaluate another detector's detections on a split of a preprocessed dataset.

    Args:
        pre_root: preprocessed dataset root (its label frames are the ground truth).
        dets: detection folder (module docstring).
        fmt: "yolo" or "prophesee".
        pixels: prophesee boxes in sensor ("source") or representation ("repr") pixels.
    Returns:
        ({protocol: EvalResult}, info) with info = {"sequences", "files", "ignored", "folder",
        "format", "pixels", "split", "gt", "dt", "eval_kwargs"}; gt / dt are the evaluated lists.
    Raises:
        FileNotFoundError, ValueError (incl. YoloFormatError): naming the file (and line).
    """
    from evdet.data.preprocessed import read_preprocess_info
    from evdet.evaluation.config import EvalConfig
    from evdet.evaluation.dataset import EvalSetup, load_ground_truth, split_inputs

    if fmt not in ("yolo", "prophesee"):
        raise ValueError(f"format must be 'yolo' or 'prophesee', got {fmt!r}")
    if pixels not in ("source", "repr"):
        raise ValueError(f"pixels must be 'source' or 'repr', got {pixels!r}")
    info = read_preprocess_info(pre_root)
    setup = EvalSetup.from_dataset(pre_root, EvalConfig(protocols=tuple(protocols), pr_confidence=pr_confidence))
    truth = load_ground_truth(pre_root, split, info["representation"])
    n_cls = setup.class_map.num_classes
    if fmt == "yolo":
        preds, meta = read_yolo_split(dets, truth, height=setup.height, width=setup.width, num_classes=n_cls)
    else:
        scale = setup.width / setup.source_hw[1] if pixels == "source" else 1.0
        preds, meta = read_prophesee_split(dets, split, sorted(truth), scale=scale, num_classes=n_cls)
    names, gts, dts = split_inputs(truth, preds)
    results = setup.evaluate(gts, dts)
    cmap = setup.class_map
    eval_kwargs = {"height": setup.height, "width": setup.width, "class_names": list(cmap.names),
                   "class_groups": {g: list(m) for g, m in cmap.groups.items()},
                   "source_hw": list(setup.source_hw), "groups": None, "pr_confidence": setup.pr_confidence,
                   "confusion_iou": setup.confusion_iou, "label_rate_hz": setup.label_rate_hz,
                   "scoring": setup.scoring}
    return results, {**meta, "sequences": names, "format": fmt, "pixels": pixels, "split": split,
                     "gt": gts, "dt": dts, "eval_kwargs": eval_kwargs}


def save_external_record(root: str | Path, exp_id: str, results: dict, info: dict, *, data: str | Path,
                         dets: str | Path, command: str = "", note: str = "") -> Path:
    """Keep an external evaluation as a completed experiment record (``exp rank`` / ``compare`` read it).

    The record holds ``config.yaml`` (``external``: detector files, format, data, split),
    ``results.json`` (the protocols' results, ``external`` block), ``validation/detections.npz``
    (for bootstrap intervals) and a ``hypothesis.md`` stating what was evaluated.

    Raises:
        RecordError: invalid id or the record exists.
    """
    import yaml

    from evdet.experiments.records.hypotheses import hypothesis_document
    from evdet.experiments.statistics.intervals import DETECTIONS_FILE, save_validation_detections
    from evdet.experiments.records.record import (
        atomic_write_json,
        create_experiment,
        read_json,
        write_status,
    )

    external = {"format": info["format"], "detections": str(Path(dets).resolve()), "pixels": info["pixels"],
                "split": info["split"], "files": info["files"]}
    config = {"external": external, "data": {"root": str(Path(data).resolve())},
              "eval": {"protocols": list(results)}}
    text = hypothesis_document(
        exp_id, question=f"How does an external detector ({info['format']} files) score on "
                         f"{Path(data).name}/{info['split']} under evdet's protocols?",
        hypothesis=note or "External baseline, evaluated as is.")
    class_names = tuple(info["eval_kwargs"]["class_names"])
    exp_dir = create_experiment(Path(root), exp_id, yaml.safe_dump(config, sort_keys=False), text,
                                command=command, class_names=class_names)
    save_validation_detections(exp_dir / "validation" / DETECTIONS_FILE, info["sequences"], info["gt"],
                               info["dt"], info["eval_kwargs"])
    doc = read_json(exp_dir / "results.json")
    doc.update(status="completed", protocols={p: r.to_dict() for p, r in results.items()}, external=external)
    atomic_write_json(exp_dir / "results.json", doc)
    write_status(exp_dir, "completed", f"external {info['format']} detections evaluated")
    return exp_dir
