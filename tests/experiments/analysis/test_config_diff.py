from pathlib import Path

import pytest
import yaml

from evdet.experiments.analysis.config_diff import ConfigDiffError, diff_configs, flatten, load_config_tree

YOLO_BASE = {"lr0": 0.01, "lrf": 0.01, "momentum": 0.937, "weight_decay": 0.0005, "warmup_epochs": 3.0,
             "box": 0.05, "cls": 0.5, "obj": 1.0, "iou_t": 0.2, "fl_gamma": 0.0, "hsv_h": 0.015,
             "hsv_s": 0.7, "hsv_v": 0.4, "degrees": 0.0, "translate": 0.1, "scale": 0.5, "mosaic": 1.0,
             "mixup": 0.0, "copy_paste": 0.0}


def _write(path: Path, doc: dict) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def _by_key(d):
    return {c.key: c for c in d.changes}


def test_flatten_dotted_keys():
    assert flatten({"a": {"b": 1, "c": {"d": [1, 2]}}, "e": (3,), "f": {}}) == \
        {"a.b": 1, "a.c.d": [1, 2], "e": [3], "f": {}}


def test_yolo_focal_switched_on_is_high_and_first(tmp_path: Path):
    new = {**YOLO_BASE, "fl_gamma": 0.5}
    d = diff_configs(load_config_tree(_write(tmp_path / "a.yaml", YOLO_BASE)),
                     load_config_tree(_write(tmp_path / "b.yaml", new)))
    assert [c.key for c in d.changes] == ["fl_gamma"]
    c = d.changes[0]
    assert (c.old, c.new, c.risk) == (0.0, 0.5, "high") and "switched on" in c.note
    assert c.rel_change is None          # relative change undefined from 0
    assert d.confounded == 0 and d.notes == []


def test_yolo_several_changes_ranked_and_confounded():
    new = {**YOLO_BASE, "fl_gamma": 1.5, "lr0": 0.04, "mixup": 0.1, "box": 0.075, "hsv_h": 0.02,
           "warmup_epochs": 5.0}
    d = diff_configs(YOLO_BASE, new, base_completed=True)
    ch = _by_key(d)
    assert set(ch) == {"fl_gamma", "lr0", "mixup", "box", "hsv_h", "warmup_epochs"}
    assert ch["lr0"].risk == "high" and ch["lr0"].rel_change == pytest.approx(3.0)   # 4x > 3x
    assert ch["mixup"].risk == "medium" and "switched on" in ch["mixup"].note
    assert ch["box"].risk == "medium" and "rebalanced" in ch["box"].note
    assert ch["box"].rel_change == pytest.approx(0.5)
    assert ch["hsv_h"].risk == "low"                  # +33% augmentation change
    assert ch["warmup_epochs"].risk == "medium"
    order = [c.risk for c in d.changes]
    assert order == sorted(order, key=lambda r: -{"high": 3, "medium": 2, "low": 1, "info": 0}[r])
    assert d.confounded == 6 and "confounded: 6 changes" in d.notes[0] and "base that worked" in d.notes[0]


def test_weight_decay_over_50_percent_is_high():
    ch = _by_key(diff_configs(YOLO_BASE, {**YOLO_BASE, "weight_decay": 0.001}))
    assert ch["weight_decay"].risk == "high" and ch["weight_decay"].rel_change == pytest.approx(1.0)
    ch = _by_key(diff_configs(YOLO_BASE, {**YOLO_BASE, "weight_decay": 0.0006}))
    assert ch["weight_decay"].risk == "low"           # +20%


def test_small_lr_change_is_medium():
    ch = _by_key(diff_configs(YOLO_BASE, {**YOLO_BASE, "lr0": 0.02}))
    assert ch["lr0"].risk == "medium"


def _evdet(batch=8, lr=2e-4, alpha=1.0, gamma=0.0, stages=(2, 3, 4), steps=1000, seed=0):
    return {"name": "x", "data": {"batch_size": batch, "augment": {"flip_prob": 0.5}},
            "model": {"preset": "tiny", "patch_size": 4, "in_stages": list(stages)},
            "loss": {"iou_weight": 5.0, "size_aware": {"alpha": alpha, "tau_px2": 1024.0},
                     "focal": {"gamma": gamma, "alpha": 0.25}},
            "training": {"lr": lr, "max_steps": steps, "seed": seed}}


