"""Batch items: a window of a preprocessed sequence, augmented, as tensors; items stacked into batches.

Batch (``dict``; every loader of ``evdet.data.window_loaders`` yields this)::

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
"""

from __future__ import annotations

import math
from typing import Optional

import numpy as np
import torch

from evdet.data.augment import (
    IDENTITY,
    AugmentParams,
    augment_boxes,
    augment_frames,
    is_identity,
    keeps_integer_counts,
    place_zoom_crop,
)
from evdet.data.config import MultiResConfig
from evdet.data.event_augment import (
    NO_EVENT_AUGMENT,
    EventAugmentParams,
    EventLayout,
    apply_event_augment,
)
from evdet.data.multires import resize_counts, scale_targets, scaled_hw
from evdet.data.samplers import Window
from evdet.data.sequence_store import SequenceStore


def load_window(
    store: SequenceStore, window: Window, frame_shape: tuple[int, int, int], params: AugmentParams = IDENTITY, *,
    events: EventAugmentParams = NO_EVENT_AUGMENT, layout: Optional[EventLayout] = None, scale: float = 1.0,
    multires: MultiResConfig = MultiResConfig(), out: Optional[torch.Tensor] = None,
) -> dict:
    """One batch item (unbatched batch fields) from a window.

    Args:
        frame_shape: (C, H, W) of one representation (used for padding steps).
        events, layout: event augmentations and the count layout (``evdet.data.event_augment``).
        scale: input resolution factor (``evdet.data.multires``), resampled per ``multires``.
        out: (T, C, H, W) uint8 slot of a batch tensor (``batch_tensor``): the frames are loaded into it
            when they stay uint8 (else the item has frames of its own).
    """
    channels, height, width = frame_shape
    t_steps = window.length
    frames = None   # a padding item (no sequence): zeros
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
        frames = _load_frames(seq, window, params, events, layout, scale, out, t_steps)
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
    if frames is None:
        frames = out.zero_() if out is not None else torch.zeros((t_steps, channels, height, width), dtype=torch.uint8)
    sy = sx = 1.0
    if scale != 1.0:
        out_hw = scaled_hw(height, width, scale)
        frames = resize_counts(frames.float(), out_hw, multires.resample, multires.count_cutoff)
        sy, sx = out_hw[0] / height, out_hw[1] / width
        targets = [scale_targets(t, sx, sy) for t in targets]
    return {"frames": frames, "targets": targets, "label_mask": label_mask, "unlabelled_mask": unlabelled_mask,
            "is_first": window.is_first, "seq_name": name, "t_us": t_us, "track_ids": track_ids,
            "input_scale": torch.tensor([sy, sx], dtype=torch.float32)}


def _load_frames(seq, window: Window, params: AugmentParams, events: EventAugmentParams,
                 layout: Optional[EventLayout], scale: float, out: Optional[torch.Tensor],
                 t_steps: int) -> torch.Tensor:
    """(T, C, H, W) frames of the window, augmented, padding steps zero: in ``out`` when they stay uint8."""
    lo, hi = window.pad_before, window.pad_before + window.stop - window.start
    stays_uint8 = (np.dtype(seq.dtype) == np.uint8 and keeps_integer_counts(params) and scale == 1.0
                   and not (layout is not None and events.active))
    dest = out[lo:hi] if out is not None and stays_uint8 else None
    if dest is not None:
        out[:lo].zero_()                                                # padding steps
        out[hi:].zero_()
    if dest is not None and is_identity(params):
        seq.reprs(window.start, window.stop, out=dest.numpy())           # straight from the file into the batch
        return out
    data = torch.from_numpy(np.ascontiguousarray(seq.reprs(window.start, window.stop)))
    data = apply_event_augment(data if stays_uint8 else data.float(), events, layout,
                               noise_seed=params.noise_seed, step_ids=np.arange(window.start, window.stop))
    data = augment_frames(data, params, out=dest)
    if dest is not None:
        return out
    if lo == 0 and hi == t_steps:
        return data
    frames = data.new_zeros((t_steps, *data.shape[1:]))
    frames[lo:hi] = data
    return frames


def batch_tensor(shape: tuple[int, ...], dtype: torch.dtype = torch.uint8) -> torch.Tensor:
    """An uninitialised tensor for a batch's frames: in shared memory inside a loader worker (the batch then
    reaches the trainer without a copy), else in ordinary memory."""
    if torch.utils.data.get_worker_info() is None:
        return torch.empty(shape, dtype=dtype)
    empty = torch.empty(0, dtype=dtype)
    return empty.new(empty._typed_storage()._new_shared(math.prod(shape), device=empty.device)).resize_(shape)


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
    base = frames[0]._base
    if (base is not None and base.dtype == torch.uint8 and tuple(base.shape) == (len(frames), *frames[0].shape)
            and all(f._base is base and f.data_ptr() == base[i].data_ptr() for i, f in enumerate(frames))):
        return base                           # the items were loaded into the slots of one batch_tensor
    counts = all(f.dtype == torch.uint8 or (f.numel() == 0 or (f.min() >= 0 and f.max() <= 255
                                                               and torch.equal(f, f.trunc()))) for f in frames)
    dtype = torch.uint8 if counts else torch.float32
    out = [f.to(dtype) for f in frames]
    concat = out[0].dim() == 5
    shape = (sum(f.shape[0] for f in out), *out[0].shape[1:]) if concat else (len(out), *out[0].shape)
    dest = batch_tensor(shape, dtype) if torch.utils.data.get_worker_info() is not None else None
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


