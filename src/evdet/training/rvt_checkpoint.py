"""Turn an RVT checkpoint into an evdet checkpoint that ``evdet eval`` / ``evdet predict`` load.

The weights come from ``evdet.models.rvt_import.load_rvt_checkpoint``; the file is a
``DetectionModule`` checkpoint (Lightning layout: ``state_dict`` + ``hyper_parameters`` with the
resolved data / model / loss / training configs, class names, input size and channels) plus an
``evdet_import`` record of where it came from. The post-processing is evdet's default, RVT's
(confidence 0.001 as RVT's published numbers, NMS IoU 0.45, no cap); the representation is RVT's
stacked histogram (50 ms, channels / 2 bins).
"""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Optional, Sequence

from evdet.data.classes import KNOWN_CLASS_MAPS

# RVT-family datasets by class count, when the caller does not say which classes a checkpoint has
_DEFAULT_MAPS = {2: "gen1", 3: "gen4", 8: "etram"}


def resolve_class_names(choice: Optional[str | Sequence[str]], num_classes: int,
                        source: str) -> tuple[tuple[str, ...], str]:
    """(class names, class_map setting) for a checkpoint with ``num_classes`` classes.

    Args:
        choice: None (by class count: 2 gen1, 3 gen4, 8 etram), a known map's name, or names in id order
            (a comma-separated string or a sequence).
    Raises:
        ValueError: unknown map, wrong count, or no default for this count.
    """
    if choice is None:
        if num_classes not in _DEFAULT_MAPS:
            raise ValueError(f"{source}: {num_classes} classes and no class names given (use --classes a,b,...)")
        choice = _DEFAULT_MAPS[num_classes]
    if isinstance(choice, str) and choice in KNOWN_CLASS_MAPS:
        names, setting = KNOWN_CLASS_MAPS[choice].names, choice
    else:
        names = tuple(n.strip() for n in (choice.split(",") if isinstance(choice, str) else choice) if n.strip())
        setting = "auto"
    if len(names) != num_classes:
        raise ValueError(f"{source}: the checkpoint has {num_classes} classes but {len(names)} names were given "
                         f"({', '.join(names)})")
    return tuple(names), setting


def import_rvt_checkpoint(src: str | Path, dst: str | Path, *, input_hw: Optional[tuple[int, int]] = None,
                          partition_split: Optional[int] = None, classes: Optional[str | Sequence[str]] = None,
                          trusted: bool = False) -> dict:
    """Write ``dst``, an evdet checkpoint with the weights of the RVT checkpoint ``src`` (atomically).

    Args:
        input_hw: (height, width) of the representation the model sees, pixels (RVT Gen4 / eTraM:
            360x640; Gen1: 240x304); it fixes the attention partitions. None: the size the checkpoint
            records (``recorded_input_hw``); a checkpoint that records none is refused, since a guessed
            size gives other partitions and outputs away from RVT's. Recorded in ``dst``.
        partition_split: RVT's ``partition_split_32`` (default 1 for 240x304, else 2).
        classes: see ``resolve_class_names``.
        trusted: allow pickled Python objects in ``src``.
    Returns:
        summary: {"preset", "patch_size", "in_stages", "num_classes", "class_names", "in_channels",
        "input_hw", "partition_split", "representation", "params"}.
    Raises:
        evdet.models.rvt_import.RvtCheckpointError / ValueError: one-line messages naming the file.
    """
    import lightning as L
    import torch

    from evdet.data.config import DataConfig
    from evdet.models.config import LossConfig
    from evdet.models.rvt_import import default_partition_split, load_rvt_checkpoint, recorded_input_hw
    from evdet.training.config import TrainConfig
    from evdet.training.module import DetectionModule
    from evdet.utils.atomic import atomic_path

    source = "given"
    if input_hw is None:
        input_hw, source = recorded_input_hw(src, trusted=trusted), "checkpoint"
        if input_hw is None:
            raise ValueError(f"{src}: the checkpoint does not record its input size, which fixes the attention "
                             "partitions: give it (--input WIDTHxHEIGHT; RVT Gen1 304x240, 1 Mpx / eTraM 640x360)")
    split = default_partition_split(input_hw) if partition_split is None else int(partition_split)
    detector = load_rvt_checkpoint(src, input_hw=input_hw, partition_split=split, trusted=trusted)
    arch = detector.rvt_architecture
    names, class_map = resolve_class_names(classes, arch.num_classes, str(src))
    representation = f"stacked_histogram_dt=50_nbins={arch.in_channels // 2}"
    data_cfg = DataConfig(representation=representation, class_map=class_map)
    module = DetectionModule(data_cfg, arch.model_config(split), LossConfig(), TrainConfig(), arch.num_classes,
                             input_hw, arch.in_channels, names)
    module.model.load_state_dict(detector.state_dict())
    summary = {**asdict(arch), "in_stages": list(arch.in_stages), "class_names": list(names),
               "input_hw": list(input_hw), "input_hw_source": source, "partition_split": split,
               "representation": representation,
               "params": sum(p.numel() for p in module.model.parameters())}
    ckpt = {"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams),
            "pytorch-lightning_version": L.__version__, "epoch": 0, "global_step": 0,
            "evdet_import": {"source": str(src), "format": "rvt", **summary}}
    with atomic_path(dst) as tmp:
        torch.save(ckpt, tmp)
    return summary
