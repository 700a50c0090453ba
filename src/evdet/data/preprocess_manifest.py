"""When a preprocessed sequence counts as done: its manifest, written last, and its verification.

A sequence is written into ``<seq>.tmp/``; once every file is closed, ``manifest.json`` (the size
and SHA-256 of each file, and the sequence's counts) is written atomically, and only then is the
folder renamed to ``<seq>/``. A later run skips a folder only when ``verify_sequence`` passes, so a
folder from an interrupted or older run, or one damaged after writing, is redone, never trusted.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from evdet.data.sequence import REPR_DIR, REPR_FILES, PreprocessedSequence
from evdet.utils.atomic import write_text_atomic

MANIFEST = "manifest.json"
SCHEMA_VERSION = 1


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
    length with the timestamps and index files, and its last representation decodes.

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
    try:
        with PreprocessedSequence(seq_dir, representation, downsample=downsample) as seq:
            if seq.num_reprs:
                seq.reprs(seq.num_reprs - 1, seq.num_reprs)
            n = seq.num_reprs
    except (OSError, ValueError, RuntimeError) as err:     # h5py reports bad chunks as OSError/RuntimeError
        raise IncompleteSequenceError(str(err)) from err
    if counts.get("reprs") != n:
        raise IncompleteSequenceError(f"{path}: records {counts.get('reprs')} representations, "
                                      f"the file holds {n}")
    return counts


def _sha256(path: Path) -> str:
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()
