"""Commands on recordings and datasets: info, preprocess, stats, simulate."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Optional

import typer

from evdet.cli.common import app, console, fail, parse_size


@app.command()
def info(
    path: Path = typer.Argument(..., help="Recording: .h5/.hdf5, .dat, .raw (EVT 2.0/3.0) or .npy"),
    height: Optional[int] = typer.Option(None, help="Sensor height, if the file does not state it"),
    width: Optional[int] = typer.Option(None, help="Sensor width, if the file does not state it"),
) -> None:
    """Print a recording's sensor size, event count, time span and event rate."""
    from evdet.events import EventFormatError
    from evdet.events.recording import describe_recording

    if (height is None) != (width is None):
        fail("give both --height and --width, or neither")
    try:
        d = describe_recording(path, height=height, width=width)
    except EventFormatError as err:
        fail(str(err))
    size = "unknown" if d["height"] is None else f"{d['width']}x{d['height']} (width x height)"
    typer.echo(f"file       {path}")
    typer.echo(f"format     {d['format']}")
    typer.echo(f"sensor     {size}")
    typer.echo(f"events     {d['num_events']:,}")
    if d["t_first_us"] is not None:
        typer.echo(f"time       {d['t_first_us']:,} .. {d['t_last_us']:,} us ({d['duration_s']:.3f} s)")
    if d["rate_mev_per_s"] is not None:
        typer.echo(f"rate       {d['rate_mev_per_s']:.3f} M events/s")


@app.command()
def preprocess(
    raw_dir: Path = typer.Argument(..., help="Raw dataset: <RAW_DIR>/{train,val,test}/<seq>_td.h5 + <seq>_bbox.npy"),
    out_dir: Path = typer.Argument(..., help="Output root (RVT layout); rerun to resume"),
    downsample: str = typer.Option("auto", help="auto (nearest for 1280x720, else none) | none | nearest | sum"),
    workers: int = typer.Option(2, help="Worker processes, one sequence each"),
    representation: str = typer.Option("stacked_histogram", help="stacked_histogram | voxel_grid | time_surface | event_frame | vtei"),
    nbins: int = typer.Option(10, help="Temporal bins per polarity"),
    window_ms: int = typer.Option(50, help="Window length and step, ms"),
    label_rate_hz: float = typer.Option(10.0, help="Label frames are thinned to about this rate"),
    min_box_side_px: float = typer.Option(5.0, help="Drop boxes with a side under this, source pixels"),
    label_filter: str = typer.Option("conservative", help="conservative (RVT 1 Mpx / eTraM: --min-box-side-px) | "
                                     "prophesee (RVT Gen1: side 10 + diagonal 30 px, 20 + 60 at 1280x720)"),
    histogram_overflow: str = typer.Option("rvt", help="Stacked-histogram counts over 255 in a cell and bin: rvt "
                                           "(RVT's uint8 wrap before the cutoff: 260 -> 4) | saturate (260 -> 10)"),
    progress: bool = typer.Option(True, help="Show a progress bar"),
) -> None:
    """Convert raw recordings + labels into the RVT-compatible preprocessed layout (resumable)."""
    from evdet.data.preprocess.dataset import preprocess_dataset

    if downsample not in ("auto", "none", "nearest", "sum"):
        fail(f"--downsample must be auto, none, nearest or sum, got {downsample!r}")
    try:
        s = preprocess_dataset(raw_dir, out_dir, downsample=downsample, representation=representation,
                               window_ms=window_ms, nbins=nbins, workers=workers,
                               label_rate_hz=label_rate_hz, progress=progress,
                               min_box_side_px=min_box_side_px, label_filter=label_filter,
                               histogram_overflow=histogram_overflow)
    except (ValueError, OSError) as err:
        fail(str(err))
    h, w = s["repr_hw"]
    typer.echo(f"{s['representation']} at {w}x{h} (downsample {s['downsample']}) -> {out_dir}")
    typer.echo(f"sequences  {s['done']} written, {s['skipped']} already done, {s['empty']} without labels")
    if s["redone"]:
        typer.echo(f"redone     {s['redone']} finished-looking folder(s) that failed verification")
    typer.echo(f"written    {s['reprs']:,} representations, {s['label_frames']:,} label frames, "
               f"{s['events']:,} events in {s['seconds']:.1f} s")
    dropped = ", ".join(f"{k} {v}" for k, v in s["labels_dropped"].items())
    typer.echo(f"labels     {s['labels_kept']:,} kept, {s['labels_thinned']:,} in thinned frames; dropped: {dropped}")


