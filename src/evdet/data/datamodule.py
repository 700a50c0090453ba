"""Training-side data: a preprocessed dataset as train (random / stream / mixed) and val (stream) loaders.

The batch layout is in ``evdet.data.batch_items``; how random, stream and mixed batches are drawn
(workers, DDP shares, resumable epochs) in ``evdet.data.window_loaders``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader

from evdet.data.batch_items import collate_items
from evdet.data.classes import class_merge_ids, load_class_map
from evdet.data.config import DataConfig
from evdet.data.event_augment import EventLayout, event_layout
from evdet.data.samplers import random_windows
from evdet.data.sequence_store import SequenceMeta, SequenceStore, read_split_meta
from evdet.data.window_loaders import (
    EpochLoader,
    MixedLoader,
    RandomWindowDataset,
    StreamDataset,
    StreamLoader,
    WindowSampler,
)


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
