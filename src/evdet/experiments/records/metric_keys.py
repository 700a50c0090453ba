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

SMALL_GROUP = "small_road_users"
ALIASES = {"small_AP": f"groups.{SMALL_GROUP}.AP"}
SIZE_METRICS = ("AP_tiny", "AP_S", "AP_M", "AP_L")
LOWER_IS_BETTER = ("loss", "loss_cv")


def split_metric_key(key: str) -> tuple[Optional[str], str]:
    """``"prophesee/AP"`` -> ("prophesee", "AP"); ``"AP"`` -> (None, "AP")."""
    if "/" in key:
        proto, metric = key.split("/", 1)
        return proto, metric
    return None, key


def headline_protocol(results: dict) -> Optional[str]:
    """First protocol stored in the results (the config's first protocol), or None."""
    protos = list(results.get("protocols", {}))
    return protos[0] if protos else None


def higher_is_better(metric: str) -> bool:
    """False for losses and monitors of spread (lower is better)."""
    return not any(metric.endswith(s) for s in LOWER_IS_BETTER)


def metric_value(results: dict, metric: str, protocol: Optional[str] = None) -> Optional[float]:
    """Value of ``metric`` (see module doc) under ``protocol`` (None: the key's or the headline), or None."""
    key_proto, metric = split_metric_key(metric)
    if metric == "step":
        return float(results.get("step", 0))
    if metric.startswith("monitors."):
        return _as_float(results.get("monitors", {}).get(metric.split(".", 1)[1]))
    proto = key_proto or protocol or headline_protocol(results)
    block = results.get("protocols", {}).get(proto) if proto else None
    if block is None:
        return None
    metric = ALIASES.get(metric, metric)
    if "." not in metric:
        return _as_float(block.get("metrics", {}).get(metric))
    node: Any = block
    for part in metric.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return _as_float(node)


def fingerprint_digest(results: dict, protocol: str) -> Optional[str]:
    """The protocol fingerprint digest of one protocol's result, or None."""
    block = results.get("protocols", {}).get(protocol) or {}
    fp = block.get("fingerprint") or {}
    return fp.get("digest")


def _as_float(v: Any) -> Optional[float]:
    if isinstance(v, bool) or v is None:
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def available_metrics(results: dict) -> list[str]:
    """Every metric key ``metric_value`` can read from ``results`` (protocol prefix where there are several)."""
    keys: list[str] = []
    protos = list(results.get("protocols", {}))
    for proto in protos:
        block = results["protocols"][proto] or {}
        names = list(block.get("metrics", {}))
        if SMALL_GROUP in (block.get("groups") or {}):
            names.append("small_AP")
        names += [f"per_class.{c}.{k}" for c, d in (block.get("per_class") or {}).items()
                  for k in ("AP", "AP50", "precision", "recall") if k in (d or {})]
        names += [f"groups.{g}.{k}" for g, d in (block.get("groups") or {}).items()
                  for k in ("AP", "AP50") if k in (d or {})]
        keys += [f"{proto}/{n}" for n in names] if len(protos) > 1 else names
    keys += [f"monitors.{m}" for m, v in (results.get("monitors") or {}).items() if _as_float(v) is not None]
    return keys


def has_metric(results: dict, metric: str, protocol: Optional[str] = None) -> bool:
    """True when ``results`` holds the key ``metric`` (its value may be None, e.g. AP without GT)."""
    key_proto, name = split_metric_key(metric)
    if name == "step":
        return True
    if name.startswith("monitors."):
        return name.split(".", 1)[1] in (results.get("monitors") or {})
    protos = [key_proto or protocol] if (key_proto or protocol) else list(results.get("protocols", {}))
    name = ALIASES.get(name, name)
    for proto in protos:
        node = (results.get("protocols") or {}).get(proto)
        parts = ["metrics", name] if "." not in name else name.split(".")
        for part in parts:
            if not isinstance(node, dict) or part not in node:
                break
            node = node[part]
        else:
            return True
    return False


def check_metric(metric: str, documents: list[dict]) -> None:
    """Raise UnknownMetricError when no evaluated document holds ``metric``; the message lists what exists."""
    evaluated = [d for d in documents if d.get("protocols")]
    if not evaluated or any(has_metric(d, metric) for d in documents):
        return
    known = {k.split("/", 1)[-1] for d in evaluated for k in available_metrics(d)}
    simple = sorted(k for k in known if not k.startswith(("per_class.", "groups.")))
    protos = sorted({p for d in evaluated for p in d["protocols"]})
    classes = sorted({k.split(".")[1] for k in known if k.startswith("per_class.")})
    groups = sorted({k.split(".")[1] for k in known if k.startswith("groups.")})
    raise UnknownMetricError(f"unknown metric {metric!r}; metrics here: {', '.join(simple)}, "
                             f"per_class.<class>.AP|AP50|precision|recall (classes: {', '.join(classes) or '-'}), "
                             f"groups.<group>.AP|AP50 (groups: {', '.join(groups) or '-'}); "
                             f"prefix a protocol to choose one: {', '.join(p + '/' for p in protos)}")


class UnknownMetricError(ValueError):
    """A metric key that no experiment holds."""
