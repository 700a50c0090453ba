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

ALIASES = {"small_AP": "groups.small_road_users.AP"}
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
