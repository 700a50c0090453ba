"""Evaluation settings: which named protocols, and at what confidence P/R and confusion are stated."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from evdet.utils.value_checks import PROBABILITY, check_fields


@dataclass(frozen=True)
class EvalConfig:
    protocols: tuple[str, ...] = ("prophesee", "full")   # first one is the headline
    pr_confidence: float = 0.5              # confidence at which precision / recall / confusion are stated
    confusion_iou: float = 0.5
    groups: tuple[str, ...] = ()            # extra class groups by name from the class map; () = all of them
    scoring: Optional[str] = None           # "class" (RVT) or "obj_x_cls" (YOLOX); None: each protocol's own
    postprocess: Optional[str] = None       # "rvt" or "clip_cap" (evdet.evaluation.postprocessing); None: each
                                            # protocol's own (prophesee / etram-paper: rvt, full: clip_cap)
    conf_threshold: Optional[float] = None  # obj x cls threshold of the evaluated detections; None: each
                                            # protocol's own (0.001 for prophesee / etram-paper, 0.01 for full)

    def __post_init__(self) -> None:
        check_fields(self, pr_confidence=PROBABILITY, confusion_iou=PROBABILITY, conf_threshold=PROBABILITY)
