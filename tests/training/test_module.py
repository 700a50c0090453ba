"""DetectionModule: loss only on labelled steps, state reset at sequence starts, validation outputs."""

import lightning as L
import numpy as np
import pytest
import torch
from tiny_dataset import box_of_frame, label_reprs

from evdet.data.datamodule import EventDataModule
from evdet.training.module import DetectionModule, module_from_hparams
from evdet.training.state import StreamStates


def make_module(cfgs, seed=0):
    data, model, loss, train = cfgs
    torch.manual_seed(seed)
    return DetectionModule(data, model, loss, train, 2, (64, 96), 4, ("car", "pedestrian"))


def stream_batches(cfgs, n):
    data = cfgs[0]
    import dataclasses

    from evdet.data.config import AugmentConfig
    dm = EventDataModule(dataclasses.replace(data, sampling="stream", augment=AugmentConfig(flip_prob=0.0)))
    it = iter(dm.train_dataloader())
    return [next(it) for _ in range(n)]


def test_loss_ignores_targets_of_unlabelled_steps(tiny_cfgs):
    module = make_module(tiny_cfgs)
    batch = stream_batches(tiny_cfgs, 1)[0]
    assert batch["label_mask"].any() and not batch["label_mask"].all()
    seen = []

    class Spy(torch.nn.Module):
        def __init__(self, inner):
            super().__init__()
            self.inner = inner

        def forward(self, head, targets):
            seen.append(len(targets))
            return self.inner(head, targets)

    module.criterion = Spy(module.criterion)
    clean, _ = module._run(batch, StreamStates())
    garbage = dict(batch)
    garbage["targets"] = [[tg if batch["label_mask"][b, t] else torch.tensor([[1.0, 30, 30, 20, 20]])
                           for t, tg in enumerate(row)] for b, row in enumerate(batch["targets"])]
    dirty, _ = module._run(garbage, StreamStates())
    assert seen == [int(batch["label_mask"].sum())] * 2
    torch.testing.assert_close(clean["loss"], dirty["loss"])


def test_state_is_carried_within_a_sequence_and_reset_at_its_start(tiny_cfgs):
    module = make_module(tiny_cfgs).eval()
    first, second = stream_batches(tiny_cfgs, 2)
    assert not second["is_first"].any()  # slots 0, 1 continue their sequences
    with torch.no_grad():
        store = StreamStates()
        module._run(first, store)
        _, carried = module._run(second, store)
        _, fresh = module._run(second, StreamStates())
        reset_batch = dict(second, is_first=torch.ones_like(second["is_first"]))
        _, reset = module._run(reset_batch, store)
    # at initialisation the state's effect is small but it is there
    assert float((carried.head.boxes - fresh.head.boxes).abs().max()) > 1e-6
    assert torch.equal(reset.head.boxes, fresh.head.boxes)  # is_first == start from zeros
    assert torch.equal(reset.head.obj_logits, fresh.head.obj_logits)


def test_hyperparameters_rebuild_the_module(tiny_cfgs):
    module = make_module(tiny_cfgs)
    hp = dict(module.hparams)
    rebuilt = module_from_hparams(hp)
    assert rebuilt.model_cfg == module.model_cfg and rebuilt.data_cfg == module.data_cfg
    assert rebuilt.train_cfg == module.train_cfg and rebuilt.class_names == ("car", "pedestrian")
    with pytest.raises(ValueError, match="class_names"):
        DetectionModule(*tiny_cfgs, 3, (64, 96), 4, ("car", "pedestrian"))
    with pytest.raises(TypeError, match="data_cfg must be a DataConfig, got dict"):   # typed configs only
        DetectionModule(hp["data_cfg"], *tiny_cfgs[1:], 2, (64, 96), 4, ("car", "pedestrian"))


