"""Training-side data: windows of a preprocessed dataset as batches (random / stream / mixed).

Batch (``dict``; every loader of this module yields this)::

    frames      uint8 or float32 (B, T, C, H, W)   representation counts (augmented in training): uint8
                                when every value of the batch is a count in [0, 255] (the stored histogram,
                                flips, nearest zooms, integer noise), float32 otherwise; the model casts
                                to float32, values unchanged (``stack_frames``)
    targets     list (B) of list (T) of float32 Tensor (n, 5): class_id, cx, cy, w, h, input pixels
    label_mask  bool (B, T)     step has a label frame (loss / predictions only there)
    unlabelled_mask bool (B, T) step has a label frame whose labels are withheld (``data.label_fraction``;
                                no boxes in targets, no supervised loss; pseudo-labels may go there)
    is_first    bool (B,)       reset the recurrent state before this item
    seq_names   list[str] (B)   "" for padding items
    t_us        int64 (B, T)    end time of each representation, -1 on padding steps
    stream_slot int64 (B,)      recurrent-state slot of a stream item, -1 for random items
    track_ids   list (B) of list (T) of int64 Tensor (n,): GT track id of each target row
    input_scale float32 (B, 2)  (sy, sx): input pixels per stored pixel (``data.multires``; 1 without it)

Training strategies (all off by default): event augmentations (``evdet.data.event_augment``) on the
stored counts before the geometry, weighted draws (``evdet.data.sampling_weights``) of the random
windows or stream sequences, and resolution draws (``evdet.data.multires``) after the geometry.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Optional

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, IterableDataset, Sampler

from evdet.data.augment import (
    IDENTITY,
    AugmentParams,
    augment_boxes,
    augment_frames,
    draw_augment,
    keeps_integer_counts,
    place_zoom_crop,
)
from evdet.data.classes import class_merge_ids, load_class_map, merge_box_classes
from evdet.data.config import AugmentConfig, DataConfig, MultiResConfig
from evdet.data.event_augment import (
    NO_EVENT_AUGMENT,
    EventAugmentParams,
    EventLayout,
    apply_event_augment,
    draw_event_augment,
    event_layout,
)
from evdet.data.multires import draw_scale, resize_counts, scale_targets, scaled_hw
from evdet.data.samplers import Window, random_windows, stream_plan
from evdet.data.sampling_weights import weighted_order


@dataclass(frozen=True)
class SequenceMeta:
    """What the sampling plans need to know about one sequence (read once in the main process)."""

    path: str
    name: str
    num_reprs: int
    label_repr_idx: np.ndarray


class SequenceStore:
    """Opens ``PreprocessedSequence`` objects lazily, once per process (workers reopen them)."""

    def __init__(self, paths: list[str], representation: str, withheld_reprs: Optional[list[np.ndarray]] = None,
                 class_ids: Optional[tuple[int, ...]] = None):
        self.paths = list(paths)
        self.representation = representation
        self.class_ids = class_ids   # merged class of every stored class id (data.class_map etram3), None: as stored
        # per sequence, representation indices whose label frame is withheld (evdet.data.label_subset)
        self.withheld = [frozenset(np.asarray(w).tolist()) for w in withheld_reprs] if withheld_reprs else None
        self._open: dict[int, Any] = {}

    def __getstate__(self) -> dict:
        return {"paths": self.paths, "representation": self.representation, "withheld": self.withheld,
                "class_ids": self.class_ids, "_open": {}}

    def labels_at_repr(self, index: int, repr_idx: int):
        """Boxes of the label frame at representation ``repr_idx`` of sequence ``index`` (classes merged), or None."""
        return merge_box_classes(self.get(index).labels_at_repr(repr_idx), self.class_ids)

    def is_withheld(self, index: int, repr_idx: int) -> bool:
        """True when the label frame at representation ``repr_idx`` of sequence ``index`` is withheld."""
        return self.withheld is not None and repr_idx in self.withheld[index]

    def get(self, index: int):
        """The sequence object of index (opened on first use in this process)."""
        if index not in self._open:
            from evdet.data.preprocessed import PreprocessedSequence

            self._open[index] = PreprocessedSequence(Path(self.paths[index]), representation=self.representation)
        return self._open[index]


def read_split_meta(root: str | Path, split: str, representation: str) -> list[SequenceMeta]:
    """Names, lengths and label frames of every sequence of a split (sorted by name)."""
    from evdet.data.preprocessed import PreprocessedSequence, list_sequences

    out = []
    for path in list_sequences(Path(root), split):
        seq = PreprocessedSequence(Path(path), representation=representation)
        out.append(SequenceMeta(str(path), seq.name, int(seq.num_reprs), np.asarray(seq.label_repr_idx, np.int64)))
    return out


def load_window(
    store: SequenceStore, window: Window, frame_shape: tuple[int, int, int], params: AugmentParams = IDENTITY, *,
    events: EventAugmentParams = NO_EVENT_AUGMENT, layout: Optional[EventLayout] = None, scale: float = 1.0,
    multires: MultiResConfig = MultiResConfig(),
) -> dict:
    """One batch item (unbatched batch fields) from a window.

    Args:
        frame_shape: (C, H, W) of one representation (used for padding steps).
        events, layout: event augmentations and the count layout (``evdet.data.event_augment``).
        scale: input resolution factor (``evdet.data.multires``), resampled per ``multires``.
    """
    channels, height, width = frame_shape
    t_steps = window.length
    frames = torch.zeros((t_steps, channels, height, width), dtype=torch.uint8)   # padding item: no counts
    label_mask = torch.zeros(t_steps, dtype=torch.bool)
    unlabelled_mask = torch.zeros(t_steps, dtype=torch.bool)
    t_us = torch.full((t_steps,), -1, dtype=torch.int64)
    targets = [torch.zeros((0, 5), dtype=torch.float32) for _ in range(t_steps)]
    track_ids = [torch.zeros(0, dtype=torch.int64) for _ in range(t_steps)]
    name = ""
    if window.seq_index >= 0:
        seq = store.get(window.seq_index)
        name = seq.name
        lo = window.pad_before
        hi = lo + window.stop - window.start
        params = place_zoom_crop(params, latest_label_boxes(store, window), height, width)
        data = torch.from_numpy(np.ascontiguousarray(seq.reprs(window.start, window.stop)))
        stays_uint8 = (data.dtype == torch.uint8 and keeps_integer_counts(params) and scale == 1.0
                       and not (layout is not None and events.active))
        data = apply_event_augment(data if stays_uint8 else data.float(), events, layout,
                                   noise_seed=params.noise_seed, step_ids=np.arange(window.start, window.stop))
        data = augment_frames(data, params)
        if lo == 0 and hi == t_steps:
            frames = data
        else:
            frames = data.new_zeros((t_steps, channels, height, width))
            frames[lo:hi] = data
        t_us[lo:hi] = torch.from_numpy(np.asarray(seq.repr_timestamps_us[window.start : window.stop], np.int64))
        for step, r in enumerate(range(window.start, window.stop), start=lo):
            boxes = store.labels_at_repr(window.seq_index, r)
            if boxes is None:
                continue
            if store.is_withheld(window.seq_index, r):
                unlabelled_mask[step] = True   # the boxes are never handed to training
                continue
            label_mask[step] = True
            targets[step], track_ids[step] = boxes_to_targets(boxes, params, height, width)
    sy = sx = 1.0
    if scale != 1.0:
        out_hw = scaled_hw(height, width, scale)
        frames = resize_counts(frames.float(), out_hw, multires.resample, multires.count_cutoff)
        sy, sx = out_hw[0] / height, out_hw[1] / width
        targets = [scale_targets(t, sx, sy) for t in targets]
    return {"frames": frames, "targets": targets, "label_mask": label_mask, "unlabelled_mask": unlabelled_mask,
            "is_first": window.is_first, "seq_name": name, "t_us": t_us, "track_ids": track_ids,
            "input_scale": torch.tensor([sy, sx], dtype=torch.float32)}


def latest_label_boxes(store: SequenceStore, window: Window) -> Optional[np.ndarray]:
    """(n, 4) x, y, w, h of the window's latest label frame that holds boxes (withheld frames aside), or
    None (RVT's ``get_most_recent_objframe(check_if_nonempty=True)``, where a zoom-in window is placed)."""
    seq = store.get(window.seq_index)
    for r in range(window.stop - 1, window.start - 1, -1):
        boxes = seq.labels_at_repr(r)
        if boxes is not None and len(boxes) and not store.is_withheld(window.seq_index, r):
            return np.stack([boxes["x"], boxes["y"], boxes["w"], boxes["h"]], axis=1).astype(np.float64)
    return None


def boxes_to_targets(boxes: np.ndarray, params: AugmentParams, height: int,
                     width: int) -> tuple[torch.Tensor, torch.Tensor]:
    """BBOX array (top-left x, y, w, h; frame pixels) -> augmented (n, 5) class_id, cx, cy, w, h and (n,) track ids."""
    xyxy = np.stack([boxes["x"], boxes["y"], boxes["x"] + boxes["w"], boxes["y"] + boxes["h"]], axis=1)
    moved, keep = augment_boxes(xyxy, params, height, width)
    cls = boxes["class_id"][keep].astype(np.float32)
    out = np.stack([cls, (moved[:, 0] + moved[:, 2]) / 2, (moved[:, 1] + moved[:, 3]) / 2,
                    moved[:, 2] - moved[:, 0], moved[:, 3] - moved[:, 1]], axis=1)
    tracks = torch.from_numpy(np.asarray(boxes["track_id"][keep], dtype=np.int64))
    return torch.from_numpy(out.astype(np.float32).reshape(-1, 5)), tracks


def stack_frames(frames: list[torch.Tensor]) -> torch.Tensor:
    """Stack per-item frames (or concatenate batches' frames) as uint8 when every value is a count in
    [0, 255], else as float32. uint8 is a quarter of the memory and of the copies between loader
    processes and the trainer (RVT feeds its uint8 histograms the same way); values are unchanged.
    """
    counts = all(f.dtype == torch.uint8 or (f.numel() == 0 or (f.min() >= 0 and f.max() <= 255
                                                               and torch.equal(f, f.trunc()))) for f in frames)
    dtype = torch.uint8 if counts else torch.float32
    out = [f.to(dtype) for f in frames]
    concat = out[0].dim() == 5
    shape = (sum(f.shape[0] for f in out), *out[0].shape[1:]) if concat else (len(out), *out[0].shape)
    dest = None
    if torch.utils.data.get_worker_info() is not None:   # a loader worker: straight into shared memory
        storage = out[0]._typed_storage()._new_shared(math.prod(shape), device=out[0].device)
        dest = out[0].new(storage).resize_(shape)
    return torch.cat(out, out=dest) if concat else torch.stack(out, out=dest)


def collate_items(items: list[dict], slots: Optional[list[int]] = None) -> dict:
    """Stack unbatched items into a batch dict (see module docstring)."""
    return {
        "frames": stack_frames([it["frames"] for it in items]),
        "targets": [it["targets"] for it in items],
        "label_mask": torch.stack([it["label_mask"] for it in items]),
        "unlabelled_mask": torch.stack([it["unlabelled_mask"] for it in items]),
        "is_first": torch.tensor([bool(it["is_first"]) for it in items], dtype=torch.bool),
        "seq_names": [it["seq_name"] for it in items],
        "t_us": torch.stack([it["t_us"] for it in items]),
        "stream_slot": torch.tensor(slots if slots is not None else [-1] * len(items), dtype=torch.int64),
        "track_ids": [it["track_ids"] for it in items],
        "input_scale": torch.stack([it["input_scale"] for it in items]),
    }


def concat_batches(batches: list[dict]) -> dict:
    """Concatenate batch dicts along the batch dimension."""
    out: dict = {}
    for key in batches[0]:
        if key == "frames":
            out[key] = stack_frames([b[key] for b in batches])
        elif isinstance(batches[0][key], torch.Tensor):
            out[key] = torch.cat([b[key] for b in batches])
        else:
            out[key] = [x for b in batches for x in b[key]]
    return out


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

    def __getitem__(self, key: tuple[int, tuple[int, ...], tuple[int, ...]]) -> dict:
        index, draw_seed, batch_key = key
        params, events = IDENTITY, NO_EVENT_AUGMENT
        if self.augment is not None:
            rng = np.random.default_rng(draw_seed)
            params = draw_augment(self.augment, rng, self.frame_shape[1], self.frame_shape[2])
            events = draw_event_augment(self.augment, rng)
        scale = draw_scale(self.multires, batch_key if self.scale_per == "batch" else draw_seed[:2])
        return load_window(self.store, self.windows[index], self.frame_shape, params, events=events,
                           layout=self.layout, scale=scale, multires=self.multires)


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
                items = []
                for s in slots:
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
                                             scale=scale, multires=self.multires))
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


