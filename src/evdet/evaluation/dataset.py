"""Evaluation on a preprocessed dataset: the one ground-truth path and the one evaluation setup.

Validation inside training (``EvaluationCallback.for_dataset``) and ``evaluate_checkpoint`` both
read ground truth with ``load_ground_truth`` (the label frames on disk, scaled to the
representation as the reference loader does, with the label frames' own timestamps) and both
evaluate through ``EvalSetup.evaluate``, so equal predictions give equal fingerprints and numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Collection, Mapping, Optional, Sequence, Union

import numpy as np

from evdet.data.classes import ClassMap, class_merge_ids, load_class_map, merge_box_classes
from evdet.data.labels import BBOX_DTYPE
from evdet.evaluation.api import evaluate
from evdet.evaluation.config import EvalConfig
from evdet.evaluation.protocols import get_protocol
from evdet.evaluation.result import EvalResult


@dataclass(frozen=True)
class SequenceTruth:
    """Ground truth of one sequence.

    Attributes:
        boxes: (K,) BBOX array, every label frame in frame order, representation pixels, ``t`` = the
            label frame's timestamp.
        repr_t_us: (K,) end time of the representation each row's label frame is attached to (the
            time at which a stream prediction for that frame is made).
    """

    boxes: np.ndarray
    repr_t_us: np.ndarray

    def at(self, repr_t_us: Optional[Collection[int]] = None) -> np.ndarray:
        """The rows whose label frame was predicted at one of ``repr_t_us`` (None: all rows)."""
        if repr_t_us is None:
            return self.boxes
        return self.boxes[np.isin(self.repr_t_us, np.fromiter(repr_t_us, dtype=np.int64))]


def load_ground_truth(pre_root: str | Path, split: str, representation: str,
                      names: Optional[Sequence[str]] = None) -> dict[str, SequenceTruth]:
    """Ground truth of every sequence of a split (or of ``names``), by sequence name.

    Raises:
        FileNotFoundError: no sequence in the split, or a named sequence is missing.
    """
    from evdet.data.preprocessed import PreprocessedSequence, list_sequences

    paths = {Path(p).name: Path(p) for p in list_sequences(Path(pre_root), split)}
    if not paths:
        raise FileNotFoundError(f"{Path(pre_root) / split}: no preprocessed sequences found")
    wanted = sorted(paths) if names is None else list(names)
    missing = [n for n in wanted if n not in paths]
    if missing:
        raise FileNotFoundError(f"{Path(pre_root) / split}: no sequence {missing[0]!r}")
    out = {}
    for name in wanted:
        seq = PreprocessedSequence(paths[name], representation=representation)
        frames = [seq.label_frame(i, in_repr_pixels=True) for i in range(seq.num_label_frames)]
        repr_t = [np.full(len(f), seq.repr_timestamps_us[seq.label_repr_idx[i]], dtype=np.int64)
                  for i, f in enumerate(frames)]
        boxes = np.concatenate(frames) if frames else np.zeros(0, dtype=BBOX_DTYPE)
        out[name] = SequenceTruth(boxes, np.concatenate(repr_t) if repr_t else np.zeros(0, np.int64))
    return out


@dataclass(frozen=True)
class EvalSetup:
    """Everything besides the boxes that decides the numbers (and so the fingerprint) of an evaluation.

    Attributes:
        class_map: classes and groups.
        height, width: representation resolution of the boxes, pixels.
        source_hw: sensor resolution.
        label_rate_hz: label rate of the data (``preprocess.json``), None when unknown.
        protocols: protocol names; scoring: None (each protocol's default), "class" or "obj_x_cls".
        postprocess, conf_threshold: None (each protocol's default) or "rvt" / "clip_cap" and an obj x cls
            threshold (``evdet.evaluation.postprocessing``).
        pr_confidence, confusion_iou, groups: as in ``evdet.evaluation.evaluate``.
    """

    class_map: ClassMap
    height: int
    width: int
    source_hw: tuple[int, int]
    label_rate_hz: Optional[float]
    protocols: tuple[str, ...] = ("prophesee", "full")
    scoring: Optional[str] = None
    postprocess: Optional[str] = None
    conf_threshold: Optional[float] = None
    gt_class_ids: Optional[tuple[int, ...]] = None   # merged class of every stored GT class id (etram3), None: as is
    pr_confidence: float = 0.5
    confusion_iou: float = 0.5
    groups: Union[Mapping[str, Sequence[str]], Sequence[str], None] = None

    def __post_init__(self) -> None:
        for p in self.protocols:
            get_protocol(p, self.scoring, self.postprocess, self.conf_threshold)  # fail before any (slow) work

    @classmethod
    def from_dataset(cls, pre_root: str | Path, cfg: EvalConfig,
                     class_map: ClassMap | str = "auto") -> "EvalSetup":
        """Geometry and label rate from ``preprocess.json``, classes from the dataset (or the given map)."""
        from evdet.data.preprocessed import read_preprocess_info

        info = read_preprocess_info(pre_root)
        cmap = class_map if isinstance(class_map, ClassMap) else load_class_map(pre_root, class_map)
        merge = class_merge_ids(class_map, load_class_map(Path(pre_root)))
        rate = info.get("label_rate_hz")
        return cls(cmap, int(info["repr_hw"][0]), int(info["repr_hw"][1]),
                   (int(info["source_hw"][0]), int(info["source_hw"][1])), None if rate is None else float(rate),
                   protocols=tuple(cfg.protocols), scoring=cfg.scoring, postprocess=cfg.postprocess,
                   conf_threshold=cfg.conf_threshold, gt_class_ids=merge, pr_confidence=cfg.pr_confidence,
                   confusion_iou=cfg.confusion_iou, groups=tuple(cfg.groups) or None)

    def evaluate(self, gt_list: Sequence[np.ndarray], dt_list: Sequence[np.ndarray]) -> dict[str, EvalResult]:
        """Protocol name -> EvalResult for these sequences (see ``evdet.evaluation.evaluate``)."""
        gt_list = [merge_box_classes(g, self.gt_class_ids) for g in gt_list]
        return {p: evaluate(gt_list, dt_list, height=self.height, width=self.width, class_names=self.class_map,
                            protocol=p, source_hw=self.source_hw, groups=self.groups,
                            pr_confidence=self.pr_confidence, label_rate_hz=self.label_rate_hz,
                            confusion_iou=self.confusion_iou, scoring=self.scoring,
                            postprocess=self.postprocess, conf_threshold=self.conf_threshold)
                for p in self.protocols}


def split_inputs(truth: Mapping[str, SequenceTruth], predictions: Mapping[str, np.ndarray],
                 predicted_at: Optional[Mapping[str, Collection[int]]] = None
                 ) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    """(names, gt_list, dt_list): per sequence, the ground truth of the frames that were predicted.

    Args:
        truth: ``load_ground_truth`` output.
        predictions: sequence name -> BBOX / DETECTION array (representation pixels).
        predicted_at: sequence name -> representation end times at which predictions were made;
            None: every label frame of every sequence in ``truth``.
    Raises:
        ValueError: a predicted sequence that has no ground truth.
    """
    names = sorted(truth) if predicted_at is None else sorted(predicted_at)
    unknown = [n for n in names if n not in truth]
    if unknown:
        raise ValueError(f"predictions for sequence {unknown[0]!r}, which has no ground truth in the split")
    gts = [truth[n].at(None if predicted_at is None else predicted_at[n]) for n in names]
    empty = np.zeros(0, dtype=BBOX_DTYPE)
    return names, gts, [np.asarray(predictions.get(n, empty)) for n in names]


def evaluate_split(setup: EvalSetup, truth: Mapping[str, SequenceTruth], predictions: Mapping[str, np.ndarray],
                   predicted_at: Optional[Mapping[str, Collection[int]]] = None) -> dict[str, EvalResult]:
    """Evaluate predictions per sequence against the ground truth of the predicted frames (``split_inputs``)."""
    _, gts, dts = split_inputs(truth, predictions, predicted_at)
    return setup.evaluate(gts, dts)
