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
from evdet.events.types import EVENT_DTYPE, EventFormatError, make_events

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
            (t_us int64, x uint16, y uint16, p uint8) columns in stream order (views of one
            ``EVENT_DTYPE`` array).

        Raises:
            EventFormatError: a reserved word type, or time high decreasing without wrapping.
        """
        events, _ = self._decode(stop_us)
        return events["t"], events["x"], events["y"], events["p"]

    def events_until(self, stop_us: int | None, height: int, width: int) -> np.ndarray:
        """As :meth:`decode_until`, as a validated ``EVENT_DTYPE`` array (``make_events`` rules:
        time must not decrease, events outside ``height x width`` are dropped with a warning).

        The EVT 3.0 kernel proves time order and the coordinate range while decoding (EVT 2.0:
        checked here, on the array); the array is then returned as decoded, and only a failed
        check goes through ``make_events`` (which names the problem or drops and counts).
        """
        events, checks = self._decode(stop_us)
        if checks is None:
            checks = _checks_of(events)
        if checks[1] == 0 and checks[2] < width and checks[3] < height:
            return events
        return make_events(events["t"], events["x"], events["y"], events["p"], source=self.source,
                           height=height, width=width)

    def skip_until(self, stop_us: int) -> None:
        """Advance past every event with t < stop_us without keeping them (bounded memory)."""
        buffer = np.empty(_SKIP_CAPACITY, EVENT_DTYPE)
        status = np.zeros(4, dtype=np.int64)
        while True:
            status[:] = 0
            self._run_kernel(int(stop_us), buffer, 0, status, self._new_checks())
            self._raise_on_error(status)
            if status[3] != _FULL:
                break
        self.last_stop_us = int(stop_us)

    def _decode(self, stop_us: int | None):
        """(events up to stop_us as an ``EVENT_DTYPE`` view, the kernel's checks or None)."""
        stop = np.iinfo(np.int64).max if stop_us is None else int(stop_us)
        # At most MAX_EVENTS_PER_WORD events per remaining word (1 for EVT 2.0, 12 for EVT 3.0),
        # capped; beyond the cap the buffer doubles. np.empty only reserves address space (pages
        # are mapped when written), so neither a short window nor a generous bound costs memory.
        remaining = self.words.shape[0] - int(self._state[0])
        bound = remaining * self._module.MAX_EVENTS_PER_WORD + 16
        buffer = np.empty(min(bound, _MAX_FIRST_CAPACITY), EVENT_DTYPE)
        status = np.zeros(4, dtype=np.int64)
        checks = self._new_checks()
        k = 0
        while True:
            status[:] = 0
            k = self._run_kernel(stop, buffer, k, status, checks)
            self._raise_on_error(status)
            if status[3] != _FULL:
                break
            grown = np.empty(2 * buffer.shape[0], EVENT_DTYPE)
            grown[:k] = buffer[:k]
            buffer = grown
        self.last_stop_us = stop
        return buffer[:k], checks

    def _new_checks(self):
        return evt3.new_checks() if self._module is evt3 else None

    def _run_kernel(self, stop: int, buffer: np.ndarray, k: int, status: np.ndarray, checks) -> int:
        """Decode into the fields of ``buffer`` from index k; returns the new k."""
        cols = (buffer["t"], buffer["x"], buffer["y"], buffer["p"])
        if checks is None:
            return self._module.decode_kernel(self.words, self._state, stop, *cols, k, status)
        return self._module.decode_kernel(self.words, self._state, stop, *cols, k, status, checks)

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


def _checks_of(events: np.ndarray) -> np.ndarray:
    """The kernel checks (``evt3.new_checks`` layout) computed from a decoded array."""
    t = events["t"]
    if t.size == 0:
        return evt3.new_checks()
    decreased = int(t.size > 1 and bool((t[1:] < t[:-1]).any()))
    return np.array([t[-1], decreased, int(events["x"].max()), int(events["y"].max())], dtype=np.int64)
