"""Experiment records: one folder per experiment, written atomically, readable by every tool.

Layout (DESIGN sec. 7)::

    <root>/<ID>/
        hypothesis.md          question, hypothesis, rationale, success criteria (parseable), risks
        config.yaml            fully resolved RunConfig
        command.txt            the command line that created / ran it
        environment.json       git commit, package versions, seed, machine, python
        status.json            {"state": created|running|completed|failed|killed|partial, "message", "pid",
                                "host", "started_at", "heartbeat_at", "updated_at", "stop_reason"}
        results.json           schema_version 2 (see ``empty_results``; version 1 is still read)
        checkpoints/ logs/metrics.csv logs/tensorboard/ confusion_matrices/ validation/ report.html
        validation/detections.npz   last validation's per-sequence GT + detections (bootstrap intervals)
        seeds/seed_<s>/        the same checkpoints/ logs/ validation/ for every seed after the first
                               (config ``seeds: [0, 1, 2]``; the first seed runs in the record folder)

A run that died without updating ``status.json`` (state still ``running``) is reported as
``killed``: on the host that runs it, when its pid is gone; seen from another host (shared file
system), when its heartbeat is older than ``stale_after_s``.
"""

from __future__ import annotations

import json
import math
import os
import re
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Optional

from evdet.experiments.records.hypotheses import hypothesis_document
from evdet.experiments.records.views import ResultsView, StatusView
from evdet.utils.atomic import write_text_atomic
from evdet.utils.metrics_csv import metrics_curves
from evdet.utils.processes import process_alive

SCHEMA_VERSION = 2
READABLE_SCHEMAS = (1, 2)
State = Literal["created", "running", "completed", "failed", "killed", "partial"]
STATES = ("created", "running", "completed", "failed", "killed", "partial")   # partial: some seeds still to run
SUBDIRS = ("checkpoints", "logs", "confusion_matrices", "validation")
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
DEFAULT_STALE_AFTER_S = 600.0


class RecordError(ValueError):
    """An experiment folder is missing, malformed, or already exists."""


def _json_default(obj: Any) -> Any:
    if hasattr(obj, "item"):
        return obj.item()
    if hasattr(obj, "tolist"):
        return obj.tolist()
    if isinstance(obj, (set, tuple)):
        return list(obj)
    raise TypeError(f"not JSON serialisable: {type(obj).__name__}")


