"""Sampling plans: which representation windows go into which batch slot.

Pure index logic (no I/O, no torch), so that the plans can be checked by hand. A plan is a list of
``Window`` records; the datasets in ``evdet.data.datamodule`` turn windows into tensors.

- ``random``: one window per label frame: the ``seq_len`` representations ending at that label
  frame. Windows that would start before the first representation are left-padded with empty
  steps (zero frames, no label) so that every label frame is used and T stays fixed.
- ``stream``: sequences are distributed over ``num_slots`` batch slots; each slot walks its
  sequences in order in chunks of ``seq_len`` (the last chunk of a sequence is right-padded).
  ``is_first`` marks the first chunk of each sequence (the recurrent state is reset there). When a
  slot runs out before the longest slot, it receives padding windows (``seq_index = -1``).
- ``mixed``: a random plan and a stream plan side by side (see ``EventDataModule``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np


@dataclass(frozen=True)
class Window:
    """A run of representations of one sequence, as one batch item.

    Attributes:
        seq_index: index into the dataset's sequence list; -1 for a padding window (no data).
        start: first representation index (inclusive).
        stop: last representation index + 1 (exclusive); ``stop - start <= seq_len``.
        pad_before: empty steps placed before the data (random windows near a sequence start).
        pad_after: empty steps placed after the data (last chunk of a stream).
        is_first: True when the recurrent state must be reset before this window.
    """

    seq_index: int
    start: int
    stop: int
    pad_before: int = 0
    pad_after: int = 0
    is_first: bool = True

    @property
    def length(self) -> int:
        """Total steps including padding."""
        return self.stop - self.start + self.pad_before + self.pad_after


def padding_window(seq_len: int) -> Window:
    """A window with no data: seq_len empty steps, state reset."""
    return Window(seq_index=-1, start=0, stop=0, pad_before=0, pad_after=seq_len, is_first=True)


def random_windows(label_repr_idx: Sequence[np.ndarray], seq_len: int) -> list[Window]:
    """One window per label frame: the seq_len representations ending at that label frame.

    Args:
        label_repr_idx: per sequence, (L,) representation index of each label frame.
        seq_len: steps per window.
    Returns:
        Windows in (sequence, label frame) order; shuffling is the loader's job.
    """
    if seq_len < 1:
        raise ValueError(f"seq_len must be >= 1, got {seq_len}")
    out: list[Window] = []
    for s, idx in enumerate(label_repr_idx):
        for r in np.unique(np.asarray(idx, dtype=np.int64)):
            start = int(r) - seq_len + 1
            pad = max(0, -start)
            out.append(Window(s, max(0, start), int(r) + 1, pad_before=pad, is_first=True))
    return out


def sequence_chunks(seq_index: int, num_reprs: int, seq_len: int) -> list[Window]:
    """A sequence cut into consecutive chunks of seq_len (last chunk right-padded)."""
    out = []
    for i, start in enumerate(range(0, num_reprs, seq_len)):
        stop = min(start + seq_len, num_reprs)
        out.append(Window(seq_index, start, stop, pad_after=seq_len - (stop - start), is_first=i == 0))
    return out


def assign_sequences_to_slots(num_chunks: Sequence[int], num_slots: int, order: Sequence[int]) -> list[list[int]]:
    """Distribute sequences over slots, balancing the number of chunks per slot.

    Sequences are taken in ``order``; each goes to the slot with the fewest chunks so far (lowest
    slot index on ties). Within a slot, sequences keep the order in which they were assigned.

    Returns:
        per slot, the list of sequence indices it walks.
    """
    if num_slots < 1:
        raise ValueError(f"num_slots must be >= 1, got {num_slots}")
    load = [0] * num_slots
    slots: list[list[int]] = [[] for _ in range(num_slots)]
    for s in order:
        k = min(range(num_slots), key=lambda i: (load[i], i))
        slots[k].append(int(s))
        load[k] += int(num_chunks[s])
    return slots


def stream_plan(
    num_reprs: Sequence[int], num_slots: int, seq_len: int, *, shuffle: bool = False, seed: int = 0,
    weights: Optional[Sequence[float]] = None,
) -> list[list[Window]]:
    """Per slot, the chunks it walks; all slots padded to the same number of chunks.

    Args:
        num_reprs: representations per sequence.
        num_slots: batch slots (streams walked in parallel).
        seq_len: representations per chunk (truncated-backprop length).
        shuffle: permute the sequence order first (training; a new seed per epoch).
        weights: per sequence; with shuffle, the order is len(num_reprs) draws with replacement,
            P(s) ~ weights[s] (``data.sample_weighting``), instead of a permutation.
    Returns:
        plan[slot][k] is the window of slot ``slot`` at batch k.
    """
    num_chunks = [-(-int(n) // seq_len) for n in num_reprs]
    order = np.arange(len(num_reprs))
    if shuffle and weights is not None:
        w = np.asarray(weights, dtype=np.float64)
        order = np.random.default_rng(seed).choice(len(w), size=len(w), replace=True, p=w / w.sum())
    elif shuffle:
        order = np.random.default_rng(seed).permutation(order)
    slots = assign_sequences_to_slots(num_chunks, num_slots, order)
    plan = [[w for s in seqs for w in sequence_chunks(s, int(num_reprs[s]), seq_len)] for seqs in slots]
    longest = max((len(p) for p in plan), default=0)
    return [p + [padding_window(seq_len)] * (longest - len(p)) for p in plan]
