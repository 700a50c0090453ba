"""Self-training rounds: teacher -> pseudo-labels -> student, the student teaching the next round.

Round 0 trains the teacher on the labelled fraction of the source dataset; round k >= 1 pseudo-labels
the withheld frames of the source with the previous round's checkpoint (``<out>/pseudo_r<k>``), measures
them against the withheld ground truth (``<out>/pseudo_r<k>/quality/``) and trains a student on the
result (every label used: true + pseudo). The withheld frames stay those of round 0 in every round.
Training is injected (``train_round``), so the caller decides how a round is trained and recorded
(``evdet self-train`` makes each round an experiment record); every step resumes.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Callable

from evdet.pseudo.dataset import PseudoLabelSettings, pseudo_label_dataset, resolve_label_subset

TrainRound = Callable[[int, Path], Path]   # (round, dataset root) -> checkpoint of the trained model


def self_train(data_root: str | Path, out_dir: str | Path, rounds: int, train_round: TrainRound,
               settings: PseudoLabelSettings = PseudoLabelSettings(), *, device: str | None = None,
               progress: bool = True) -> list[dict]:
    """Run ``rounds`` self-training rounds after the supervised round 0.

    Args:
        train_round: trains round r on a dataset root (round 0: the source with its label fraction;
            r >= 1: the pseudo-labelled dataset, label fraction 1) and returns its checkpoint path.
        settings: pseudo-labelling settings; None fraction fields = the round-0 teacher's.
    Returns:
        per round: {"round", "data", "checkpoint"} plus, for r >= 1, "pseudo" (the writing summary's totals)
        and "quality" (overall and small-road-user precision / recall at ``settings.score_thr``).
    """
    from evdet.pseudo.measure import measure_pseudo_labels, write_quality_report
    from evdet.training.predict import load_module
    from evdet.utils.atomic import write_text_atomic

    if rounds < 1:
        raise ValueError(f"--rounds: must be >= 1, got {rounds}")
    settings.check()
    data_root, out_dir = Path(data_root), Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ckpt = Path(train_round(0, data_root))
    fraction, by, seed = resolve_label_subset(load_module(ckpt), settings)
    if fraction >= 1.0:
        raise ValueError("self-training needs withheld labels: train round 0 with data.label_fraction < 1 "
                         "or pass --label-fraction")
    fixed = dataclasses.replace(settings, label_fraction=fraction, label_fraction_by=by, label_seed=seed)
    history = [{"round": 0, "data": str(data_root), "checkpoint": str(ckpt)}]
    for r in range(1, rounds + 1):
        pseudo_root = out_dir / f"pseudo_r{r}"
        summary = pseudo_label_dataset(ckpt, data_root, pseudo_root, fixed, device=device, progress=progress)
        quality = measure_pseudo_labels(data_root, pseudo_root, split=fixed.split, thresholds=(fixed.score_thr,))
        write_quality_report(measure_pseudo_labels(data_root, pseudo_root, split=fixed.split),
                             pseudo_root / "quality")
        ckpt = Path(train_round(r, pseudo_root))
        row = quality["rows"][0]
        history.append({"round": r, "data": str(pseudo_root), "checkpoint": str(ckpt), "pseudo": summary["totals"],
                        "quality": {"overall": row["overall"], "small_road_users": row["small_road_users"]}})
        write_text_atomic(out_dir / "self_train.json", json.dumps(history, indent=1) + "\n")
    return history
