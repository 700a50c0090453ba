"""When a preprocessed sequence counts as done: its manifest, written last, and its verification.

A sequence is written into ``<seq>.tmp/``; once every file is closed, ``manifest.json`` (the size
and SHA-256 of each file, and the sequence's counts) is written atomically, and only then is the
folder renamed to ``<seq>/``. A later run skips a folder only when ``verify_sequence`` passes, so a
folder damaged after writing is redone, never trusted. A folder without a manifest (evdet before
manifests) is kept only after a full check of every representation (``adopt_sequence``).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from evdet.data.preprocessed import REPR_DIR, REPR_FILES, PreprocessedSequence
from evdet.utils.atomic import write_text_atomic

MANIFEST = "manifest.json"
SCHEMA_VERSION = 1
_READ_BLOCK = 64          # representations decoded at a time by the full check


class IncompleteSequenceError(ValueError):
    """A preprocessed sequence folder is not whole (the message names the file and the problem)."""


def write_manifest(seq_dir: str | Path, counts: dict) -> Path:
    """Write ``<seq_dir>/manifest.json`` listing every file below ``seq_dir`` (call it last)."""
    seq_dir = Path(seq_dir)
    files = {}
    for path in sorted(p for p in seq_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(seq_dir).as_posix()
        if rel != MANIFEST:
            files[rel] = {"bytes": path.stat().st_size, "sha256": _sha256(path)}
    doc = {"schema_version": SCHEMA_VERSION, "files": files, "counts": counts}
    return write_text_atomic(seq_dir / MANIFEST, json.dumps(doc, indent=1))


def verify_sequence(seq_dir: str | Path, representation: str, downsample: str, *,
                    checksums: bool = False) -> dict:
    """Check that a finished sequence folder is whole; return the counts its manifest records.

    Checks: the manifest reads and lists the representation file; every listed file exists with
    its recorded size (and SHA-256 when ``checksums``); the HDF5 file opens, its 'data' agrees in
    length with the timestamps and index files, every chunk was written, and the last
    representation decodes.

    Args:
        seq_dir: ``<dst>/<split>/<sequence>``.
        representation: representation folder name, e.g. ``stacked_histogram_dt=50_nbins=10``.
        downsample: "none", "ds2_nearest" or "ds2_sum" (which representation file).
        checksums: also compare every file's SHA-256 (reads every byte).

    Raises:
        IncompleteSequenceError: naming the first file that is missing, short, altered or unreadable.
    """
    seq_dir = Path(seq_dir)
    path = seq_dir / MANIFEST
    try:
        doc = json.loads(path.read_text())
        files, counts = dict(doc["files"]), dict(doc["counts"])
    except FileNotFoundError:
        raise IncompleteSequenceError(f"{path}: no manifest (written last, so the folder is not "
                                      "known to be whole)") from None
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise IncompleteSequenceError(f"{path}: unreadable manifest ({err})") from err
    repr_rel = f"{REPR_DIR}/{representation}/{REPR_FILES[downsample]}"
    if repr_rel not in files:
        raise IncompleteSequenceError(f"{path}: does not list {repr_rel}")
    for rel, meta in files.items():
        file = seq_dir / rel
        if not file.is_file():
            raise IncompleteSequenceError(f"{file}: missing (listed in {MANIFEST})")
        if file.stat().st_size != meta["bytes"]:
            raise IncompleteSequenceError(f"{file}: {file.stat().st_size} bytes, {MANIFEST} "
                                          f"records {meta['bytes']}")
        if checksums and _sha256(file) != meta["sha256"]:
            raise IncompleteSequenceError(f"{file}: SHA-256 differs from {MANIFEST}")
    n = _check_representations(seq_dir, representation, downsample, every_chunk=False)
    if counts.get("reprs") != n:
        raise IncompleteSequenceError(f"{path}: records {counts.get('reprs')} representations, "
                                      f"the file holds {n}")
    return counts


def adopt_sequence(seq_dir: str | Path, representation: str, downsample: str) -> dict:
    """Check a finished-looking folder that has no manifest (written by evdet before manifests,
    or by the reference scripts) in full, then write its manifest; return its counts.

    Full check: the files agree as in ``verify_sequence``, every representation chunk was written
    (a writer killed midway leaves chunks unallocated, which HDF5 would read back as zeros) and
    every representation decodes.

    Raises:
        IncompleteSequenceError: naming the first problem (the folder is then redone).
    """
    seq_dir = Path(seq_dir)
    n = _check_representations(seq_dir, representation, downsample, every_chunk=True)
    try:
        with PreprocessedSequence(seq_dir, representation, downsample=downsample) as seq:
            counts = {"reprs": n, "label_frames": seq.num_label_frames,
                      "labels_kept": int(seq.all_labels(in_repr_pixels=False).size)}
    except (OSError, ValueError) as err:
        raise IncompleteSequenceError(str(err)) from err
    write_manifest(seq_dir, counts)
    return counts


def _check_representations(seq_dir: Path, representation: str, downsample: str, *,
                           every_chunk: bool) -> int:
    """Number of representations, after checking that the files agree (``PreprocessedSequence``),
    that every chunk was written, and that the last one (or, with ``every_chunk``, every one)
    decodes."""
    try:
        with PreprocessedSequence(seq_dir, representation, downsample=downsample) as seq:
            n = seq.num_reprs
            if not seq.all_written():
                raise IncompleteSequenceError(f"{seq.repr_file}: not every representation was "
                                              "written (an interrupted writer)")
            if n:
                for start in range(0, n, _READ_BLOCK) if every_chunk else [n - 1]:
                    seq.reprs(start, min(start + _READ_BLOCK, n))
    except IncompleteSequenceError:
        raise
    except (OSError, ValueError, RuntimeError) as err:     # h5py reports bad chunks as OSError/RuntimeError
        raise IncompleteSequenceError(str(err)) from err
    return n


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
