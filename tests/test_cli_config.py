"""``evdet config -c RECIPE [overrides]`` prints the resolved config."""

import yaml
from typer.testing import CliRunner

from evdet.cli import app


def test_config_prints_the_resolved_recipe_with_overrides():
    r = CliRunner().invoke(app, ["config", "-c", "recipes/rvt_gen4", "data.batch_size=24", "training.devices=1"])
    assert r.exit_code == 0, r.output
    cfg = yaml.safe_load(r.output)
    assert cfg["data"]["batch_size"] == 24 and cfg["training"]["devices"] == 1
    assert cfg["data"]["seq_len"] == 5 and cfg["data"]["augment"]["stream_zoom_out_prob"] == 0.5


def test_config_unknown_key_is_a_one_line_error():
    r = CliRunner().invoke(app, ["config", "-c", "recipes/rvt_gen1", "data.batchsize=3"])
    assert r.exit_code == 1 and "unknown key" in r.output and len(r.output.strip().splitlines()) == 1