class EventDataModule(L.LightningDataModule):
    """Preprocessed dataset (RVT layout) -> train (random / stream / mixed) and val (stream) loaders.

    Args:
        cfg: data settings (root, representation, sampling, seq_len, batch sizes, workers, augment).
        seed: base seed of the shuffling and the per-sequence augmentation draws.
        train_split, val_split: split folder names under ``cfg.root``.
    """

    def __init__(self, cfg: DataConfig, *, seed: int = 0, train_split: str = "train", val_split: str = "val"):
        super().__init__()
        if not cfg.root:
            raise ValueError("DataConfig.root is empty: set data.root to a preprocessed dataset folder")
        if cfg.seq_len < 1 or cfg.batch_size < 1 or cfg.eval_batch_size < 1:
            raise ValueError(f"DataConfig: seq_len, batch_size and eval_batch_size must be >= 1, got "
                             f"{cfg.seq_len}, {cfg.batch_size}, {cfg.eval_batch_size}")
        if cfg.sampling == "mixed" and cfg.batch_size < 2:
            raise ValueError("DataConfig.sampling='mixed' needs batch_size >= 2 (half random, half stream)")
        self.cfg, self.seed = cfg, seed
        self.train_split, self.val_split = train_split, val_split
        self._meta: dict[str, list[SequenceMeta]] = {}
        self._frame_shape: Optional[tuple[int, int, int]] = None
        self._withheld: Optional[list[np.ndarray]] = None
        self._frame_box_cache: Optional[tuple[list[np.ndarray], np.ndarray]] = None
        self.sampling_report: dict = {}   # unit -> report of data.sample_weighting (logged at fit start)

    # ---- facts about the data (usable before the Trainer exists) ----
    def split_meta(self, split: str) -> list[SequenceMeta]:
        """Sequences of a split (read once); raises when the split has none."""
        if split not in self._meta:
            meta = read_split_meta(self.cfg.root, split, self.cfg.representation)
            if not meta:
                raise FileNotFoundError(f"{Path(self.cfg.root) / split}: no preprocessed sequences found")
            self._meta[split] = meta
        return self._meta[split]

    @property
    def frame_shape(self) -> tuple[int, int, int]:
        """(C, H, W) of one representation."""
        if self._frame_shape is None:
            from evdet.data.preprocessed import PreprocessedSequence

            first = self.split_meta(self.train_split)[0]
            seq = PreprocessedSequence(Path(first.path), representation=self.cfg.representation)
            self._frame_shape = (int(seq.channels), int(seq.height), int(seq.width))
        return self._frame_shape

    def withheld_reprs(self) -> Optional[list[np.ndarray]]:
        """Per train sequence, the representation indices whose labels are withheld (None: all labels used)."""
        if self.cfg.label_fraction >= 1.0:
            return None
        if self._withheld is None:
            from evdet.data.label_subset import select_kept_frames

            meta = self.split_meta(self.train_split)
            seed = self.seed if self.cfg.label_seed is None else self.cfg.label_seed
            kept = select_kept_frames([m.label_repr_idx.size for m in meta], self.cfg.label_fraction,
                                      self.cfg.label_fraction_by, seed,
                                      source=str(Path(self.cfg.root) / self.train_split))
            self._withheld = [m.label_repr_idx[~k] for m, k in zip(meta, kept)]
        return self._withheld

    @property
    def input_hw(self) -> tuple[int, int]:
        return self.frame_shape[1], self.frame_shape[2]

    @property
    def in_channels(self) -> int:
        return self.frame_shape[0]

    @property
    def class_names(self) -> tuple[str, ...]:
        return load_class_map(Path(self.cfg.root), self.cfg.class_map).names

    @property
    def class_ids(self) -> Optional[tuple[int, ...]]:
        """Merged class of every stored class id (``data.class_map`` a merge such as etram3), None: as stored."""
        return class_merge_ids(self.cfg.class_map, load_class_map(Path(self.cfg.root)))

    # ---- loaders ----
    def _rank_world(self) -> tuple[int, int]:
        trainer = getattr(self, "trainer", None)
        if trainer is None:
            return 0, 1
        return int(trainer.global_rank), int(trainer.world_size)

    def _stream_loader(self, split: str, num_slots: int, *, train: bool) -> StreamLoader:
        meta = self.split_meta(split)
        rank, world = self._rank_world()
        groups = math.gcd(num_slots, self.cfg.num_workers) if self.cfg.num_workers > 0 else 1
        withheld = self.withheld_reprs() if train else None
        seq_weights = self._train_weights("sequences") if train else None
        ds = StreamDataset(
            SequenceStore([m.path for m in meta], self.cfg.representation, withheld, self.class_ids),
            [m.num_reprs for m in meta],
            self.frame_shape, seq_len=self.cfg.seq_len, num_slots=num_slots, slot_offset=rank * num_slots,
            total_slots=num_slots * world, num_groups=max(1, groups), shuffle=train, seed=self.seed,
            augment=self.cfg.augment if train else None, layout=self.event_layout() if train else None,
            multires=self.cfg.multires, train=train, seq_weights=seq_weights)
        return StreamLoader(ds, pin_memory=torch.cuda.is_available())

    # ---- training strategies (evdet.data.event_augment, sampling_weights, multires) ----
    def event_layout(self) -> Optional[EventLayout]:
        """Count layout for the event augmentations (None when none is on)."""
        return event_layout(self.cfg.representation, self.frame_shape[0], self.cfg.augment)

    def _labelled_reprs(self) -> list[np.ndarray]:
        meta, withheld = self.split_meta(self.train_split), self.withheld_reprs()
        return [m.label_repr_idx if withheld is None else np.setdiff1d(m.label_repr_idx, w)
                for m, w in zip(meta, withheld or [None] * len(meta))]

    def _frame_boxes(self) -> tuple[list[np.ndarray], np.ndarray]:
        """Boxes of every used train label frame (random-window order) and each frame's sequence index."""
        if self._frame_box_cache is None:
            from evdet.data.sampling_weights import read_frame_boxes

            store = SequenceStore([m.path for m in self.split_meta(self.train_split)], self.cfg.representation,
                                  class_ids=self.class_ids)
            self._frame_box_cache = read_frame_boxes(store, self._labelled_reprs())
        return self._frame_box_cache

    def class_counts(self) -> np.ndarray:
        """(K,) boxes per class over the used train label frames (class-balanced loss weighting)."""
        from evdet.data.sampling_weights import class_counts

        return class_counts(self._frame_boxes()[0], len(self.class_names))

    def _train_weights(self, unit: str) -> Optional[np.ndarray]:
        """Sampling weights per random window ("frames") or stream sequence; the report in ``sampling_report``."""
        if self.cfg.sample_weighting.mode == "off":
            return None
        from evdet.data.sampling_weights import train_sampling

        frames, seq = self._frame_boxes()
        # the class map of the trained ids (a merge such as etram3 has its own names and groups)
        cmap = load_class_map(Path(self.cfg.root), self.cfg.class_map)
        weights, report = train_sampling(self.cfg.sample_weighting, cmap, frames, seq,
                                         len(self.split_meta(self.train_split)), unit)
        self.sampling_report[unit] = report
        return weights

    def _random_loader(self, batch_size: int) -> DataLoader:
        meta = self.split_meta(self.train_split)
        withheld = self.withheld_reprs()
        labelled = self._labelled_reprs()
        ds = RandomWindowDataset(SequenceStore([m.path for m in meta], self.cfg.representation, withheld,
                                               self.class_ids),
                                 random_windows(labelled, self.cfg.seq_len),
                                 self.frame_shape, self.cfg.augment, layout=self.event_layout(),
                                 multires=self.cfg.multires,
                                 scale_per="batch" if self.cfg.sampling == "random" else "epoch")
        if len(ds) == 0:
            raise ValueError(f"{Path(self.cfg.root) / self.train_split}: no label frames to sample")
        rank, world = self._rank_world()
        sampler = WindowSampler(len(ds), seed=self.seed, rank=rank, world=world, weights=self._train_weights("frames"),
                                batch_size=batch_size)
        return DataLoader(ds, batch_size=batch_size, sampler=sampler, num_workers=self.cfg.num_workers,
                          collate_fn=collate_items, drop_last=len(ds) >= batch_size * world,
                          pin_memory=torch.cuda.is_available(), persistent_workers=self.cfg.num_workers > 0)

    def train_dataloader(self):
        b = self.cfg.batch_size
        if self.cfg.sampling == "random":
            loader = EpochLoader(self._random_loader(b))
        elif self.cfg.sampling == "stream":
            loader = self._stream_loader(self.train_split, b, train=True)
        else:
            loader = MixedLoader(self._random_loader(b // 2),
                                 self._stream_loader(self.train_split, b - b // 2, train=True))
        trainer = getattr(self, "trainer", None)
        if trainer is not None:
            # a resumed run continues its epoch: same order and augmentation, without the batches already
            # trained on (loop progress is restored before the dataloaders are requested); "processed", not
            # "completed": a periodic checkpoint is written in on_train_batch_end, before the batch counts as completed
            done = int(trainer.fit_loop.epoch_loop.batch_progress.current.processed)
            loader.start_epoch(int(trainer.current_epoch), done if trainer.fit_loop.restarting else 0)
        return loader

    def val_dataloader(self):
        return self._stream_loader(self.val_split, self.cfg.eval_batch_size, train=False)
