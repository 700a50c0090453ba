"""Frozen config dataclasses from plain nested containers (YAML, ``asdict`` output in checkpoints).

The one builder: nested dataclasses are rebuilt, lists become tuples, ``Literal`` choices are
checked, fields the container lacks take their defaults, unknown fields are refused. Every error
is a ``ConfigValueError`` naming the full dotted key (a range check of the dataclass included).
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Literal, Mapping, Optional, get_args, get_origin

from evdet.utils.value_checks import ConfigValueError


def build_config(cls: type, values: Optional[Mapping | Any], prefix: str = "") -> Any:
    """``cls`` from ``values`` (None: the defaults; an instance of ``cls``: itself).

    Raises:
        ConfigValueError: ``key`` is the dotted field (``training.lr``), ``problem`` what is wrong.
    """
    if values is None:
        return cls()
    if isinstance(values, cls):
        return values
    if not isinstance(values, Mapping):
        raise ConfigValueError(prefix.rstrip(".") or cls.__name__, f"expected a mapping, got {type(values).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigValueError(prefix.rstrip(".") or cls.__name__, f"unknown field(s) {unknown}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name in names & set(values):
        key, tp, value = f"{prefix}{name}", hints[name], values[name]
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            value = build_config(tp, value, key + ".")
        elif get_origin(tp) is Literal and value not in get_args(tp):
            raise ConfigValueError(key, f"{value!r} is not one of {list(get_args(tp))}")
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except ConfigValueError as err:       # a range check of the dataclass: name the full key
        raise ConfigValueError(f"{prefix}{err.key}", err.problem) from None
