"""Fixtures of the training tests: tiny RVT-layout datasets and tiny configs."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

from tiny_dataset import REPR_NAME, make_tiny_dataset  # noqa: E402

from evdet.data.config import AugmentConfig, DataConfig  # noqa: E402
from evdet.models.config import HeadConfig, LossConfig, ModelConfig  # noqa: E402
from evdet.training.config import TrainConfig  # noqa: E402



@pytest.fixture(scope="session")
def tiny_root(tmp_path_factory) -> Path:
    """train: 3 sequences (11, 7, 9 reprs); val: 2 sequences (8, 5 reprs); 64x96, 4 channels, 2 classes."""
    return make_tiny_dataset(tmp_path_factory.mktemp("tiny_rvt"), lengths={"train": [11, 7, 9], "val": [8, 5]})


@pytest.fixture(scope="session")
def tiny_cfgs(tiny_root):
    """(data, model, loss, train) configs small enough for CPU tests."""
    data = DataConfig(root=str(tiny_root), representation=REPR_NAME, sampling="mixed", seq_len=2, batch_size=2,
                      eval_batch_size=2, num_workers=0, augment=AugmentConfig(flip_prob=0.5))
    model = ModelConfig(preset="nano", partition_split=1, head=HeadConfig(conf_threshold=0.01, max_detections=20))
    train = TrainConfig(max_steps=6, val_every_n_steps=3, log_every_n_steps=1, loggers=("csv",),
                        limit_val_batches=3, accelerator="cpu")
    return data, model, LossConfig(), train


@pytest.fixture(scope="session")
def repr_name() -> str:
    return REPR_NAME
