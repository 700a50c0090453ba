"""RVT checkpoint import: an independent restatement of RVT (rvt_reference.py) as the oracle."""

import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from rvt_reference import RvtReference, randomize_  # noqa: E402

from evdet.models import load_rvt_checkpoint  # noqa: E402
from evdet.models.rvt_import import (RvtArchitecture, RvtCheckpointError,  # noqa: E402
                                     qkv_rows_per_head_to_stacked)

HW = (64, 96)          # padded already for partition split 1 (multiple of 32): partitions (2, 3)
# preset -> (embed_dim, dim_head, fpn depth) as in RVT's configs (small: dim_head 24)
RVT_SIZES = {"tiny": (32, 32, 0.33), "small": (48, 24, 0.33)}


def _reference(preset: str, in_stages, patch_size: int, num_classes: int = 3, in_channels: int = 20,
               seed: int = 0) -> RvtReference:
    embed, dim_head, depth = RVT_SIZES[preset]
    ref = RvtReference(embed_dim=embed, dim_head=dim_head, fpn_depth=depth, num_classes=num_classes,
                       in_stages=tuple(in_stages), patch_size=patch_size, in_channels=in_channels,
                       partition_size=(HW[0] // 32, HW[1] // 32))
    return randomize_(ref.eval(), seed)


def save_rvt_checkpoint(ref: RvtReference, path: Path, extra: dict | None = None) -> Path:
    """An RVT-style Lightning checkpoint: the detector under 'mdl.', no model config."""
    state = {"mdl." + k: v for k, v in ref.state_dict().items()}
    state.update(extra or {})
    torch.save({"state_dict": state, "epoch": 12, "global_step": 400_000, "pytorch-lightning_version": "1.8.6",
                "optimizer_states": [], "lr_schedulers": [], "callbacks": {}}, path)
    return path


def _events(seed: int, channels: int = 20) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    counts = torch.randint(1, 6, (2, channels, *HW), generator=g).float()
    return counts * (torch.rand(2, channels, *HW, generator=g) < 0.15)


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).abs().max() / b.abs().max().clamp(min=1e-12))


@pytest.mark.parametrize("preset, in_stages, patch", [("tiny", (2, 3, 4), 4), ("tiny", (1, 2, 3, 4), 4),
                                                      ("small", (2, 3, 4), 4), ("small", (1, 2, 3, 4), 2)])
def test_imported_model_reproduces_rvt_over_recurrent_steps(tmp_path, preset, in_stages, patch):
    ref = _reference(preset, in_stages, patch)
    det = load_rvt_checkpoint(save_rvt_checkpoint(ref, tmp_path / "rvt.ckpt"), input_hw=HW, partition_split=1)
    assert det.rvt_architecture == RvtArchitecture(preset, patch, tuple(in_stages), 3, 20)
    ref_states, states = None, None
    with torch.no_grad():
        for step in range(3):
            x = _events(step)
            feats, _ = ref.backbone(x, ref_states)
            decoded, ref_states = ref(x, ref_states)
            backbone_feats, _ = det.backbone(x, states)
            out = det(x, states)
            states = out.states
            for s in range(4):      # every stage's recurrent output
                assert _rel(backbone_feats[s], feats[s + 1]) < 1e-4, (step, s)
            assert out.head.boxes.shape == decoded[..., :4].shape
            assert _rel(out.head.boxes, decoded[..., :4]) < 1e-4, step
            assert _rel(torch.sigmoid(out.head.obj_logits), decoded[..., 4]) < 1e-4, step
            assert _rel(torch.sigmoid(out.head.cls_logits), decoded[..., 5:]) < 1e-4, step
            for (h, c), (rh, rc) in zip(states, ref_states):
                assert _rel(h, rh) < 1e-4 and _rel(c, rc) < 1e-4


