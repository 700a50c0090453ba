"""Writing a pseudo-labelled sequence: true labels kept, pseudo-labels from candidates, provenance round trip."""

from __future__ import annotations

import numpy as np
import pytest

from evdet.data.labels import DETECTION_DTYPE
from evdet.data.preprocessed import PreprocessedSequence
from evdet.pseudo.dataset import PseudoLabelSettings, load_provenance, write_pseudo_sequence
from tiny_dataset import REPR_NAME, REPR_US


def candidate(repr_idx, x, y, w, h, cls, score, class_prob):
    out = np.zeros(1, dtype=DETECTION_DTYPE)
    out[0] = ((repr_idx + 1) * REPR_US, x, y, w, h, cls, 0, score, class_prob)
    return out


def test_provenance_round_trip(tiny_root, tmp_path):
    seq = PreprocessedSequence(tiny_root / "train" / "seq_train_0", REPR_NAME)   # label frames at reprs 1,3,5,7,9
    cands = np.concatenate([
        candidate(3, 5, 5, 10, 10, 1, 0.70, 0.9),     # frame 1: written (effective 0.75)
        candidate(3, 30, 30, 8, 8, 0, 0.30, 0.9),     # frame 1: below score_thr, a candidate only
        candidate(3, 60, 20, 8, 8, 0, 0.90, 0.2),     # frame 1: class probability below class_thr: gone
        candidate(4, 5, 5, 10, 10, 1, 0.90, 0.9),     # repr 4 has no label frame: ignored
        candidate(7, 5, 5, 10, 10, 1, 0.10, 0.9),     # frame 3: nothing kept -> frame not written
    ])
    effective = np.array([0.75, 0.30, 0.90, 0.90, 0.10])
    settings = PseudoLabelSettings(score_thr=0.4, class_thr=0.35, candidate_score=0.05)
    out_dir = tmp_path / "seq_train_0"
    counts = write_pseudo_sequence(seq, out_dir, np.array([1, 3]), cands, effective, settings, (64, 96))
    assert counts == {"frames_true": 3, "frames_pseudo": 1, "frames_empty": 1, "boxes_true": 3, "boxes_pseudo": 1}

    back = PreprocessedSequence(out_dir, REPR_NAME)                 # the RVT layout reads back
    t_label = seq.label_timestamps_us
    assert back.label_timestamps_us.tolist() == [t_label[0], t_label[1], t_label[2], t_label[4]]
    assert back.label_repr_idx.tolist() == [1, 3, 5, 9]
    np.testing.assert_array_equal(back.reprs(0, 11), seq.reprs(0, 11))
    for new_f, old_f in ((0, 0), (2, 2), (3, 4)):
        np.testing.assert_array_equal(back.label_frame(new_f), seq.label_frame(old_f))
    pseudo = back.label_frame(1)
    assert pseudo.size == 1
    assert (pseudo["x"][0], pseudo["y"][0], pseudo["w"][0], pseudo["h"][0], pseudo["class_id"][0]) == (5, 5, 10, 10, 1)
    assert pseudo["t"][0] == t_label[1]
    assert pseudo["class_confidence"][0] == pytest.approx(0.75)

    prov = load_provenance(out_dir)
    assert prov["is_pseudo"].tolist() == [False, True, False, False]
    np.testing.assert_allclose(prov["raw_score"], [1.0, 0.70, 1.0, 1.0], rtol=1e-6)
    assert prov["frame_is_pseudo"].tolist() == [False, True, False, False]
    assert prov["withheld_t_us"].tolist() == [t_label[1], t_label[3]]
    c = prov["candidates"]
    assert sorted(zip(c["t"].tolist(), np.round(c["class_confidence"].astype(float), 2).tolist())) == \
        [(t_label[1], 0.3), (t_label[1], 0.75), (t_label[3], 0.1)]


def test_missing_provenance_is_named(tiny_root):
    with pytest.raises(FileNotFoundError, match="provenance.npz: no such file"):
        load_provenance(tiny_root / "train" / "seq_train_0")


@pytest.mark.parametrize("field,value", [("score_thr", 1.5), ("class_thr", -0.1), ("label_fraction", 0.0)])
def test_bad_settings(field, value):
    with pytest.raises(ValueError, match=r"must lie in"):
        PseudoLabelSettings(**{field: value}).check()
