"""Stream-mode prediction: chunks with the state carried == one pass over the whole sequence."""

import dataclasses

import numpy as np
import torch
from tiny_dataset import label_reprs

from evdet.data.sequence import PreprocessedSequence, list_sequences
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
