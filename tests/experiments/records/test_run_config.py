from pathlib import Path

import pytest

from evdet.experiments.records.run_config import (ConfigError, RunConfig, architecture_summary, load_run_config,
                                          resolve_config_path, save_run_config)
from evdet.models.config import LossConfig, ModelConfig, SizeAwareConfig


def test_defaults_match_dataclasses_and_are_frozen():
    cfg = load_run_config(use_default=False)
    assert cfg == RunConfig()
    with pytest.raises(Exception):
        cfg.model.patch_size = 2  # frozen


def test_default_yaml_only_restates_defaults():
    # default.yaml documents the recipe; it must not silently diverge from the dataclass defaults
    assert load_run_config() == RunConfig()


def test_overrides_reach_typed_fields():
    cfg = load_run_config(["demo"], ["model.in_stages=[1,2,3,4]", "loss.size_aware.alpha=2.5",
                                     "training.max_steps=100", "model.patch_size=2"])
    assert cfg.model.in_stages == (1, 2, 3, 4) and isinstance(cfg.model.in_stages, tuple)
    assert cfg.loss.size_aware.alpha == 2.5
    assert cfg.training.max_steps == 100
    assert cfg.model.patch_size == 2
    assert cfg.model.preset == "nano"            # from demo.yaml
    assert cfg.training.loggers == ("csv",)


def test_later_files_win(tmp_path: Path):
    a = tmp_path / "a.yaml"
    a.write_text("model: {preset: small}\ntraining: {lr: 0.001}\n")
    cfg = load_run_config(["model/base", a])
    assert cfg.model.preset == "small" and cfg.training.lr == 0.001
    assert load_run_config([a, "model/base"]).model.preset == "base"


@pytest.mark.parametrize("override, key", [("model.foo=1", "model.foo"), ("nokey=1", "nokey"),
                                           ("loss.size_aware.beta=2", "loss.size_aware.beta")])
def test_unknown_key_is_an_error_naming_it(override, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_run_config([], [override])


def test_unknown_key_in_file_names_file_and_key(tmp_path: Path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("training:\n  max_stepz: 3\n")
    with pytest.raises(ConfigError) as err:
        load_run_config([bad])
    assert "bad.yaml" in str(err.value) and "training.max_stepz" in str(err.value)


@pytest.mark.parametrize("override, msg", [("model.patch_size=3", "model.patch_size"),
                                           ("data.sampling=bogus", "data.sampling"),
                                           ("training.max_steps=abc", "training.max_steps")])
def test_bad_values_are_errors(override, msg):
    with pytest.raises(ConfigError, match=msg.replace(".", r"\.")):
        load_run_config([], [override])


def test_override_without_equals():
    with pytest.raises(ConfigError, match="key=value"):
        load_run_config([], ["model.preset"])


def test_unknown_preset_lists_known():
    with pytest.raises(ConfigError, match="model/small"):
        resolve_config_path("model/huge")


def test_save_load_round_trip(tmp_path: Path):
    cfg = load_run_config(["demo"], ["model.in_stages=[1,2,3,4]", "eval.protocols=[full]", "name=x"])
    path = save_run_config(cfg, tmp_path / "sub" / "config.yaml")
    assert load_run_config([path], use_default=False) == cfg
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]


def test_architecture_summary():
    s = architecture_summary(ModelConfig(preset="tiny", in_stages=(2, 3, 4)),
                             LossConfig(size_aware=SizeAwareConfig(alpha=2.5)))
    assert s == "tiny p4 FPN[2,3,4] sizeaware a=2.5"
    d = {"preset": "base", "patch_size": 2, "in_stages": [1, 2, 3, 4]}
    assert architecture_summary(d) == "base p2 FPN[1,2,3,4]"


def test_seeds_field_round_trip_and_per_seed_configs(tmp_path: Path):
    from evdet.experiments.records.run_config import config_for_seed, run_seeds

    cfg = load_run_config(["demo"], ["seeds=[3,1,2]", "training.seed=9"])
    assert cfg.seeds == (3, 1, 2) and run_seeds(cfg) == (3, 1, 2)
    assert load_run_config([save_run_config(cfg, tmp_path / "c.yaml")], use_default=False) == cfg
    one = config_for_seed(cfg, 1)
    assert one.training.seed == 1 and one.seeds == cfg.seeds and one.model == cfg.model
    assert run_seeds(load_run_config(["demo"], ["training.seed=9"])) == (9,)      # no seeds: training.seed
    with pytest.raises(ConfigError, match="repeats a seed"):
        load_run_config(["demo"], ["seeds=[1,2,1]"])
