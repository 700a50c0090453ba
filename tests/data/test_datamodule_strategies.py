"""The data strategies inside EventDataModule batches: track ids, event augmentation, resolutions, weights."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from evdet.data.config import AugmentConfig, DataConfig, MultiResConfig, SampleWeightConfig
from evdet.data.datamodule import EventDataModule
from evdet.data.window_loaders import WindowSampler
from evdet.data.event_augment import time_reverse

_spec = importlib.util.spec_from_file_location(
    "tiny_dataset", Path(__file__).resolve().parents[1] / "training" / "tiny_dataset.py")
tiny = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("tiny_dataset", tiny)
_spec.loader.exec_module(tiny)

NO_AUG = AugmentConfig(flip_prob=0.0)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tiny.make_tiny_dataset(tmp_path_factory.mktemp("dms"), lengths={"train": [11, 7, 9], "val": [8, 5]})


def make_dm(root, **kw):
    base = dict(root=str(root), representation=tiny.REPR_NAME, seq_len=3, batch_size=2, num_workers=0,
                augment=NO_AUG)
    base.update(kw)
    return EventDataModule(DataConfig(**base))


def first(loader):
    return next(iter(loader))


def test_batches_carry_track_ids_and_unit_scale_by_default(root):
    batch = first(make_dm(root, sampling="stream").train_dataloader())
    assert batch["input_scale"].tolist() == [[1.0, 1.0], [1.0, 1.0]]
    for b in range(2):
        for t in range(3):
            assert batch["track_ids"][b][t].shape[0] == batch["targets"][b][t].shape[0]
    # tiny dataset: the box of label frame i has track id i; frame 0 sits at representation 1
    labelled = [(b, t) for b in range(2) for t in range(3) if batch["label_mask"][b, t]]
    assert labelled and all(batch["track_ids"][b][t].dtype == torch.int64 for b, t in labelled)


def test_time_reversal_in_a_batch_is_the_reversed_stored_representation(root):
    plain = first(make_dm(root, sampling="stream").train_dataloader())
    rev = first(make_dm(root, sampling="stream", augment=AugmentConfig(flip_prob=0.0, time_reversal_prob=1.0))
                .train_dataloader())
    torch.testing.assert_close(rev["frames"][0], time_reverse(plain["frames"][0], 2))


def test_random_resolution_is_shared_by_a_batch_and_scales_boxes_exactly(root):
    dm = make_dm(root, sampling="random", multires=MultiResConfig(scales=(0.5, 2.0)))
    plain = make_dm(root, sampling="random")
    sizes = set()
    for batch, ref in zip(dm.train_dataloader(), plain.train_dataloader()):
        sy, sx = batch["input_scale"][0].tolist()
        assert (batch["input_scale"] == batch["input_scale"][0]).all()
        assert tuple(batch["frames"].shape[-2:]) == (round(64 * sy), round(96 * sx))
        sizes.add(tuple(batch["frames"].shape[-2:]))
        for b in range(2):
            t = ref["targets"][b][-1]
            expect = t * torch.tensor([1.0, sx, sy, sx, sy])
            torch.testing.assert_close(batch["targets"][b][-1], expect)
    assert sizes == {(32, 48), (128, 192)}


def test_stream_and_mixed_resolution_is_one_per_epoch(root):
    dm = make_dm(root, sampling="mixed", batch_size=4, multires=MultiResConfig(scales=(0.5, 1.0), jitter=(0.9, 1.1)))
    loader = dm.train_dataloader()
    shapes = {tuple(b["frames"].shape[-2:]) for b in loader}
    assert len(shapes) == 1


def test_eval_scale_resizes_the_validation_frames(root):
    batch = first(make_dm(root, multires=MultiResConfig(eval_scale=2.0)).val_dataloader())
    assert tuple(batch["frames"].shape[-2:]) == (128, 192) and batch["input_scale"][0].tolist() == [2.0, 2.0]


def test_weighted_window_sampler_draws_by_the_weights():
    keys = list(WindowSampler(4, seed=1, weights=np.array([0.0, 0.0, 0.0, 1.0]), batch_size=2))
    assert [k[0] for k in keys] == [3, 3, 3, 3]
    assert [k[2][-1] for k in keys] == [0, 0, 1, 1]   # batch key: position // batch_size


def test_small_object_weights_reach_the_loader_and_the_report(root):
    dm = make_dm(root, sampling="random", sample_weighting=SampleWeightConfig(mode="small_objects", small_group=""))
    loader = dm.train_dataloader()
    assert loader.loader.sampler.weights is not None
    report = dm.sampling_report["frames"]
    # every tiny box (24x20 = 480 px^2) is small: all weights 1 + boost, share 1 either way
    assert report["weight_min"] == report["weight_max"] == 5.0
    assert report["small_box_share_uniform"] == report["small_box_share_weighted"] == 1.0
