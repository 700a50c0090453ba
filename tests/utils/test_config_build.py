"""utils.config_build.build_config on hand-made dataclasses: nesting, defaults, choices, key names."""

from dataclasses import dataclass, field
from typing import Literal

import pytest

from evdet.utils.config_build import build_config
from evdet.utils.value_checks import ConfigValueError


@dataclass(frozen=True)
class Inner:
    mode: Literal["a", "b"] = "a"
    sizes: tuple[int, ...] = (1,)
    lr: float = 0.1

    def __post_init__(self):
        if self.lr <= 0:
            raise ConfigValueError("lr", f"must be > 0, got {self.lr}")


@dataclass(frozen=True)
class Outer:
    name: str = "x"
    inner: Inner = field(default_factory=Inner)


def test_nested_values_defaults_and_tuples():
    cfg = build_config(Outer, {"inner": {"sizes": [2, 3], "mode": "b"}})
    assert cfg == Outer(name="x", inner=Inner(mode="b", sizes=(2, 3), lr=0.1))
    assert build_config(Outer, None) == Outer() and build_config(Outer, cfg) is cfg


@pytest.mark.parametrize("values, message", [
    ({"inner": {"mode": "c"}}, "inner.mode: 'c' is not one of ['a', 'b']"),
    ({"inner": {"lr": -1.0}}, "inner.lr: must be > 0, got -1.0"),
    ({"inner": {"moed": "a"}}, "inner: unknown field(s) ['moed']"),
    ({"nmae": "y"}, "Outer: unknown field(s) ['nmae']"),
])
def test_errors_name_the_dotted_key(values, message):
    with pytest.raises(ConfigValueError) as err:
        build_config(Outer, values)
    assert str(err.value) == message
