"""ONNX export + ONNX Runtime against the checkpoint it came from (the torch model is the oracle)."""

import numpy as np
import pytest
import torch
from deploy_models import CLASS_NAMES, INPUT_HW, make_module, random_frames
from typer.testing import CliRunner

from evdet.cli import app
from evdet.data.detection_files import read_detections
from evdet.deploy.export import export_onnx
from evdet.deploy.onnx_runtime import OnnxDetector, predict_recording_onnx
from evdet.training.predict import predict_recording

BOX_TOL_PX = 0.05


def assert_same_detections(expected: np.ndarray, got: np.ndarray) -> None:
    """Same count and classes; each expected box matched one-to-one by a box of its class within 0.05 px
    whose other columns (scores) agree within 1e-4.

    Rows: x1, y1, x2, y2, score, class_id[, class_conf].
    """
    assert got.shape == expected.shape
    np.testing.assert_array_equal(np.sort(got[:, 5]), np.sort(expected[:, 5]))
    free = np.ones(len(got), bool)
    for row in expected:
        dist = np.abs(got[:, :4] - row[:4]).max(axis=1) + np.abs(got[:, 4:] - row[4:]).max(axis=1)
        dist[(got[:, 5] != row[5]) | ~free] = np.inf
        j = int(np.argmin(dist))
        assert np.abs(got[j, :4] - row[:4]).max() <= BOX_TOL_PX, (row, got[j])
        assert np.abs(got[j, 4:] - row[4:]).max() <= 1e-4, (row, got[j])
        free[j] = False


def torch_steps(module, frames: np.ndarray):
    """Oracle: the checkpoint's model over (T, B, ...) frames as one (B, T, ...) call per step, states carried."""
    outs, states = [], None
    cfg = module.model_cfg.head
    with torch.no_grad():
        for x in frames:
            out = module.model(torch.from_numpy(x), states)
            states = out.states
            dets = module.model.postprocess(out.head, cfg.conf_threshold, cfg.nms_iou, cfg.max_detections)
            flat = [t.numpy() for pair in out.states for t in pair]
            head = out.head
            outs.append((head.boxes.numpy(), head.strides.numpy()[None, :, None], head.obj_logits.numpy(),
                         head.cls_logits.numpy(), flat, [d.numpy() for d in dets]))
    return outs


def test_onnx_equals_checkpoint_over_recurrent_steps(onnx_model):
    module = make_module()
    frames = random_frames(batch=2, steps=4, seed=1)
    detector = OnnxDetector(onnx_model, threads=1)
    assert detector.class_names == CLASS_NAMES and detector.input_hw == INPUT_HW
    states = None
    total = 0
    for x, (boxes, strides, obj, cls, flat, dets) in zip(frames, torch_steps(module, frames)):
        got_dets, new_states = detector.detect(x, states)
        head, _ = detector.step(x, states)
        # boxes in stride units: the regression outputs before YOLOX scales them by up to 32 px
        np.testing.assert_allclose(head["boxes"] / strides, boxes / strides, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(head["obj_logits"], obj, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(head["cls_logits"], cls, rtol=1e-4, atol=1e-4)
        for got_state, state in zip(new_states, flat):
            np.testing.assert_allclose(got_state, state, rtol=1e-4, atol=1e-4)
        for expected, got in zip(dets, got_dets):
            assert_same_detections(expected, got)
            total += len(expected)
        states = new_states
    assert total > 8  # the comparison covered real detections
    # the states carry information: a later step differs from the same frame at a sequence start
    fresh, _ = detector.step(frames[-1])
    assert np.abs(fresh["obj_logits"] - head["obj_logits"]).max() > 1e-3


def test_dynamic_batch_items_are_independent(onnx_model):
    detector = OnnxDetector(onnx_model, threads=1)
    assert detector.session.get_inputs()[0].shape[0] == "batch"
    frames = random_frames(batch=2, steps=2, seed=2)
    pair_states, single_states = None, None
    for x in frames:
        pair, pair_states = detector.step(x, pair_states)
        single, single_states = detector.step(x[1:2], single_states)
        assert pair["boxes"].shape[0] == 2 and single["boxes"].shape[0] == 1
        for key in ("boxes", "obj_logits", "cls_logits"):
            np.testing.assert_allclose(single[key][0], pair[key][1], rtol=1e-4, atol=1e-4)
        for s1, s2 in zip(single_states, pair_states):
            np.testing.assert_allclose(s1[0], s2[1], rtol=1e-4, atol=1e-4)


def test_predict_recording_onnx_equals_checkpoint(checkpoint, onnx_model, recording, tmp_path):
    expected, info = predict_recording(checkpoint, recording, progress=False, device="cpu")
    assert info["windows"] == 7 and expected.size > 0
    runner = CliRunner()
    result = runner.invoke(app, ["predict", str(onnx_model), str(recording), "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    got = read_detections(tmp_path / "moving_bbox.npy")   # the file ranks like RVT's; back in memory form
    direct, direct_info = predict_recording_onnx(onnx_model, recording, progress=False)
    assert direct_info["windows"] == 7 and direct.size == got.size
    assert (tmp_path / "moving_strip.png").is_file()
    np.testing.assert_array_equal(np.unique(got["t"]), np.unique(expected["t"]))

    def rows(b, t):
        """Detections at t as x1, y1, x2, y2, score, class_id[, class_score]."""
        b = b[b["t"] == t]
        cols = [b["x"], b["y"], b["x"] + b["w"], b["y"] + b["h"], b["class_confidence"], b["class_id"]]
        cols += [b["class_score"]] if "class_score" in b.dtype.names else []
        return np.stack(cols, axis=1).astype(np.float64)

    for t in np.unique(expected["t"]):
        assert_same_detections(rows(expected, t), rows(direct, t))
        assert_same_detections(rows(expected, t), rows(got, t))


def test_bad_files_give_one_line_errors(tmp_path, checkpoint):
    bad = tmp_path / "notes.ckpt"
    bad.write_text("not a checkpoint")
    with pytest.raises(ValueError, match="notes.ckpt: not a readable checkpoint"):
        export_onnx(bad, tmp_path / "x.onnx")
    result = CliRunner().invoke(app, ["export", "onnx", str(bad), str(tmp_path / "x.onnx")])
    assert result.exit_code == 1 and "not a readable checkpoint" in result.output
    assert not (tmp_path / "x.onnx").exists()
    result = CliRunner().invoke(app, ["export", "onnx", str(tmp_path / "missing.ckpt"), str(tmp_path / "x.onnx")])
    assert result.exit_code == 1 and "checkpoint not found" in result.output
    with pytest.raises(ValueError, match="not a loadable ONNX model"):
        OnnxDetector(checkpoint)   # a checkpoint is not an ONNX graph
