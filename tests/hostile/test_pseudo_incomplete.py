"""A pseudo-label run killed after one of two sequences leaves a dataset that says it is incomplete."""

import pytest

import evdet.pseudo.dataset as pseudo
from evdet.data.sequence_store import read_split_meta
from evdet.data.preprocessed import INCOMPLETE_FILE, IncompleteDatasetError
from evdet.pseudo.dataset import PseudoLabelSettings, pseudo_label_dataset
from tiny_dataset import REPR_NAME


def test_interrupted_output_is_refused_until_the_rerun_finishes(good_ckpt, tiny_root, tmp_path, monkeypatch):
    out = tmp_path / "pseudo"
    settings = PseudoLabelSettings(score_thr=0.0, class_thr=0.0)
    real, calls = pseudo.write_pseudo_sequence, []

    def killed_at_the_second(*args, **kwargs):
        calls.append(args[0].name)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as a kill between sequences
        return real(*args, **kwargs)

    monkeypatch.setattr(pseudo, "write_pseudo_sequence", killed_at_the_second)
    with pytest.raises(KeyboardInterrupt):
        pseudo_label_dataset(good_ckpt, tiny_root, out, settings, progress=False)
    assert (out / INCOMPLETE_FILE).is_file() and (out / "train" / calls[0]).is_dir()
    with pytest.raises(IncompleteDatasetError, match=f"{out}: the dataset is incomplete .*pseudo-label"):
        read_split_meta(out, "train", REPR_NAME)       # what a student's DataModule reads first
    monkeypatch.setattr(pseudo, "write_pseudo_sequence", real)
    summary = pseudo_label_dataset(good_ckpt, tiny_root, out, settings, progress=False)
    assert not (out / INCOMPLETE_FILE).exists() and len(summary["sequences"]) == 2
    assert [m.name for m in read_split_meta(out, "train", REPR_NAME)] == ["seq_train_0", "seq_train_1"]
