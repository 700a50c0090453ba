"""Stream-mode prediction: chunks with the state carried == one pass over the whole sequence."""

import dataclasses

import numpy as np
import torch
from tiny_dataset import label_reprs

from evdet.data.preprocessed import PreprocessedSequence, list_sequences
from evdet.models.config import HeadConfig
from evdet.training.module import DetectionModule
from evdet.training.predict import predict_sequences


def one_pass(module, seq_dir, repr_name):
    """Oracle: the whole sequence in one model call, detections at the labelled representations."""
    seq = PreprocessedSequence(seq_dir, representation=repr_name)
    x = torch.from_numpy(seq.reprs(0, seq.num_reprs)).float()[None]
    select = torch.zeros(1, seq.num_reprs, dtype=torch.bool)
    select[0, seq.label_repr_idx] = True
    cfg = module.model_cfg.head
    with torch.no_grad():
        out = module.model(x, None, select)
        dets = module.model.postprocess(out.head, cfg.conf_threshold, cfg.nms_iou, cfg.max_detections)
    return [(int(seq.repr_timestamps_us[r]), d.numpy()) for r, d in zip(seq.label_repr_idx, dets)]


def test_chunked_stream_prediction_equals_one_pass(tiny_cfgs, tiny_root, repr_name):
    data, model, loss, train = tiny_cfgs
    # an untrained head scores about 1e-4: keep every box, the 20 best per frame after NMS
    model = dataclasses.replace(model, head=HeadConfig(conf_threshold=0.0, max_detections=20))
    torch.manual_seed(1)
    module = DetectionModule(data, model, loss, train, 2, (64, 96), 4, ("car", "pedestrian")).eval()
    names, gts, dts = predict_sequences(module, tiny_root, "val", batch_size=2, chunk_len=3, progress=False,
                                        device="cpu")
    assert names == ["seq_val_0", "seq_val_1"]
    for name, gt, dt, seq_dir in zip(names, gts, dts, list_sequences(tiny_root, "val")):
        assert seq_dir.name == name
        n = PreprocessedSequence(seq_dir, representation=repr_name).num_reprs
        assert gt["t"].tolist() == [(r + 1) * 50_000 for r in label_reprs(n)]
        expected = one_pass(module, seq_dir, repr_name)
        assert sum(len(d) for _, d in expected) == len(dt) > 0
        for t_us, d in expected:
            got = dt[dt["t"] == t_us]
            np.testing.assert_allclose(got["x"], d[:, 0], atol=1e-3)
            np.testing.assert_allclose(got["y"], d[:, 1], atol=1e-3)
            np.testing.assert_allclose(got["w"], d[:, 2] - d[:, 0], atol=1e-3)
            np.testing.assert_allclose(got["h"], d[:, 3] - d[:, 1], atol=1e-3)
            np.testing.assert_allclose(got["class_confidence"], d[:, 4], atol=1e-5)
            np.testing.assert_array_equal(got["class_id"], d[:, 5].astype(np.uint32))


def test_max_sequences_and_all_reprs(tiny_cfgs, tiny_root):
    data, model, loss, train = tiny_cfgs
    module = DetectionModule(data, model, loss, train, 2, (64, 96), 4, ("car", "pedestrian"))
    names, _, dts = predict_sequences(module, tiny_root, "val", max_sequences=1, all_reprs=True, progress=False,
                                      device="cpu")
    assert names == ["seq_val_0"]
    assert set(dts[0]["t"].tolist()) <= {(r + 1) * 50_000 for r in range(8)}
    assert module.training  # the caller's mode is restored


def test_predict_command_writes_the_library_predictions(tiny_cfgs, tmp_path):
    from typer.testing import CliRunner

    from evdet.cli import app
    from evdet.data.labels import load_labels
    from evdet.events import make_events, write_events_h5
    from evdet.training.predict import predict_recording

    data, model, loss, train = tiny_cfgs
    model = dataclasses.replace(model, head=HeadConfig(conf_threshold=0.0, max_detections=5))
    torch.manual_seed(2)
    module = DetectionModule(data, model, loss, train, 2, (64, 96), 4, ("car", "pedestrian")).eval()
    ckpt = tmp_path / "m.ckpt"
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams)}, ckpt)
    rng = np.random.default_rng(0)
    n = 3000
    events = make_events(np.sort(rng.integers(0, 200_000, n)), rng.integers(0, 96, n), rng.integers(0, 64, n),
                         rng.integers(0, 2, n), source="test", height=64, width=96)
    recording = tmp_path / "street_td.h5"
    write_events_h5(recording, events, 64, 96)
    result = CliRunner().invoke(app, ["predict", str(ckpt), str(recording), "--out", str(tmp_path / "out"),
                                      "--panels", "2"])
    assert result.exit_code == 0, result.output
    expected, info = predict_recording(module, recording, progress=False, device="cpu")
    assert info["windows"] == 3 and info["class_names"] == ["car", "pedestrian"]
    got = load_labels(tmp_path / "out" / "street_bbox.npy")
    assert got.size == expected.size == 3 * 5
    np.testing.assert_allclose(got["x"], expected["x"], atol=1e-4)
    np.testing.assert_array_equal(got["t"], expected["t"])
    assert (tmp_path / "out" / "street_strip.png").stat().st_size > 0
    assert f"3 windows, 15 detections -> {tmp_path / 'out' / 'street_bbox.npy'}" in result.output
