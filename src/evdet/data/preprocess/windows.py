"""The time windows of preprocessing: where representation windows end, and their events.

* Representation windows END at every kept label time. Between two kept label frames the end
  times are ``int64(linspace(t_a, t_b, n + 1))`` with ``n = periods * round(base_period / window)``;
  before the first label frame they step back by ``window_us`` (the earliest, partial one dropped).
  There are no windows after the last label frame.
* Window ``i`` holds the events with ``t_end[i] - window_us <= t <= t_end[i]`` (both ends included,
  as the reference's ``searchsorted(left)`` / ``searchsorted(right)``).
"""

from __future__ import annotations

import numpy as np

CHUNK_US = 500_000           # events are read from the source in blocks of this duration
LATE_START_US = 1_000_000    # recordings starting later than this get windows from their first event


def representation_timestamps(frame_t_us: np.ndarray, steps_between: np.ndarray, window_us: int,
                              t_origin_us: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """End times of the representation windows, and the window index of each label frame.

    Args:
        frame_t_us: (F,) kept label frame times, increasing.
        steps_between: (F-1,) windows between consecutive label frames.
        window_us: window step before the first label frame, microseconds.
        t_origin_us: recording start; windows before the first frame end after it.

    Returns:
        (repr_t_us (N,) int64 end times, frame_to_repr (F,) int64 with
         ``repr_t_us[frame_to_repr] == frame_t_us``).
    """
    f0 = int(frame_t_us[0])
    # Step back from the first frame; drop the earliest (partial) window and f0 itself (added below).
    ends = list(reversed(range(f0, t_origin_us, -window_us)))[1:-1]
    for i, (n, a, b) in enumerate(zip(steps_between, frame_t_us[:-1], frame_t_us[1:])):
        edges = np.asarray(np.linspace(a, b, int(n) + 1), dtype=np.int64).tolist()
        ends.extend(edges if i == len(steps_between) - 1 else edges[:-1])
    if len(frame_t_us) == 1:
        ends.append(f0)
    repr_t_us = np.asarray(ends, dtype=np.int64)
    frame_to_repr = np.searchsorted(repr_t_us, frame_t_us, side="left").astype(np.int64)
    if not np.array_equal(repr_t_us[frame_to_repr], frame_t_us):
        raise AssertionError("a label frame time is not the end of a representation window")
    return repr_t_us, frame_to_repr


class EventWindows:
    """Events of consecutive windows ``[t_end - window_us, t_end]`` from a half-open time reader.

    Reads the source in blocks of ``chunk_us`` and keeps only the blocks later windows can still
    need, so a recording is never loaded whole. A window inside one block is a view of it; only
    windows that straddle two blocks are copied. Window end times must not decrease.

    Args:
        read: ``read(t_start_us, t_end_us)`` -> events with ``t_start_us <= t < t_end_us``.
        window_us: window length, microseconds.
        chunk_us: duration of one block read from the source.
    """

    def __init__(self, read, window_us: int, chunk_us: int = CHUNK_US):
        self._read = read
        self.window_us = int(window_us)
        self.chunk_us = max(int(chunk_us), self.window_us)
        # Blocks in time order: (events, contiguous t, t_start_us, t_stop_us), half-open in time.
        self._blocks: list[tuple[np.ndarray, np.ndarray, int, int]] = []
        self._read_until_us: int | None = None     # every event with t < this has been read
        self._last_end_us: int | None = None

    def window(self, t_end_us: int) -> np.ndarray:
        """Events with ``t_end_us - window_us <= t <= t_end_us`` (may be a view; do not modify)."""
        from evdet.events.types import empty_events

        if self._last_end_us is not None and t_end_us < self._last_end_us:
            raise ValueError(f"window ends must not decrease ({t_end_us} after {self._last_end_us})")
        self._last_end_us = t_end_us
        lo, hi = t_end_us - self.window_us, t_end_us + 1        # half-open [lo, hi)
        if self._read_until_us is None or lo >= self._read_until_us:
            self._blocks, self._read_until_us = [], lo           # skip the gap without reading it
        self._blocks = [b for b in self._blocks if b[3] > lo]   # later windows start later
        while self._read_until_us < hi:
            stop = max(self._read_until_us + self.chunk_us, hi)
            ev = self._read(self._read_until_us, stop)
            self._blocks.append((ev, np.ascontiguousarray(ev["t"]), self._read_until_us, stop))
            self._read_until_us = stop
        pieces = []
        for ev, t, start_us, stop_us in self._blocks:
            if start_us >= hi:
                break
            i = int(np.searchsorted(t, lo, side="left")) if start_us < lo else 0
            j = int(np.searchsorted(t, hi, side="left")) if stop_us > hi else t.size
            if j > i:
                pieces.append(ev[i:j])
        if not pieces:
            return empty_events()
        return pieces[0] if len(pieces) == 1 else np.concatenate(pieces)


class EventSource:
    """Half-open time-window reader over any recording format (context manager).

    HDF5 windows are found by binary search, DAT and NPY windows in a memory map. RAW (EVT) files
    have no index: one ``RawEventReader`` stays open and resumes decoding where the previous
    (earlier) window stopped, so the file is decoded once in total.
    """

    def __init__(self, path: str, height: int, width: int):
        from evdet.events import H5EventReader, recording_format
        from evdet.events.raw import RawEventReader

        self.path, self.height, self.width = path, height, width
        fmt = recording_format(path)
        self._h5 = H5EventReader(path, height=height, width=width) if fmt == "h5" else None
        self._raw = RawEventReader(path, height=height, width=width) if fmt == "raw" else None
        self.chunk_us = CHUNK_US

    def read(self, t_start_us: int, t_end_us: int) -> np.ndarray:
        if self._h5 is not None:
            return self._h5.read(t_start_us, t_end_us)
        if self._raw is not None:
            return self._raw.read(t_start_us, t_end_us)
        from evdet.events import read_events

        return read_events(self.path, t_start_us, t_end_us, height=self.height, width=self.width)

    def first_time_us(self) -> int | None:
        if self._h5 is not None:
            return self._h5.t_first_us
        return None

    def __enter__(self) -> "EventSource":
        return self

    def __exit__(self, *exc) -> None:
        if self._h5 is not None:
            self._h5.close()
        if self._raw is not None:
            self._raw.close()


def events_origin_us(events_path: str, height: int, width: int) -> int:
    """Where the windows before the first label frame may start: 0 as the reference, except for
    recordings whose clock starts at or after 1 s (their first event time; avoids long runs of
    empty windows, and the first label frame is then the first at or after origin + 100 ms)."""
    with EventSource(events_path, height, width) as source:
        t_first = source.first_time_us()
    return int(t_first) if t_first is not None and t_first >= LATE_START_US else 0
