"""Lightning callback: evaluate the validation predictions under named protocols and log the metrics.

Reads ``pl_module.val_predictions`` (seq_name -> BBOX array in representation pixels, or a list of
per-frame BBOX arrays: Lightning runs callbacks' ``on_validation_epoch_end`` before the module's, so
the module may not have concatenated them yet) and logs ``val/{protocol}/{metric}``.

Ground truth: built with ``for_dataset`` (as the experiment runner does), the callback reads it
from the preprocessed dataset with ``evaluation.dataset.load_ground_truth`` for the label frames
that this validation predicted (it records them batch by batch), exactly as ``evaluate_checkpoint``
does, and evaluates through the same ``EvalSetup``: the validation of a checkpoint and
``evdet eval`` of it give equal fingerprints and numbers. Without a dataset it falls back to the
module's ``val_ground_truth`` (the training targets). Optionally writes every result as JSON::

    <out_dir>/validation/step_<global_step>/<protocol>_metrics.json
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Sequence

import lightning as L
import numpy as np

from evdet.data.classes import ClassMap
from evdet.data.labels import BBOX_DTYPE
from evdet.evaluation.config import EvalConfig
from evdet.evaluation.dataset import EvalSetup, load_ground_truth, split_inputs
from evdet.evaluation.result import EvalResult
from evdet.evaluation.save import save_evaluation

LOGGED_METRICS = ("AP", "AP50", "AP75", "AP_S", "AP_M", "AP_L", "AP_tiny")
SMALL_GROUP = "small_road_users"


def _as_array(value) -> np.ndarray:
    """A BBOX array sorted by t from an array or a list of arrays."""
    if isinstance(value, (list, tuple)):
        value = np.concatenate(value) if len(value) else np.zeros(0, dtype=BBOX_DTYPE)
    arr = np.asarray(value)
    return arr[np.argsort(arr["t"], kind="stable")] if len(arr) else np.zeros(0, dtype=BBOX_DTYPE)


def logged_values(result: EvalResult) -> dict[str, float]:
    """``val/{protocol}/{metric}`` -> value; undefined metrics (no GT) are NaN."""
    out = {}
    for name in LOGGED_METRICS:
        if name in result.metrics:
            v = result.metrics[name]
            out[f"val/{result.protocol}/{name}"] = math.nan if v is None else float(v)
    if SMALL_GROUP in result.groups:
        v = result.groups[SMALL_GROUP]["AP"]
        out[f"val/{result.protocol}/small_AP"] = math.nan if v is None else float(v)
    return out


class EvaluationCallback(L.Callback):
    """Evaluate validation predictions at the end of every validation epoch.

    Args:
        protocols: protocol names, e.g. ("prophesee", "full").
        class_names: class names in id order, or a ClassMap (groups come from it).
        height, width: representation resolution of the boxes, pixels.
        source_hw: sensor resolution (height, width); default (height, width).
        out_dir: when set, each validation writes JSON results under ``out_dir/validation/step_N``.
        groups: class groups (see ``evaluate``).
        pr_confidence: confidence of per-class precision / recall and the confusion matrix.
        confusion_iou: IoU of the confusion matrix.
        label_rate_hz: label rate of the data (``preprocess.json``), for the fingerprint; pass it so
            that validation digests equal those of ``evaluate_checkpoint``.
        skip_sanity_check: do nothing during Lightning's sanity-check validation.
        scoring: "class" (RVT) or "obj_x_cls" (YOLOX); None: each protocol's default.
        postprocess, conf_threshold: "rvt" / "clip_cap" and its obj x cls threshold; None: each protocol's.
        gt_class_ids: merged class of every stored ground-truth class id (``data.class_map`` etram3), or None.
        data_root, split, representation: read ground truth from this preprocessed dataset (see the
            module docstring); None: use the module's ``val_ground_truth``.
    """

    def __init__(
        self,
        protocols: Sequence[str] = ("prophesee", "full"),
        *,
        class_names: Sequence[str] | ClassMap,
        height: int,
        width: int,
        source_hw: tuple[int, int] | None = None,
        out_dir: str | Path | None = None,
        groups=None,
        pr_confidence: float = 0.5,
        confusion_iou: float = 0.5,
        label_rate_hz: float | None = None,
        skip_sanity_check: bool = True,
        scoring: str | None = None,
        postprocess: str | None = None,
        conf_threshold: float | None = None,
        gt_class_ids: tuple[int, ...] | None = None,
        data_root: str | Path | None = None,
        split: str = "val",
        representation: str | None = None,
    ) -> None:
        super().__init__()
        from evdet.data.classes import ClassMap

        src_hw = (int(height), int(width)) if source_hw is None else (int(source_hw[0]), int(source_hw[1]))
        self.setup = EvalSetup(ClassMap.from_names(class_names), int(height), int(width), src_hw, label_rate_hz,
                               protocols=tuple(protocols), scoring=scoring, postprocess=postprocess,
                               conf_threshold=conf_threshold, gt_class_ids=gt_class_ids, pr_confidence=pr_confidence,
                               confusion_iou=confusion_iou, groups=groups)
        self.protocols = tuple(protocols)
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.skip_sanity_check = skip_sanity_check
        self.data_root = None if data_root is None else Path(data_root)
        self.split = split
        self.representation = representation
        self.last_results: dict[str, EvalResult] = {}
        self.last_inputs: tuple[list[str], list[np.ndarray], list[np.ndarray]] = ([], [], [])  # names, GT, dets
        self._truth = None
        self._predicted_at: dict[str, set[int]] = {}

    @classmethod
    def from_config(cls, cfg, *, class_names, height: int, width: int, source_hw=None,
                    out_dir: str | Path | None = None, label_rate_hz: float | None = None) -> "EvaluationCallback":
        """Build from an ``EvalConfig`` (protocols, pr_confidence, confusion_iou, groups; () = all groups)."""
        return cls(tuple(cfg.protocols), class_names=class_names, height=height, width=width,
                   source_hw=source_hw, out_dir=out_dir, groups=tuple(cfg.groups) or None,
                   pr_confidence=cfg.pr_confidence, confusion_iou=cfg.confusion_iou,
                   label_rate_hz=label_rate_hz, scoring=cfg.scoring, postprocess=cfg.postprocess,
                   conf_threshold=cfg.conf_threshold)

    @classmethod
    def for_dataset(cls, pre_root: str | Path, cfg: EvalConfig, *, representation: str, split: str = "val",
                    class_map: ClassMap | str = "auto", out_dir: str | Path | None = None) -> "EvaluationCallback":
        """The callback that evaluates as ``evaluate_checkpoint`` does: same setup, ground truth from disk.

        Args:
            pre_root: the preprocessed dataset validated on; representation: its folder name.
            cfg: evaluation settings of the run.
            class_map: the run's class map, or "auto" / a known map's name.
        """
        s = EvalSetup.from_dataset(pre_root, cfg, class_map)
        return cls(s.protocols, class_names=s.class_map, height=s.height, width=s.width, source_hw=s.source_hw,
                   out_dir=out_dir, groups=s.groups, pr_confidence=s.pr_confidence, confusion_iou=s.confusion_iou,
                   label_rate_hz=s.label_rate_hz, scoring=s.scoring, postprocess=s.postprocess,
                   conf_threshold=s.conf_threshold, gt_class_ids=s.gt_class_ids, data_root=pre_root, split=split,
                   representation=representation)

    def on_validation_epoch_start(self, trainer, pl_module) -> None:
        self._predicted_at = {}

    def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
        if self.data_root is None or not isinstance(batch, dict) or "label_mask" not in batch:
            return
        for b, t in batch["label_mask"].nonzero().tolist():
            self._predicted_at.setdefault(batch["seq_names"][b], set()).add(int(batch["t_us"][b, t]))

    def _gathered_predicted_at(self, trainer) -> dict[str, set[int]]:
        """The label frames predicted in this validation, over all DDP ranks."""
        import torch

        seen = self._predicted_at
        world = int(getattr(trainer, "world_size", 1) or 1) if trainer is not None else 1
        if world > 1 and torch.distributed.is_available() and torch.distributed.is_initialized():
            parts: list = [None] * world
            torch.distributed.all_gather_object(parts, seen)
            seen = {}
            for part in parts:
                for name, times in part.items():
                    seen.setdefault(name, set()).update(times)
        return seen

    def evaluate_module(self, pl_module, trainer=None) -> dict[str, EvalResult]:
        """Results per protocol for the module's current validation predictions."""
        dt_map = getattr(pl_module, "val_predictions", None)
        if self.data_root is not None:
            if dt_map is None:
                raise AttributeError(f"{type(pl_module).__name__} has no val_predictions (seq_name -> BBOX array) "
                                     "for the evaluation callback")
            if self._truth is None:
                self._truth = load_ground_truth(self.data_root, self.split, self.representation)
            self.last_inputs = split_inputs(self._truth, {n: _as_array(v) for n, v in dt_map.items()},
                                            self._gathered_predicted_at(trainer))
        else:
            gt_map = getattr(pl_module, "val_ground_truth", None)
            if gt_map is None or dt_map is None:
                raise AttributeError(f"{type(pl_module).__name__} has no val_ground_truth / val_predictions "
                                     "(seq_name -> BBOX array) for the evaluation callback")
            names = sorted(gt_map)
            self.last_inputs = (names, [_as_array(gt_map[n]) for n in names],
                                [_as_array(dt_map.get(n, [])) for n in names])
        return self.setup.evaluate(*self.last_inputs[1:])

    # the evaluation settings, as attributes (read by the experiment runner)
    @property
    def class_names(self) -> ClassMap:
        return self.setup.class_map

    height = property(lambda self: self.setup.height)
    width = property(lambda self: self.setup.width)
    source_hw = property(lambda self: self.setup.source_hw)
    groups = property(lambda self: self.setup.groups)
    pr_confidence = property(lambda self: self.setup.pr_confidence)
    confusion_iou = property(lambda self: self.setup.confusion_iou)
    label_rate_hz = property(lambda self: self.setup.label_rate_hz)
    scoring = property(lambda self: self.setup.scoring)

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if self.skip_sanity_check and getattr(trainer, "sanity_checking", False):
            return
        self.last_results = self.evaluate_module(pl_module, trainer)
        for result in self.last_results.values():
            for key, value in logged_values(result).items():
                pl_module.log(key, value, sync_dist=True)
        if self.out_dir is not None and getattr(trainer, "is_global_zero", True):
            step_dir = self.out_dir / "validation" / f"step_{int(trainer.global_step)}"
            for result in self.last_results.values():
                save_evaluation(result, step_dir, plots=False)
