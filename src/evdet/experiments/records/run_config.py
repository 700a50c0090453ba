"""RunConfig: the one config tree of a run (data, model, loss, training, eval), from YAML + overrides.

Merge order: dataclass defaults <- ``configs/default.yaml`` <- each config file or preset name in
order <- ``key=value`` overrides (``OmegaConf.from_dotlist`` syntax, e.g. ``model.in_stages=[1,2,3,4]``).
Unknown keys are errors naming the key. The result is a tree of frozen dataclasses.

OmegaConf 2.3 cannot type ``Literal[...]`` fields, so the merge runs on a mirror schema where a
``Literal`` becomes its base type (str / int); the allowed values are then checked here, and the
real frozen dataclasses are built from the merged container (the config is never rewritten later).
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Literal, Union, get_args, get_origin

from evdet.data.config import DataConfig
from evdet.evaluation.config import EvalConfig
from evdet.experiments.records.architecture import architecture_summary  # noqa: F401  (re-export)
from evdet.models.config import LossConfig, ModelConfig
from evdet.training.config import TrainConfig
from evdet.utils.atomic import write_text_atomic
from evdet.utils.config_build import build_config
from evdet.utils.value_checks import ConfigValueError
from evdet.utils.yaml_files import yaml_problem

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"


class ConfigError(ValueError):
    """A config file or override is invalid (names the file / key and the problem)."""


@dataclass(frozen=True)
class RunConfig:
    """Everything that defines a run; ``name`` is a free label (the experiment id when run by exp).

    ``seeds``: training seeds of the experiment, one run each, in order; empty = one run with
    ``training.seed``. Each run uses the config with ``training.seed`` set to its seed.
    """

    name: str = ""
    seeds: tuple[int, ...] = ()
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    training: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def _is_literal(tp: Any) -> bool:
    return get_origin(tp) is Literal


def _schema_type(tp: Any) -> Any:
    """Type of the OmegaConf mirror schema for one field type."""
    if dataclasses.is_dataclass(tp):
        return _schema_for(tp)
    if _is_literal(tp):
        return type(get_args(tp)[0])
    origin = get_origin(tp)
    if origin is Union:
        args = tuple(_schema_type(a) for a in get_args(tp))
        return Union[args]  # type: ignore[valid-type]
    if origin is tuple:
        args = get_args(tp)
        return typing.Tuple[tuple(_schema_type(a) if a is not Ellipsis else a for a in args)]  # noqa: UP006
    return tp


@lru_cache(maxsize=None)
def _schema_for(cls: type) -> type:
    """Mutable mirror dataclass of ``cls`` that OmegaConf can type (Literal -> base type)."""
    hints = typing.get_type_hints(cls)
    specs = []
    for f in dataclasses.fields(cls):
        tp = _schema_type(hints[f.name])
        if dataclasses.is_dataclass(hints[f.name]):
            specs.append((f.name, tp, field(default_factory=tp)))
        elif f.default is not dataclasses.MISSING:
            specs.append((f.name, tp, field(default=f.default)))
        else:
            default = f.default_factory()  # type: ignore[misc]
            specs.append((f.name, tp, field(default_factory=lambda d=default: d)))
    return dataclasses.make_dataclass(f"_Schema{cls.__name__}", specs)


def resolve_config_path(name: str | Path) -> Path:
    """A config file path, or a preset name under ``evdet/configs`` (``demo``, ``model/small``)."""
    path = Path(name)
    if path.exists():
        return path
    preset = CONFIG_DIR / (str(name) if str(name).endswith(".yaml") else f"{name}.yaml")
    if preset.exists():
        return preset
    known = sorted(str(p.relative_to(CONFIG_DIR).with_suffix("")) for p in CONFIG_DIR.rglob("*.yaml"))
    raise ConfigError(f"{name}: no such config file and no such preset; presets: {known}")


def _merge(base: Any, update: Any, source: str) -> Any:
    from omegaconf import OmegaConf
    from omegaconf.errors import ConfigKeyError, OmegaConfBaseException

    try:
        return OmegaConf.merge(base, update)
    except ConfigKeyError as err:
        key = getattr(err, "full_key", None) or "?"
        parent = key.rsplit(".", 1)[0] if "." in key else ""
        known = _known_keys(parent)
        raise ConfigError(f"{source}: unknown key {key!r}; known keys here: {known}") from None
    except OmegaConfBaseException as err:
        key = getattr(err, "full_key", None) or "?"
        reason = str(err).splitlines()[0]
        raise ConfigError(f"{source}: key {key!r}: {reason}") from None


def _known_keys(parent: str) -> list[str]:
    """Field names of the config node at dotted path ``parent`` ('' = the root)."""
    cls: Any = RunConfig
    for part in [p for p in parent.split(".") if p]:
        hints = typing.get_type_hints(cls)
        if part not in hints or not dataclasses.is_dataclass(hints[part]):
            return []
        cls = hints[part]
    return [f.name for f in dataclasses.fields(cls)]


def load_run_config(config_files: Iterable[str | Path] = (), overrides: Iterable[str] = (),
                    *, use_default: bool = True) -> RunConfig:
    """Merge defaults, YAML files / presets and ``key=value`` overrides into a frozen RunConfig.

    Args:
        config_files: YAML paths or preset names (``demo``, ``model/small``, ``data/gen1``), in order.
        overrides: dotlist strings such as ``loss.size_aware.alpha=2.5``.
        use_default: start from ``configs/default.yaml`` (on top of the dataclass defaults).
    Raises:
        ConfigError: naming the file or override and the unknown key / bad value.
    """
    import yaml
    from omegaconf import OmegaConf
    from omegaconf.errors import OmegaConfBaseException

    cfg = OmegaConf.structured(_schema_for(RunConfig))
    files = [CONFIG_DIR / "default.yaml"] if use_default else []
    files += [resolve_config_path(f) for f in config_files]
    for path in files:
        try:
            doc = OmegaConf.load(path)
        except yaml.YAMLError as err:
            raise ConfigError(f"{path}: not valid YAML ({yaml_problem(err)})") from None
        except (OmegaConfBaseException, OSError, ValueError) as err:
            raise ConfigError(f"{path}: cannot read YAML ({str(err).splitlines()[0]})") from None
        if doc is None or not OmegaConf.is_dict(doc):
            if doc is None or len(doc) == 0:
                continue
            raise ConfigError(f"{path}: top level must be a mapping")
        cfg = _merge(cfg, doc, str(path))
    overrides = list(overrides)
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r}: expected key=value")
    if overrides:
        for item in overrides:       # one at a time, to name the bad one
            try:
                OmegaConf.from_dotlist([item])
            except yaml.YAMLError as err:
                raise ConfigError(f"override {item!r}: not a valid YAML value ({yaml_problem(err)})") from None
            except OmegaConfBaseException as err:
                raise ConfigError(f"override {item!r}: {str(err).splitlines()[0]}") from None
        dot = OmegaConf.from_dotlist(overrides)
        cfg = _merge(cfg, dot, "override")
    container = OmegaConf.to_container(cfg, resolve=True, throw_on_missing=True)
    try:
        run_cfg = build_config(RunConfig, container)
    except ConfigValueError as err:      # names the full key (training.lr)
        raise ConfigError(str(err)) from None
    if len(set(run_cfg.seeds)) != len(run_cfg.seeds):
        raise ConfigError(f"seeds: {list(run_cfg.seeds)} repeats a seed")
    return run_cfg


def run_seeds(cfg: RunConfig) -> tuple[int, ...]:
    """Seeds to train, in order: ``cfg.seeds``, or ``(cfg.training.seed,)`` when that is empty."""
    return tuple(cfg.seeds) or (int(cfg.training.seed),)


def config_for_seed(cfg: RunConfig, seed: int) -> RunConfig:
    """The config of one seed run: ``training.seed`` = ``seed`` (everything else unchanged)."""
    return dataclasses.replace(cfg, training=dataclasses.replace(cfg.training, seed=int(seed)))


def run_config_to_dict(cfg: RunConfig) -> dict:
    """Plain nested dict (tuples as lists) of a RunConfig, ready for YAML / JSON."""

    def plain(v: Any) -> Any:
        if isinstance(v, dict):
            return {k: plain(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [plain(x) for x in v]
        return v

    return plain(dataclasses.asdict(cfg))


def dump_run_config(cfg: RunConfig) -> str:
    """YAML text of the fully resolved config."""
    import yaml

    return yaml.safe_dump(run_config_to_dict(cfg), sort_keys=False, default_flow_style=None)


def save_run_config(cfg: RunConfig, path: str | Path) -> Path:
    """Write the fully resolved config as YAML (atomic); ``load_run_config([path])`` reads it back."""
    return write_text_atomic(path, dump_run_config(cfg))
