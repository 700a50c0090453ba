"""Fixtures: a root of three hand-made experiments."""

from __future__ import annotations

from pathlib import Path

import pytest
from exp_fixtures import make_experiment, protocol_block


@pytest.fixture
def three_runs(tmp_path: Path) -> Path:
    """baseline (AP .30), sizeaware (AP .33, base baseline), fourscale (AP .28, base baseline)."""
    root = tmp_path / "experiments"
    make_experiment(root, "baseline", protocols={"prophesee": protocol_block(
        0.30, 0.10, {"pedestrian": 0.20, "car": 0.50, "bicycle": 0.20}, small_ap=0.15)},
        csv_rows=[{"step": 10, "train/loss": 5.0}, {"step": 20, "train/loss": 4.0},
                  {"step": 20, "val/prophesee/AP": 0.25}, {"step": 30, "train/loss": 3.5}])
    sa_cfg = {"model": {"preset": "tiny", "patch_size": 4, "in_stages": [2, 3, 4]},
              "loss": {"size_aware": {"alpha": 2.5}, "focal": {"gamma": 0.0}, "iou_type": "iou"},
              "data": {"batch_size": 8}, "training": {"lr": 2e-4, "max_steps": 1000}}
    make_experiment(root, "sizeaware", base="baseline", config=sa_cfg, protocols={"prophesee": protocol_block(
        0.33, 0.16, {"pedestrian": 0.26, "car": 0.49, "bicycle": 0.25}, small_ap=0.21)},
        hypothesis="# sizeaware\n\n## Success criteria\n- prophesee/AP >= 0.32\n"
                   "- prophesee/AP_S >= base + 0.05\n- prophesee/per_class.car.AP >= base\n",
        csv_rows=[{"step": 10, "train/loss": 6.0}, {"step": 20, "train/loss": 4.5},
                  {"step": 20, "val/prophesee/AP": 0.28}])
    fs_cfg = {"model": {"preset": "tiny", "patch_size": 4, "in_stages": [1, 2, 3, 4]},
              "loss": {"size_aware": {"alpha": 1.0}, "focal": {"gamma": 0.0}, "iou_type": "iou"},
              "data": {"batch_size": 8}, "training": {"lr": 2e-4, "max_steps": 1000}}
    make_experiment(root, "fourscale", base="baseline", config=fs_cfg, protocols={"prophesee": protocol_block(
        0.28, 0.12, {"pedestrian": 0.22, "car": 0.42, "bicycle": 0.20}, small_ap=0.16)})
    return root
