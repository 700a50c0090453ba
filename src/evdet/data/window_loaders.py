"""Random-window and stream loaders of training and validation batches (``batch_items`` layout).

Stream loaders and workers: the B slots are split into G groups (G = gcd(B, num_workers), at least
1); the dataset in worker g produces the sub-batches of group g only, and a DataLoader over an
IterableDataset returns worker outputs in round-robin order, so ``StreamLoader`` rebuilds each full
batch from G consecutive sub-batches and every slot keeps its sequence order (RVT's approach).
Mixed mode: the batch is the concatenation of a random batch (B // 2 items) and a stream batch
(B - B // 2 slots); the random loader is cycled so that an epoch is one pass of the streams.
Under DDP each rank takes its own share: its own stream slots of a plan over all ranks' slots, and a
``WindowSampler`` share of the random windows (the Trainer runs with ``use_distributed_sampler=False``).
Every random draw (window order, augmentation) is a function of (seed, epoch, pass, window or slot),
never of an RNG's state, so a resumed epoch (``start_epoch(epoch, skip_batches)``) yields exactly the
batches the interrupted one would have, with or without workers.
"""

from __future__ import annotations

import math
from typing import Iterator, Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler

from evdet.data.augment import IDENTITY, AugmentParams, draw_augment
from evdet.data.batch_items import batch_tensor, collate_items, concat_batches, load_window
from evdet.data.config import AugmentConfig, MultiResConfig
from evdet.data.event_augment import (
    NO_EVENT_AUGMENT,
    EventAugmentParams,
    EventLayout,
    draw_event_augment,
)
from evdet.data.multires import draw_scale
from evdet.data.samplers import Window, stream_plan
from evdet.data.sampling_weights import weighted_order
from evdet.data.sequence_store import SequenceStore


def batch_slots(store: SequenceStore, windows: list[Window], frame_shape) -> Optional[torch.Tensor]:
    """A (B, T, C, H, W) uint8 ``batch_tensor`` whose slots the windows' items load into, or None when the
    stored representation is not uint8 or the windows differ in length."""
    lengths = {w.length for w in windows}
    stored = [w.seq_index for w in windows if w.seq_index >= 0]
    if len(lengths) != 1 or not stored or np.dtype(store.get(stored[0]).dtype) != np.uint8:
        return None
    return batch_tensor((len(windows), lengths.pop(), *frame_shape))


class RandomWindowDataset(Dataset):
    """Map-style dataset: one random window per label frame, augmentation drawn per sample.

    Indexed by the ``(window index, draw seed, batch key)`` keys of ``WindowSampler``: the augmentation
    of an item is drawn from ``numpy.random.default_rng(draw seed)``, whatever process loads it; the
    resolution (``multires``) from the batch key (``scale_per="batch"``) or from (seed, epoch)
    (``"epoch"``: mixed sampling, where the stream half fixes the size).
    """

    def __init__(self, store: SequenceStore, windows: list[Window], frame_shape, augment: Optional[AugmentConfig],
                 *, layout: Optional[EventLayout] = None, multires: MultiResConfig = MultiResConfig(),
                 scale_per: str = "batch"):
        self.store, self.windows, self.frame_shape, self.augment = store, windows, tuple(frame_shape), augment
        self.layout, self.multires, self.scale_per = layout, multires, scale_per

    def __len__(self) -> int:
        return len(self.windows)

    def __getitem__(self, key: tuple[int, tuple[int, ...], tuple[int, ...]],
                    out: Optional[torch.Tensor] = None) -> dict:
        index, draw_seed, batch_key = key
        params, events = IDENTITY, NO_EVENT_AUGMENT
        if self.augment is not None:
            rng = np.random.default_rng(draw_seed)
            params = draw_augment(self.augment, rng, self.frame_shape[1], self.frame_shape[2])
            events = draw_event_augment(self.augment, rng)
        scale = draw_scale(self.multires, batch_key if self.scale_per == "batch" else draw_seed[:2])
        return load_window(self.store, self.windows[index], self.frame_shape, params, events=events,
                           layout=self.layout, scale=scale, multires=self.multires, out=out)

    def __getitems__(self, keys: list) -> list[dict]:
        """The items of one batch (the DataLoader's batched fetch), their frames loaded into one
        ``batch_tensor`` (shared memory in a worker), which ``collate_items`` then takes as it is."""
        out = batch_slots(self.store, [self.windows[k[0]] for k in keys], self.frame_shape)
        return [self.__getitem__(k, None if out is None else out[i]) for i, k in enumerate(keys)]


