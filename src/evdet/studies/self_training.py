"""Self-training as experiment records: each round (teacher, then students) is one record.

``pseudo.selftrain.self_train`` runs the rounds; this module gives it a ``train_round`` that
creates record ``<name>_r<k>`` (or resumes it) and trains it with the experiment runner, so every
round can be compared with ``evdet exp compare <name>_r0 <name>_r1``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from evdet.experiments.records.new import new_experiment
from evdet.experiments.running.runner import AlreadyCompleted, run_experiment


def train_round_record(root: Path, name: str, r: int, dataset: Path, *, config_files: Sequence[str] = (),
                       overrides: Sequence[str] = (), command: str = "") -> Path:
    """Train round ``r`` on ``dataset`` as record ``<name>_r<r>`` (created, or resumed); its checkpoint path.

    Round 0 keeps the configured label fraction; students (r >= 1) train on every label of the
    pseudo-labelled dataset (``data.label_fraction=1.0``).
    """
    exp_id = f"{name}_r{r}"
    extra = [f"data.root={dataset}"] + (["data.label_fraction=1.0"] if r else [])
    if not (root / exp_id).exists():
        new_experiment(root, exp_id, f"self-training round {r} ({'teacher' if r == 0 else 'student'})",
                       config_files=list(config_files), overrides=[*overrides, *extra], command=command)
        run_experiment(root, exp_id)
    else:
        try:
            run_experiment(root, exp_id, resume=True)
        except AlreadyCompleted:
            pass
    for ckpt in ("best.ckpt", "last.ckpt"):
        if (root / exp_id / "checkpoints" / ckpt).is_file():
            return root / exp_id / "checkpoints" / ckpt
    raise FileNotFoundError(f"{root / exp_id}: no checkpoint after training")


def self_train_records(data: Path, out: Path, rounds: int, settings, *, root: Path, name: str,
                       config_files: Sequence[str] = (), overrides: Sequence[str] = (),
                       device: Optional[str] = None, command: str = "") -> list[dict]:
    """``pseudo.selftrain.self_train`` with every round trained as a record under ``root``; its history."""
    from evdet.pseudo.selftrain import self_train

    def train_round(r: int, dataset: Path) -> Path:
        return train_round_record(root, name, r, dataset, config_files=config_files, overrides=overrides,
                                  command=command)

    return self_train(data, out, rounds, train_round, settings, device=device)
