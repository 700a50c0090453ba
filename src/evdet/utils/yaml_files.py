"""Read a YAML file given by a user (dataset.yaml, a sweep space, a config) with one-line errors."""

from __future__ import annotations

from pathlib import Path
from typing import Any


class YamlFileError(ValueError):
    """A YAML file that cannot be read or parsed; the message names the file, line and column."""


def yaml_problem(err: Exception) -> str:
    """The first line of a PyYAML error, with its line and column when it has a mark (1-based)."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    return f"line {mark.line + 1}, column {mark.column + 1}: {problem}" if mark is not None else problem


def load_yaml_file(path: str | Path, *, mapping: bool = True) -> Any:
    """The document of ``path`` (``safe_load``; an empty file gives ``{}`` when ``mapping``).

    Args:
        mapping: require a mapping at the top level.
    Raises:
        YamlFileError: unreadable, not UTF-8, invalid YAML, or (``mapping``) not a mapping.
    """
    import yaml

    path = Path(path)
    try:
        doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as err:
        raise YamlFileError(f"{path}: cannot read ({err.strerror if isinstance(err, OSError) else err.reason})") \
            from None
    except yaml.YAMLError as err:
        raise YamlFileError(f"{path}: not valid YAML ({yaml_problem(err)})") from None
    if mapping:
        doc = {} if doc is None else doc
        if not isinstance(doc, dict):
            raise YamlFileError(f"{path}: the top level must be a mapping of keys, got a {type(doc).__name__}")
    return doc