def test_validation_fills_predictions_and_ground_truth(tiny_cfgs, tmp_path):
    import dataclasses
    data, model, loss, train = tiny_cfgs
    module = make_module(tiny_cfgs)
    trainer = L.Trainer(accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False,
                        enable_checkpointing=False, default_root_dir=str(tmp_path))
    trainer.validate(module, datamodule=EventDataModule(dataclasses.replace(data, eval_batch_size=2)), verbose=False)
    assert sorted(module.val_ground_truth) == ["seq_val_0", "seq_val_1"]
    assert sorted(module.val_predictions) == ["seq_val_0", "seq_val_1"]
    for name, n in (("seq_val_0", 8), ("seq_val_1", 5)):
        gt = module.val_ground_truth[name]
        frames = label_reprs(n)
        assert gt["t"].tolist() == [(r + 1) * 50_000 for r in frames]
        for i, row in enumerate(gt):
            x, y, w, h, c = box_of_frame(i, 2)
            np.testing.assert_allclose([row["x"], row["y"], row["w"], row["h"]], [x, y, w, h], atol=1e-4)
            assert row["class_id"] == c
        dt = module.val_predictions[name]
        assert set(dt["t"].tolist()) <= set(gt["t"].tolist())
        assert np.all(dt["class_confidence"] >= model.head.conf_threshold)
    assert "val/loss" in trainer.callback_metrics


def test_configs_round_trip_through_plain_dicts(tiny_cfgs):
    from dataclasses import asdict

    from evdet.data.config import DataConfig
    from evdet.models.config import LossConfig, ModelConfig
    from evdet.training.config import TrainConfig
    from evdet.utils.config_build import build_config
    for cls, cfg in zip((DataConfig, ModelConfig, LossConfig, TrainConfig), tiny_cfgs):
        assert build_config(cls, asdict(cfg)) == cfg
    with pytest.raises(ValueError, match="DataConfig: unknown field"):
        build_config(DataConfig, {"roots": "x"})


def test_checkpoint_round_trip_of_stream_states_and_rng(tiny_cfgs):
    import random

    module = make_module(tiny_cfgs)
    with torch.no_grad():
        for batch in stream_batches(tiny_cfgs, 2):
            module.advance_streams(batch, module.train_states, None)
    torch.manual_seed(5)
    np.random.seed(5)
    random.seed(5)
    ckpt = {}
    module.on_save_checkpoint(ckpt)
    expected = (torch.rand(3), np.random.rand(3), random.random())
    resumed = make_module(tiny_cfgs, seed=1)
    resumed.on_load_checkpoint(ckpt)
    torch.rand(7), np.random.rand(7), random.random()     # loader set-up between load and the first step
    resumed.on_train_batch_start(None, 0)
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(got[0], expected[0]) and np.array_equal(got[1], expected[1]) and got[2] == expected[2]
    saved, restored = module.train_states, resumed.train_states
    assert len(restored) == len(saved) == 2
    for slot in (0, 1):
        for (h0, c0), (h1, c1) in zip(saved.gather([slot], [False], torch.device("cpu")),
                                      restored.gather([slot], [False], torch.device("cpu"))):
            assert torch.equal(h0, h1) and torch.equal(c0, c1) and h0.abs().sum() > 0


def test_empty_label_frames_are_left_out_of_the_loss_as_rvt():
    """A labelled step without boxes adds objectness loss under "train" and nothing under "skip" (RVT)."""

    from evdet.data.config import DataConfig
    from evdet.models.config import LossConfig, ModelConfig
    from evdet.training.config import TrainConfig
    from evdet.training.module import DetectionModule

    torch.manual_seed(0)
    frames = torch.rand(1, 2, 20, 32, 48) * 3
    box = torch.tensor([[0.0, 20.0, 16.0, 10.0, 8.0]])
    batch = {"frames": frames, "targets": [[box, torch.zeros((0, 5))]], "label_mask": torch.tensor([[True, True]]),
             "is_first": torch.tensor([True]), "stream_slot": torch.tensor([-1]), "seq_names": ["s"],
             "t_us": torch.tensor([[50_000, 100_000]])}
    only_first = dict(batch, label_mask=torch.tensor([[True, False]]))
    losses = {}
    for mode in ("skip", "train"):
        torch.manual_seed(1)
        m = DetectionModule(DataConfig(empty_label_frames=mode), ModelConfig(preset="nano", partition_split=1),
                            LossConfig(), TrainConfig(), num_classes=2, input_hw=(32, 48), in_channels=20,
                            class_names=("car", "pedestrian"))
        losses[mode] = float(m._run(batch, m.train_states)[0]["loss"])
        losses[mode + "_first"] = float(m._run(only_first, m.train_states)[0]["loss"])
    assert losses["skip"] == pytest.approx(losses["skip_first"], rel=1e-6)     # the empty frame is not counted
    assert losses["train"] > losses["train_first"]                              # its objectness BCE is
