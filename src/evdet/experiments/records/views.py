"""Typed, frozen views of a record's results.json and status.json (docs/CONTRACTS.md).

The schema's defaults live here, once: a field a document lacks reads as its default (an old
schema-1 file has no ``seeds`` / ``runs``; a record never run has no status.json; a protocol block
without ``groups`` has none). Code that reads records uses these views (``Experiment.typed_results``
/ ``Experiment.typed_status``, or ``results_view`` of any results-like document) instead of chains
of ``dict.get``; the documents themselves stay plain JSON on disk, written by their writers as before.

A protocol block (``evaluate(...).to_dict()``, CONTRACTS.md "evaluation") reads as ``ProtocolView``:
``metrics`` (name -> value), ``per_class`` (name -> ``ClassEntry``), ``groups`` (name -> ``GroupEntry``),
``fingerprint``, ``confusion``, ``counts``. Numbers read as they are stored (int or float); a value
that is not a number (or a bool) reads as None, like an undefined metric.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping, Optional

Number = Optional[float]


def _frozen(d: Any) -> Mapping:
    return MappingProxyType(dict(d)) if isinstance(d, Mapping) else MappingProxyType({})


def _doc(d: Any) -> Mapping:
    return d if isinstance(d, Mapping) else {}


def _int(v: Any, default: int = 0) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return default


def _num(v: Any) -> Number:
    """A stored number as it is (int or float); None for None, bools and anything else."""
    return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None


def _opt_str(v: Any) -> Optional[str]:
    return None if v is None else str(v)


def _empty() -> Mapping:
    return MappingProxyType({})


@dataclass(frozen=True)
class ClassEntry:
    """One class of a protocol's ``per_class``; ``present`` names the fields the document holds."""

    AP: Number = None
    AP50: Number = None
    precision: Number = None
    recall: Number = None
    support: Optional[int] = None
    confidence: Number = None
    tp: Optional[int] = None
    fp: Optional[int] = None
    fn: Optional[int] = None
    present: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, doc: Any) -> "ClassEntry":
        doc = _doc(doc)
        return cls(**{k: _num(doc.get(k)) for k in CLASS_FIELDS}, present=tuple(str(k) for k in doc))

    def value(self, key: str) -> Number:
        """The field ``key`` (None for a field this entry does not have)."""
        return getattr(self, key) if key in CLASS_FIELDS else None

    def numbers(self) -> dict[str, float]:
        """The numeric fields the document holds, in its order (undefined ones left out)."""
        return _numbers(self, CLASS_FIELDS)


def _numbers(entry: Any, names: tuple[str, ...]) -> dict[str, float]:
    return {k: getattr(entry, k) for k in entry.present if k in names and getattr(entry, k) is not None}


CLASS_FIELDS = ("AP", "AP50", "precision", "recall", "support", "confidence", "tp", "fp", "fn")


@dataclass(frozen=True)
class GroupEntry:
    """One class group of a protocol's ``groups`` (AP over its member classes)."""

    AP: Number = None
    AP50: Number = None
    support: Optional[int] = None
    classes: tuple[str, ...] = ()
    mode: Optional[str] = None
    present: tuple[str, ...] = ()

    @classmethod
    def from_dict(cls, doc: Any) -> "GroupEntry":
        doc = _doc(doc)
        return cls(AP=_num(doc.get("AP")), AP50=_num(doc.get("AP50")), support=_num(doc.get("support")),
                   classes=tuple(str(c) for c in doc.get("classes") or ()), mode=_opt_str(doc.get("mode")),
                   present=tuple(str(k) for k in doc))

    def value(self, key: str) -> Number:
        return getattr(self, key) if key in GROUP_FIELDS else None

    def numbers(self) -> dict[str, float]:
        """The numeric fields the document holds, in its order (undefined ones left out)."""
        return _numbers(self, GROUP_FIELDS)


GROUP_FIELDS = ("AP", "AP50", "support")


@dataclass(frozen=True)
class Fingerprint:
    """What a protocol result was computed under; ``digest`` (sha1 of the rest) decides comparability.

    ``resolution`` / ``source_resolution`` / ``filter`` keep the stored JSON value (list, object)."""

    name: Optional[str] = None
    class_names: tuple[str, ...] = ()
    class_agnostic: bool = False
    resolution: Any = None
    source_resolution: Any = None
    filter: Any = None
    digest: Optional[str] = None

    @classmethod
    def from_dict(cls, doc: Any) -> "Fingerprint":
        doc = _doc(doc)
        return cls(name=_opt_str(doc.get("name")), class_names=tuple(str(c) for c in doc.get("class_names") or ()),
                   class_agnostic=bool(doc.get("class_agnostic", False)), resolution=doc.get("resolution"),
                   source_resolution=doc.get("source_resolution"), filter=doc.get("filter"),
                   digest=_opt_str(doc.get("digest")))


