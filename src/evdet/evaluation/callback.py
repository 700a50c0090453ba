"""Lightning callback: evaluate the validation predictions under named protocols and log the metrics.

Reads ``pl_module.val_ground_truth`` and ``pl_module.val_predictions`` (seq_name -> BBOX array in
representation pixels, or a list of per-frame BBOX arrays: Lightning runs callbacks'
``on_validation_epoch_end`` before the module's, so the module may not have concatenated them
yet) and logs ``val/{protocol}/{metric}``. Optionally writes every result as JSON::

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
from evdet.evaluation.api import evaluate
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
    ) -> None:
        super().__init__()
        from evdet.evaluation.protocols import get_protocol

        for p in protocols:
            get_protocol(p)
        self.protocols = tuple(protocols)
        self.class_names = class_names
        self.height, self.width = int(height), int(width)
        self.source_hw = source_hw
        self.out_dir = None if out_dir is None else Path(out_dir)
        self.groups = groups
        self.pr_confidence = pr_confidence
        self.confusion_iou = confusion_iou
        self.label_rate_hz = label_rate_hz
        self.skip_sanity_check = skip_sanity_check
        self.last_results: dict[str, EvalResult] = {}

    @classmethod
    def from_config(cls, cfg, *, class_names, height: int, width: int, source_hw=None,
                    out_dir: str | Path | None = None, label_rate_hz: float | None = None) -> "EvaluationCallback":
        """Build from an ``EvalConfig`` (protocols, pr_confidence, confusion_iou, groups; () = all groups)."""
        return cls(tuple(cfg.protocols), class_names=class_names, height=height, width=width,
                   source_hw=source_hw, out_dir=out_dir, groups=tuple(cfg.groups) or None,
                   pr_confidence=cfg.pr_confidence, confusion_iou=cfg.confusion_iou,
                   label_rate_hz=label_rate_hz)

    def evaluate_module(self, pl_module) -> dict[str, EvalResult]:
        """Results per protocol for the module's current validation predictions."""
        gt_map = getattr(pl_module, "val_ground_truth", None)
        dt_map = getattr(pl_module, "val_predictions", None)
        if gt_map is None or dt_map is None:
            raise AttributeError(f"{type(pl_module).__name__} has no val_ground_truth / val_predictions "
                                 "(seq_name -> BBOX array) for the evaluation callback")
        names = sorted(gt_map)
        gts = [_as_array(gt_map[n]) for n in names]
        dts = [_as_array(dt_map.get(n, [])) for n in names]
        return {p: evaluate(gts, dts, height=self.height, width=self.width, class_names=self.class_names,
                            protocol=p, source_hw=self.source_hw, groups=self.groups,
                            pr_confidence=self.pr_confidence, confusion_iou=self.confusion_iou,
                            label_rate_hz=self.label_rate_hz)
                for p in self.protocols}

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if self.skip_sanity_check and getattr(trainer, "sanity_checking", False):
            return
        self.last_results = self.evaluate_module(pl_module)
        for result in self.last_results.values():
            for key, value in logged_values(result).items():
                pl_module.log(key, value, sync_dist=True)
        if self.out_dir is not None and getattr(trainer, "is_global_zero", True):
            step_dir = self.out_dir / "validation" / f"step_{int(trainer.global_step)}"
            for result in self.last_results.values():
                save_evaluation(result, step_dir, plots=False)
