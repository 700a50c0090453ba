"""Typed, frozen views of a record's results.json and status.json (docs/CONTRACTS.md).

The schema's defaults live here, once: a field a document lacks reads as its default (an old
schema-1 file has no ``seeds`` / ``runs``; a record never run has no status.json). Code that reads
records uses these views (``Experiment.typed_results`` / ``Experiment.typed_status``) instead of
chains of ``dict.get``; the documents themselves stay plain JSON on disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping, Optional


def _frozen(d: Any) -> Mapping:
    return MappingProxyType(dict(d)) if isinstance(d, Mapping) else MappingProxyType({})


def _int(v: Any, default: int = 0) -> int:
    try:
        return int(v)
    except (TypeError, ValueError):
        return default


@dataclass(frozen=True)
class RunView:
    """One seed's entry of ``results['runs']``."""

    seed: Optional[int] = None
    dir: str = "."
    status: str = "created"
    step: int = 0
    protocols: Mapping = field(default_factory=lambda: _frozen({}))
    monitors: Mapping = field(default_factory=lambda: _frozen({}))
    training: Mapping = field(default_factory=lambda: _frozen({}))

    @classmethod
    def from_dict(cls, doc: Any) -> "RunView":
        doc = doc if isinstance(doc, Mapping) else {}
        seed = doc.get("seed")
        return cls(seed=None if seed is None else _int(seed), dir=str(doc.get("dir") or "."),
                   status=str(doc.get("status") or "created"), step=_int(doc.get("step")),
                   protocols=_frozen(doc.get("protocols")), monitors=_frozen(doc.get("monitors")),
                   training=_frozen(doc.get("training")))

    @property
    def completed(self) -> bool:
        return self.status == "completed"


@dataclass(frozen=True)
class ResultsView:
    """results.json (schema 1 or 2) with every field present."""

    id: str = ""
    schema_version: int = 2
    status: str = "created"
    base: Optional[str] = None
    class_names: tuple[str, ...] = ()
    step: int = 0
    seeds: tuple[int, ...] = ()
    runs: Mapping[str, RunView] = field(default_factory=lambda: _frozen({}))
    protocols: Mapping = field(default_factory=lambda: _frozen({}))
    seed_stats: Mapping = field(default_factory=lambda: _frozen({}))
    curves: Mapping = field(default_factory=lambda: _frozen({}))
    monitors: Mapping = field(default_factory=lambda: _frozen({}))
    training: Mapping = field(default_factory=lambda: _frozen({}))

    @classmethod
    def from_dict(cls, doc: Any) -> "ResultsView":
        doc = doc if isinstance(doc, Mapping) else {}
        runs = doc.get("runs") if isinstance(doc.get("runs"), Mapping) else {}
        return cls(id=str(doc.get("id") or ""), schema_version=_int(doc.get("schema_version"), 1),
                   status=str(doc.get("status") or "created"), base=doc.get("base"),
                   class_names=tuple(str(n) for n in doc.get("class_names") or ()), step=_int(doc.get("step")),
                   seeds=tuple(_int(s) for s in doc.get("seeds") or ()),
                   runs=_frozen({str(k): RunView.from_dict(v) for k, v in runs.items()}),
                   protocols=_frozen(doc.get("protocols")), seed_stats=_frozen(doc.get("seed_stats")),
                   curves=_frozen(doc.get("curves")), monitors=_frozen(doc.get("monitors")),
                   training=_frozen(doc.get("training")))

    @property
    def completed_runs(self) -> tuple[str, ...]:
        """Keys (seeds as text) of the runs that completed, in file order."""
        return tuple(k for k, r in self.runs.items() if r.completed)


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

    @classmethod
    def from_dict(cls, doc: Any) -> "StatusView":
        doc = doc if isinstance(doc, Mapping) else {}

        def num(key: str) -> Optional[float]:
            v = doc.get(key)
            return float(v) if isinstance(v, (int, float)) else None

        pid, seed = doc.get("pid"), doc.get("seed")
        return cls(state=str(doc.get("state") or "created"), message=str(doc.get("message") or ""),
                   pid=pid if isinstance(pid, int) else None, host=doc.get("host"),
                   started_at=num("started_at"), heartbeat_at=num("heartbeat_at"), updated_at=num("updated_at"),
                   seed=seed if isinstance(seed, int) else None, step=_int(doc.get("step")),
                   detected=doc.get("detected"))