def test_qkv_rows_move_from_per_head_to_stacked_by_hand():
    # 2 heads, head_dim 2: RVT rows q0 q0 k0 k0 v0 v0 q1 q1 k1 k1 v1 v1 -> evdet q0 q0 q1 q1 k0 k0 k1 k1 v0 v0 v1 v1
    rvt = torch.tensor([10, 11, 20, 21, 30, 31, 12, 13, 22, 23, 32, 33]).float()
    expected = torch.tensor([10, 11, 12, 13, 20, 21, 22, 23, 30, 31, 32, 33]).float()
    assert torch.equal(qkv_rows_per_head_to_stacked(rvt, 2), expected)
    w = torch.arange(12).float()[:, None].expand(12, 3)     # weight rows: the same permutation, row by row
    assert torch.equal(qkv_rows_per_head_to_stacked(w, 2)[:, 0],
                       torch.tensor([0, 1, 6, 7, 2, 3, 8, 9, 4, 5, 10, 11]).float())


def test_extra_block_is_rejected_naming_the_key(tmp_path):
    ref = _reference("tiny", (2, 3, 4), 4)
    extra = {"mdl.backbone.stages.1.att_blocks.1.att_window.norm1.weight": torch.ones(64)}
    with pytest.raises(RvtCheckpointError, match=r"rvt\.ckpt: key mdl\.backbone\.stages\.1\.att_blocks\.1\."
                                                  r"att_window\.norm1\.weight does not fit"):
        load_rvt_checkpoint(save_rvt_checkpoint(ref, tmp_path / "rvt.ckpt", extra), input_hw=HW, partition_split=1)


def test_mask_token_is_dropped(tmp_path):
    ref = _reference("tiny", (2, 3, 4), 4)
    extra = {"mdl.backbone.stages.0.mask_token": torch.zeros(1, 1, 1, 32)}
    det = load_rvt_checkpoint(save_rvt_checkpoint(ref, tmp_path / "rvt.ckpt", extra), input_hw=HW, partition_split=1)
    assert det.rvt_architecture.preset == "tiny"


def test_mismatched_shapes_and_unknown_dims_name_the_key(tmp_path):
    ref = _reference("tiny", (2, 3, 4), 4)
    state = {"mdl." + k: v for k, v in ref.state_dict().items()}
    state["mdl.fpn.C3_p4.conv1.conv.weight"] = torch.zeros(5, 256, 1, 1)   # hidden 64 = 128 / 2, input 2 x 128
    torch.save({"state_dict": state}, tmp_path / "a.ckpt")
    with pytest.raises(RvtCheckpointError, match=r"a\.ckpt: key mdl\.fpn\.C3_p4\.conv1\.conv\.weight has shape "
                                                 r"\(5, 256, 1, 1\), expected \(64, 256, 1, 1\)"):
        load_rvt_checkpoint(tmp_path / "a.ckpt", input_hw=HW, partition_split=1)
    state = {"mdl." + k: v for k, v in ref.state_dict().items()}
    state["mdl.backbone.stages.2.downsample_cf2cl.conv.weight"] = torch.zeros(100, 64, 3, 3)
    torch.save({"state_dict": state}, tmp_path / "b.ckpt")
    with pytest.raises(RvtCheckpointError, match=r"b\.ckpt: stage dims \[32, 64, 100, 256\]"):
        load_rvt_checkpoint(tmp_path / "b.ckpt", input_hw=HW)
    del state["mdl.backbone.stages.2.downsample_cf2cl.conv.weight"]
    torch.save({"state_dict": state}, tmp_path / "c.ckpt")
    with pytest.raises(RvtCheckpointError, match=r"c\.ckpt: missing key mdl\.backbone\.stages\.2\.downsample_cf2cl"):
        load_rvt_checkpoint(tmp_path / "c.ckpt", input_hw=HW)


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "notes.ckpt").write_text("hello")
    with pytest.raises(RvtCheckpointError, match=r"notes\.ckpt: cannot read as a torch checkpoint"):
        load_rvt_checkpoint(tmp_path / "notes.ckpt")
    torch.save({"epoch": 1}, tmp_path / "empty.ckpt")
    with pytest.raises(RvtCheckpointError, match=r"empty\.ckpt: no 'state_dict' \(top-level keys: \['epoch'\]\)"):
        load_rvt_checkpoint(tmp_path / "empty.ckpt")
    torch.save({"state_dict": {"mdl.other.weight": torch.zeros(2)}}, tmp_path / "other.ckpt")
    with pytest.raises(RvtCheckpointError, match=r"other\.ckpt: missing key mdl\.backbone\.stages\.0\."):
        load_rvt_checkpoint(tmp_path / "other.ckpt")
    with pytest.raises(RvtCheckpointError, match="checkpoint not found"):
        load_rvt_checkpoint(tmp_path / "nope.ckpt")


