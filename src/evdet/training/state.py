"""Recurrent state kept per stream slot between batches (truncated backprop through time).

A model state is ``list`` (per stage) of ``(h, c)`` tensors with a leading batch dimension (a stage with
temporal attention adds its memory and valid flags: ``(h, c, memory, valid)``; every tensor is handled
alike, so architecture modules' state is carried, reset and checkpointed with the LSTM's). The
store keeps one detached single-item state per slot id; a batch gathers the states of its slots
(zeros where ``is_first`` or the slot is a random item, ``slot = -1``) and scatters its final states
back, detached so that gradients stop at the chunk boundary.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch

State = list  # list per stage of (h, c, ...), each Tensor (B, ...)


class StreamStates:
    """Detached recurrent state per stream slot id."""

    def __init__(self) -> None:
        self._slots: dict[int, list[tuple[torch.Tensor, ...]]] = {}

    def reset(self) -> None:
        """Forget every slot (start of an epoch / of validation)."""
        self._slots.clear()

    def __len__(self) -> int:
        return len(self._slots)

    def has(self, slot: int) -> bool:
        return slot in self._slots

    def gather(self, slots: Sequence[int], is_first: Sequence[bool], device: torch.device) -> Optional[State]:
        """Batched states for the items of a batch; None when every item starts fresh.

        Args:
            slots: (B,) slot id per item (-1: random item, always fresh).
            is_first: (B,) reset before this item.
        Returns:
            list per stage of (h, c, ...) with batch B (zeros for fresh items), or None.
        """
        keep = [int(s) >= 0 and not bool(f) and int(s) in self._slots for s, f in zip(slots, is_first)]
        if not any(keep):
            return None
        template = next(self._slots[int(s)] for s, k in zip(slots, keep) if k)
        out = []
        for stage, parts in enumerate(template):
            per_part: list[list[torch.Tensor]] = [[] for _ in parts]
            for s, k in zip(slots, keep):
                item = self._slots[int(s)][stage] if k else tuple(torch.zeros_like(t) for t in parts)
                for column, t in zip(per_part, item):
                    column.append(t.to(device))
            out.append(tuple(torch.cat(column) for column in per_part))
        return out

    def state_dict(self) -> dict[int, list[tuple[torch.Tensor, ...]]]:
        """Slot id -> its state on the CPU (for checkpoints)."""
        return {s: [tuple(t.cpu() for t in parts) for parts in st] for s, st in self._slots.items()}

    def load_state_dict(self, state: dict[int, list]) -> None:
        """Replace every slot by the states of ``state_dict()`` (moved to the batch's device on gather)."""
        self._slots = {int(s): [tuple(parts) for parts in st] for s, st in state.items()}

    def scatter(self, slots: Sequence[int], states: State) -> None:
        """Store the final state of every stream item (slot >= 0), detached."""
        for b, s in enumerate(slots):
            if int(s) < 0:
                continue
            self._slots[int(s)] = [tuple(t[b : b + 1].detach() for t in parts) for parts in states]