@dataclass(frozen=True)
class Confusion:
    """The confusion block: ``matrix[i][j]`` counts ground truth ``labels[i]`` matched as ``labels[j]``."""

    labels: tuple[str, ...] = ()
    matrix: tuple[tuple[int, ...], ...] = ()
    iou: Number = None
    confidence: Number = None

    @classmethod
    def from_dict(cls, doc: Any) -> "Confusion":
        doc = _doc(doc)
        rows = doc.get("matrix") if isinstance(doc.get("matrix"), (list, tuple)) else ()
        return cls(labels=tuple(str(n) for n in doc.get("labels") or ()),
                   matrix=tuple(tuple(r) if isinstance(r, (list, tuple)) else () for r in rows),
                   iou=_num(doc.get("iou")), confidence=_num(doc.get("confidence")))

    @property
    def square(self) -> bool:
        """A drawable matrix: one row and one column per label."""
        n = len(self.labels)
        return n > 0 and len(self.matrix) == n and all(len(r) == n for r in self.matrix)


@dataclass(frozen=True)
class ProtocolView:
    """One protocol's result (``results['protocols'][p]`` or a run's)."""

    metrics: Mapping[str, Number] = field(default_factory=_empty)
    per_class: Mapping[str, ClassEntry] = field(default_factory=_empty)
    groups: Mapping[str, GroupEntry] = field(default_factory=_empty)
    fingerprint: Fingerprint = Fingerprint()
    confusion: Confusion = Confusion()
    counts: Mapping[str, Number] = field(default_factory=_empty)

    @classmethod
    def from_dict(cls, doc: Any) -> "ProtocolView":
        doc = _doc(doc)
        return cls(metrics=_frozen({str(k): _num(v) for k, v in _doc(doc.get("metrics")).items()}),
                   per_class=_frozen({str(k): ClassEntry.from_dict(v) for k, v in _doc(doc.get("per_class")).items()}),
                   groups=_frozen({str(k): GroupEntry.from_dict(v) for k, v in _doc(doc.get("groups")).items()}),
                   fingerprint=Fingerprint.from_dict(doc.get("fingerprint")),
                   confusion=Confusion.from_dict(doc.get("confusion")),
                   counts=_frozen({str(k): _num(v) for k, v in _doc(doc.get("counts")).items()}))


def _protocols(doc: Any) -> Mapping[str, ProtocolView]:
    return _frozen({str(k): ProtocolView.from_dict(v) for k, v in _doc(doc).items()})


@dataclass(frozen=True)
class Curve:
    """One logged column of ``results['curves']``: values (None where not logged) at training steps."""

    step: tuple[int, ...] = ()
    value: tuple[Number, ...] = ()

    @classmethod
    def from_dict(cls, doc: Any) -> "Curve":
        doc = _doc(doc)
        return cls(step=tuple(doc.get("step") or ()), value=tuple(_num(v) for v in doc.get("value") or ()))


@dataclass(frozen=True)
class TrainingView:
    """A run's ``training`` block (from ``fit``'s summary)."""

    global_step: Optional[int] = None
    best_metric: Optional[str] = None
    best_score: Number = None
    best_step: Optional[int] = None
    best_ckpt: Optional[str] = None
    last_ckpt: Optional[str] = None
    wall_s: Number = None

    @classmethod
    def from_dict(cls, doc: Any) -> "TrainingView":
        doc = _doc(doc)
        return cls(global_step=_num(doc.get("global_step")), best_metric=_opt_str(doc.get("best_metric")),
                   best_score=_num(doc.get("best_score")), best_step=_num(doc.get("best_step")),
                   best_ckpt=_opt_str(doc.get("best_ckpt")), last_ckpt=_opt_str(doc.get("last_ckpt")),
                   wall_s=_num(doc.get("wall_s")))


@dataclass(frozen=True)
class RunView:
    """One seed's entry of ``results['runs']``; ``monitors`` keep their stored values (numbers, text, lists)."""

    seed: Optional[int] = None
    dir: str = "."
    status: str = "created"
    step: int = 0
    protocols: Mapping[str, ProtocolView] = field(default_factory=_empty)
    monitors: Mapping[str, Any] = field(default_factory=_empty)
    training: TrainingView = TrainingView()

    @classmethod
    def from_dict(cls, doc: Any) -> "RunView":
        doc = _doc(doc)
        seed = doc.get("seed")
        return cls(seed=None if seed is None else _int(seed), dir=str(doc.get("dir") or "."),
                   status=str(doc.get("status") or "created"), step=_int(doc.get("step")),
                   protocols=_protocols(doc.get("protocols")), monitors=_frozen(doc.get("monitors")),
                   training=TrainingView.from_dict(doc.get("training")))

    @property
    def completed(self) -> bool:
        return self.status == "completed"

    @property
    def stopped_reason(self) -> Optional[str]:
        """Why training stopped early (``monitors.stopped_reason``), or None."""
        return _opt_str(self.monitors.get("stopped_reason"))