class WindowSampler(Sampler):
    """Random window order per (seed, epoch, pass) and this rank's share, yielding (index, draw seed, batch key).

    Like ``DistributedSampler`` (drop_last=False), the permutation is padded with its first indices to
    a multiple of ``world`` and rank r takes every world-th index from r. Each iteration is the next
    pass; ``start(epoch, pass_index, skip)`` makes the next iteration pass ``pass_index`` of ``epoch``
    without its first ``skip`` items (a resumed epoch).

    With ``weights`` (``evdet.data.sampling_weights``) the pass is ``num_windows`` draws with
    replacement, P(i) ~ weights[i], instead of a permutation. The batch key is (seed, epoch, pass,
    position in this rank's share // batch_size).

    Args:
        num_windows: windows of the dataset; seed: base seed; rank, world: DDP rank and world size.
    """

    def __init__(self, num_windows: int, *, seed: int = 0, rank: int = 0, world: int = 1,
                 weights: Optional[np.ndarray] = None, batch_size: int = 1):
        self.num_windows, self.seed, self.rank, self.world = int(num_windows), int(seed), int(rank), int(world)
        self.weights, self.batch_size = weights, int(batch_size)
        self.num_samples = math.ceil(self.num_windows / self.world)
        self._epoch, self._pass, self._skip = 0, 0, 0

    def __len__(self) -> int:
        return self.num_samples

    def start(self, epoch: int, pass_index: int = 0, skip: int = 0) -> None:
        self._epoch, self._pass, self._skip = int(epoch), int(pass_index), int(skip)

    def __iter__(self) -> Iterator[tuple[int, tuple[int, ...], tuple[int, ...]]]:
        epoch, pass_index, skip = self._epoch, self._pass, self._skip
        self._pass, self._skip = pass_index + 1, 0
        if self.weights is None:
            order = np.random.default_rng([self.seed, epoch, pass_index]).permutation(self.num_windows)
        else:
            order = weighted_order(self.weights, (self.seed, epoch, pass_index))
        order = np.resize(order, self.num_samples * self.world)[self.rank :: self.world]
        for position, index in enumerate(order[skip:].tolist(), start=skip):
            yield index, (self.seed, epoch, pass_index, index), (self.seed, epoch, pass_index,
                                                                 position // self.batch_size)


class StreamDataset(IterableDataset):
    """Iterable dataset of stream sub-batches; worker g yields the sub-batches of slot group g.

    Args:
        num_reprs: representations per sequence.
        num_slots: slots of this rank; ``slot_offset`` is the first global slot id of this rank.
        total_slots: slots over all ranks (the plan is made over all of them).
        num_groups: slot groups (= DataLoader workers, or 1 without workers).
        augment: None (no augmentation) or the config; geometry drawn once per sequence and slot.
        layout: count layout of the event augmentations (None: none on).
        multires: resolution settings; ``train`` draws the size per epoch, else ``eval_scale`` is used.
        seq_weights: per sequence, weight of the epoch's draws with replacement (None: every sequence once).
    """

    def __init__(self, store: SequenceStore, num_reprs: list[int], frame_shape, *, seq_len: int, num_slots: int,
                 slot_offset: int = 0, total_slots: Optional[int] = None, num_groups: int = 1,
                 shuffle: bool = False, seed: int = 0, augment: Optional[AugmentConfig] = None,
                 layout: Optional[EventLayout] = None, multires: MultiResConfig = MultiResConfig(),
                 train: bool = False, seq_weights: Optional[np.ndarray] = None):
        if num_slots % num_groups:
            raise ValueError(f"num_slots={num_slots} is not divisible by num_groups={num_groups}")
        self.store, self.num_reprs, self.frame_shape = store, list(num_reprs), tuple(frame_shape)
        self.seq_len, self.num_slots, self.slot_offset = seq_len, num_slots, slot_offset
        self.total_slots = total_slots or num_slots
        self.num_groups, self.shuffle, self.seed, self.augment = num_groups, shuffle, seed, augment
        self.layout, self.multires, self.train, self.seq_weights = layout, multires, train, seq_weights
        self.epoch = 0
        self.skip_chunks = 0  # resume inside an epoch: start at this chunk, states reset there

    def plan(self) -> list[list[Window]]:
        """This rank's slots' windows for the current epoch."""
        full = stream_plan(self.num_reprs, self.total_slots, self.seq_len, shuffle=self.shuffle,
                           seed=self.seed + self.epoch, weights=self.seq_weights)
        return full[self.slot_offset : self.slot_offset + self.num_slots]

    def num_batches(self) -> int:
        """Full batches per epoch (chunks of the longest slot)."""
        return len(self.plan()[0]) if self.num_slots else 0

    def __iter__(self) -> Iterator[dict]:
        info = torch.utils.data.get_worker_info()
        groups = range(self.num_groups) if info is None else [info.id]
        plan = self.plan()
        per_group = self.num_slots // self.num_groups
        params: dict[int, tuple[AugmentParams, EventAugmentParams]] = {}
        scale = draw_scale(self.multires, (self.seed, self.epoch)) if self.train else self.multires.eval_scale
        skip = self.skip_chunks
        for k in range(skip, len(plan[0]) if plan else 0):
            for g in groups:
                slots = range(g * per_group, (g + 1) * per_group)
                out = batch_slots(self.store, [plan[s][k] for s in slots], self.frame_shape)
                items = []
                for j, s in enumerate(slots):
                    w = plan[s][k]
                    if k == skip and not w.is_first:
                        # resumed mid-sequence: the same augmentation as the sequence start; the slot's
                        # recurrent state comes from the checkpoint (DetectionModule), zeros without one
                        start = max(j for j in range(k + 1) if plan[s][j].is_first)
                        params[s] = self._draw(s, start)
                    elif w.is_first:
                        params[s] = self._draw(s, k)
                    geo, events = params[s]
                    items.append(load_window(self.store, w, self.frame_shape, geo, events=events, layout=self.layout,
                                             scale=scale, multires=self.multires, out=None if out is None else out[j]))
                yield collate_items(items, [self.slot_offset + s for s in slots])

    def _draw(self, slot: int, chunk: int) -> tuple[AugmentParams, EventAugmentParams]:
        if self.augment is None:
            return IDENTITY, NO_EVENT_AUGMENT
        rng = np.random.default_rng([self.seed, self.epoch, self.slot_offset + slot, chunk])
        geo = draw_augment(self.augment, rng, self.frame_shape[1], self.frame_shape[2], stream=True)
        return geo, draw_event_augment(self.augment, rng)


class StreamLoader:
    """Iterable of full stream batches, rebuilt from the workers' sub-batches in slot order."""

    def __init__(self, dataset: StreamDataset, pin_memory: bool = False):
        # not named `dataset`: Lightning would treat this object as a DataLoader of an IterableDataset
        self.stream_dataset, self.pin_memory = dataset, pin_memory
        self._epoch, self._skip = 0, 0

    def __len__(self) -> int:
        return self.stream_dataset.num_batches()

    def start_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        """The epoch number (shuffle seed) of the next pass, and batches of it already trained on."""
        self._epoch, self._skip = epoch, skip_batches

    def __iter__(self) -> Iterator[dict]:
        self.stream_dataset.epoch = self._epoch
        self.stream_dataset.skip_chunks = self._skip
        self._epoch, self._skip = self._epoch + 1, 0
        workers = self.stream_dataset.num_groups if self.stream_dataset.num_groups > 1 else 0
        loader = DataLoader(self.stream_dataset, batch_size=None, num_workers=workers, pin_memory=self.pin_memory)
        group: list[dict] = []
        for sub in loader:
            group.append(sub)
            if len(group) == self.stream_dataset.num_groups:
                yield concat_batches(group)
                group = []


class MixedLoader:
    """Iterable of batches whose first part is random windows and second part stream slots."""

    def __init__(self, random_loader: DataLoader, stream_loader: StreamLoader):
        self.random_loader, self.stream_loader = random_loader, stream_loader
        self._epoch, self._skip = 0, 0

    def __len__(self) -> int:
        return len(self.stream_loader)

    def start_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        """The epoch number (shuffle seed) of the next pass, and batches of it already trained on."""
        self._epoch, self._skip = epoch, skip_batches
        self.stream_loader.start_epoch(epoch, skip_batches)

    def __iter__(self) -> Iterator[dict]:
        # the random half is cycled: batch k of an epoch is batch k % per_pass of pass k // per_pass
        per_pass = len(self.random_loader)
        self.random_loader.sampler.start(self._epoch, self._skip // per_pass,
                                         (self._skip % per_pass) * self.random_loader.batch_size)
        self._epoch, self._skip = self._epoch + 1, 0
        rand_iter = iter(self.random_loader)
        for stream_batch in self.stream_loader:
            try:
                rand_batch = next(rand_iter)
            except StopIteration:
                rand_iter = iter(self.random_loader)
                rand_batch = next(rand_iter)
            yield concat_batches([rand_batch, stream_batch])


class EpochLoader:
    """A random-window DataLoader (``WindowSampler``) whose every pass is the next epoch."""

    def __init__(self, loader: DataLoader):
        self.loader, self._epoch, self._skip = loader, 0, 0

    def __len__(self) -> int:
        return len(self.loader)

    def start_epoch(self, epoch: int, skip_batches: int = 0) -> None:
        """The epoch number (shuffle seed) of the next pass, and batches of it already trained on."""
        self._epoch, self._skip = epoch, skip_batches

    def __iter__(self) -> Iterator[dict]:
        self.loader.sampler.start(self._epoch, 0, self._skip * self.loader.batch_size)
        self._epoch, self._skip = self._epoch + 1, 0
        return iter(self.loader)


