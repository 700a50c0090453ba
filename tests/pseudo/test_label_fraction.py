"""data.label_fraction: exact, deterministic choice; withheld labels never reach a batch's targets or the loss."""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pytest
import torch
from lightning.pytorch import Callback
from tiny_dataset import box_of_frame, label_reprs

from evdet.data.config import DataConfig
from evdet.data.datamodule import EventDataModule
from evdet.data.label_subset import kept_count, select_kept_frames, withheld_label_frames
from evdet.experiments.records.run_config import load_run_config

TRAIN_LENGTHS = {"seq_train_0": 11, "seq_train_1": 7, "seq_train_2": 9}   # -> 5, 3, 4 label frames


@pytest.mark.parametrize("fraction,total,expected", [
    (0.1, 27, 3),     # 2.7 -> 3
    (0.05, 27, 1),    # 1.35 -> 1
    (0.05, 10, 1),    # 0.5 -> 1 (half up)
    (0.01, 10, 1),    # 0.1 -> at least one
    (0.25, 10, 3),    # 2.5 -> 3
    (1.0, 12, 12),
])
def test_kept_count_by_hand(fraction, total, expected):
    assert kept_count(fraction, total) == expected


def test_frames_selection_is_exact_and_deterministic():
    counts = [5, 3, 4]
    masks = select_kept_frames(counts, 0.5, "frames", seed=7)
    assert [m.size for m in masks] == counts
    assert sum(int(m.sum()) for m in masks) == 6
    again = select_kept_frames(counts, 0.5, "frames", seed=7)
    assert all(np.array_equal(a, b) for a, b in zip(masks, again))
    draws = {tuple(np.concatenate(select_kept_frames(counts, 0.5, "frames", seed=s))) for s in range(20)}
    assert len(draws) > 5          # the seed matters
    assert all(np.concatenate(select_kept_frames(counts, 1.0, "frames", seed=3)))


def test_sequences_selection_keeps_whole_sequences():
    counts = [5, 0, 3, 2]          # 3 labelled sequences -> round(1.5) = 2 kept
    for seed in range(10):
        masks = select_kept_frames(counts, 0.5, "sequences", seed=seed)
        assert masks[1].size == 0
        whole = [bool(m.all()) for m in masks if m.size]
        assert all(bool(m.all()) or not m.any() for m in masks)
        assert sum(whole) == 2


@pytest.mark.parametrize("bad", [0.0, -0.1, 1.5, math.nan])
def test_fraction_outside_unit_interval_is_refused(bad):
    with pytest.raises(ValueError, match=r"label_fraction: must lie in \(0, 1\]"):
        DataConfig(label_fraction=bad)
    with pytest.raises(ValueError, match=r"must lie in \(0, 1\]"):
        select_kept_frames([3, 2], bad)


def test_config_override_is_checked():
    with pytest.raises(ValueError, match=r"data.label_fraction: must lie in \(0, 1\], got 2"):
        load_run_config(overrides=["data.label_fraction=2"])
    assert load_run_config(overrides=["data.label_fraction=0.1"]).data.label_fraction == 0.1


def test_dataset_without_label_frames_is_refused():
    with pytest.raises(ValueError, match="no labelled frame"):
        select_kept_frames([0, 0], 0.5, source="DATA/train")


def _kept_reprs(tiny_root, fraction, by, seed) -> dict[str, set[int]]:
    withheld = withheld_label_frames(tiny_root, fraction, by, seed)
    out = {}
    for name, n in TRAIN_LENGTHS.items():
        frames = label_reprs(n)
        out[name] = set(frames.tolist()) - set(frames[withheld[name]].tolist())
    return out


def test_withheld_listing_matches_the_hand_count(tiny_root):
    withheld = withheld_label_frames(tiny_root, 0.5, "frames", seed=3)
    assert sorted(withheld) == sorted(TRAIN_LENGTHS)
    assert sum(w.size for w in withheld.values()) == 12 - 6
    by_seq = withheld_label_frames(tiny_root, 0.5, "sequences", seed=3)     # 3 sequences -> 2 kept
    assert sorted(w.size for w in by_seq.values()) in ([0, 0, 3], [0, 0, 4], [0, 0, 5])