@dataclass(frozen=True)
class ResultsView:
    """results.json (schema 1 or 2) with every field present; also any results-like document
    (``protocols`` / ``monitors`` / ``step``, e.g. one seed run's)."""

    id: str = ""
    schema_version: int = 2
    status: str = "created"
    base: Optional[str] = None
    class_names: tuple[str, ...] = ()
    step: int = 0
    seeds: tuple[int, ...] = ()
    runs: Mapping[str, RunView] = field(default_factory=_empty)
    protocols: Mapping[str, ProtocolView] = field(default_factory=_empty)
    seed_stats: Mapping = field(default_factory=_empty)
    curves: Mapping[str, Curve] = field(default_factory=_empty)
    monitors: Mapping[str, Any] = field(default_factory=_empty)
    training: TrainingView = TrainingView()

    @classmethod
    def from_dict(cls, doc: Any) -> "ResultsView":
        doc = _doc(doc)
        return cls(id=str(doc.get("id") or ""), schema_version=_int(doc.get("schema_version"), 1),
                   status=str(doc.get("status") or "created"), base=_opt_str(doc.get("base")),
                   class_names=tuple(str(n) for n in doc.get("class_names") or ()), step=_int(doc.get("step")),
                   seeds=tuple(_int(s) for s in doc.get("seeds") or ()),
                   runs=_frozen({str(k): RunView.from_dict(v) for k, v in _doc(doc.get("runs")).items()}),
                   protocols=_protocols(doc.get("protocols")), seed_stats=_frozen(doc.get("seed_stats")),
                   curves=_frozen({str(k): Curve.from_dict(v) for k, v in _doc(doc.get("curves")).items()
                                   if isinstance(v, Mapping)}),
                   monitors=_frozen(doc.get("monitors")), training=TrainingView.from_dict(doc.get("training")))

    @property
    def completed_runs(self) -> tuple[str, ...]:
        """Keys (seeds as text) of the runs that completed, in file order."""
        return tuple(k for k, r in self.runs.items() if r.completed)

    @property
    def headline_protocol(self) -> Optional[str]:
        """The first protocol stored (the config's first), or None before any evaluation."""
        return next(iter(self.protocols), None)

    def protocol(self, name: Optional[str]) -> ProtocolView:
        """The block of protocol ``name`` (an empty block when it was not evaluated)."""
        return (self.protocols.get(name) if name else None) or ProtocolView()

    @property
    def class_names_or_evaluated(self) -> tuple[str, ...]:
        """``class_names``, else the per-class names of the headline protocol."""
        return self.class_names or tuple(self.protocol(self.headline_protocol).per_class)


def results_view(doc: Any) -> ResultsView:
    """``doc`` as a ResultsView (a view passes through)."""
    return doc if isinstance(doc, ResultsView) else ResultsView.from_dict(doc)


@dataclass(frozen=True)
class StatusView:
    """status.json as ``records.read_status`` returns it (a dead ``running`` already reads ``killed``)."""

    state: str = "created"
    message: str = ""
    pid: Optional[int] = None
    host: Optional[str] = None
    started_at: Optional[float] = None
    heartbeat_at: Optional[float] = None
    updated_at: Optional[float] = None
    seed: Optional[int] = None
    step: int = 0
    detected: Optional[str] = None
    stop_reason: Optional[str] = None

    @classmethod
    def from_dict(cls, doc: Any) -> "StatusView":
        doc = _doc(doc)

        def num(key: str) -> Optional[float]:
            v = _num(doc.get(key))
            return None if v is None else float(v)

        pid, seed = doc.get("pid"), doc.get("seed")
        return cls(state=str(doc.get("state") or "created"), message=str(doc.get("message") or ""),
                   pid=pid if isinstance(pid, int) else None, host=_opt_str(doc.get("host")),
                   started_at=num("started_at"), heartbeat_at=num("heartbeat_at"), updated_at=num("updated_at"),
                   seed=seed if isinstance(seed, int) else None, step=_int(doc.get("step")),
                   detected=_opt_str(doc.get("detected")), stop_reason=_opt_str(doc.get("stop_reason")))
