"""``dataset_stats`` as rich tables: the text ``evdet stats`` prints.

Shares are percentages. The position grids show where box centres lie in the image (row 0 at
the top): each cell gives its share of the boxes, led by a shade that compares it with an even
spread (blank under half of it, then light, medium, dark, full at 4x or more).
"""

from __future__ import annotations

from rich import box
from rich.columns import Columns
from rich.table import Table

_SHADES = ((0.5, " "), (1.0, "░"), (2.0, "▒"), (4.0, "▓"))   # (upper bound / even share, shade)


def stats_renderables(st: dict) -> list:
    """The rich renderables of a ``dataset_stats`` result, in print order: a summary line, the
    per-class size and shape tables, the position grids, and the event rates (raw data)."""
    res = st["resolution"]
    splits = ", ".join(f"{k}: {v['sequences']} seq / {v['boxes']:,} boxes" for k, v in st["splits"].items())
    source = "?" if res is None else f"{res[1]}x{res[0]}"
    out: list = [f"{st['kind']} dataset {st['path']}  source {source}  ({splits})"]
    out += size_tables(st)
    unknown = st["unknown_class"]
    if unknown["count"]:
        out.append(f"{unknown['count']:,} boxes ({_share(unknown['share'])}) have class ids outside the "
                   f"class map {st['class_names']}: {unknown['ids']}")
    if st["positions"] is not None:
        out.append(position_grids(st))
    if st["event_rates"]:
        out.append(rate_table(st["event_rates"]))
    return out


def size_tables(st: dict) -> list[Table]:
    """Per-class box counts, area percentiles (source px^2) and small / tiny shares; aspect ratios."""
    rows = list(st["classes"].items()) + [("all", st["overall"])]
    sizes = Table(title="Boxes per class: count and area in source px^2 (small < 32^2, tiny < 16^2)",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    shapes = Table(title="Aspect ratio w/h per class", box=box.SIMPLE_HEAD)
    sizes.add_column("class", no_wrap=True, min_width=max(len(n) for n, _ in rows))
    for col in ("boxes", "share", "small", "tiny", "P5", "P25", "P50", "P75", "P95"):
        sizes.add_column(col, justify="right")
    for col in ("class", "P5", "P25", "P50", "P75", "P95"):
        shapes.add_column(col, justify="left" if col == "class" else "right")
    for name, c in rows:
        sizes.add_row(name, f"{c['count']:,}", _share(c["share"]), _share(c["small_share"]),
                      _share(c["tiny_share"]), *_percentiles(c["area_px2"], ".0f"))
        shapes.add_row(name, *_percentiles(c["aspect_ratio"], ".2f"))
    return [sizes, shapes]


def position_grids(st: dict) -> Columns:
    """One grid of box-centre shares for all boxes and one per class with boxes, side by side."""
    pos = st["positions"]
    counts = {name: c["count"] for name, c in st["classes"].items()}
    grids = [grid_table(f"all ({st['overall']['count']:,})", pos["overall"])]
    grids += [grid_table(f"{name} ({counts[name]:,})", g) for name, g in pos["classes"].items()
              if g is not None]
    rows, cols = pos["grid"]
    return Columns(grids, title=f"Where box centres lie: share per cell of a {rows}x{cols} grid "
                                f"over the image (top row = image top)", padding=(0, 2))


def grid_table(title: str, grid: list[list[float]] | None) -> Table:
    """A rows x cols table of shares, each led by its shade (see the module docstring)."""
    table = Table(title=title, box=box.SQUARE, show_header=False, pad_edge=False, padding=(0, 0))
    if grid is None:
        return table
    even = 1.0 / (len(grid) * len(grid[0]))
    for _ in grid[0]:
        table.add_column(justify="right")
    for row in grid:
        table.add_row(*(f"{_shade(v / even)}{100 * v:3.0f}" for v in row))
    return table


def rate_table(rates: dict) -> Table:
    table = Table(title="Event rates", box=box.SIMPLE_HEAD)
    for col in ("sequence", "events", "duration s", "M ev/s"):
        table.add_column(col, justify="left" if col == "sequence" else "right")
    for name, r in rates.items():
        mev = "-" if r["events_per_s"] is None else f"{r['events_per_s'] / 1e6:.3f}"
        table.add_row(name, f"{r['events']:,}", f"{r['duration_s']:.2f}", mev)
    return table


def _shade(ratio: float) -> str:
    return next((s for bound, s in _SHADES if ratio < bound), "█")


def _share(v: float | None) -> str:
    return "-" if v is None else f"{100 * v:.1f}%"


def _percentiles(d: dict | None, fmt: str) -> list[str]:
    return ["-"] * 5 if d is None else [format(v, fmt) for v in d.values()]
