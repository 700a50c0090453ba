"""Planted checkpoints in experiment records: `exp run --resume` and `exp report` never run their code."""

import json
import shutil

from typer.testing import CliRunner

from evdet.cli import app
from hostile_files import evil_copy, one_line_error
from tests.experiments.exp_fixtures import CLASSES, make_experiment, protocol_block
from tiny_dataset import REPR_NAME

TINY = ["model.preset=nano", "model.partition_split=1", f"data.representation={REPR_NAME}", "data.num_workers=0",
        "data.seq_len=2", "data.batch_size=2", "training.max_steps=2", "training.accelerator=cpu",
        "training.loggers=[csv]"]


def test_resume_refuses_a_planted_last_ckpt(good_ckpt, marker, tiny_root, tmp_path):
    root = tmp_path / "exps"
    res = CliRunner().invoke(app, ["exp", "new", "victim", "--hypothesis", "h", f"data.root={tiny_root}", *TINY,
                                   "--root", str(root)])
    assert res.exit_code == 0, res.output
    last = root / "victim" / "checkpoints" / "last.ckpt"
    last.parent.mkdir(parents=True, exist_ok=True)
    evil_copy(good_ckpt, last, marker)
    line = one_line_error(["exp", "run", "victim", "--resume", "--root", root])
    assert f"{last}: refused" in line and "--trusted" in line
    assert not marker.exists()
    status = json.loads((root / "victim" / "status.json").read_text())
    assert status["state"] != "running"


def _ranked_record_with(ckpt, root, raw_recording):
    """A completed, ranked record whose best.ckpt is ``ckpt`` and whose data has a raw validation recording."""
    pre = raw_recording.parents[2] / "pre"
    (pre / "val" / raw_recording.name.removesuffix("_td.dat")).mkdir(parents=True, exist_ok=True)
    d = make_experiment(root, "shared", config={"model": {"preset": "nano"}, "data": {"root": str(pre)}},
                        protocols={"prophesee": protocol_block(0.3, 0.1, {c: 0.3 for c in CLASSES})})
    shutil.copyfile(ckpt, d / "checkpoints" / "best.ckpt")
    return d


def test_report_reads_no_checkpoint_unless_asked(evil_ckpt, marker, real_data_dir, tmp_path):
    raw = tmp_path / "raw" / "val" / "rec_td.dat"
    raw.parent.mkdir(parents=True)
    shutil.copyfile(real_data_dir / "ncars-dat" / "ncars_obj_004397_td.dat", raw)
    root = tmp_path / "exps"
    _ranked_record_with(evil_ckpt, root, raw)
    out = tmp_path / "report.html"
    res = CliRunner().invoke(app, ["exp", "report", "--out", str(out), "--root", str(root)])
    assert res.exit_code == 0, res.output
    assert not marker.exists() and 'id="clip"' not in out.read_text()
    res = CliRunner().invoke(app, ["exp", "report", "--clip", "--out", str(out), "--root", str(root)])
    assert res.exit_code == 0, res.output
    assert not marker.exists()
    assert "refused" in out.read_text() and "--trusted" in out.read_text()   # said in the clip section


def test_trusted_flag_is_the_explicit_opt_in(evil_ckpt, marker, tiny_root):
    res = CliRunner().invoke(app, ["eval", str(evil_ckpt), f"data={tiny_root}", "--trusted"])
    assert marker.exists()          # the user asked for it: the full unpickler ran
    assert res.exit_code == 0, res.output