def _finite(obj: Any) -> Any:
    """Replace NaN / inf floats by None (strict JSON)."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    if isinstance(obj, dict):
        return {k: _finite(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_finite(v) for v in obj]
    return obj


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """Atomic JSON write (indent 2; NaN / inf stored as null)."""
    text = json.dumps(_finite(json.loads(json.dumps(obj, default=_json_default))), indent=2)
    return write_text_atomic(path, text + "\n")


def read_json(path: str | Path) -> Any:
    """Read a JSON file; errors name the file."""
    path = Path(path)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise RecordError(f"{path}: file not found") from None
    except UnicodeDecodeError as err:
        raise RecordError(f"{path}: not UTF-8 text (byte {err.start})") from None
    except json.JSONDecodeError as err:
        raise RecordError(f"{path}: invalid JSON ({err})") from None


def validate_id(exp_id: str) -> str:
    """Return ``exp_id`` if it is a valid folder name (letters, digits, ``_ . -``; no trailing newline)."""
    if not isinstance(exp_id, str) or not ID_PATTERN.fullmatch(exp_id):
        raise RecordError(f"experiment id {exp_id!r}: use letters, digits, '_', '.', '-' only")
    return exp_id


def record_dir(root: Path, exp_id: str) -> Path:
    """``<root>/<exp_id>``, the one id check of every command that takes an experiment id.

    Raises:
        RecordError: an invalid id (``validate_id``), or a folder that resolves outside ``root`` (a
            symlinked record pointing elsewhere).
    """
    exp_dir = Path(root) / validate_id(exp_id)
    inside = Path(root).resolve()
    if exp_dir.exists() and exp_dir.resolve().parent != inside:
        raise RecordError(f"{exp_dir}: resolves to {exp_dir.resolve()}, outside the experiments root {inside}")
    return exp_dir


def empty_results(exp_id: str, base: Optional[str] = None, class_names: tuple[str, ...] = ()) -> dict:
    """A results.json document before any evaluation (schema_version 2, CONTRACTS.md).

    Schema 2 adds ``seeds`` (seed of each run, in order), ``runs`` (per seed: dir, status, step,
    protocols, monitors, training) and ``seed_stats`` (per protocol and metric: n, mean, std, 95%
    t-interval over the completed seeds); ``protocols`` then holds the seed means.
    """
    return {"schema_version": SCHEMA_VERSION, "id": exp_id, "status": "created", "base": base,
            "class_names": list(class_names), "step": 0, "seeds": [], "runs": {}, "seed_stats": {},
            "protocols": {}, "curves": {}, "monitors": {}}


def write_status(exp_dir: Path, state: State, message: str = "", **extra: Any) -> dict:
    """Write status.json (keeps ``started_at`` from the previous status); returns the document."""
    if state not in STATES:
        raise RecordError(f"status state {state!r} is not one of {STATES}")
    exp_dir = Path(exp_dir)
    now = time.time()
    previous = StatusView()
    if (exp_dir / "status.json").exists():
        previous = StatusView.from_dict(read_json(exp_dir / "status.json"))
    doc = {"state": state, "message": message, "pid": os.getpid(), "host": socket.gethostname(),
           "started_at": previous.started_at, "heartbeat_at": now, "updated_at": now}
    if state == "running" and previous.state != "running":
        doc["started_at"] = now
    doc.update(extra)
    atomic_write_json(exp_dir / "status.json", doc)
    return doc


def heartbeat(exp_dir: Path, **extra: Any) -> None:
    """Refresh ``heartbeat_at`` (and e.g. ``step``) of a running experiment."""
    exp_dir = Path(exp_dir)
    doc = read_json(exp_dir / "status.json")
    doc.update(extra, heartbeat_at=time.time())
    atomic_write_json(exp_dir / "status.json", doc)


def read_status(exp_dir: Path, *, stale_after_s: float = DEFAULT_STALE_AFTER_S,
                now: Optional[float] = None) -> dict:
    """status.json, with a ``running`` run that died (dead pid / stale heartbeat) reported as killed.

    The file is not rewritten here (reading never changes a record); ``detected`` says why.
    """
    exp_dir = Path(exp_dir)
    path = exp_dir / "status.json"
    if not path.exists():
        return {"state": "created", "message": "no status.json"}
    doc = read_json(path)
    if not isinstance(doc, dict):
        raise RecordError(f"{path}: top level must be an object")
    if doc.get("state") not in STATES:
        raise RecordError(f"{path}: field 'state' is {doc.get('state')!r}, expected one of {STATES}")
    if doc["state"] != "running":
        return doc
    now = time.time() if now is None else now
    view = StatusView.from_dict(doc)
    pid = view.pid
    if pid is not None and view.host == socket.gethostname():
        # same host: the pid decides (a long validation pass may go minutes without a heartbeat)
        if process_alive(pid):
            return doc
        return {**doc, "state": "killed", "detected": f"process {pid} is gone (status still 'running')"}
    age_s = now - (view.heartbeat_at or 0.0)
    if age_s > stale_after_s:
        return {**doc, "state": "killed",
                "detected": f"no heartbeat for {age_s:.0f} s (> {stale_after_s:.0f} s)"}
    return doc


def hypothesis_markdown(exp_id: str, text: str) -> str:
    """hypothesis.md text: ``text`` as is when it already has sections, else wrapped in the template."""
    if re.search(r"^##\s+", text, flags=re.M):
        return text if text.endswith("\n") else text + "\n"
    return hypothesis_document(
        exp_id, question="(what do we want to learn?)", hypothesis=text.strip(),
        rationale="(why we expect it)",
        criteria="- prophesee/AP >= base  (edit: one `- protocol/metric OP value|base +- delta` per line)",
        risks="(what could confound the result)")


@dataclass
class Experiment:
    """An experiment folder as read from disk."""

    id: str
    path: Path
    config: dict
    results: dict
    status: dict
    hypothesis: str
    error: Optional[str] = None           # set on a record that could not be read (listed as "broken")

    @property
    def base(self) -> Optional[str]:
        return self.typed_results.base

    @property
    def state(self) -> str:
        return "broken" if self.error else self.typed_status.state

    @property
    def metrics_csv(self) -> Path:
        return self.path / "logs" / "metrics.csv"

    @property
    def typed_results(self) -> ResultsView:
        """results.json as a frozen ``views.ResultsView`` (the schema's defaults filled in)."""
        return ResultsView.from_dict(self.results)

    @property
    def typed_status(self) -> StatusView:
        """status.json as a frozen ``views.StatusView``."""
        return StatusView.from_dict(self.status)


def create_experiment(root: Path, exp_id: str, config_yaml: str, hypothesis: str, *,
                      base: Optional[str] = None, command: str = "",
                      class_names: tuple[str, ...] = ()) -> Path:
    """Create ``<root>/<exp_id>/`` with hypothesis, config, command, status and empty results.

    Raises:
        RecordError: invalid id or the folder already exists.
    """
    exp_dir = record_dir(root, exp_id)
    if exp_dir.exists():
        raise RecordError(f"{exp_dir}: experiment already exists")
    for sub in SUBDIRS:
        (exp_dir / sub).mkdir(parents=True, exist_ok=True)
    write_text_atomic(exp_dir / "hypothesis.md", hypothesis_markdown(exp_id, hypothesis))
    write_text_atomic(exp_dir / "config.yaml", config_yaml)
    write_text_atomic(exp_dir / "command.txt", command.rstrip("\n") + "\n")
    atomic_write_json(exp_dir / "results.json", empty_results(exp_id, base, class_names))
    write_status(exp_dir, "created", "created by evdet exp new")
    return exp_dir


def load_results(path: Path) -> dict:
    """Read and check a results.json (schema_version 1 or 2; required fields present).

    A schema-1 document is read as one run without per-seed data (``seeds`` / ``runs`` /
    ``seed_stats`` empty); the file is not rewritten.
    """
    doc = read_json(path)
    if not isinstance(doc, dict):
        raise RecordError(f"{path}: top level must be an object")
    if doc.get("schema_version") not in READABLE_SCHEMAS:
        raise RecordError(f"{path}: field 'schema_version' is {doc.get('schema_version')!r}, "
                          f"expected one of {READABLE_SCHEMAS}")
    for key in ("id", "protocols"):
        if key not in doc:
            raise RecordError(f"{path}: field {key!r} is missing")
    if not isinstance(doc["protocols"], dict):
        raise RecordError(f"{path}: field 'protocols' must be an object")
    for name, proto in doc["protocols"].items():
        if not isinstance(proto, dict) or "metrics" not in proto:
            raise RecordError(f"{path}: protocols.{name}.metrics is missing")
    doc.setdefault("base", None)
    doc.setdefault("class_names", [])
    doc.setdefault("curves", {})
    doc.setdefault("monitors", {})
    doc.setdefault("step", 0)
    for key, empty in (("seeds", []), ("runs", {}), ("seed_stats", {})):
        doc.setdefault(key, empty)
        if not isinstance(doc[key], type(empty)):
            raise RecordError(f"{path}: field {key!r} must be a{'n object' if empty == {} else ' list'}")
    check_metric_ranges(path, doc["protocols"], "protocols")
    for seed, run in doc["runs"].items():
        if isinstance(run, dict) and isinstance(run.get("protocols"), dict):
            check_metric_ranges(path, run["protocols"], f"runs.{seed}.protocols")
    return doc


_UNIT_KEYS = ("AP", "AP50", "AP75", "precision", "recall")   # besides every key of ``metrics`` (AP, AP_S, ...)


def check_metric_ranges(path: Path, protocols: dict, where: str) -> None:
    """Raise RecordError for a metric outside [0, 1] (or not a number): APs, per-class / group AP, P and R.

    None (undefined, e.g. no ground truth) passes. A record claiming AP 7.5 is broken, not first.
    """
    for name, block in protocols.items():
        if not isinstance(block, dict):
            continue
        values = [(f"metrics.{k}", v) for k, v in (block.get("metrics") or {}).items()]
        for part in ("per_class", "groups"):
            for entry, m in (block.get(part) or {}).items():
                if isinstance(m, dict):
                    values += [(f"{part}.{entry}.{k}", m[k]) for k in _UNIT_KEYS if k in m]
        for key, v in values:
            ok = v is None or (isinstance(v, (int, float)) and not isinstance(v, bool) and 0.0 <= v <= 1.0)
            if not ok:
                raise RecordError(f"{path}: {where}.{name}.{key} is {v!r}, outside [0, 1]")


def seed_run_dir(exp_dir: Path, seed: int, index: int) -> Path:
    """Folder of the ``index``-th seed run: the record folder itself for the first, else ``seeds/seed_<s>``."""
    return Path(exp_dir) if index == 0 else Path(exp_dir) / "seeds" / f"seed_{int(seed)}"


def run_dirs(exp: Experiment) -> dict[str, Path]:
    """Seed (as results.json keys it) -> run folder, for every run recorded in results.json."""
    return {key: exp.path if run.dir in (".", "") else exp.path / run.dir
            for key, run in exp.typed_results.runs.items()}


def load_experiment(root: Path, exp_id: str, *, stale_after_s: float = DEFAULT_STALE_AFTER_S) -> Experiment:
    """Read one experiment folder (config, results, status with killed detection, hypothesis)."""
    import yaml

    exp_dir = record_dir(root, exp_id)
    if not exp_dir.is_dir():
        raise RecordError(f"{exp_dir}: no such experiment")
    cfg_path = exp_dir / "config.yaml"
    config = {}
    if cfg_path.exists():
        try:
            config = yaml.safe_load(cfg_path.read_text(encoding="utf-8")) or {}
        except UnicodeDecodeError as err:
            raise RecordError(f"{cfg_path}: not UTF-8 text (byte {err.start})") from None
        except yaml.YAMLError as err:
            raise RecordError(f"{cfg_path}: invalid YAML ({str(err).splitlines()[0]})") from None
        if not isinstance(config, dict):
            raise RecordError(f"{cfg_path}: top level must be a mapping, got {type(config).__name__}")
    results_path = exp_dir / "results.json"
    results = load_results(results_path) if results_path.exists() else empty_results(exp_id)
    hyp = exp_dir / "hypothesis.md"
    try:
        hypothesis = hyp.read_text(encoding="utf-8") if hyp.exists() else ""
    except UnicodeDecodeError as err:
        raise RecordError(f"{hyp}: not UTF-8 text (byte {err.start})") from None
    return Experiment(id=exp_id, path=exp_dir, config=config, results=results,
                      status=read_status(exp_dir, stale_after_s=stale_after_s), hypothesis=hypothesis)


def broken_experiment(root: Path, exp_id: str, error: str) -> Experiment:
    """Stand-in for a record that cannot be read: state ``broken``, no results, ``error`` says why."""
    return Experiment(id=exp_id, path=Path(root) / exp_id, config={}, results=empty_results(exp_id),
                      status={"state": "broken", "message": error}, hypothesis="", error=error)


def list_experiments(root: Path, *, stale_after_s: float = DEFAULT_STALE_AFTER_S,
                     on_error: Literal["raise", "mark"] = "raise") -> list[Experiment]:
    """Every experiment under ``root`` (folders holding results.json or status.json), by id.

    Args:
        on_error: ``raise`` the first unreadable record's RecordError, or ``mark`` it: list it as a
            ``broken_experiment`` (state ``broken``, ``error`` = the message) and go on.
    """
    root = Path(root)
    if not root.is_dir():
        return []
    out = []
    for d in sorted(p for p in root.iterdir() if p.is_dir()):
        if (d / "results.json").exists() or (d / "status.json").exists():
            try:
                out.append(load_experiment(root, d.name, stale_after_s=stale_after_s))
            except RecordError as err:
                if on_error == "raise":
                    raise
                out.append(broken_experiment(root, d.name, str(err)))
    return out


def read_metrics_csv(path: Path) -> dict[str, tuple[list[int], list[float]]]:
    """Curves from a Lightning CSVLogger ``metrics.csv``: column -> (steps, values), empty cells skipped.

    Raises:
        RecordError: no ``step`` column, or a step that is not a number (naming the file and line).
    """
    try:
        return metrics_curves(path)
    except ValueError as err:
        raise RecordError(str(err)) from None
