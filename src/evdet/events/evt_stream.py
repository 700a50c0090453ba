"""Resumable decoding of an EVT 2.0 / 3.0 word stream, window after window.

RAW files have no index, so a time window is found by decoding. The decoder keeps its position
and state between calls: reading consecutive windows decodes the stream once in total, and the
output of one call is bounded by the window, not by the file.

Layers: the numba kernels (``evt2``, ``evt3``) below, this decoder over them, and the readers
(``raw``) and whole-stream helpers (``decode_evt2`` / ``decode_evt3`` here) above it.
"""

from __future__ import annotations

from typing import Literal

import numpy as np

from evdet.events import evt2, evt3
from evdet.events.types import EventFormatError

_FORMATS = {"evt2": (evt2, "EVT 2.0"), "evt3": (evt3, "EVT 3.0")}
_MAX_FIRST_CAPACITY = 1 << 26       # events in the first output buffer of a call; doubled as needed
_SKIP_CAPACITY = 1 << 20            # events per batch when skipping
_STOPPED, _FULL, _END = 1, 2, 3
_RESERVED, _TIME_DECREASES = 1, 2


class EvtStreamDecoder:
    """Decodes an EVT word stream in time order, resuming where the previous call stopped.

    Args:
        words: (W,) little-endian words (uint32 for EVT 2.0, uint16 for EVT 3.0), e.g. a memory map.
        evt_format: "evt2" or "evt3".
        source: name used in error messages.
    """

    def __init__(self, words: np.ndarray, evt_format: Literal["evt2", "evt3"], *, source: str = "<bytes>"):
        if evt_format not in _FORMATS:
            raise ValueError(f"evt_format must be 'evt2' or 'evt3', got {evt_format!r}")
        self._module, self._label = _FORMATS[evt_format]
        word_dtype = self._module.WORD_DTYPE
        self.words = words if words.dtype == word_dtype else words.astype(word_dtype)
        self.source = source
        self.reset()

    def reset(self) -> None:
        """Go back to the start of the stream."""
        self._state = np.zeros(self._module.STATE_SIZE, dtype=np.int64)
        self.last_stop_us: int | None = None      # every event before this time has been returned

    def decode_until(self, stop_us: int | None = None):
        """Events from the current position up to (excluding) the first event with t >= stop_us.

        Returns:
            (t_us int64, x uint16, y uint16, p uint8) columns in stream order.

        Raises:
            EventFormatError: a reserved word type, or time high decreasing without wrapping.
        """
        stop = np.iinfo(np.int64).max if stop_us is None else int(stop_us)
        # One event per remaining word: exact bound for EVT 2.0, a first guess for EVT 3.0 (its
        # vector words may hold more; the buffers then double). np.empty only reserves address
        # space, so a short window does not pay for the rest of the file.
        remaining = self.words.shape[0] - int(self._state[0])
        capacity = min(remaining + 16, _MAX_FIRST_CAPACITY)
        cols = _empty_columns(capacity)
        status = np.zeros(4, dtype=np.int64)
        k = 0
        while True:
            status[:] = 0
            k = self._module.decode_kernel(self.words, self._state, stop, *cols, k, status)
            self._raise_on_error(status)
            if status[3] != _FULL:
                break
            grown = _empty_columns(2 * cols[0].shape[0])
            for new, old in zip(grown, cols):
                new[:k] = old[:k]
            cols = grown
        self.last_stop_us = stop
        return tuple(c[:k] for c in cols)

    def skip_until(self, stop_us: int) -> None:
        """Advance past every event with t < stop_us without keeping them (bounded memory)."""
        cols = _empty_columns(_SKIP_CAPACITY)
        status = np.zeros(4, dtype=np.int64)
        while True:
            status[:] = 0
            self._module.decode_kernel(self.words, self._state, int(stop_us), *cols, 0, status)
            self._raise_on_error(status)
            if status[3] != _FULL:
                break
        self.last_stop_us = int(stop_us)

    def _raise_on_error(self, status: np.ndarray) -> None:
        code, index, value = int(status[0]), int(status[1]), int(status[2])
        if code == _RESERVED:
            raise EventFormatError(f"{self.source}: {self._label} word {index} has reserved type "
                                   f"0x{value:x} (corrupt data, or not an {self._label} stream)")
        if code == _TIME_DECREASES:
            raise EventFormatError(f"{self.source}: {self._label} time high decreases at word "
                                   f"{index} (to {value} us)")


def decode_evt2(words: np.ndarray, *, source: str = "<bytes>", t_end_us: int | None = None):
    """Decode EVT 2.0 words (uint32, the data after the file header) into event columns.

    Stops at the first event with t >= ``t_end_us`` (None = decode all). Returns
    (t_us int64, x uint16, y uint16, p uint8) in stream order; raises ``EventFormatError`` on a
    reserved word type or a time high that decreases without wrapping.
    """
    return EvtStreamDecoder(words, "evt2", source=source).decode_until(t_end_us)


def decode_evt3(words: np.ndarray, *, source: str = "<bytes>", t_end_us: int | None = None):
    """Decode EVT 3.0 words (uint16, the data after the file header) into event columns
    (as :func:`decode_evt2`)."""
    return EvtStreamDecoder(words, "evt3", source=source).decode_until(t_end_us)


def _empty_columns(n: int):
    return (np.empty(n, np.int64), np.empty(n, np.uint16), np.empty(n, np.uint16), np.empty(n, np.uint8))