def test_import_rvt_cli_writes_a_checkpoint_that_eval_uses(tmp_path):
    from typer.testing import CliRunner

    from evdet.cli import app
    from evdet.training.predict import load_module

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))
    from tiny_dataset import make_tiny_dataset

    ref = _reference("tiny", (2, 3, 4), 4, num_classes=2, in_channels=4)
    src = save_rvt_checkpoint(ref, tmp_path / "rvt.ckpt")
    env = {"COLUMNS": "250", "NO_COLOR": "1"}
    r = CliRunner().invoke(app, ["import-rvt", str(src), str(tmp_path / "out.ckpt"), "--input", "96x64",
                                 "--partition-split", "1", "--classes", "car,pedestrian"], env=env)
    assert r.exit_code == 0, r.output
    assert "RVT tiny, patch 4, FPN stages [2, 3, 4], 2 classes (car, pedestrian), 4 input channels" in r.output
    module = load_module(tmp_path / "out.ckpt").eval()
    assert module.class_names == ("car", "pedestrian") and module.input_hw == HW
    assert module.data_cfg.representation == "stacked_histogram_dt=50_nbins=2"
    x = _events(7, channels=4)
    with torch.no_grad():
        decoded, _ = ref(x)
        torch.testing.assert_close(module.model(x).head.boxes, decoded[..., :4], rtol=1e-4, atol=1e-4)
    root = make_tiny_dataset(tmp_path / "pre", lengths={"val": [12]})
    r = CliRunner().invoke(app, ["eval", str(tmp_path / "out.ckpt"), f"data={root}", "protocol=prophesee",
                                 "scoring=obj_x_cls"], env=env)
    assert r.exit_code == 0, r.output
    assert "prophesee" in r.output
    r = CliRunner().invoke(app, ["eval", str(tmp_path / "out.ckpt"), f"data={root}", "scoring=best"], env=env)
    assert r.exit_code == 1 and "unknown scoring 'best'" in r.output
    # a wrong class count is a one-line error naming the file
    r = CliRunner().invoke(app, ["import-rvt", str(src), str(tmp_path / "bad.ckpt"), "--input", "96x64",
                                 "--classes", "etram"], env=env)
    assert r.exit_code == 1 and "rvt.ckpt: the checkpoint has 2 classes but 8 names were given" in r.output
    assert not (tmp_path / "bad.ckpt").exists()


def test_without_the_qkv_permutation_the_outputs_differ(tmp_path, monkeypatch):
    """Negative control: the comparison above is sensitive to the per-head qkv layout."""
    import evdet.models.rvt_import as rvt_import

    ref = _reference("tiny", (2, 3, 4), 4)
    path = save_rvt_checkpoint(ref, tmp_path / "rvt.ckpt")
    monkeypatch.setattr(rvt_import, "qkv_rows_per_head_to_stacked", lambda t, heads: t)
    det = load_rvt_checkpoint(path, input_hw=HW, partition_split=1)
    with torch.no_grad():
        x = _events(0)
        feats, _ = ref.backbone(x)
        got, _ = det.backbone(x)
    assert _rel(got[0], feats[1]) < 1e-6            # stage 1 has one head: nothing to permute
    assert min(_rel(got[s], feats[s + 1]) for s in (1, 2, 3)) > 1e-3


def test_import_asks_for_the_input_size_when_the_checkpoint_records_none(tmp_path):
    from typer.testing import CliRunner

    from evdet.cli import app

    src = save_rvt_checkpoint(_reference("tiny", (2, 3, 4), 4, num_classes=2, in_channels=4), tmp_path / "rvt.ckpt")
    r = CliRunner().invoke(app, ["import-rvt", str(src), str(tmp_path / "out.ckpt"), "--classes", "car,pedestrian"],
                           env={"COLUMNS": "250", "NO_COLOR": "1"})
    assert r.exit_code == 1 and "does not record its input size" in r.output and "--input" in r.output
    assert not (tmp_path / "out.ckpt").exists()
