"""Evaluation settings: which named protocols, and at what confidence P/R and confusion are stated."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class EvalConfig:
    protocols: tuple[str, ...] = ("prophesee", "full")   # first one is the headline
    pr_confidence: float = 0.5              # confidence at which precision / recall / confusion are stated
    confusion_iou: float = 0.5
    groups: tuple[str, ...] = ()            # extra class groups by name from the class map; () = all of them
    scoring: Optional[str] = None           # "class" (RVT) or "obj_x_cls" (YOLOX); None: each protocol's own
