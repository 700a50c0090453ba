"""Records and a fake trainer for design tests: the 'training' is an oracle function of the config."""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Optional, Sequence

from evdet.experiments.analysis.config_diff import flatten
from evdet.experiments.records.record import atomic_write_json, create_experiment, load_experiment, write_status
from evdet.experiments.records.run_config import dump_run_config, load_run_config


def make_record(root: Path, exp_id: str, overrides: Sequence[str] = (), data_root: str = "/nonexistent") -> Path:
    """A created (not yet run) record of the demo config with ``overrides``."""
    cfg = load_run_config(["demo"], [f"data.root={data_root}", *overrides, f"name={exp_id}"])
    return create_experiment(root, exp_id, dump_run_config(cfg), "hand-made")


class OracleExecutor:
    """Fills each record as if trained: ``oracle(flat_config) -> metric value`` (None: the run failed).

    ``metric`` is written both as a train curve and as full/AP so either key can be used.
    """

    def __init__(self, root: Path, oracle: Callable[[dict], Optional[float]],
                 seed_noise: Callable[[int], float] = lambda seed: 0.0) -> None:
        self.root, self.oracle, self.seed_noise = Path(root), oracle, seed_noise
        self.trained: list[str] = []

    def run(self, exp_ids, *, stop_at_first=None) -> None:
        for exp_id in exp_ids:
            exp = load_experiment(self.root, exp_id)
            if exp.state not in ("completed", "failed"):
                self.trained.append(exp_id)
                value = self.oracle(flatten(exp.config))
                res = dict(exp.results)
                res["status"] = "completed" if value is not None else "failed"
                seeds = exp.config.get("seeds") or []
                if value is not None and len(seeds) > 1:   # one run per seed, as the multi-seed runner records them
                    res["runs"] = {str(sd): {"dir": ".", "status": "completed",
                                             "protocols": {"full": {"metrics": {"AP": value + self.seed_noise(sd)}}}}
                                   for sd in seeds}
                    value = value + sum(self.seed_noise(sd) for sd in seeds) / len(seeds)
                if value is not None:
                    res["curves"] = {"train/loss": {"step": [1, 2], "value": [value + 1.0, value]}}
                    res["protocols"] = {"full": {"metrics": {"AP": value}}}
                atomic_write_json(exp.path / "results.json", res)
                write_status(exp.path, res["status"], "oracle")
            if stop_at_first is not None and stop_at_first(exp_id):
                return


def quadratic_ap(flat: dict) -> float:
    """A smooth 'AP' with its best at lr = 3e-3, focal gamma = 0.5."""
    return 0.5 - (flat["training.lr"] * 1000 - 3.0) ** 2 * 0.01 - (flat["loss.focal.gamma"] - 0.5) ** 2 * 0.1


def fake_train(root: Path, exp_id: str, callbacks=(), *, sleep_s: float = 0.0, oracle=quadratic_ap):
    """Stand-in for ``running.executors.run_record``: marks the record completed with full/AP = oracle(config)."""
    import os
    import time

    exp = load_experiment(root, exp_id)
    if exp.state in ("completed", "failed"):
        return exp
    write_status(exp.path, "running", "fake training")
    time.sleep(sleep_s)
    value = oracle(flatten(exp.config))
    res = dict(exp.results, status="completed", protocols={"full": {"metrics": {"AP": value}}},
               curves={"train/loss": {"step": [1], "value": [1.0 - value]}})
    res["worker_pid"] = os.getpid()
    atomic_write_json(exp.path / "results.json", res)
    write_status(exp.path, "completed", "fake training done")
    return load_experiment(root, exp_id)


_TINY: dict[str, Path] = {}


def tiny_dataset(tmp_path_factory) -> Path:
    """A miniature generated + preprocessed dataset (3 sequences of 1.6 s at 128x72), made once per session."""
    if "pre" not in _TINY:
        from evdet.data.preprocess.dataset import preprocess_dataset
        from evdet.data.synthetic import generate_dataset

        out = tmp_path_factory.mktemp("tiny_data")
        generate_dataset(out / "raw", sequences=3, duration_s=1.6, resolution=(72, 128), seed=0, progress=False)
        preprocess_dataset(out / "raw", out / "pre", downsample="none", workers=1, progress=False)
        _TINY["pre"] = out / "pre"
    return _TINY["pre"]


TINY_TRAINING = ["training.max_steps=2", "training.log_every_n_steps=1", "training.val_every_n_steps=100"]
