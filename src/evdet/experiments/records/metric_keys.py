"""Read one metric out of a results.json document (shared by rank, compare, verdict, report).

Metric names:
- ``AP``, ``AP50``, ``AP_S`` ... : ``protocols[p]["metrics"][name]`` (AP_S / AP_M / AP_L / AP_tiny are
  the COCO area buckets).
- ``small_AP``: AP of the ``small_road_users`` class group (as logged by the EvaluationCallback as
  ``val/<protocol>/small_AP``), i.e. ``groups.small_road_users.AP``.
- dotted paths inside a protocol: ``per_class.pedestrian.AP``, ``groups.MM.AP50``.
- ``monitors.<name>`` and ``step``: outside any protocol.
A criterion / ranking key may carry its protocol: ``prophesee/AP``, ``full/per_class.bicycle.AP``.
"""

from __future__ import annotations

from typing import Any, Optional

from evdet.experiments.records.views import ProtocolView, ResultsView, results_view

SMALL_GROUP = "small_road_users"
ALIASES = {"small_AP": f"groups.{SMALL_GROUP}.AP"}
SIZE_METRICS = ("AP_tiny", "AP_S", "AP_M", "AP_L")
LOWER_IS_BETTER = ("loss", "loss_cv")
PER_CLASS_KEYS = ("AP", "AP50", "precision", "recall")     # the scalars of a per-class entry a key may name
GROUP_KEYS = ("AP", "AP50")
Results = Any          # a ResultsView, or a results-like document (results.json, one run's entry)


def split_metric_key(key: str) -> tuple[Optional[str], str]:
    """``"prophesee/AP"`` -> ("prophesee", "AP"); ``"AP"`` -> (None, "AP")."""
    if "/" in key:
        proto, metric = key.split("/", 1)
        return proto, metric
    return None, key


def headline_protocol(results: Results) -> Optional[str]:
    """First protocol stored in the results (the config's first protocol), or None."""
    return results_view(results).headline_protocol


def higher_is_better(metric: str) -> bool:
    """False for losses and monitors of spread (lower is better)."""
    return not any(metric.endswith(s) for s in LOWER_IS_BETTER)


def _lookup(block: ProtocolView, name: str) -> tuple[bool, Optional[float]]:
    """(held, value) of the in-protocol key ``name`` (aliases resolved): ``AP``, ``metrics.AP``,
    ``per_class.<class>.<field>``, ``groups.<group>.<field>``, ``counts.<name>``."""
    name = ALIASES.get(name, name)
    parts = name.split(".")
    if len(parts) == 1 or (len(parts) == 2 and parts[0] in ("metrics", "counts")):
        table = block.counts if parts[0] == "counts" else block.metrics
        return parts[-1] in table, table.get(parts[-1])
    if len(parts) >= 3 and parts[0] in ("per_class", "groups"):
        entry = (block.per_class if parts[0] == "per_class" else block.groups).get(".".join(parts[1:-1]))
        if entry is not None and parts[-1] in entry.present:
            return True, entry.value(parts[-1])
    return False, None


def metric_value(results: Results, metric: str, protocol: Optional[str] = None) -> Optional[float]:
    """Value of ``metric`` (see module doc) under ``protocol`` (None: the key's or the headline), or None."""
    view = results_view(results)
    key_proto, metric = split_metric_key(metric)
    if metric == "step":
        return float(view.step)
    if metric.startswith("monitors."):
        return _as_float(view.monitors.get(metric.split(".", 1)[1]))
    proto = key_proto or protocol or view.headline_protocol
    if proto not in view.protocols:
        return None
    return _as_float(_lookup(view.protocols[proto], metric)[1])


def fingerprint_digest(results: Results, protocol: str) -> Optional[str]:
    """The protocol fingerprint digest of one protocol's result, or None."""
    return results_view(results).protocol(protocol).fingerprint.digest


def _as_float(v: Any) -> Optional[float]:
    if isinstance(v, bool) or v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def scalar_leaves(block: ProtocolView) -> dict[str, Optional[float]]:
    """Metric key -> value, for every scalar of one protocol result that a key may name (``AP``,
    ``per_class.car.AP``, ``groups.small_road_users.AP50``), in document order."""
    out: dict[str, Optional[float]] = dict(block.metrics)
    for name, e in block.per_class.items():
        out.update({f"per_class.{name}.{k}": e.value(k) for k in PER_CLASS_KEYS if k in e.present})
    for name, g in block.groups.items():
        out.update({f"groups.{name}.{k}": g.value(k) for k in GROUP_KEYS if k in g.present})
    return out


def available_metrics(results: Results) -> list[str]:
    """Every metric key ``metric_value`` can read from ``results`` (protocol prefix where there are several)."""
    view = results_view(results)
    keys: list[str] = []
    for proto, block in view.protocols.items():
        names = list(block.metrics) + (["small_AP"] if SMALL_GROUP in block.groups else [])
        names += [k for k in scalar_leaves(block) if "." in k]
        keys += [f"{proto}/{n}" for n in names] if len(view.protocols) > 1 else names
    keys += [f"monitors.{m}" for m, v in view.monitors.items() if _as_float(v) is not None]
    return keys


def has_metric(results: Results, metric: str, protocol: Optional[str] = None) -> bool:
    """True when ``results`` holds the key ``metric`` (its value may be None, e.g. AP without GT)."""
    view = results_view(results)
    key_proto, name = split_metric_key(metric)
    if name == "step":
        return True
    if name.startswith("monitors."):
        return name.split(".", 1)[1] in view.monitors
    protos = [key_proto or protocol] if (key_proto or protocol) else list(view.protocols)
    return any(p in view.protocols and _lookup(view.protocols[p], name)[0] for p in protos)


def check_metric(metric: str, documents: list) -> None:
    """Raise UnknownMetricError when no evaluated document holds ``metric``; the message lists what exists."""
    views: list[ResultsView] = [results_view(d) for d in documents]
    evaluated = [v for v in views if v.protocols]
    if not evaluated or any(has_metric(v, metric) for v in views):
        return
    known = {k.split("/", 1)[-1] for v in evaluated for k in available_metrics(v)}
    simple = sorted(k for k in known if not k.startswith(("per_class.", "groups.")))
    protos = sorted({p for v in evaluated for p in v.protocols})
    entry = lambda k: ".".join(k.split(".")[1:-1])  # noqa: E731  (``per_class.<name>.<field>``, dots in names kept)
    classes = sorted({entry(k) for k in known if k.startswith("per_class.")})
    groups = sorted({entry(k) for k in known if k.startswith("groups.")})
    raise UnknownMetricError(f"unknown metric {metric!r}; metrics here: {', '.join(simple)}, "
                             f"per_class.<class>.AP|AP50|precision|recall (classes: {', '.join(classes) or '-'}), "
                             f"groups.<group>.AP|AP50 (groups: {', '.join(groups) or '-'}); "
                             f"prefix a protocol to choose one: {', '.join(p + '/' for p in protos)}")


class UnknownMetricError(ValueError):
    """A metric key that no experiment holds."""
