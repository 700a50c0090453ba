"""Evaluate a checkpoint on a split of a preprocessed dataset under several protocols."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Mapping, Optional, Sequence

from evdet.evaluation.config import EvalConfig
from evdet.evaluation.dataset import EvalSetup, evaluate_split, load_ground_truth
from evdet.evaluation.protocols import SCORINGS
from evdet.evaluation.result import EvalResult
from evdet.evaluation.save import save_evaluation


def evaluate_checkpoint(
    ckpt,
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
    scoring: Optional[str] = None,
    trusted: bool = False,
    postprocess: Optional[str] = None,
    conf_threshold: Optional[float] = None,
) -> dict[str, EvalResult]:
    """Predict every sequence of ``split`` in stream mode, then evaluate under each protocol.

    Prediction walks the sequences as validation inside training does (the checkpoint's
    ``eval_batch_size`` slots, chunks of ``seq_len``); ground truth and evaluation settings come from
    ``evdet.evaluation.dataset`` (the same path as the training-time ``EvaluationCallback``), with
    the checkpoint's class map, so a checkpoint's validation results and these are equal.

    Args:
        ckpt: checkpoint file of a DetectionModule (or a DetectionModule).
        pre_root: preprocessed dataset root.
        out_dir: when set, ``save_evaluation`` writes each protocol's files there.
        scoring: "class" (RVT) or "obj_x_cls" (YOLOX); None: each protocol's default.
        trusted: read a checkpoint holding arbitrary pickled objects (``--trusted``; can run code).
        postprocess, conf_threshold: "rvt" / "clip_cap" and its obj x cls threshold
            (``evdet.evaluation.postprocessing``); None: each protocol's default. The checkpoint's own
            head threshold must not exceed it (evdet's runs predict at 0.001).
    Returns:
        protocol name -> EvalResult.
    """
    setup, truth, predictions = _predict_split(ckpt, pre_root, split, protocols, scoring, pr_confidence,
                                               confusion_iou, groups, max_sequences, device, progress, trusted)
    setup = replace(setup, postprocess=postprocess, conf_threshold=conf_threshold)
    results = evaluate_split(setup, truth, predictions)
    if out_dir is not None:
        for result in results.values():
            save_evaluation(result, out_dir, plots=plots)
    return results


def _predict_split(ckpt, pre_root, split, protocols, scoring, pr_confidence, confusion_iou, groups,
                   max_sequences, device, progress, trusted):
    """(EvalSetup, ground truth, predictions by sequence) of a checkpoint on a split."""
    from evdet.evaluation.protocols import get_protocol
    from evdet.training.predict import load_module, predict_sequences

    for p in protocols:
        get_protocol(p, scoring)                  # fail before the (slow) prediction
    module = load_module(ckpt, trusted=trusted)
    cfg = EvalConfig(protocols=tuple(protocols), pr_confidence=pr_confidence, confusion_iou=confusion_iou,
                     scoring=scoring)
    setup = replace(EvalSetup.from_dataset(pre_root, cfg, module.data_cfg.class_map), groups=groups)
    if module.class_names != setup.class_map.names:
        raise ValueError(f"{ckpt}: checkpoint classes {list(module.class_names)} differ from the dataset's "
                         f"{list(setup.class_map.names)} ({pre_root})")
    names, _, dt_list = predict_sequences(module, pre_root, split, max_sequences=max_sequences, progress=progress,
                                          device=device, batch_size=module.data_cfg.eval_batch_size)
    truth = load_ground_truth(pre_root, split, module.data_cfg.representation, names)
    return setup, truth, dict(zip(names, dt_list))


def scoring_difference(ckpt, pre_root: str | Path, split: str = "val", *,
                       protocols: Sequence[str] = ("prophesee", "full"), max_sequences: Optional[int] = None,
                       device: Optional[str] = None, progress: bool = True,
                       trusted: bool = False) -> dict[str, dict[str, dict]]:
    """How far the two scoring conventions differ on a checkpoint (one prediction pass, two evaluations).

    Returns:
        protocol -> metric -> {"class": value, "obj_x_cls": value, "delta": class - obj_x_cls} for the
        overall metrics and ``<group>/AP`` of every class group (None where a value is undefined).
    """
    setup, truth, predictions = _predict_split(ckpt, pre_root, split, protocols, None, 0.5, 0.5, None,
                                               max_sequences, device, progress, trusted)
    by_scoring = {s: evaluate_split(replace(setup, scoring=s), truth, predictions) for s in SCORINGS}
    out: dict[str, dict[str, dict]] = {}
    for p in protocols:
        a, b = by_scoring["class"][p], by_scoring["obj_x_cls"][p]
        pairs = {**{m: (a.metrics.get(m), b.metrics.get(m)) for m in a.metrics},
                 **{f"{g}/AP": (a.groups[g]["AP"], b.groups[g]["AP"]) for g in a.groups}}
        out[p] = {m: {"class": x, "obj_x_cls": y, "delta": None if x is None or y is None else x - y}
                  for m, (x, y) in pairs.items()}
    return out
