"""Fixtures of the pseudo-label tests: the tiny RVT-layout dataset of tests/training and nano configs."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))

from tiny_dataset import REPR_NAME, make_tiny_dataset  # noqa: E402

from evdet.data.config import AugmentConfig, DataConfig  # noqa: E402
from evdet.models.config import HeadConfig, LossConfig, ModelConfig  # noqa: E402
from evdet.training.config import TrainConfig  # noqa: E402



@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    """train: 3 sequences (11, 7, 9 reprs -> 5, 3, 4 label frames at reprs 1, 3, ...); val: 2 (8, 5)."""
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny_pseudo"), lengths={"train": [11, 7, 9], "val": [8, 5]})


@pytest.fixture(scope="session")
def nano_cfgs(tiny_root):
    """(data, model, loss, train) configs small enough for CPU tests (no flip: boxes stay where they are)."""
    data = DataConfig(root=str(tiny_root), representation=REPR_NAME, sampling="mixed", seq_len=2, batch_size=2,
                      eval_batch_size=2, num_workers=0, augment=AugmentConfig(flip_prob=0.0))
    model = ModelConfig(preset="nano", partition_split=1, head=HeadConfig(conf_threshold=0.01, max_detections=20))
    train = TrainConfig(max_steps=4, val_every_n_steps=4, log_every_n_steps=1, loggers=("csv",),
                        limit_val_batches=1, accelerator="cpu")
    return data, model, LossConfig(), train
