"""Range checks of config values, run by the config dataclasses' ``__post_init__`` (one line per class).

A value outside its range fails when the config is built (``exp new``, ``train``, a library call), not
steps later inside training. The error names the field; the run-config loader prefixes the full key
(``training.lr``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Real


class ConfigValueError(ValueError):
    """A config field holds a value outside its range; ``key`` is the field, ``problem`` the rest."""

    def __init__(self, key: str, problem: str) -> None:
        super().__init__(f"{key}: {problem}")
        self.key, self.problem = key, problem


@dataclass(frozen=True)
class Range:
    """Allowed values ``lo .. hi`` (finite numbers only); ``*_open`` excludes that end."""

    lo: float
    hi: float = math.inf
    lo_open: bool = False
    hi_open: bool = False

    def describe(self) -> str:
        if math.isinf(self.hi):
            return f"a finite number {'>' if self.lo_open else '>='} {self.lo:g}"
        return f"in {'(' if self.lo_open else '['}{self.lo:g}, {self.hi:g}{')' if self.hi_open else ']'}"

    def holds(self, v: float) -> bool:
        above = v > self.lo if self.lo_open else v >= self.lo
        below = v < self.hi if self.hi_open else v <= self.hi
        return above and below


POSITIVE = Range(0.0, lo_open=True)
NON_NEGATIVE = Range(0.0)
AT_LEAST_ONE = Range(1.0)
PROBABILITY = Range(0.0, 1.0)
BELOW_ONE = Range(0.0, 1.0, hi_open=True)   # an EMA decay / momentum: 1 would never move


def check_fields(obj: object, **ranges: Range) -> None:
    """Raise ``ConfigValueError`` for the first field of ``obj`` (a number, or a tuple of them) out of range.

    ``None`` (an optional field left unset) passes.
    """
    for name, allowed in ranges.items():
        value = getattr(obj, name)
        if value is None:
            continue
        for v in value if isinstance(value, (tuple, list)) else (value,):
            if isinstance(v, bool) or not isinstance(v, Real):
                raise ConfigValueError(name, f"must be a number, got {value!r}")
            if not math.isfinite(v) or not allowed.holds(v):
                raise ConfigValueError(name, f"must be {allowed.describe()}, got {value!r}")
