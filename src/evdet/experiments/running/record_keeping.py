"""The callbacks a run trains with: the validation's evaluation callback and the record keeper.

``evaluation_callback`` evaluates each validation with the same protocol arguments as
``evaluate_checkpoint``; ``record_callback`` keeps the record current while it trains (status.json's
heartbeat, the latest validation's results in the run's entry of results.json, its ground truth and
detections in ``<run>/validation/detections.npz``). ``curves_from_csv`` / ``final_monitors`` read the
run's ``logs/metrics.csv`` into results.json's ``curves`` and ``monitors``.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from evdet.experiments.records.record import RecordError, atomic_write_json, heartbeat, read_metrics_csv
from evdet.experiments.records.run_config import RunConfig
from evdet.experiments.running.seed_aggregate import aggregate_runs
from evdet.experiments.statistics.intervals import DETECTIONS_FILE, save_validation_detections


def curves_from_csv(csv_path: Path) -> dict:
    """results.json ``curves``: {column: {"step": [...], "value": [...]}} for train/, val/, monitor/ columns."""
    return {k: {"step": s, "value": v} for k, (s, v) in read_metrics_csv(csv_path).items()
            if k.startswith(("train/", "val/", "monitor/"))}


def final_monitors(curves: dict) -> dict:
    """Last logged value of every ``monitor/*`` curve, keyed without the prefix."""
    return {k.split("/", 1)[1]: c["value"][-1] for k, c in curves.items()
            if k.startswith("monitor/") and c["value"]}


def eval_geometry(cfg: RunConfig):
    """(class map, repr (h, w), source (h, w), preprocess info) of the run's preprocessed dataset."""
    from evdet.data.preprocessed import read_preprocess_info
    from evdet.data.classes import load_class_map

    root = Path(cfg.data.root)
    if not cfg.data.root or not root.is_dir():
        raise RecordError(f"data.root {cfg.data.root!r}: no such preprocessed dataset folder")
    info = read_preprocess_info(root)
    try:
        class_map = load_class_map(root, cfg.data.class_map)      # 'auto' (the dataset's) or a known name
    except ValueError as err:
        raise RecordError(str(err)) from None
    return class_map, tuple(info["repr_hw"]), tuple(info["source_hw"]), info


def evaluation_callback(cfg: RunConfig, run_dir: Path):
    """The validation's EvaluationCallback (same protocol arguments as ``evaluate_checkpoint``)."""
    from evdet.evaluation.callback import EvaluationCallback

    class_map = eval_geometry(cfg)[0]
    return EvaluationCallback.for_dataset(cfg.data.root, cfg.eval, representation=cfg.data.representation,
                                          class_map=class_map, out_dir=run_dir)


def eval_kwargs(eval_cb) -> dict:
    """Keyword arguments of ``evaluate`` (all but the protocol) that the callback uses, as JSON."""
    cm = eval_cb.class_names
    names = list(getattr(cm, "names", cm))
    groups = eval_cb.groups
    return {"height": eval_cb.height, "width": eval_cb.width, "class_names": names,
            "class_groups": {g: list(m) for g, m in (getattr(cm, "groups", None) or {}).items()},
            "source_hw": list(eval_cb.source_hw) if eval_cb.source_hw is not None else None,
            "groups": (dict(groups) if isinstance(groups, dict) else list(groups)) if groups else None,
            "pr_confidence": eval_cb.pr_confidence, "confusion_iou": eval_cb.confusion_iou,
            "label_rate_hz": eval_cb.label_rate_hz, "scoring": eval_cb.scoring}


def _bbox_array(value) -> np.ndarray:
    """A BBOX array sorted by t from an array or a list of per-frame arrays."""
    from evdet.data.labels import BBOX_DTYPE

    if isinstance(value, (list, tuple)):
        value = np.concatenate(value) if len(value) else np.zeros(0, dtype=BBOX_DTYPE)
    arr = np.asarray(value)
    return arr[np.argsort(arr["t"], kind="stable")] if len(arr) else np.zeros(0, dtype=BBOX_DTYPE)


def save_module_detections(pl_module, eval_cb, path: Path) -> Path:
    """Save the module's current validation GT and detections (sequence order of the callback)."""
    names, gts, dts = eval_cb.last_inputs          # exactly what the callback evaluated
    return save_validation_detections(path, names, [_bbox_array(g) for g in gts], [_bbox_array(d) for d in dts],
                                      eval_kwargs(eval_cb))


def record_callback(exp_dir: Path, every_s: float, eval_cb, results: dict, run_key: str, run_dir: Path):
    """Lightning callback keeping the record current during training (heartbeat + latest results)."""
    import lightning as L

    class RecordKeeper(L.Callback):
        """Refresh status.json's heartbeat at most every ``every_s`` seconds; after each validation,
        write its results into the run's entry of results.json and its detections to
        ``validation/detections.npz`` (so a run killed later still holds its last evaluation).
        Must come after the evaluation callback in the callback list."""

        def __init__(self) -> None:
            self._last = 0.0

        def on_validation_epoch_end(self, trainer, pl_module) -> None:
            if getattr(trainer, "sanity_checking", False) or not eval_cb.last_results:
                return
            if not getattr(trainer, "is_global_zero", True):
                return
            save_module_detections(pl_module, eval_cb, run_dir / "validation" / DETECTIONS_FILE)
            results["runs"][run_key].update(protocols={p: r.to_dict() for p, r in eval_cb.last_results.items()},
                                            step=int(trainer.global_step))
            aggregate_runs(results)
            atomic_write_json(exp_dir / "results.json", results)

        def _beat(self, trainer) -> None:
            now = time.monotonic()
            if now - self._last >= every_s and getattr(trainer, "is_global_zero", True):
                self._last = now
                heartbeat(exp_dir, step=int(trainer.global_step))

        def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
            self._beat(trainer)

        def on_validation_batch_end(self, trainer, pl_module, outputs, batch, batch_idx, dataloader_idx=0) -> None:
            self._beat(trainer)

    return RecordKeeper()
