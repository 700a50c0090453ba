"""Evaluate a checkpoint on a split of a preprocessed dataset under several protocols."""

from __future__ import annotations

from pathlib import Path
from typing import Mapping, Optional, Sequence

from evdet.evaluation.api import evaluate
from evdet.evaluation.result import EvalResult
from evdet.evaluation.save import save_evaluation


def evaluate_checkpoint(
    ckpt: str | Path,
    pre_root: str | Path,
    split: str = "val",
    *,
    protocols: Sequence[str] = ("prophesee", "full"),
    out_dir: str | Path | None = None,
    pr_confidence: float = 0.5,
    confusion_iou: float = 0.5,
    groups: Mapping[str, Sequence[str]] | Sequence[str] | None = None,
    max_sequences: Optional[int] = None,
    device: Optional[str] = None,
    progress: bool = True,
    plots: bool = True,
) -> dict[str, EvalResult]:
    """Predict every sequence of ``split`` in stream mode, then evaluate under each protocol.

    The boxes are at the representation resolution (``repr_hw`` of ``preprocess.json``); the
    sensor resolution (``source_hw``), label rate and class map (``dataset.yaml``) come from the
    preprocessed root and go into each result's fingerprint.

    Args:
        ckpt: checkpoint file of a DetectionModule.
        pre_root: preprocessed dataset root.
        out_dir: when set, ``save_evaluation`` writes each protocol's files there.
    Returns:
        protocol name -> EvalResult.
    """
    from evdet.data.classes import load_class_map
    from evdet.data.sequence import read_preprocess_info
    from evdet.evaluation.protocols import get_protocol
    from evdet.training.predict import predict_sequences

    for p in protocols:
        get_protocol(p)                       # fail before the (slow) prediction
    info = read_preprocess_info(pre_root)
    class_map = load_class_map(Path(pre_root))
    height, width = (int(v) for v in info["repr_hw"])
    _, gt_list, dt_list = predict_sequences(ckpt, pre_root, split, max_sequences=max_sequences,
                                            progress=progress, device=device)
    results = {
        p: evaluate(gt_list, dt_list, height=height, width=width, class_names=class_map, protocol=p,
                    source_hw=tuple(info["source_hw"]), groups=groups, pr_confidence=pr_confidence,
                    confusion_iou=confusion_iou, label_rate_hz=info.get("label_rate_hz"))
        for p in protocols
    }
    if out_dir is not None:
        for result in results.values():
            save_evaluation(result, out_dir, plots=plots)
    return results
