"""A checkpoint whose pickle runs code is refused by every command that reads a checkpoint.

The planted object is a real ``__reduce__`` (``os.system("touch MARKER")``); each command must exit with
one line that names the file and the ``--trusted`` opt-in, and the marker must not exist afterwards.
"""

import pickle

import numpy as np
import pytest
import torch

from evdet.training.checkpoints import read_checkpoint
from evdet.training.predict import load_module
from evdet.utils.safe_load import UntrustedCheckpointError, load_torch_file
from hostile_files import RunsCode, one_line_error


def assert_refused(line: str, path) -> None:
    assert f"{path}: refused" in line and "posix.system" in line and "--trusted" in line, line


def test_the_planted_object_really_runs_code_when_unpickled(evil_ckpt, marker):
    """The proof is live: the full unpickler executes it (so the refusals below mean something)."""
    torch.load(evil_ckpt, map_location="cpu", weights_only=False)
    assert marker.exists()


def test_library_readers_refuse_without_running_it(evil_ckpt, marker):
    for read in (load_torch_file, read_checkpoint, load_module):
        with pytest.raises(UntrustedCheckpointError, match="--trusted"):
            read(evil_ckpt)
    assert not marker.exists()


def test_trusted_opt_in_uses_the_full_unpickler(evil_ckpt, marker):
    load_module(evil_ckpt, trusted=True)
    assert marker.exists()


@pytest.mark.parametrize("fmt", ["zip", "legacy", "top_level"])
def test_every_torch_file_layout_is_refused(good_ckpt, marker, tmp_path, fmt):
    ckpt = torch.load(good_ckpt, weights_only=True)
    path = tmp_path / f"{fmt}.ckpt"
    if fmt == "top_level":
        torch.save(RunsCode(marker), path)
    else:
        ckpt["state_dict"]["extra"] = RunsCode(marker)
        torch.save(ckpt, path, _use_new_zipfile_serialization=fmt == "zip")
    with pytest.raises(UntrustedCheckpointError, match="posix.system"):
        load_torch_file(path)
    assert not marker.exists()


def test_plain_pickle_is_unreadable_without_trust(marker, tmp_path):
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps({"state_dict": RunsCode(marker)}))
    with pytest.raises(ValueError, match="not a readable checkpoint.*--trusted"):
        load_torch_file(path)
    assert not marker.exists()


def test_evdet_checkpoints_round_trip(good_ckpt, tmp_path):
    """What evdet saves (tensors, NumPy RNG states of every dtype, plain configs) loads weights-only."""
    module = load_module(good_ckpt)
    ckpt = torch.load(good_ckpt, weights_only=True)
    ckpt["evdet_resume"] = {"rng": [{"numpy": np.random.get_state(), "python": (3, tuple(range(5)), None)}],
                            "arrays": [np.arange(3).astype(d) for d in ("u1", "i4", "i8", "f2", "f4", "f8", "?")],
                            "scalar": np.float64(0.25)}
    path = tmp_path / "roundtrip.ckpt"
    torch.save(ckpt, path)
    back = load_torch_file(path)
    state = back["evdet_resume"]["rng"][0]["numpy"]
    assert state[0] == "MT19937" and np.array_equal(state[1], np.random.get_state()[1])
    for a, b in zip(back["evdet_resume"]["arrays"], ckpt["evdet_resume"]["arrays"]):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert back["evdet_resume"]["scalar"] == 0.25
    again = load_module(path)
    for (k, v), (k2, v2) in zip(module.state_dict().items(), again.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)


def test_eval_refuses(evil_ckpt, marker, tiny_root):
    assert_refused(one_line_error(["eval", evil_ckpt, f"data={tiny_root}"]), evil_ckpt)
    assert not marker.exists()


def test_predict_refuses(evil_ckpt, marker, tmp_path):
    rec = tmp_path / "rec.h5"   # not read: the checkpoint is refused first
    assert_refused(one_line_error(["predict", evil_ckpt, rec, "--out", tmp_path / "p"]), evil_ckpt)
    assert not marker.exists() and not (tmp_path / "p").exists()


