"""EventDataModule on a tiny RVT-layout dataset: stream order, random windows, mixed halves, workers."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from evdet.data.config import AugmentConfig, DataConfig
from evdet.data.datamodule import EventDataModule

_spec = importlib.util.spec_from_file_location(
    "tiny_dataset", Path(__file__).resolve().parents[1] / "training" / "tiny_dataset.py")
tiny = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("tiny_dataset", tiny)
_spec.loader.exec_module(tiny)

LENGTHS = [11, 7, 9]
NO_AUG = AugmentConfig(flip_prob=0.0)


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tiny.make_tiny_dataset(tmp_path_factory.mktemp("dm"), lengths={"train": LENGTHS, "val": [8, 5]})


def make_dm(root, **kw):
    base = dict(root=str(root), representation=tiny.REPR_NAME, seq_len=3, batch_size=2, num_workers=0,
                augment=NO_AUG)
    base.update(kw)
    return EventDataModule(DataConfig(**base))


def repr_index(batch, b, t):
    """The tiny dataset writes (r % 200) + 1 at channel 0, pixel (0, 0)."""
    return int(batch["frames"][b, t, 0, 0, 0]) - 1


def walk_streams(batches):
    """Per slot: the list of (seq_name, repr index) of its data steps, and the is_first flags seen."""
    walked, firsts = {}, {}
    for batch in batches:
        for b, slot in enumerate(batch["stream_slot"].tolist()):
            steps = [(batch["seq_names"][b], repr_index(batch, b, t))
                     for t in range(batch["frames"].shape[1]) if int(batch["t_us"][b, t]) >= 0]
            walked.setdefault(slot, []).extend(steps)
            firsts.setdefault(slot, []).append((bool(batch["is_first"][b]), steps[0] if steps else None))
    return walked, firsts


def test_facts_of_the_dataset(root):
    dm = make_dm(root)
    assert dm.frame_shape == (4, 64, 96) and dm.input_hw == (64, 96) and dm.in_channels == 4
    assert dm.class_names == ("car", "pedestrian")


def test_stream_slots_walk_whole_sequences_in_order_and_flag_starts(root):
    dm = make_dm(root, sampling="stream", batch_size=2)
    batches = list(dm.train_dataloader())
    walked, firsts = walk_streams(batches)
    assert sorted(walked) == [0, 1]
    by_seq = {}
    for slot, steps in walked.items():
        for name, r in steps:
            by_seq.setdefault(name, []).append((slot, r))
    for i, n in enumerate(LENGTHS):
        entries = by_seq[f"seq_train_{i}"]
        assert len({s for s, _ in entries}) == 1, "a sequence stays in one slot"
        assert [r for _, r in entries] == list(range(n)), "representations in order, each once"
    for slot, flags in firsts.items():
        for is_first, first_step in flags:
            # the state is reset exactly where a sequence starts (or on padding)
            assert is_first == (first_step is None or first_step[1] == 0)


def test_stream_with_workers_keeps_the_order(root):
    plain = list(make_dm(root, sampling="stream", batch_size=2, num_workers=0).train_dataloader())
    with_workers = list(make_dm(root, sampling="stream", batch_size=2, num_workers=2).train_dataloader())
    assert len(plain) == len(with_workers)
    for a, b in zip(plain, with_workers):
        assert a["seq_names"] == b["seq_names"] and torch.equal(a["stream_slot"], b["stream_slot"])
        assert torch.equal(a["frames"], b["frames"]) and torch.equal(a["is_first"], b["is_first"])


def test_random_draws_do_not_depend_on_workers(root):
    aug = AugmentConfig(flip_prob=0.5)
    plain = list(make_dm(root, sampling="random", batch_size=2, num_workers=0, augment=aug).train_dataloader())
    with_workers = list(make_dm(root, sampling="random", batch_size=2, num_workers=2,
                                augment=aug).train_dataloader())
    assert len(plain) == len(with_workers)
    for a, b in zip(plain, with_workers):
        assert torch.equal(a["t_us"], b["t_us"]) and torch.equal(a["frames"], b["frames"])


def test_random_windows_end_on_label_frames(root):
    dm = make_dm(root, sampling="random", batch_size=2)
    seen = 0
    for batch in dm.train_dataloader():
        assert batch["label_mask"][:, -1].all() and batch["is_first"].all()
        assert (batch["stream_slot"] == -1).all()
        for b in range(batch["frames"].shape[0]):
            r = repr_index(batch, b, -1)
            assert r % 2 == 1  # the tiny dataset labels the odd representations
            assert int(batch["t_us"][b, -1]) == (r + 1) * tiny.REPR_US
            frame = (r - 1) // 2
            x, y, w, h, c = tiny.box_of_frame(frame, 2)
            np.testing.assert_allclose(batch["targets"][b][-1].numpy(), [[c, x + w / 2, y + h / 2, w, h]])
            # the steps before are consecutive representations (or left padding)
            for t in range(batch["frames"].shape[1] - 1):
                if int(batch["t_us"][b, t]) >= 0:
                    assert repr_index(batch, b, t) == r - (batch["frames"].shape[1] - 1 - t)
            seen += 1
    assert seen == sum(len(tiny.label_reprs(n)) for n in LENGTHS)


def test_label_mask_marks_exactly_the_labelled_steps(root):
    for batch in make_dm(root, sampling="stream").train_dataloader():
        for b in range(batch["frames"].shape[0]):
            for t in range(batch["frames"].shape[1]):
                has_data = int(batch["t_us"][b, t]) >= 0
                expected = has_data and repr_index(batch, b, t) % 2 == 1
                assert bool(batch["label_mask"][b, t]) == expected
                if not expected:
                    assert batch["targets"][b][t].shape == (0, 5)


def test_mixed_batches_are_half_random_half_stream(root):
    dm = make_dm(root, sampling="mixed", batch_size=4)
    loader = dm.train_dataloader()
    batches = list(loader)
    assert len(batches) == len(loader)
    for batch in batches:
        assert batch["frames"].shape[0] == 4
        assert batch["stream_slot"].tolist()[:2] == [-1, -1] and batch["stream_slot"].tolist()[2:] == [0, 1]
        assert batch["label_mask"][:2, -1].all()
    walked, _ = walk_streams(batches)
    assert sum(len(walked[s]) for s in (0, 1)) == sum(LENGTHS)


def test_validation_is_stream_without_augmentation(root):
    dm = make_dm(root, eval_batch_size=2, augment=AugmentConfig(flip_prob=1.0))
    walked, _ = walk_streams(list(dm.val_dataloader()))
    names = {n for steps in walked.values() for n, _ in steps}
    assert names == {"seq_val_0", "seq_val_1"}
    assert all(r == i for steps in walked.values() for i, (_, r) in enumerate(
        s for s in steps if s[0] == steps[0][0]))


def test_bad_config_is_refused(root, tmp_path):
    with pytest.raises(ValueError, match="root"):
        EventDataModule(DataConfig(root=""))
    with pytest.raises(ValueError, match="mixed"):
        make_dm(root, sampling="mixed", batch_size=1)
    with pytest.raises(FileNotFoundError, match="nosplit"):
        EventDataModule(DataConfig(root=str(root), representation=tiny.REPR_NAME), train_split="nosplit").input_hw


def flipped(batch, b, t):
    """The marker pixel (0, 0) of channel 0 lands at (0, W-1) when the frame was mirrored.

    The marker's value is known from the step's time (repr r ends at (r + 1) * 50 ms); the other
    pixels hold 0 or 3 (noise), so (0, 0) alone does not tell (noise may land there after a flip).
    """
    r = int(batch["t_us"][b, t]) // tiny.REPR_US - 1
    marker = r % 200 + 1
    return int(batch["frames"][b, t, 0, 0, -1]) == marker and int(batch["frames"][b, t, 0, 0, 0]) != marker


def test_stream_augmentation_is_drawn_once_per_sequence(root):
    dm = make_dm(root, sampling="stream", batch_size=2, augment=AugmentConfig(flip_prob=0.5))
    torch.manual_seed(0)
    per_seq = {}
    for epoch in range(3):
        for batch in dm.train_dataloader():
            for b in range(2):
                for t in range(batch["frames"].shape[1]):
                    if int(batch["t_us"][b, t]) >= 0:
                        per_seq.setdefault((epoch, batch["seq_names"][b]), set()).add(flipped(batch, b, t))
    assert all(len(v) == 1 for v in per_seq.values()), "one flip decision per sequence"
    assert {next(iter(v)) for v in per_seq.values()} == {True, False}


def test_random_augmentation_is_drawn_per_sample(root):
    dm = make_dm(root, sampling="random", batch_size=2, augment=AugmentConfig(flip_prob=0.5))
    torch.manual_seed(0)
    draws = []
    for batch in dm.train_dataloader():
        for b in range(batch["frames"].shape[0]):
            steps = {flipped(batch, b, t) for t in range(batch["frames"].shape[1]) if int(batch["t_us"][b, t]) >= 0}
            assert len(steps) == 1  # one draw for the whole window
            draws.append(steps.pop())
    assert set(draws) == {True, False}
    # a flipped sample's box is mirrored too, RVT's convention: x' = W - 1 - x - w, so cx' = W - 1 - cx
    for batch in dm.train_dataloader():
        for b in range(batch["frames"].shape[0]):
            r = int(batch["t_us"][b, -1]) // tiny.REPR_US - 1
            x, y, w, h, c = tiny.box_of_frame((r - 1) // 2, 2)
            cx = x + w / 2 if not flipped(batch, b, -1) else 95 - (x + w / 2)
            np.testing.assert_allclose(batch["targets"][b][-1].numpy(), [[c, cx, y + h / 2, w, h]])


@pytest.mark.parametrize("sampling", ["stream", "random", "mixed"])
def test_resume_skips_trained_batches_and_keeps_draws(root, sampling):
    # the resumed epoch is the rest of the interrupted one: same order, augmentation and state resets
    # (the recurrent states themselves come from the checkpoint), whatever the global RNG does meanwhile
    dm = make_dm(root, sampling=sampling, batch_size=2, augment=AugmentConfig(flip_prob=0.5))
    full = list(dm.train_dataloader())
    loader = dm.train_dataloader()
    loader.start_epoch(0, skip_batches=2)
    torch.manual_seed(123)
    np.random.seed(123)
    resumed = list(loader)
    assert len(resumed) == len(full) - 2
    for a, b in zip(full[2:], resumed):
        assert a["seq_names"] == b["seq_names"] and torch.equal(a["frames"], b["frames"])
        assert torch.equal(a["is_first"], b["is_first"]) and torch.equal(a["t_us"], b["t_us"])
    again = list(loader)  # the next epoch is whole again, and another draw than epoch 0
    assert len(again) == len(full)
    assert any(not torch.equal(a["t_us"], b["t_us"]) for a, b in zip(full, again))


def test_batches_of_counts_travel_as_uint8_and_keep_their_values():
    from evdet.data.batch_items import stack_frames

    counts = [torch.tensor([[[[0.0, 3.0], [10.0, 255.0]]]]), torch.tensor([[[[1.0, 2.0], [0.0, 7.0]]]])]
    out = stack_frames(counts)
    assert out.dtype == torch.uint8 and out.shape == (2, 1, 1, 2, 2)
    assert torch.equal(out.float(), torch.stack(counts))
    # a fractional value (bilinear zoom) or one outside [0, 255] keeps the batch in float32
    for odd in (0.5, 256.0, -1.0):
        mixed = [counts[0], torch.full((1, 1, 2, 2), odd)]
        got = stack_frames(mixed)
        assert got.dtype == torch.float32 and torch.equal(got, torch.stack(mixed))
    # concatenating batches (mixed sampling): uint8 with float32 gives float32, values unchanged
    cat = stack_frames([out, stack_frames([counts[0], torch.full((1, 1, 2, 2), 0.5)])])
    assert cat.dtype == torch.float32 and cat.shape == (4, 1, 1, 2, 2) and cat[1, 0, 0, 1, 1] == 7.0


def test_items_loaded_into_one_batch_tensor_are_stacked_without_a_copy():
    from evdet.data.batch_items import batch_tensor, stack_frames

    batch = batch_tensor((3, 2, 1, 2, 2))
    for i in range(3):
        batch[i] = i
    assert stack_frames([batch[0], batch[1], batch[2]]) is batch            # the slots in order: the tensor itself
    # out of order, or an item with frames of its own (a float path): stacked, values kept
    swapped = stack_frames([batch[1], batch[0], batch[2]])
    assert swapped is not batch and swapped[:, 0, 0, 0, 0].tolist() == [1, 0, 2]
    mixed = stack_frames([batch[0], torch.full((2, 1, 2, 2), 0.5), batch[2]])
    assert mixed.dtype == torch.float32 and mixed[:, 0, 0, 0, 0].tolist() == [0.0, 0.5, 2.0]
