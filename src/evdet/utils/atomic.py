"""Atomic file writes: write a hidden sibling temp file, then ``os.replace`` it over the target.

The one implementation in evdet: every module that writes a file atomically uses ``atomic_path``
(for writers that need a file name, e.g. h5py or matplotlib) or one of the helpers built on it.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temp path next to ``path``; on success rename it over ``path``, on error delete it.

    The temp file is created by the caller (so it gets the usual umask permissions, unlike
    ``tempfile.mkstemp``'s 0600). Its name does not end in the target's suffix: writers that pick
    a format from the file name (matplotlib's ``savefig``) must be told the format.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (parent folders created); returns the path."""
    path = Path(path)
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return path


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write ``text`` as UTF-8 to ``path`` atomically, exactly as given (no newline translation)."""
    return write_bytes_atomic(path, text.encode("utf-8"))


def save_npy_atomic(path: str | Path, arr: np.ndarray) -> Path:
    """``np.save`` ``arr`` to ``path`` atomically (no ``.npy`` is appended to the name)."""
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "wb") as fh:
        np.save(fh, arr)
    return path


def save_figure(fig, path: str | Path, **savefig_kwargs) -> Path:
    """Write a pyplot figure as PNG atomically (``atomic_path``) and close it, also when writing fails."""
    import matplotlib.pyplot as plt

    path = Path(path)
    try:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, format="png", **savefig_kwargs)
    finally:
        plt.close(fig)
    return path
