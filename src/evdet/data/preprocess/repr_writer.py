"""Writes one representation per window into the ``data`` dataset of a preprocessed sequence.

The dataset is the reference's: (N, C, H, W), one chunk per window, Blosc (HDF5 filter 32001)
zstd level 1 with byte shuffle. The chunks are compressed here with python-blosc, which releases
the GIL, and are stored with ``write_direct_chunk``: the bytes on disk are those HDF5's filter
would write (same c-blosc 1 frame), read back by any reader through hdf5plugin, without the
filter pipeline's copies. With 2+ threads, window i is compressed in a background thread while
the caller builds window i + 1 (reading events and the histogram overlap the compression).
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor

import numpy as np

CNAME, CLEVEL = "zstd", 1


def default_threads() -> int:
    """Threads of one writer: the CPUs this process may run on."""
    return max(1, len(os.sched_getaffinity(0)))


class ReprWriter:
    """Dataset ``data`` (num_windows, *shape) in an open h5py file, written window by window
    (context manager; leaving it stores the chunks still being compressed).

    Args:
        fh: an h5py File open for writing.
        num_windows: first dimension N; shape and dtype come from the first window written.
        threads: None (``default_threads()``); 1 compresses in the caller's thread, n >= 2 in a
            background thread with n - 1 Blosc threads.
    """

    def __init__(self, fh, num_windows: int, threads: int | None = None):
        import blosc

        self._blosc, self._fh, self.num_windows = blosc, fh, int(num_windows)
        self.threads = default_threads() if threads is None else max(1, int(threads))
        self.dataset = None
        self.shape: tuple[int, ...] = ()
        self.dtype = None
        self._pool = ThreadPoolExecutor(1, thread_name_prefix="repr-writer") if self.threads > 1 else None
        self._pending: tuple[int, Future] | None = None

    def __enter__(self) -> "ReprWriter":
        return self

    def __exit__(self, exc_type, *exc) -> None:
        try:
            if exc_type is None:
                self._store_pending()
        finally:
            if self._pool is not None:
                self._pool.shutdown(wait=True, cancel_futures=True)

    def write(self, index: int, rep: np.ndarray) -> None:
        """Store window ``index`` (same shape and dtype for every window). The array is kept until
        the next call: do not modify it before then."""
        if self.dataset is None:
            self._create(rep)
        if rep.shape != self.shape or rep.dtype != self.dtype:
            raise ValueError(f"window {index}: expected {self.shape} {self.dtype}, got {rep.shape} {rep.dtype}")
        rep = np.ascontiguousarray(rep)
        if self._pool is None:
            self._store(index, self._compress(rep))
            return
        self._store_pending()                     # at most one window in flight
        self._pending = (int(index), self._pool.submit(self._compress, rep))

    def _create(self, rep: np.ndarray) -> None:
        import hdf5plugin

        self.shape, self.dtype = tuple(rep.shape), rep.dtype
        compression = hdf5plugin.Blosc(cname=CNAME, clevel=CLEVEL, shuffle=hdf5plugin.Blosc.SHUFFLE)
        self.dataset = self._fh.create_dataset("data", shape=(self.num_windows, *self.shape), dtype=self.dtype,
                                               chunks=(1, *self.shape), maxshape=(None, *self.shape), **compression)
        self._blosc.set_nthreads(max(1, self.threads - 1))

    def _compress(self, rep: np.ndarray) -> bytes:
        return self._blosc.compress(rep, typesize=rep.dtype.itemsize, clevel=CLEVEL, shuffle=self._blosc.SHUFFLE,
                                    cname=CNAME)

    def _store(self, index: int, frame: bytes) -> None:
        self.dataset.id.write_direct_chunk((index,) + (0,) * len(self.shape), frame)

    def _store_pending(self) -> None:
        if self._pending is not None:
            index, future = self._pending
            self._pending = None
            self._store(index, future.result())
