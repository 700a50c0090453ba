"""Writes one representation per window into the ``data`` dataset of a preprocessed sequence.

The dataset is the reference's: (N, C, H, W), one chunk per window, Blosc (HDF5 filter 32001)
zstd level 1 with byte shuffle. The chunks are compressed here with python-blosc, which releases
the GIL and splits a chunk over ``threads`` threads, and are stored with ``write_direct_chunk``:
the bytes on disk are those HDF5's filter would write (same c-blosc 1 frame), read back by any
reader through hdf5plugin, without the filter pipeline's copies.
"""

from __future__ import annotations

import os

import numpy as np

CNAME, CLEVEL = "zstd", 1


def default_threads() -> int:
    """Compression threads: the CPUs this process may run on."""
    return max(1, len(os.sched_getaffinity(0)))


class ReprWriter:
    """Dataset ``data`` (num_windows, *shape) of ``dtype`` in an open h5py file, written window by window.

    Args:
        fh: an h5py File open for writing.
        num_windows: first dimension N.
        shape: (C, H, W) of one representation.
        dtype: its NumPy dtype.
        threads: Blosc compression threads (None: ``default_threads()``).
    """

    def __init__(self, fh, num_windows: int, shape: tuple[int, ...], dtype, threads: int | None = None):
        import blosc
        import hdf5plugin

        self._blosc = blosc
        self.threads = default_threads() if threads is None else int(threads)
        self.shape, self.dtype = tuple(shape), np.dtype(dtype)
        compression = hdf5plugin.Blosc(cname=CNAME, clevel=CLEVEL, shuffle=hdf5plugin.Blosc.SHUFFLE)
        self.dataset = fh.create_dataset("data", shape=(num_windows, *self.shape), dtype=self.dtype,
                                         chunks=(1, *self.shape), maxshape=(None, *self.shape), **compression)

    def write(self, index: int, rep: np.ndarray) -> None:
        """Store window ``index`` (shape and dtype as at construction)."""
        if rep.shape != self.shape or rep.dtype != self.dtype:
            raise ValueError(f"window {index}: expected {self.shape} {self.dtype}, got {rep.shape} {rep.dtype}")
        blosc = self._blosc
        blosc.set_nthreads(self.threads)
        frame = blosc.compress(np.ascontiguousarray(rep), typesize=self.dtype.itemsize, clevel=CLEVEL,
                               shuffle=blosc.SHUFFLE, cname=CNAME)
        self.dataset.id.write_direct_chunk((int(index),) + (0,) * len(self.shape), frame)
