"""Class maps: a dataset carries its class names and every result records them."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np
import yaml

from evdet.utils.yaml_files import load_yaml_file


@dataclass(frozen=True)
class ClassMap:
    """Ordered class names (index = class id) plus named groups of class names.

    Args:
        names: class names in id order.
        groups: group name -> class names in that group (e.g. eTraM's PED / VH / MM).
    """

    names: tuple[str, ...]
    groups: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"class names are not unique: {self.names}")
        for group, members in self.groups.items():
            unknown = [m for m in members if m not in self.names]
            if unknown:
                raise ValueError(f"group {group!r} names unknown classes {unknown}; known: {self.names}")

    @property
    def num_classes(self) -> int:
        return len(self.names)

    def group_ids(self, group: str) -> tuple[int, ...]:
        """Class ids of one group, in id order."""
        return tuple(i for i, n in enumerate(self.names) if n in self.groups[group])

    def to_dict(self) -> dict:
        return {"names": list(self.names), "groups": {k: list(v) for k, v in self.groups.items()}}

    @classmethod
    def from_dict(cls, d: dict) -> "ClassMap":
        return cls(tuple(d["names"]), {k: tuple(v) for k, v in d.get("groups", {}).items()})

    @classmethod
    def from_names(cls, names: "Sequence[str] | ClassMap") -> "ClassMap":
        """A ClassMap as is; class names in id order get the groups of the known map with exactly
        those names (``KNOWN_CLASS_MAPS``), else no groups."""
        if isinstance(names, ClassMap):
            return names
        names = tuple(str(n) for n in names)
        return next((known for known in KNOWN_CLASS_MAPS.values() if known.names == names), cls(names))


SMALL_ROAD_USERS = ("pedestrian", "bicycle", "motorbike", "wheelchair")

ETRAM = ClassMap(
    names=("pedestrian", "car", "bicycle", "bus", "motorbike", "truck", "tram", "wheelchair"),
    groups={
        "PED": ("pedestrian",),
        "VH": ("car", "bus", "truck", "tram"),
        "MM": ("bicycle", "motorbike", "wheelchair"),
        "small_road_users": SMALL_ROAD_USERS,
    },
)
GEN1 = ClassMap(names=("car", "pedestrian"))
GEN4 = ClassMap(names=("pedestrian", "two-wheeler", "car"))

# eTraM's RVT trains 3 classes (README.md:101 num_classes=3; evaluation.py:20 pedestrian / car / bicycle):
# the 8 classes merged into PED / VH / MM at load time (data.class_map: etram3 on an 8-class eTraM dataset)
ETRAM3 = ClassMap(names=("PED", "VH", "MM"), groups={"PED": ("PED",), "VH": ("VH",), "MM": ("MM",)})
KNOWN_CLASS_MAPS = {"etram": ETRAM, "etram3": ETRAM3, "gen1": GEN1, "gen4": GEN4}
# merged map name -> (the dataset's map it merges, target id of every source id)
CLASS_MERGES = {"etram3": (ETRAM, tuple(ETRAM3.names.index(g) for g in
                                        [next(k for k in ("PED", "VH", "MM") if n in ETRAM.groups[k])
                                         for n in ETRAM.names]))}


def class_merge_ids(choice: "str | ClassMap", dataset_map: ClassMap) -> tuple[int, ...] | None:
    """Target id of every dataset class id when ``choice`` merges the dataset's classes, else None.

    ``choice`` is a ``data.class_map`` setting or the resolved map (a merged map is known by its names).

    Raises:
        ValueError: ``choice`` is a merge whose source is not the dataset's class map.
    """
    if isinstance(choice, ClassMap):
        choice = next((k for k in CLASS_MERGES if KNOWN_CLASS_MAPS[k].names == choice.names), "")
    if choice not in CLASS_MERGES:
        return None
    source, ids = CLASS_MERGES[choice]
    if dataset_map.names == KNOWN_CLASS_MAPS[choice].names:
        return None                                    # the dataset already holds the merged classes
    if dataset_map.names != source.names:
        raise ValueError(f"data.class_map={choice!r} merges {list(source.names)}, but the dataset's classes are "
                         f"{list(dataset_map.names)}")
    return ids


def merge_box_classes(boxes, ids: tuple[int, ...] | None):
    """A box array with ``class_id`` replaced by ``ids[class_id]`` (a copy); as is when ids is None."""
    if ids is None or boxes is None:
        return boxes
    out = boxes.copy()
    out["class_id"] = np.asarray(ids, dtype=np.int64)[np.asarray(boxes["class_id"], dtype=np.int64)]
    return out

DATASET_YAML = "dataset.yaml"


def write_dataset_yaml(root: Path, class_map: ClassMap, **extra) -> Path:
    """Write ``<root>/dataset.yaml`` naming the classes (and any extra metadata)."""
    path = Path(root) / DATASET_YAML
    path.write_text(yaml.safe_dump({"classes": class_map.to_dict(), **extra}, sort_keys=False))
    return path


def load_class_map(root: str | Path, choice: str = "auto") -> ClassMap:
    """The class map of a run on the dataset at ``root`` (``data.class_map``): the dataset's own or a known one.

    Args:
        root: dataset folder (raw or preprocessed); its ``dataset.yaml`` names the classes.
        choice: ``auto``: the classes of ``<root>/dataset.yaml`` (eTraM's 8 when the folder has none);
            a known name (``KNOWN_CLASS_MAPS``: etram, etram3, gen1, gen4): that map, the folder is not read.
    Raises:
        ValueError: one line naming the unknown name and the known ones, or the dataset.yaml without
            ``classes`` or with malformed ones.
    """
    if choice != "auto":
        if choice not in KNOWN_CLASS_MAPS:
            raise ValueError(f"unknown class map {choice!r} (data.class_map); known: auto, "
                             f"{', '.join(sorted(KNOWN_CLASS_MAPS))}")
        return KNOWN_CLASS_MAPS[choice]
    path = Path(root) / DATASET_YAML
    if not path.exists():
        return ETRAM
    doc = load_yaml_file(path)
    if "classes" not in doc:
        raise ValueError(f"{path}: field 'classes' is missing")
    try:
        return ClassMap.from_dict(doc["classes"])
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        what = f"field {err} is missing" if isinstance(err, KeyError) else str(err)
        raise ValueError(f"{path}: classes: {what}") from None