def test_size_aware_switched_on():
    d = diff_configs(_evdet(), _evdet(alpha=2.5))
    (c,) = d.changes
    assert c.key == "loss.size_aware.alpha" and c.risk == "high" and "size-aware" in c.note
    assert c.rel_change == pytest.approx(1.5)


def test_focal_gamma_nested_key():
    (c,) = diff_configs(_evdet(), _evdet(gamma=0.5)).changes
    assert c.key == "loss.focal.gamma" and c.risk == "high"
    (c,) = diff_configs(_evdet(gamma=0.5), _evdet()).changes
    assert c.risk == "medium" and "switched off" in c.note


def test_batch_without_lr_in_evdet_notes_sqrt_autoscale():
    (c,) = diff_configs(_evdet(), _evdet(batch=32)).changes
    assert c.key == "data.batch_size" and c.risk == "medium"
    assert "sqrt(batch/8)" in c.note and "2x" in c.note        # sqrt(32/8) = 2


def test_batch_without_lr_yolo_style_is_high():
    (c,) = diff_configs({"batch": 16, "lr0": 0.01}, {"batch": 64, "lr0": 0.01}).changes
    assert c.risk == "high" and "x2" in c.note and "x4" in c.note


@pytest.mark.parametrize("new_lr, risk, word", [(4e-4, "low", "sqrt"), (8e-4, "low", "linear"),
                                                (2e-3, "high", "neither")])
def test_batch_and_lr_ratio_check(new_lr, risk, word):
    d = diff_configs(_evdet(batch=8, lr=2e-4), _evdet(batch=32, lr=new_lr))
    ch = _by_key(d)
    assert ch["data.batch_size"].risk == risk and word in ch["data.batch_size"].note
    assert ch["training.lr"].risk == risk


def test_architecture_and_schedule_and_seed():
    d = diff_configs(_evdet(), _evdet(stages=(1, 2, 3, 4), steps=2000, seed=1))
    ch = _by_key(d)
    assert ch["model.in_stages"].risk == "high" and ch["model.in_stages"].old == [2, 3, 4]
    assert ch["training.max_steps"].risk == "medium" and "2x" in ch["training.max_steps"].note
    assert ch["training.seed"].risk == "info"
    assert d.confounded == 2                       # the seed is not an experimental change
    assert d.changes[-1].key == "training.seed"


def test_identical_configs_have_no_changes():
    d = diff_configs(_evdet(), _evdet())
    assert d.changes == [] and d.confounded == 0


def test_keys_present_on_one_side():
    (c,) = diff_configs({"a": 1}, {"a": 1, "b": 2}).changes
    assert c.key == "b" and c.old == "<absent>" and "only in the new" in c.note


def test_load_config_tree_errors(tmp_path: Path):
    with pytest.raises(ConfigDiffError, match="neither a config file"):
        load_config_tree("nope", tmp_path)
    bad = tmp_path / "bad.yaml"
    bad.write_text("- a\n- b\n")
    with pytest.raises(ConfigDiffError, match="mapping"):
        load_config_tree(bad)
    (tmp_path / "exp1").mkdir()
    _write(tmp_path / "exp1" / "config.yaml", {"a": 1})
    assert load_config_tree("exp1", tmp_path) == {"a": 1}


# The seeds' post-mortem: Trial-2 worked, Trial-3 (nine changed hyper-parameters) collapsed; the
# post-mortem's conclusion was to test focal loss alone first.
TRIAL2 = {**YOLO_BASE, "batch": 16}
TRIAL3 = {**TRIAL2, "batch": 32, "lr0": 0.002, "lrf": 0.1, "momentum": 0.95, "warmup_epochs": 5.0,
          "box": 0.08, "cls": 0.3, "obj": 0.7, "fl_gamma": 0.5}


