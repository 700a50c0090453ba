"""The raw dataset a preprocessing run reads: its sequences, class map and sensor size.

Layout::

    <src>/dataset.yaml                       class map (optional; default eTraM), optional resolution
    <src>/{train,val,test}/<seq>_td.h5       events (or <seq>_td.dat, <seq>_td.raw / <seq>.raw, <seq>_td.npy)
    <src>/{train,val,test}/<seq>_bbox.npy    Prophesee boxes
"""

from __future__ import annotations

import shutil
from pathlib import Path

from evdet.data.classes import DATASET_YAML, ClassMap, load_class_map, write_dataset_yaml
from evdet.data.labels import LabelFormatError, load_labels
from evdet.utils.atomic import atomic_path

SPLITS = ("train", "val", "test")
# Event-file names for sequence <seq>, in order of preference.
EVENT_SUFFIXES = ("_td.h5", "_td.hdf5", "_td.dat", "_td.raw", ".raw", "_td.npy", ".h5")
BBOX_SUFFIX = "_bbox.npy"


class PreprocessError(ValueError):
    """The raw dataset cannot be preprocessed (the message names the file and the problem)."""


def discover_sequences(src: Path, splits: tuple[str, ...] = SPLITS) -> list[tuple[str, str, Path, Path]]:
    """(split, sequence name, event file, bbox file) of every sequence, validated.

    Every event file needs its ``<seq>_bbox.npy`` and every bbox file an event file; label files
    are loaded once here so that bad labels stop the run before any heavy work.

    Raises:
        PreprocessError: naming the first missing or unreadable file.
    """
    src = Path(src)
    if not src.is_dir():
        raise PreprocessError(f"{src}: raw dataset folder does not exist")
    present = [s for s in splits if (src / s).is_dir()]
    if not present:
        raise PreprocessError(f"{src}: no split folder (expected some of {list(splits)})")
    out = []
    for split in present:
        events: dict[str, Path] = {}
        for path in sorted((src / split).iterdir()):
            name = _sequence_name(path)
            if name is not None and name not in events:
                events[name] = path
        bboxes = {p.name[: -len(BBOX_SUFFIX)]: p for p in (src / split).glob(f"*{BBOX_SUFFIX}")}
        for name in sorted(set(events) | set(bboxes)):
            if name not in bboxes:
                raise PreprocessError(f"{events[name]}: no label file {name}{BBOX_SUFFIX} beside it")
            if name not in events:
                raise PreprocessError(f"{bboxes[name]}: no event file for sequence {name!r} "
                                      f"(looked for {[name + s for s in EVENT_SUFFIXES]})")
            try:
                load_labels(bboxes[name])
            except LabelFormatError as err:
                raise PreprocessError(str(err)) from err
            out.append((split, name, events[name], bboxes[name]))
    if not out:
        raise PreprocessError(f"{src}: no sequence found in {present}")
    return out


def _sequence_name(path: Path) -> str | None:
    if not path.is_file():
        return None
    for suffix in EVENT_SUFFIXES:
        if path.name.endswith(suffix) and len(path.name) > len(suffix):
            return path.name[: -len(suffix)]
    return None


def raw_class_map(src: Path) -> ClassMap:
    """Class map of the raw dataset (its ``dataset.yaml``, else eTraM's)."""
    try:
        return load_class_map(src)
    except (ValueError, KeyError, TypeError) as err:
        raise PreprocessError(f"{src / DATASET_YAML}: {err}") from err


def yaml_resolution(src: Path) -> tuple[int, int] | None:
    """(height, width) from the raw ``dataset.yaml`` (``resolution: [h, w]`` or
    ``{height, width}``), used for event files that do not state their size."""
    path = src / DATASET_YAML
    if not path.is_file():
        return None
    from evdet.utils.yaml_files import load_yaml_file

    doc = load_yaml_file(path)
    res = doc.get("resolution")
    if res is None and "height" in doc and "width" in doc:
        res = {"height": doc["height"], "width": doc["width"]}
    if res is None:
        return None
    try:
        if isinstance(res, dict):
            return int(res["height"]), int(res["width"])
        h, w = res
        return int(h), int(w)
    except (KeyError, TypeError, ValueError) as err:
        raise PreprocessError(f"{path}: field 'resolution' must be [height, width] ({err})") from err


def common_sensor_size(found, default: tuple[int, int] | None) -> tuple[int, int]:
    """The one (height, width) of every event file in ``found``.

    Raises:
        PreprocessError: a file states no size and there is no default, or sizes differ.
    """
    from evdet.events import EventFormatError, sensor_size

    sizes = {}
    for _split, _name, events_path, _ in found:
        try:
            sizes[events_path] = tuple(sensor_size(events_path, default=default))
        except EventFormatError as err:
            raise PreprocessError(f"{err} (or give 'resolution: [h, w]' in dataset.yaml)") from err
    first_path, first = next(iter(sizes.items()))
    for path, size in sizes.items():
        if size != first:
            raise PreprocessError(f"{path}: sensor {size[0]}x{size[1]} differs from "
                                  f"{first[0]}x{first[1]} of {first_path}; one resolution per dataset")
    return int(first[0]), int(first[1])


def copy_dataset_yaml(src: Path, dst: Path, class_map: ClassMap) -> None:
    """``<dst>/dataset.yaml``: a copy of the raw one, or written from ``class_map``."""
    if (src / DATASET_YAML).is_file():
        with atomic_path(dst / DATASET_YAML) as tmp:
            shutil.copyfile(src / DATASET_YAML, tmp)
    else:
        write_dataset_yaml(dst, class_map)
