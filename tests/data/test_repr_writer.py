"""The direct-chunk writer stores what HDF5's own Blosc filter stores, byte for byte."""

import h5py
import hdf5plugin
import numpy as np
import pytest

from evdet.data.preprocess.repr_writer import ReprWriter


@pytest.mark.parametrize("dtype, threads", [(np.uint8, 1), (np.uint8, 2), (np.float32, 3), (np.int8, 1)])
def test_chunks_equal_the_hdf5_filter_output(tmp_path, dtype, threads):
    rng = np.random.default_rng(0)
    reps = (rng.random((3, 4, 24, 40)) < 0.1) * rng.integers(-3, 11, (3, 4, 24, 40))
    reps = reps.astype(dtype)
    ours, theirs = tmp_path / "ours.h5", tmp_path / "filter.h5"
    with h5py.File(ours, "w") as fh, ReprWriter(fh, 3, threads=threads) as writer:
        for i in (2, 0, 1):                              # any order: one chunk per window
            writer.write(i, reps[i].copy())
    with h5py.File(theirs, "w") as fh:
        fh.create_dataset("data", data=reps, chunks=(1, *reps.shape[1:]), maxshape=(None, *reps.shape[1:]),
                          **hdf5plugin.Blosc(cname="zstd", clevel=1, shuffle=hdf5plugin.Blosc.SHUFFLE))
    with h5py.File(ours, "r") as a, h5py.File(theirs, "r") as b:
        np.testing.assert_array_equal(a["data"][:], reps)
        assert a["data"].compression_opts == b["data"].compression_opts
        for i in range(3):
            assert a["data"].id.read_direct_chunk((i, 0, 0, 0))[1] == b["data"].id.read_direct_chunk((i, 0, 0, 0))[1]


def test_wrong_shape_is_rejected(tmp_path):
    with h5py.File(tmp_path / "x.h5", "w") as fh, ReprWriter(fh, 2, threads=2) as writer:
        writer.write(0, np.zeros((2, 4, 4), np.uint8))
        with pytest.raises(ValueError, match=r"window 1: expected \(2, 4, 4\) uint8, got \(2, 4, 5\) uint8"):
            writer.write(1, np.zeros((2, 4, 5), np.uint8))
