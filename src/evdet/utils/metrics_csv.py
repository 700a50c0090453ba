"""The one reader of Lightning CSVLogger ``metrics.csv`` files (training's resume, the experiment tools).

A row holds ``epoch``, ``step`` and the values logged at that step; cells of metrics not logged in
that row are empty.
"""

from __future__ import annotations

import csv
from pathlib import Path


def read_metrics_rows(path: str | Path) -> list[dict[str, str]]:
    """Rows of a metrics.csv as dicts of strings (empty list when the file does not exist)."""
    path = Path(path)
    if not path.exists():
        return []
    with path.open(newline="") as fh:
        return list(csv.DictReader(fh))


def metrics_curves(path: str | Path) -> dict[str, tuple[list[int], list[float]]]:
    """Curves of a metrics.csv: column -> (steps, values); empty and non-numeric cells skipped.

    Raises:
        ValueError: the file has rows but no ``step`` column, or a step that is not a number (names file, line).
    """
    rows = read_metrics_rows(path)
    if rows and "step" not in rows[0]:
        raise ValueError(f"{path}: column 'step' is missing")
    curves: dict[str, tuple[list[int], list[float]]] = {}
    for line_no, row in enumerate(rows, start=2):
        try:
            step = int(float(row["step"]))
        except (TypeError, ValueError):
            raise ValueError(f"{path}: line {line_no}: step {row['step']!r} is not a number") from None
        for key, cell in row.items():
            if key in ("step", "epoch") or cell in (None, ""):
                continue
            try:
                value = float(cell)
            except ValueError:
                continue
            steps, values = curves.setdefault(key, ([], []))
            steps.append(step)
            values.append(value)
    return curves
