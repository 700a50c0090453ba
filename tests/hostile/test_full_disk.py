"""A full disk while a checkpoint is written: no partial file is left, the record says failed (not running)."""

import errno
import json

import pytest
from typer.testing import CliRunner

import evdet.experiments.running.runner as runner
import evdet.training.checkpoints as checkpoints
from evdet.cli import app
from test_checkpoint_records import TINY


def test_full_disk_at_a_checkpoint(tiny_root, tmp_path, monkeypatch):
    root = tmp_path / "exps"
    res = CliRunner().invoke(app, ["exp", "new", "full", "--hypothesis", "h", f"data.root={tiny_root}", *TINY,
                                   "training.checkpoint_every_n_steps=1", "--root", str(root)])
    assert res.exit_code == 0, res.output
    written = []

    def disk_full(obj, path):
        written.append(path)
        with open(path, "wb") as fh:            # part of the file reaches the disk, then the disk is full
            fh.write(b"PK\x03\x04 partial")
        raise OSError(errno.ENOSPC, "No space left on device")

    real_write = runner.write_text_atomic

    def error_txt_fails_too(path, text):
        if path.name == "error.txt":           # the failure handler's own write fails as well
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_write(path, text)

    monkeypatch.setattr(checkpoints.torch, "save", disk_full)
    monkeypatch.setattr(runner, "write_text_atomic", error_txt_fails_too)
    with pytest.raises(OSError, match="No space left"):
        runner.run_experiment(root, "full", progress=False)
    monkeypatch.undo()
    ckpt_dir = root / "full" / "checkpoints"
    assert written and all(p.parent == ckpt_dir for p in map(type(ckpt_dir), written))   # beside the target
    assert not any(ckpt_dir.iterdir())                                                      # nothing partial left
    status = json.loads((root / "full" / "status.json").read_text())
    assert status["state"] == "failed" and "No space left" in status["message"]
