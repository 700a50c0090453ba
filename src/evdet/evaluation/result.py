"""EvalResult: every metric of one protocol, stored with the protocol's fingerprint."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

import numpy as np

from evdet.evaluation.confusion import normalize_rows


@dataclass(frozen=True)
class EvalResult:
    """Metrics of one protocol.

    Attributes:
        protocol: protocol name.
        fingerprint: see ``protocols.fingerprint`` (includes ``digest``).
        metrics: overall "AP", "AP50", "AP75", "AP_S", "AP_M", "AP_L" (+ "AP_tiny" under ``full``);
            None where COCO has no GT to average over.
        per_class: name -> {"AP", "AP50", "precision", "recall", "support", "confidence", ...}.
        groups: group -> {"AP", "AP50", "support", "classes", "mode"}.
        confusion: {"labels": classes + ["background"], "matrix": (C+1, C+1) counts, "iou", "confidence"}.
        pr_curves: name -> {"recall": [...], "precision": [...]} at IoU 0.5.
        counts: {"images", "gt", "detections"} after filtering and time matching ("detections"
            counts detection-image pairs: a detection near two GT timestamps counts twice).
    """

    protocol: str
    fingerprint: dict
    metrics: dict
    per_class: dict
    groups: dict
    confusion: dict
    pr_curves: dict = field(default_factory=dict)
    counts: dict = field(default_factory=dict)

    @property
    def headline(self) -> float | None:
        """The number a paper would quote under this protocol (AP, or AP50 for etram-paper)."""
        return self.metrics.get(self.fingerprint.get("headline", "AP"))

    @property
    def confusion_matrix(self) -> np.ndarray:
        """(C+1, C+1) int64 raw counts."""
        return np.asarray(self.confusion["matrix"], dtype=np.int64)

    def to_dict(self) -> dict:
        """JSON-ready dict (schema in docs/CONTRACTS.md, section evaluation)."""
        confusion = dict(self.confusion)
        confusion["normalized"] = normalize_rows(self.confusion_matrix).round(6).tolist()
        return {
            "protocol": self.protocol,
            "fingerprint": self.fingerprint,
            "metrics": dict(self.metrics),
            "per_class": {k: dict(v) for k, v in self.per_class.items()},
            "groups": {k: dict(v) for k, v in self.groups.items()},
            "confusion": confusion,
            "pr_curves": self.pr_curves,
            "counts": dict(self.counts),
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    @classmethod
    def from_dict(cls, d: dict) -> "EvalResult":
        """Inverse of ``to_dict`` (the derived normalised confusion is dropped)."""
        missing = [k for k in ("protocol", "fingerprint", "metrics", "per_class", "groups", "confusion") if k not in d]
        if missing:
            raise ValueError(f"evaluation result: missing field(s) {missing}")
        confusion = {k: v for k, v in d["confusion"].items() if k != "normalized"}
        return cls(d["protocol"], d["fingerprint"], d["metrics"], d["per_class"], d["groups"], confusion,
                   d.get("pr_curves", {}), d.get("counts", {}))