def test_trial2_to_trial3_post_mortem_puts_focal_switch_first(tmp_path: Path):
    a = _write(tmp_path / "trial2_hyp.yaml", TRIAL2)
    b = _write(tmp_path / "trial3_hyp.yaml", TRIAL3)
    d = diff_configs(load_config_tree(a), load_config_tree(b), base_completed=True, ids=("trial2", "trial3"))
    assert len(d.changes) == 9 and d.confounded == 9
    # high: the loss switch, then the batch / lr interaction (batch x2 with lr x0.2: neither scaling);
    # medium: continuous tweaks (loss gains, schedule, momentum) by key
    assert [c.key for c in d.changes] == ["fl_gamma", "batch", "lr0", "box", "cls", "lrf", "momentum", "obj",
                                          "warmup_epochs"]
    assert [c.kind for c in d.changes[:3]] == ["loss switch", "lr/batch", "lr/batch"]
    assert d.plan == [
        "evdet exp ablate trial2 trial3 --seeds 0,1,2   # each of the 9 changes alone on trial2 and left out of "
        "trial3; first suspect: fl_gamma (0.0 -> 0.5)",
        "evdet exp bisect trial2 trial3 --metric full/AP --mode max   # smallest set of changes that turns "
        "trial2 into trial3"]


def test_within_a_risk_level_loss_switch_before_lr_before_continuous_before_augmentation():
    new = {**YOLO_BASE, "fl_gamma": 0.0, "lr0": 0.02, "box": 0.075, "mixup": 0.1}
    d = diff_configs({**YOLO_BASE, "fl_gamma": 0.5}, new)
    assert {c.risk for c in d.changes} == {"medium"}
    assert [(c.key, c.kind) for c in d.changes] == [("fl_gamma", "loss switch"), ("lr0", "lr/batch"),
                                                    ("box", "continuous"), ("mixup", "augmentation")]


def test_loss_gain_to_zero_is_a_loss_switch_but_a_gain_tweak_is_not():
    d = diff_configs(_evdet(), {**_evdet(), "loss": {**_evdet()["loss"], "iou_weight": 0.0}})
    assert [c.kind for c in d.changes] == ["loss switch"]
    d = diff_configs(_evdet(), {**_evdet(), "loss": {**_evdet()["loss"], "iou_weight": 4.0}})
    assert [c.kind for c in d.changes] == ["continuous"]


def test_plan_for_one_change_and_for_none():
    d = diff_configs(_evdet(), _evdet(alpha=2.5), ids=("base", "sa"))
    assert d.plan == ["evdet exp ablate base sa --seeds 0,1,2   # the one change (loss.size_aware.alpha) over "
                      "seeds: effect vs noise"]
    assert diff_configs(_evdet(), _evdet(seed=3)).plan == []          # a seed alone is not an experiment
    assert diff_configs(_evdet(), _evdet()).plan == []


def test_non_utf8_yaml_is_a_one_line_error_naming_the_file(tmp_path: Path):
    bad = tmp_path / "latin1.yaml"
    bad.write_bytes("lr0: 0.01\nnote: caf\xe9\n".encode("latin-1"))   # 0xe9 after 10 + 9 bytes
    with pytest.raises(ConfigDiffError, match=r"latin1\.yaml: not UTF-8 text \(byte 0xe9 at offset 19\)"):
        load_config_tree(bad)
    from typer.testing import CliRunner

    from evdet.cli import app

    good = _write(tmp_path / "good.yaml", {"lr0": 0.01})
    r = CliRunner().invoke(app, ["exp", "diff", str(good), str(bad), "--root", str(tmp_path)],
                           env={"COLUMNS": "250", "NO_COLOR": "1"})
    assert r.exit_code == 1
    lines = [line for line in r.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "latin1.yaml" in lines[0] and "not UTF-8" in lines[0]


def test_cli_diff_ends_with_the_plan(tmp_path: Path):
    from typer.testing import CliRunner

    from evdet.cli import app

    a, b = _write(tmp_path / "t2.yaml", TRIAL2), _write(tmp_path / "t3.yaml", TRIAL3)
    r = CliRunner().invoke(app, ["exp", "diff", str(a), str(b), "--root", str(tmp_path)],
                           env={"COLUMNS": "250", "NO_COLOR": "1"})
    assert r.exit_code == 0, r.output
    tail = r.output.rstrip().splitlines()[-3:]
    assert tail[0] == "to isolate the cause, run:"
    assert tail[1].startswith(f"  evdet exp ablate {a} {b} --seeds 0,1,2") and "first suspect: fl_gamma" in tail[1]
    assert tail[2].startswith(f"  evdet exp bisect {a} {b} --metric full/AP --mode max")
