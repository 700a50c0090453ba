"""A real training run (fit, stream sampling) with temporal attention and the motion gate: the module state
lives in the resume checkpoint beside the LSTM's, and a killed + resumed run logs the uninterrupted run's losses."""

import csv
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "training"))

from tiny_dataset import REPR_NAME, make_tiny_dataset  # noqa: E402
from crash import Kill  # noqa: E402

from evdet.data.config import DataConfig  # noqa: E402
from evdet.models.config import (HeadConfig, LossConfig, ModelConfig, ModulesConfig,  # noqa: E402
                                 SmallObjectAttentionConfig, TemporalAttentionConfig)
from evdet.training.config import TrainConfig  # noqa: E402
from evdet.training.fit import fit  # noqa: E402



def train_rows(path):
    with open(path, newline="") as fh:
        return [r for r in csv.DictReader(fh) if r.get("train/loss")]


@pytest.mark.slow
def test_stream_training_with_module_state_resumes_exactly(tmp_path):
    root = make_tiny_dataset(tmp_path / "data", lengths={"train": [11, 7, 9], "val": [8, 5]})
    data = DataConfig(root=str(root), representation=REPR_NAME, sampling="stream", seq_len=2, batch_size=3,
                      eval_batch_size=2, num_workers=0)
    modules = ModulesConfig(temporal_attention=TemporalAttentionConfig(kind="attention", memory=2, stages=(3, 4)),
                            small_object_attention=SmallObjectAttentionConfig(kind="motion", stages=(1,)))
    model = ModelConfig(preset="nano", partition_split=1, modules=modules,
                        head=HeadConfig(conf_threshold=0.01, max_detections=20))
    train = TrainConfig(max_steps=7, val_every_n_steps=4, log_every_n_steps=1, loggers=("csv",),
                        limit_val_batches=1, accelerator="cpu")
    fit(data, model, LossConfig(), train, tmp_path / "whole", progress=False)
    with pytest.raises(RuntimeError, match="killed at step 6"):
        fit(data, model, LossConfig(), train, tmp_path / "killed", callbacks=[Kill(6)], progress=False)
    saved = torch.load(tmp_path / "killed" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    slots = saved["evdet_resume"]["stream_states"]
    assert sorted(slots) == [0, 1, 2]
    assert [len(parts) for parts in slots[0]] == [2, 2, 4, 4]      # (h, c) + (memory, valid) on stages 3, 4
    assert float(slots[0][3][3].sum()) == 2.0                       # a full memory of K = 2 outputs mid-stream
    assert saved["hyper_parameters"]["model_cfg"]["modules"]["temporal_attention"]["kind"] == "attention"
    fit(data, model, LossConfig(), train, tmp_path / "killed", resume=True, progress=False)
    whole = train_rows(tmp_path / "whole" / "logs" / "metrics.csv")
    resumed = train_rows(tmp_path / "killed" / "logs" / "metrics.csv")
    keys = ("step", "train/loss", "train/iou", "train/obj", "train/cls")
    assert [int(r["step"]) for r in resumed] == list(range(7))
    assert [[r[k] for k in keys] for r in resumed] == [[r[k] for k in keys] for r in whole]