@pytest.mark.parametrize("sampling", ["random", "stream", "mixed"])
def test_batches_never_carry_withheld_labels(nano_cfgs, tiny_root, sampling):
    data = dataclasses.replace(nano_cfgs[0], sampling=sampling, label_fraction=0.5, label_seed=3)
    kept = _kept_reprs(tiny_root, 0.5, "frames", 3)
    dm = EventDataModule(data, seed=0)
    seen_labelled, seen_unlabelled = set(), set()
    for batch in dm.train_dataloader():
        for b, name in enumerate(batch["seq_names"]):
            for t in range(batch["frames"].shape[1]):
                r = int(batch["frames"][b, t, 0, 0, 0]) - 1       # tiny data: pixel (0, 0) holds repr + 1
                if batch["label_mask"][b, t]:
                    assert r in kept[name], f"{name} repr {r} is withheld but labelled"
                    frame = int(np.flatnonzero(label_reprs(TRAIN_LENGTHS[name]) == r)[0])
                    x, y, w, h, c = box_of_frame(frame, 2)
                    expected = torch.tensor([[c, x + w / 2, y + h / 2, w, h]], dtype=torch.float32)
                    torch.testing.assert_close(batch["targets"][b][t], expected)
                    seen_labelled.add((name, r))
                else:
                    assert batch["targets"][b][t].shape == (0, 5)
                if batch["unlabelled_mask"][b, t]:
                    assert r not in kept[name] and r in label_reprs(TRAIN_LENGTHS[name])
                    seen_unlabelled.add((name, r))
    if sampling != "random":       # a stream epoch walks every representation once
        assert seen_labelled == {(n, r) for n, rs in kept.items() for r in rs}
        assert len(seen_unlabelled) == 6
    else:                           # one window per kept label frame
        assert {(n, r) for n, rs in kept.items() for r in rs} <= seen_labelled


class _CheckLossTargets(Callback):
    """A forward pre-hook on the criterion: every target it receives belongs to a kept label frame."""

    def __init__(self, kept):
        self.kept, self.batch, self.calls = kept, None, []

    def on_train_start(self, trainer, pl_module):
        pl_module.criterion.register_forward_pre_hook(self._hook)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        self.batch, self.sup_done = batch, False

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.batch = None           # validation calls the criterion too: not checked here

    def _hook(self, module, args):
        targets, batch = args[1], self.batch
        if batch is None:
            return
        label = batch["label_mask"].bool()
        unl = batch["unlabelled_mask"].bool()
        if not self.sup_done and label.any():      # the supervised call comes first
            self.sup_done = True
            self.calls.append("sup")
            assert len(targets) == int(label.sum())
            for k, (b, t) in enumerate(label.nonzero().tolist()):
                r = int(batch["frames"][b, t, 0, 0, 0]) - 1
                assert r in self.kept[batch["seq_names"][b]]
                assert torch.equal(targets[k], batch["targets"][b][t])
        else:
            self.calls.append("pseudo")
            assert len(targets) == int(unl.sum())


@pytest.mark.parametrize("ema", [0.0, 0.9])
def test_loss_only_sees_kept_labels(nano_cfgs, tiny_root, tmp_path, ema):
    from evdet.training.config import EmaTeacherConfig
    from evdet.training.fit import fit

    data, model, loss, train = nano_cfgs
    data = dataclasses.replace(data, label_fraction=0.5, label_seed=3)
    train = dataclasses.replace(train, max_steps=3, ema_teacher=EmaTeacherConfig(decay=ema, score_thr=0.0,
                                                                                   class_thr=0.0))
    check = _CheckLossTargets(_kept_reprs(tiny_root, 0.5, "frames", 3))
    fit(data, model, loss, train, tmp_path / "run", callbacks=[check], progress=False)
    assert "sup" in check.calls
    assert ("pseudo" in check.calls) == (ema > 0)