def test_export_onnx_refuses(evil_ckpt, marker, tmp_path):
    assert_refused(one_line_error(["export", "onnx", evil_ckpt, tmp_path / "m.onnx"]), evil_ckpt)
    assert not marker.exists() and not (tmp_path / "m.onnx").exists()


def test_scoring_diff_refuses(evil_ckpt, marker, tiny_root):
    assert_refused(one_line_error(["scoring-diff", evil_ckpt, "--data", tiny_root]), evil_ckpt)
    assert not marker.exists()


def test_pseudo_label_refuses(evil_ckpt, marker, tiny_root, tmp_path):
    out = tmp_path / "pseudo"
    assert_refused(one_line_error(["pseudo-label", evil_ckpt, tiny_root, out]), evil_ckpt)
    assert not marker.exists() and not out.exists()


def test_import_rvt_refuses(evil_ckpt, marker, tmp_path):
    line = one_line_error(["import-rvt", evil_ckpt, tmp_path / "rvt.ckpt"])
    assert "--trusted" in line and str(evil_ckpt) in line
    assert not marker.exists()


def test_lightning_resume_reader_is_weights_only(evil_ckpt, good_ckpt, marker, tmp_path):
    """Trainer.fit(ckpt_path=...) reads through the run's CheckpointIO: refused unless trusted."""
    from evdet.training.checkpoints import BesideTargetCheckpointIO

    with pytest.raises(UntrustedCheckpointError, match="--trusted"):
        BesideTargetCheckpointIO().load_checkpoint(evil_ckpt)
    assert not marker.exists()
    assert set(BesideTargetCheckpointIO().load_checkpoint(good_ckpt)) >= {"state_dict", "hyper_parameters"}
    BesideTargetCheckpointIO(trusted=True).load_checkpoint(evil_ckpt)
    assert marker.exists()


def test_checkpoint_writer_stages_beside_the_target(good_ckpt, tmp_path, monkeypatch):
    """The temp file of a checkpoint lies next to it (never in the system temp dir) and is renamed over it."""
    from evdet.training.checkpoints import BesideTargetCheckpointIO

    seen = []
    real_save = torch.save
    monkeypatch.setattr(torch, "save", lambda obj, path: (seen.append(path), real_save(obj, path)))
    target = tmp_path / "checkpoints" / "last.ckpt"
    BesideTargetCheckpointIO().save_checkpoint(load_torch_file(good_ckpt), target)
    assert len(seen) == 1 and seen[0].parent == target.parent and seen[0] != target
    assert sorted(p.name for p in target.parent.iterdir()) == ["last.ckpt"]
    assert set(load_torch_file(target)) >= {"state_dict", "hyper_parameters"}


def _distill_fit(tiny_root, teacher, out, trusted):
    from evdet.data.config import DataConfig
    from evdet.models.config import HeadConfig, LossConfig, ModelConfig
    from evdet.training.config import DistillConfig, TrainConfig
    from evdet.training.fit import fit
    from tiny_dataset import REPR_NAME

    return fit(DataConfig(root=str(tiny_root), representation=REPR_NAME, seq_len=2, batch_size=2, num_workers=0),
               ModelConfig(preset="nano", partition_split=1, head=HeadConfig(conf_threshold=0.01, max_detections=20)),
               LossConfig(), TrainConfig(max_steps=1, val_every_n_steps=1, accelerator="cpu", loggers=("csv",),
                                         distill=DistillConfig(teacher_ckpt=str(teacher), teacher_scale=1.0)),
               out, progress=False, trusted=trusted)


def test_distillation_teacher_is_read_weights_only_unless_trusted(evil_ckpt, marker, tiny_root, tmp_path):
    with pytest.raises(UntrustedCheckpointError, match="--trusted"):
        _distill_fit(tiny_root, evil_ckpt, tmp_path / "refused", trusted=False)
    assert not marker.exists()
    summary = _distill_fit(tiny_root, evil_ckpt, tmp_path / "trusted", trusted=True)   # --trusted reaches it
    assert marker.exists() and summary["global_step"] == 1
