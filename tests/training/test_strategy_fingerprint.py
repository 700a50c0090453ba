"""Every strategy switch is off by default, recorded in the resolved config and moves the recipe fingerprint."""

import pytest

from evdet.experiments.records.run_config import load_run_config, run_config_to_dict
from evdet.experiments.statistics.noise_profile import config_differences, flat_config, recipe_fingerprint
from evdet.training.strategies import active_strategies

SWITCHES = {
    "event_dropout": "data.augment.dropout_prob=0.5",
    "time_reversal": "data.augment.time_reversal_prob=0.5",
    "noise_background_activity": ["data.augment.noise_prob=0.5", "data.augment.noise_rate_hz=2.0"],
    "sample_weighting": "data.sample_weighting.mode=small_objects",
    "multires": "data.multires.scales=[0.5,1.0]",
    "eval_scale": "data.multires.eval_scale=2.0",
    "class_balance": "loss.class_balance.mode=effective",
    "hard_negative": "loss.hard_negative.ratio=3",
    "size_feedback": "loss.size_feedback.enabled=true",
    "temporal_consistency": "training.temporal_consistency.weight=0.5",
    "distill": "training.distill.teacher_ckpt=teacher.ckpt",
}


def flat(overrides=()):
    return flat_config(run_config_to_dict(load_run_config(overrides=list(overrides))))


def test_defaults_switch_nothing_on():
    cfg = load_run_config()
    assert active_strategies(cfg.data, cfg.loss, cfg.training) == []


@pytest.mark.parametrize("name", sorted(SWITCHES))
def test_a_switch_is_named_recorded_and_fingerprinted(name):
    overrides = SWITCHES[name] if isinstance(SWITCHES[name], list) else [SWITCHES[name]]
    cfg = load_run_config(overrides=overrides)
    assert active_strategies(cfg.data, cfg.loss, cfg.training) == [name]
    base, on = flat(), flat(overrides)
    assert recipe_fingerprint(on) != recipe_fingerprint(base)
    assert set(config_differences(base, on, defaults=base)) == {o.split("=")[0] for o in overrides}


def test_records_without_the_strategy_keys_compare_equal_to_the_defaults():
    base = flat()
    old = {k: v for k, v in base.items() if not k.startswith(("data.multires", "data.sample_weighting",
                                                              "loss.class_balance", "loss.hard_negative",
                                                              "loss.size_feedback", "training.temporal",
                                                              "training.distill"))}
    assert config_differences(old, base, defaults=base) == []
