"""Typed, frozen view of one row of a small-object summary (``matrix_results.summarize_records``).

The summary is the studies' own document (the matrix's ``summary.json``, the demo's tables): one row
per record, per protocol its AP, AP50 and small-road-user AP with per-seed values, intervals
(``Difference.to_dict()``) and the Δ against the baseline. A field a row lacks reads as its default
here (an interval not computed: None; a record never evaluated: no values), so that its readers
(tables, the effects plot, the demo's results file) need no ``dict.get`` chains.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping, Optional

from evdet.experiments.statistics.intervals import Difference

SMALL_METRIC = "small_AP"


def _doc(d: Any) -> Mapping:
    return d if isinstance(d, Mapping) else {}


def _interval(d: Any) -> Optional[Difference]:
    """The Difference of an interval block (``Difference.to_dict()``), None where there is none."""
    return Difference.from_dict(d) if isinstance(d, Mapping) and d else None


@dataclass(frozen=True)
class RowProtocol:
    """One protocol's cells of a row: values (mean over finished seeds), per-seed values, intervals."""

    AP: Optional[float] = None
    AP50: Optional[float] = None
    small_AP: Optional[float] = None
    small_AP_seeds: tuple[Optional[float], ...] = ()
    small_AP_interval: Optional[Difference] = None
    delta_small: Optional[Difference] = None                 # variant - baseline
    delta_small_holm: Optional[Mapping] = None               # multiplicity's Holm result, as written

    @classmethod
    def from_dict(cls, doc: Any) -> "RowProtocol":
        doc = _doc(doc)
        holm = doc.get("delta_small_holm")
        return cls(AP=doc.get("AP"), AP50=doc.get("AP50"), small_AP=doc.get(SMALL_METRIC),
                   small_AP_seeds=tuple(doc.get(f"{SMALL_METRIC}_seeds") or ()),
                   small_AP_interval=_interval(doc.get(f"{SMALL_METRIC}_interval")),
                   delta_small=_interval(doc.get("delta_small")),
                   delta_small_holm=MappingProxyType(dict(holm)) if isinstance(holm, Mapping) else None)


@dataclass(frozen=True)
class SummaryRow:
    """One record's row of the summary."""

    id: str
    change: str = ""
    state: str = "not created"
    seeds_planned: tuple[int, ...] = ()
    seeds_done: tuple[int, ...] = ()
    wall_s_per_run: tuple[float, ...] = ()
    step: int = 0
    protocols: Mapping[str, RowProtocol] = field(default_factory=lambda: MappingProxyType({}))
    verdict: str = "not evaluated"

    @classmethod
    def from_dict(cls, doc: Any) -> "SummaryRow":
        doc = _doc(doc)
        return cls(id=str(doc["id"]), change=str(doc.get("change") or ""), state=str(doc.get("state") or "not created"),
                   seeds_planned=tuple(doc.get("seeds_planned") or ()), seeds_done=tuple(doc.get("seeds_done") or ()),
                   wall_s_per_run=tuple(doc.get("wall_s_per_run") or ()), step=int(doc.get("step") or 0),
                   protocols=MappingProxyType({str(p): RowProtocol.from_dict(b)
                                               for p, b in _doc(doc.get("protocols")).items()}),
                   verdict=str(doc.get("verdict") or "not evaluated"))

    def protocol(self, name: str) -> RowProtocol:
        """The cells of protocol ``name`` (empty cells when the row has none)."""
        return self.protocols.get(name) or RowProtocol()


def summary_rows(summary: Mapping) -> list[SummaryRow]:
    """The rows of a summary document, in table order (the baseline first)."""
    return [SummaryRow.from_dict(r) for r in summary["rows"]]
