"""One-line architecture label of a run config (no torch / config-class imports: cheap for listings)."""

from __future__ import annotations

import dataclasses
from typing import Any, Optional


def _as_dict(obj: Any) -> dict:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    return dict(obj or {})


def architecture_summary(model: Any, loss: Optional[Any] = None) -> str:
    """Short label such as ``tiny p4 FPN[2,3,4] sizeaware a=2.5 focal g=0.5``.

    Args:
        model: ModelConfig or its dict (preset, patch_size, in_stages).
        loss: LossConfig or its dict; adds the loss options that are switched on.
    """
    m = _as_dict(model)
    parts = [str(m.get("preset", "?")), f"p{m.get('patch_size', '?')}",
             "FPN[" + ",".join(str(s) for s in m.get("in_stages", []) or []) + "]"]
    if loss is not None:
        lo = _as_dict(loss)
        alpha = (lo.get("size_aware") or {}).get("alpha", 1.0)
        gamma = (lo.get("focal") or {}).get("gamma", 0.0)
        if alpha not in (None, 1.0):
            parts.append(f"sizeaware a={alpha:g}")
        if gamma:
            parts.append(f"focal g={gamma:g}")
        if lo.get("iou_type", "iou") not in (None, "iou"):
            parts.append(str(lo["iou_type"]))
    return " ".join(parts)


def record_architecture(config: Any) -> str:
    """The label of a record's config.yaml document (its ``model`` and ``loss``), "?" without a model.

    Reads the YAML as written (not a RunConfig): records of older versions hold keys RunConfig no longer has."""
    config = config if isinstance(config, dict) else {}
    model = config.get("model")
    return architecture_summary(model, config.get("loss")) if model else "?"