@app.command()
def stats(
    path: Path = typer.Argument(..., help="Raw or preprocessed dataset root (detected)"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the statistics as JSON"),
) -> None:
    """Per-class box counts, area / aspect-ratio percentiles, small-box shares, where box centres
    lie in the image (position grids), event rates."""
    import json

    from evdet.data.stats import dataset_stats
    from evdet.data.stats_report import stats_renderables
    from evdet.utils.atomic import write_text_atomic

    try:
        st = dataset_stats(path)
    except (ValueError, OSError) as err:
        fail(str(err))
    out_console = console()
    for renderable in stats_renderables(st):
        out_console.print(renderable)
    if json_out is not None:
        write_text_atomic(json_out, json.dumps(st, indent=1))


# ---- synthetic data ----------------------------------------------------------------------------


@app.command()
def simulate(
    out_dir: Path = typer.Argument(..., help="Dataset root to write (train/val/test + dataset.yaml)."),
    sequences: int = typer.Option(6, help="Number of recordings."),
    duration_s: float = typer.Option(10.0, "--duration-s", help="Length of each recording, seconds."),
    resolution: str = typer.Option("1280x720", help="WIDTHxHEIGHT, e.g. 1280x720 or 320x180."),
    preset: str = typer.Option("day", help="Scene preset: day or night."),
    seed: int = typer.Option(0, help="Master seed (same seed, same files)."),
    preview: bool = typer.Option(False, "--preview", help="Also write OUT_DIR/preview.png: a generated frame "
                                 "beside the box statistics (centre grid, size against row per class)."),
    workers: int = typer.Option(1, help="Processes generating sequences in parallel."),
    views: int = typer.Option(1, "--views", help="Synchronised cameras per scene (> 1: one folder per scene "
                              "with a sub-folder per view and views.yaml; SEQUENCES counts scenes)."),
) -> None:
    """Generate a synthetic eTraM-like traffic dataset (events + 30 Hz box labels; 10 Hz with --views)."""
    height, width = parse_size("--resolution", resolution, "1280x720")
    if preset not in ("day", "night"):
        fail(f"--preset must be 'day' or 'night', got {preset!r}")
    if not math.isfinite(duration_s) or duration_s <= 0:
        fail(f"--duration-s must be a finite number of seconds above 0, got {duration_s}")
    if sequences < 1 or width < 16 or height < 16 or workers < 1:
        fail("--sequences and --workers must be >= 1, the resolution at least 16x16")
    if views < 1:
        fail(f"--views must be >= 1, got {views}")
    if views > 1:
        _simulate_views(out_dir, sequences, views, duration_s, (height, width), preset, seed, workers, preview)
        return
    from evdet.data.synthetic import generate_dataset, render_preview

    summary = generate_dataset(out_dir, sequences=sequences, duration_s=duration_s,
                               resolution=(height, width), preset=preset, seed=seed,
                               workers=workers)
    n_events = sum(s["events"] for s in summary["sequences"])
    n_boxes = sum(s["boxes"] for s in summary["sequences"])
    typer.echo(f"wrote {sequences} sequences ({n_events} events, {n_boxes} boxes) to {out_dir}")
    if preview:
        first = next(s for s in summary["sequences"])
        png = render_preview(Path(out_dir) / first["split"] / f"{first['name']}_td.h5",
                             Path(out_dir) / "preview.png")
        typer.echo(f"preview: {png}")


def _simulate_views(out_dir: Path, scenes: int, views: int, duration_s: float, hw: tuple[int, int], preset: str,
                    seed: int, workers: int, preview: bool) -> None:
    """``simulate --views N``: the multi-view layout (evdet.data.synthetic.multiview_io)."""
    from evdet.data.synthetic.multiview_io import generate_multiview_dataset
    from evdet.data.synthetic.multiview_preview import render_multiview_preview

    summary = generate_multiview_dataset(out_dir, scenes=scenes, views=views, duration_s=duration_s,
                                         resolution=hw, preset=preset, seed=seed, workers=workers)
    n_boxes = sum(v["boxes"] for s in summary["scenes"] for v in s["views"])
    typer.echo(f"wrote {scenes} scenes x {views} views ({n_boxes} boxes) to {out_dir}")
    if preview:
        first = summary["scenes"][0]
        png = render_multiview_preview(Path(out_dir) / first["split"] / first["name"], Path(out_dir) / "preview.png")
        typer.echo(f"preview: {png}")


