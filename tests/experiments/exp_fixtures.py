"""Builders of hand-made experiment records (results.json, metrics.csv, config.yaml) for the tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import yaml

CLASSES = ["pedestrian", "car", "bicycle"]


def fingerprint(digest: str = "d" * 40, class_names=CLASSES) -> dict:
    return {"name": "prophesee", "class_names": list(class_names), "class_agnostic": False,
            "filter": {"min_diag_px": 30, "min_side_px": 10}, "resolution": [360, 640],
            "source_resolution": [720, 1280], "time_tolerance_us": 50000,
            "iou_thresholds": [0.5, 0.95], "area_buckets": {}, "digest": digest}


def protocol_block(ap: float, ap_s: float, per_class_ap: dict, *, digest: str = "d" * 40,
                   class_names=CLASSES, small_ap: Optional[float] = None) -> dict:
    block = {"protocol": "prophesee", "fingerprint": fingerprint(digest, class_names),
             "metrics": {"AP": ap, "AP50": ap + 0.2, "AP75": ap - 0.05, "AP_S": ap_s, "AP_M": ap + 0.1,
                         "AP_L": ap + 0.2},
             "per_class": {n: {"AP": v, "AP50": v + 0.1, "precision": 0.5, "recall": 0.5,
                               "support": 10 * (i + 1), "confidence": 0.5}
                           for i, (n, v) in enumerate(per_class_ap.items())},
             "groups": {},
             "confusion": {"labels": [*class_names, "background"],
                           "matrix": [[5 if i == j else 1 for j in range(len(class_names) + 1)]
                                      for i in range(len(class_names) + 1)],
                           "iou": 0.5, "confidence": 0.5}}
    if small_ap is not None:
        block["groups"]["small_road_users"] = {"AP": small_ap, "AP50": small_ap + 0.1, "support": 40,
                                               "classes": ["pedestrian", "bicycle"]}
    return block


def make_experiment(root: Path, exp_id: str, *, base: Optional[str] = None, protocols: Optional[dict] = None,
                    config: Optional[dict] = None, state: str = "completed", step: int = 1000,
                    hypothesis: str = "", csv_rows: Optional[list] = None,
                    class_names=CLASSES) -> Path:
    """Write an experiment folder by hand (the record format this package owns)."""
    d = root / exp_id
    for sub in ("checkpoints", "logs", "confusion_matrices", "validation"):
        (d / sub).mkdir(parents=True, exist_ok=True)
    cfg = config or {"model": {"preset": "tiny", "patch_size": 4, "in_stages": [2, 3, 4]},
                     "loss": {"size_aware": {"alpha": 1.0}, "focal": {"gamma": 0.0}, "iou_type": "iou"},
                     "data": {"batch_size": 8}, "training": {"lr": 2e-4, "max_steps": 1000}}
    (d / "config.yaml").write_text(yaml.safe_dump(cfg))
    (d / "hypothesis.md").write_text(hypothesis)
    (d / "status.json").write_text(json.dumps({"state": state, "message": "", "pid": 1, "host": "elsewhere",
                                               "heartbeat_at": 0.0}))
    (d / "results.json").write_text(json.dumps({
        "schema_version": 1, "id": exp_id, "status": state, "base": base, "class_names": list(class_names),
        "step": step, "protocols": protocols or {}, "curves": {}, "monitors": {"loss_cv": 0.2}}))
    if csv_rows:
        keys = sorted({k for r in csv_rows for k in r} - {"step", "epoch"})
        lines = [",".join(["epoch", "step", *keys])]
        for r in csv_rows:
            lines.append(",".join([str(r.get("epoch", 0)), str(r["step"]), *[str(r.get(k, "")) for k in keys]]))
        (d / "logs" / "metrics.csv").write_text("\n".join(lines) + "\n")
    return d


def make_seeded_experiment(root: Path, exp_id: str, seed_aps: dict, *, base: Optional[str] = None,
                           hypothesis: str = "", protocol: str = "prophesee") -> Path:
    """A schema-2 record whose runs hold per-seed AP / AP_S values.

    Args:
        seed_aps: seed -> (AP, AP_S). The top-level ``protocols`` holds the block of the seed means.
    """
    def block(ap: float, ap_s: float) -> dict:
        return {**protocol_block(ap, ap_s, {"pedestrian": ap, "car": ap, "bicycle": ap}), "protocol": protocol}

    blocks = {s: block(ap, ap_s) for s, (ap, ap_s) in seed_aps.items()}
    mean_ap, mean_ap_s = (sum(v[i] for v in seed_aps.values()) / len(seed_aps) for i in (0, 1))
    d = make_experiment(root, exp_id, base=base, hypothesis=hypothesis, protocols={protocol: block(mean_ap, mean_ap_s)})
    doc = json.loads((d / "results.json").read_text())
    doc.update(schema_version=2, seeds=list(seed_aps),
               runs={str(s): {"seed": s, "dir": "." if i == 0 else f"seeds/seed_{s}", "status": "completed",
                              "step": 1000, "protocols": {protocol: blocks[s]}, "monitors": {"loss_cv": 0.2}}
                     for i, s in enumerate(seed_aps)})
    (d / "results.json").write_text(json.dumps(doc))
    return d
