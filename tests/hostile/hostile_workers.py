"""A stand-in for a matrix training worker (importable by spawned processes): marks a record running and waits."""

import os
import time
from pathlib import Path


def train_forever(exp_dir: str, threads: int) -> None:
    """Say ``running`` in the record's status.json as the runner does, write this pid to ``worker.pid``, wait."""
    from evdet.experiments.records.record import write_status

    write_status(Path(exp_dir), "running", "training (stand-in)")
    (Path(exp_dir) / "worker.pid").write_text(str(os.getpid()))
    time.sleep(120)
