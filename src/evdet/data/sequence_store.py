"""Sequences of a preprocessed split, opened lazily once per process (loader workers reopen them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

import numpy as np

from evdet.data.classes import merge_box_classes


@dataclass(frozen=True)
class SequenceMeta:
    """What the sampling plans need to know about one sequence (read once in the main process)."""

    path: str
    name: str
    num_reprs: int
    label_repr_idx: np.ndarray


class SequenceStore:
    """Opens ``PreprocessedSequence`` objects lazily, once per process (workers reopen them)."""

    def __init__(self, paths: list[str], representation: str, withheld_reprs: Optional[list[np.ndarray]] = None,
                 class_ids: Optional[tuple[int, ...]] = None):
        self.paths = list(paths)
        self.representation = representation
        self.class_ids = class_ids   # merged class of every stored class id (data.class_map etram3), None: as stored
        # per sequence, representation indices whose label frame is withheld (evdet.data.label_subset)
        self.withheld = [frozenset(np.asarray(w).tolist()) for w in withheld_reprs] if withheld_reprs else None
        self._open: dict[int, Any] = {}

    def __getstate__(self) -> dict:
        return {"paths": self.paths, "representation": self.representation, "withheld": self.withheld,
                "class_ids": self.class_ids, "_open": {}}

    def labels_at_repr(self, index: int, repr_idx: int):
        """Boxes of the label frame at representation ``repr_idx`` of sequence ``index`` (classes merged), or None."""
        return merge_box_classes(self.get(index).labels_at_repr(repr_idx), self.class_ids)

    def is_withheld(self, index: int, repr_idx: int) -> bool:
        """True when the label frame at representation ``repr_idx`` of sequence ``index`` is withheld."""
        return self.withheld is not None and repr_idx in self.withheld[index]

    def get(self, index: int):
        """The sequence object of index (opened on first use in this process)."""
        if index not in self._open:
            from evdet.data.preprocessed import PreprocessedSequence

            self._open[index] = PreprocessedSequence(Path(self.paths[index]), representation=self.representation)
        return self._open[index]


def read_split_meta(root: str | Path, split: str, representation: str) -> list[SequenceMeta]:
    """Names, lengths and label frames of every sequence of a split (sorted by name)."""
    from evdet.data.preprocessed import PreprocessedSequence, list_sequences

    out = []
    for path in list_sequences(Path(root), split):
        seq = PreprocessedSequence(Path(path), representation=representation)
        out.append(SequenceMeta(str(path), seq.name, int(seq.num_reprs), np.asarray(seq.label_repr_idx, np.int64)))
    return out


