"""evaluate_checkpoint input checks (its wiring end to end: test_validation_equals_eval.py)."""

import pytest

from evdet.evaluation.run import evaluate_checkpoint


def test_evaluate_checkpoint_rejects_unknown_protocol_before_predicting(tmp_path):
    with pytest.raises(ValueError, match="unknown evaluation protocol"):
        evaluate_checkpoint("x.ckpt", tmp_path, protocols=("bogus",))


def test_evaluate_checkpoint_rejects_unknown_scoring_before_predicting(tmp_path):
    with pytest.raises(ValueError, match=r"unknown scoring 'rank'; known: \['class', 'obj_x_cls'\]"):
        evaluate_checkpoint("x.ckpt", tmp_path, protocols=("prophesee",), scoring="rank")
