"""Diff two configs (evdet RunConfig YAMLs or YOLO-style hyper-parameter YAMLs) with risk notes.

Only changed keys are listed (flattened dotted keys), each with old / new value, relative change and
a risk note from the rules below, ranked by risk (high > medium > low > info):

- a loss term switched on that was off (focal gamma / ``fl_gamma`` 0 -> >0, size-aware alpha 1 -> >1): high
- architecture changes (``in_stages``, ``patch_size``, ``preset``, ``partition_split``): high
- data or evaluation changes (root, representation, class map, ``eval.*``): high, not comparable
- batch size changed without the learning rate: high (YOLO keys) / medium (evdet, whose trainer
  scales lr by sqrt(batch/8)); both changed: the lr ratio is checked against sqrt and linear scaling
- learning rate changed more than 3x: high; otherwise medium
- regularisation (weight_decay, dropout, mixup, mosaic, copy_paste, augmentation...) changed by more
  than 50% (or switched on / off): high for weight_decay / dropout, medium for augmentation
- loss gains rebalanced (``box``/``cls``/``obj``, ``iou_weight``/``obj_weight``/``cls_weight``): medium
- schedule length or warm-up changed (``max_steps``, ``epochs``, ``warmup_*``, ``lrf``): medium
- seed / name: info
Several experimental changes at once: ``confounded: N changes`` (the effect of each cannot be told apart).

Within a risk level, changes are ordered by how qualitatively they change training (``KIND_ORDER``):
a loss term switched on or off first (it changes what is optimised), then architecture / data /
evaluation, then learning-rate and batch interactions, then continuous tweaks (loss gains, schedule,
regularisation strength, optimiser settings), then augmentation, then anything else; seed / name last.
A diff with changes ends with a plan to isolate the cause, as commands (``isolation_plan``): the
one-change ablations (``evdet exp ablate``) and a bisection (``evdet exp bisect``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

RISK_ORDER = {"high": 3, "medium": 2, "low": 1, "info": 0}
# How qualitatively a change alters training, most first; orders changes within one risk level.
KIND_ORDER = ("loss switch", "structure", "lr/batch", "continuous", "augmentation", "other", "info")

_LR_KEYS = ("lr", "lr0", "learning_rate", "base_lr")
_BATCH_KEYS = ("batch_size", "batch")
_ARCH_KEYS = ("in_stages", "patch_size", "preset", "partition_split", "embed_dim", "dims", "depths")
_DATA_KEYS = ("root", "representation", "class_map")
_LOSS_GAINS = ("box", "cls", "obj", "iou_weight", "obj_weight", "cls_weight", "cls_pw", "obj_pw")
_STRONG_REG = ("weight_decay", "dropout", "drop_path", "label_smoothing")
_AUG_REG = ("mixup", "mosaic", "copy_paste", "hsv_h", "hsv_s", "hsv_v", "degrees", "translate", "scale",
            "shear", "perspective", "fliplr", "flipud")
_SCHEDULE = ("max_steps", "epochs", "max_epochs", "warmup_epochs", "warmup_frac", "warmup_steps", "lrf")
_INFO = ("name", "seed")


class ConfigDiffError(ValueError):
    """A config given to diff cannot be read."""


@dataclass
class Change:
    """One changed key. ``rel_change`` = (new - old) / |old| for numbers (None otherwise / old = 0)."""

    key: str
    old: Any
    new: Any
    rel_change: Optional[float]
    risk: str
    note: str
    kind: str = "other"                  # one of KIND_ORDER


@dataclass
class ConfigDiff:
    changes: list[Change]
    confounded: int                      # number of experimental changes when > 1, else 0
    notes: list[str] = field(default_factory=list)
    plan: list[str] = field(default_factory=list)   # commands that isolate the cause (``isolation_plan``)


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """Nested dicts -> {dotted.key: leaf}; lists / tuples are leaves (compared as lists)."""
    out: dict[str, Any] = {}
    if isinstance(tree, dict):
        for k, v in tree.items():
            key = f"{prefix}.{k}" if prefix else str(k)
            if isinstance(v, dict) and v:
                out.update(flatten(v, key))
            else:
                out[key] = list(v) if isinstance(v, tuple) else v
    return out


def load_config_tree(source: str | Path, root: Optional[Path] = None) -> dict:
    """A config as a nested dict: an experiment id under ``root`` (its config.yaml) or a YAML file."""
    import yaml

    path = Path(source)
    if root is not None and not path.is_file() and (Path(root) / str(source) / "config.yaml").exists():
        path = Path(root) / str(source) / "config.yaml"
    if not path.is_file():
        raise ConfigDiffError(f"{source}: neither a config file nor an experiment under {root}")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise ConfigDiffError(f"{path}: not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start})") from None
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigDiffError(f"{path}: invalid YAML ({' '.join(str(err).split())})") from None
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigDiffError(f"{path}: top level must be a mapping")
    return doc


def _leaf(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def _num(v: Any) -> Optional[float]:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    return float(v)


def _rel(old: Any, new: Any) -> Optional[float]:
    o, n = _num(old), _num(new)
    if o is None or n is None or o == 0:
        return None
    return (n - o) / abs(o)


def _ratio(old: Any, new: Any) -> Optional[float]:
    o, n = _num(old), _num(new)
    if o is None or n is None or o == 0 or n == 0:
        return None
    return n / o


def _is_focal_gamma(key: str) -> bool:
    return _leaf(key) == "fl_gamma" or key.endswith("focal.gamma") or _leaf(key) == "focal_gamma"


def _is_size_aware_alpha(key: str) -> bool:
    return key.endswith("size_aware.alpha") or _leaf(key) == "size_aware_alpha"


def _switch_rule(key: str, old: Any, new: Any, off_value: float, what: str) -> tuple[str, str]:
    o, n = _num(old), _num(new)
    if o == off_value and n is not None and n != off_value:
        return "high", (f"{what} switched on ({old} -> {new}): a new loss term changes the loss scale and "
                        "the balance of the gradient; re-check the learning rate and compare at equal steps")
    if n == off_value and o is not None and o != off_value:
        return "medium", f"{what} switched off ({old} -> {new})"
    return "medium", f"{what} strength changed ({old} -> {new})"


def _rule(key: str, old: Any, new: Any, ctx: dict) -> tuple[str, str]:
    """(risk, note) of one change; ``ctx`` holds the batch / lr changes of the whole diff."""
    leaf = _leaf(key)
    rel = _rel(old, new)
    if _is_focal_gamma(key):
        return _switch_rule(key, old, new, 0.0, "focal loss")
    if _is_size_aware_alpha(key):
        return _switch_rule(key, old, new, 1.0, "size-aware weighting")
    if key.startswith("eval."):
        return "high", "evaluation setting changed: metrics are not comparable with the base"
    if leaf in _DATA_KEYS and (key.startswith("data.") or "." not in key):
        return "high", "different data / representation / class map: results are not comparable"
    if leaf in _ARCH_KEYS:
        extra = ""
        if leaf == "patch_size":
            extra = " (patch 2 quadruples stage-1 tokens: memory and time grow about 4x)"
        if leaf == "in_stages":
            extra = " (a stride-4 level adds many anchors: assignment and post-processing change)"
        return "high", f"architecture change{extra}; base checkpoints do not load as is"
    if leaf in _BATCH_KEYS:
        return _batch_rule(old, new, ctx)
    if leaf in _LR_KEYS:
        if ctx.get("batch") is not None:
            return _batch_rule(*ctx["batch"], ctx)
        r = _ratio(old, new)
        if r is not None and (r > 3.0 or r < 1.0 / 3.0):
            return "high", f"learning rate changed {r:.3g}x (more than 3x) with the batch size unchanged"
        return "medium", "learning rate changed with the batch size unchanged"
    if leaf in _STRONG_REG or leaf in _AUG_REG or key.startswith("data.augment."):
        o, n = _num(old), _num(new)
        big = (o == 0) != (n == 0) or (rel is not None and abs(rel) > 0.5)
        kind = "regularisation" if leaf in _STRONG_REG else "augmentation"
        if big:
            risk = "high" if leaf in _STRONG_REG else "medium"
            how = "switched on" if o == 0 else "switched off" if n == 0 else f"changed {rel:+.0%}"
            return risk, f"{kind} {how} (> 50%): expect a different convergence speed and final AP"
        return "low", f"{kind} changed {rel:+.0%}" if rel is not None else f"{kind} changed"
    if leaf in _LOSS_GAINS:
        return "medium", "loss gains rebalanced: the relative pull of box / objectness / class terms changes"
    if leaf in _SCHEDULE:
        r = _ratio(old, new)
        what = "warm-up" if "warmup" in leaf else "final lr fraction" if leaf == "lrf" else "schedule length"
        return "medium", f"{what} changed" + (f" {r:.3g}x" if r is not None else "") + \
            ": compare runs at equal steps, not only at the end"
    if leaf in ("momentum", "iou_t", "anchor_t", "grad_clip_value", "accumulate_grad_batches"):
        return "medium", "optimisation / assignment setting changed"
    if leaf in _INFO:
        return "info", "seed / name changed: differences within run-to-run noise are not effects"
    return "low", "changed"


def _kind(key: str, old: Any, new: Any) -> str:
    """How qualitatively a change alters training (an entry of ``KIND_ORDER``)."""
    leaf = _leaf(key)
    o, n = _num(old), _num(new)
    switched = o is not None and n is not None and o != n
    if _is_focal_gamma(key):
        return "loss switch" if switched and 0.0 in (o, n) else "continuous"
    if _is_size_aware_alpha(key):
        return "loss switch" if switched and 1.0 in (o, n) else "continuous"
    if leaf in _LOSS_GAINS:
        return "loss switch" if switched and 0.0 in (o, n) else "continuous"
    if leaf in _ARCH_KEYS or key.startswith("eval.") or (
            leaf in _DATA_KEYS and (key.startswith("data.") or "." not in key)):
        return "structure"
    if leaf in _LR_KEYS or leaf in _BATCH_KEYS:
        return "lr/batch"
    if leaf in _AUG_REG or key.startswith("data.augment."):
        return "augmentation"
    if leaf in _STRONG_REG or leaf in _SCHEDULE or leaf in (
            "momentum", "iou_t", "anchor_t", "grad_clip_value", "accumulate_grad_batches"):
        return "continuous"
    if leaf in _INFO:
        return "info"
    return "other"


def _batch_rule(old_b: Any, new_b: Any, ctx: dict) -> tuple[str, str]:
    rb = _ratio(old_b, new_b)
    lr = ctx.get("lr")
    auto = ctx.get("evdet_batch", False)
    if rb is None:
        return "medium", "batch size changed"
    if lr is None:
        if auto:
            return "medium", (f"batch size changed {rb:.3g}x without the learning rate; evdet scales lr by "
                              f"sqrt(batch/8), so the effective lr changes {math.sqrt(rb):.3g}x")
        return "high", (f"batch size changed {rb:.3g}x without the learning rate: sqrt scaling would use "
                        f"lr x{math.sqrt(rb):.3g}, linear scaling lr x{rb:.3g}")
    rl = _ratio(*lr)
    if rl is None:
        return "medium", "batch size and learning rate both changed"
    sqrt_r, lin_r = math.sqrt(rb), rb
    if abs(rl / sqrt_r - 1) <= 0.1:
        return "low", f"batch x{rb:.3g} with lr x{rl:.3g}: matches sqrt scaling"
    if abs(rl / lin_r - 1) <= 0.1:
        return "low", f"batch x{rb:.3g} with lr x{rl:.3g}: matches linear scaling"
    return "high", (f"batch x{rb:.3g} with lr x{rl:.3g}: neither sqrt (x{sqrt_r:.3g}) nor linear "
                    f"(x{lin_r:.3g}) scaling")


def diff_configs(old: dict, new: dict, *, base_completed: Optional[bool] = None,
                 ids: tuple[str, str] = ("BASE", "VARIANT")) -> ConfigDiff:
    """Changed keys of ``new`` vs ``old`` (nested dicts) with risk notes, highest risk first.

    Args:
        base_completed: True when the old config's run completed (worked): several changes at once
            are then flagged as confounded with that context.
        ids: experiment ids of (old, new), used in the isolation plan's commands.
    """
    fo, fn = flatten(old), flatten(new)
    keys = sorted(set(fo) | set(fn))
    changed = [k for k in keys if fo.get(k, "<absent>") != fn.get(k, "<absent>")]
    ctx: dict = {}
    for k in changed:
        leaf = _leaf(k)
        if leaf in _BATCH_KEYS:
            ctx["batch"] = (fo.get(k), fn.get(k))
            ctx["evdet_batch"] = k.startswith("data.")
        if leaf in _LR_KEYS:
            ctx["lr"] = (fo.get(k), fn.get(k))
    changes = []
    for k in changed:
        o, n = fo.get(k, "<absent>"), fn.get(k, "<absent>")
        if o == "<absent>" or n == "<absent>":
            risk, note = "medium", "key only in the " + ("new" if o == "<absent>" else "old") + " config"
        else:
            risk, note = _rule(k, o, n, ctx)
        changes.append(Change(key=k, old=o, new=n, rel_change=_rel(o, n), risk=risk, note=note,
                              kind=_kind(k, o, n)))
    changes.sort(key=lambda c: (-RISK_ORDER[c.risk], KIND_ORDER.index(c.kind), c.key))
    experimental = [c for c in changes if c.risk != "info"]
    confounded = len(experimental) if len(experimental) > 1 else 0
    notes = []
    if confounded:
        ctx_note = " from a base that worked" if base_completed else ""
        notes.append(f"confounded: {confounded} changes at once{ctx_note}; the effect of each cannot be "
                     "told apart (change one thing per experiment, or add ablations)")
    d = ConfigDiff(changes=changes, confounded=confounded, notes=notes)
    d.plan = isolation_plan(d, *ids)
    return d


def isolation_plan(d: ConfigDiff, base_id: str, variant_id: str, *, seeds: str = "0,1,2",
                   metric: str = "full/AP", mode: str = "max") -> list[str]:
    """Commands that find which change made the difference, most informative first.

    One experimental change: rerun it over seeds (is the effect larger than noise?). Several: the
    one-change ablations and leave-one-out runs (``exp ablate``; the first suspect is the top-ranked
    change), then a bisection over the changes (``exp bisect``), which needs about log2(N) runs
    per culprit.
    """
    experimental = [c for c in d.changes if c.risk != "info"]
    if not experimental:
        return []
    ablate = f"evdet exp ablate {base_id} {variant_id} --seeds {seeds}"
    if len(experimental) == 1:
        return [f"{ablate}   # the one change ({experimental[0].key}) over seeds: effect vs noise"]
    first = experimental[0]
    return [f"{ablate}   # each of the {len(experimental)} changes alone on {base_id} and left out of "
            f"{variant_id}; first suspect: {first.key} ({first.old} -> {first.new})",
            f"evdet exp bisect {base_id} {variant_id} --metric {metric} --mode {mode}   # smallest set of "
            f"changes that turns {base_id} into {variant_id}"]
