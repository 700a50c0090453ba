"""The ``evdet`` command line: thin commands that parse, call one library function, print and exit.

Heavy imports (torch, lightning, h5py) sit inside the commands so that ``evdet --help`` is instant.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import List, Optional

import typer

app = typer.Typer(
    help="evdet: event-camera object detection for traffic monitoring "
    "(read recordings, preprocess, train RVT-family detectors, evaluate, compare experiments).",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
exp_app = typer.Typer(help="Experiment records: create, run, list, rank, compare, diff, verdict, report.",
                      no_args_is_help=True)
app.add_typer(exp_app, name="exp")


def console():
    """A rich console; when output is not a terminal (logs, CI) tables get 160 columns, not 80."""
    from rich.console import Console

    return Console(width=None if sys.stdout.isatty() else 160)


def fail(message: str) -> None:
    """Print a one-line error and exit with code 1."""
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code=1)


# ---- data: events, preprocessing, stats --------------------------------------------------------


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
    progress: bool = typer.Option(True, help="Show a progress bar"),
) -> None:
    """Convert raw recordings + labels into the RVT-compatible preprocessed layout (resumable)."""
    from evdet.data.preprocess import preprocess_dataset

    if downsample not in ("auto", "none", "nearest", "sum"):
        fail(f"--downsample must be auto, none, nearest or sum, got {downsample!r}")
    try:
        s = preprocess_dataset(raw_dir, out_dir, downsample=downsample, representation=representation,
                               window_ms=window_ms, nbins=nbins, workers=workers,
                               label_rate_hz=label_rate_hz, progress=progress,
                               min_box_side_px=min_box_side_px)
    except (ValueError, OSError) as err:
        fail(str(err))
    h, w = s["repr_hw"]
    typer.echo(f"{s['representation']} at {w}x{h} (downsample {s['downsample']}) -> {out_dir}")
    typer.echo(f"sequences  {s['done']} written, {s['skipped']} already done, {s['empty']} without labels")
    typer.echo(f"written    {s['reprs']:,} representations, {s['label_frames']:,} label frames, "
               f"{s['events']:,} events in {s['seconds']:.1f} s")
    dropped = ", ".join(f"{k} {v}" for k, v in s["labels_dropped"].items())
    typer.echo(f"labels     {s['labels_kept']:,} kept, {s['labels_thinned']:,} in thinned frames; dropped: {dropped}")


@app.command()
def stats(
    path: Path = typer.Argument(..., help="Raw or preprocessed dataset root (detected)"),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the statistics as JSON"),
) -> None:
    """Per-class box counts, area / aspect-ratio percentiles, small-box shares, event rates."""
    import json

    from rich import box
    from rich.table import Table

    from evdet.data.stats import dataset_stats

    try:
        st = dataset_stats(path)
    except (ValueError, OSError) as err:
        fail(str(err))
    out_console = console()
    res = st["resolution"]
    splits = ", ".join(f"{k}: {v['sequences']} seq / {v['boxes']:,} boxes" for k, v in st["splits"].items())
    out_console.print(f"{st['kind']} dataset {path}  source {'?' if res is None else f'{res[1]}x{res[0]}'}  ({splits})")

    def pct(d: dict | None, fmt: str) -> list[str]:
        return ["-"] * 5 if d is None else [format(v, fmt) for v in d.values()]

    def share(v: float | None) -> str:
        return "-" if v is None else f"{100 * v:.1f}%"

    rows = list(st["classes"].items()) + [("all", st["overall"])]
    sizes = Table(title="Boxes per class: count and area in source px^2 (small < 32^2, tiny < 16^2)",
                  box=box.SIMPLE_HEAD, pad_edge=False)
    shapes = Table(title="Aspect ratio w/h per class", box=box.SIMPLE_HEAD)
    name_width = max(len(n) for n, _ in rows)
    sizes.add_column("class", no_wrap=True, min_width=name_width)
    for col in ("boxes", "share", "small", "tiny", "P5", "P25", "P50", "P75", "P95"):
        sizes.add_column(col, justify="right")
    for col in ("class", "P5", "P25", "P50", "P75", "P95"):
        shapes.add_column(col, justify="left" if col == "class" else "right")
    for name, c in rows:
        sizes.add_row(name, f"{c['count']:,}", share(c["share"]), share(c["small_share"]),
                      share(c["tiny_share"]), *pct(c["area_px2"], ".0f"))
        shapes.add_row(name, *pct(c["aspect_ratio"], ".2f"))
    out_console.print(sizes)
    out_console.print(shapes)
    if st["event_rates"]:
        rates = Table(title="Event rates", box=box.SIMPLE_HEAD)
        for col in ("sequence", "events", "duration s", "M ev/s"):
            rates.add_column(col, justify="left" if col == "sequence" else "right")
        for name, r in st["event_rates"].items():
            mev = "-" if r["events_per_s"] is None else f"{r['events_per_s'] / 1e6:.3f}"
            rates.add_row(name, f"{r['events']:,}", f"{r['duration_s']:.2f}", mev)
        out_console.print(rates)
    if json_out is not None:
        json_out.write_text(json.dumps(st, indent=1))


# ---- synthetic data ----------------------------------------------------------------------------


@app.command()
def simulate(
    out_dir: Path = typer.Argument(..., help="Dataset root to write (train/val/test + dataset.yaml)."),
    sequences: int = typer.Option(6, help="Number of recordings."),
    duration_s: float = typer.Option(10.0, "--duration-s", help="Length of each recording, seconds."),
    resolution: str = typer.Option("1280x720", help="WIDTHxHEIGHT, e.g. 1280x720 or 320x180."),
    preset: str = typer.Option("day", help="Scene preset: day or night."),
    seed: int = typer.Option(0, help="Master seed (same seed, same files)."),
    preview: bool = typer.Option(False, "--preview", help="Also write OUT_DIR/preview.png."),
    workers: int = typer.Option(1, help="Processes generating sequences in parallel."),
) -> None:
    """Generate a synthetic eTraM-like traffic dataset (events + 30 Hz box labels)."""
    try:
        width, height = (int(v) for v in resolution.lower().split("x"))
    except ValueError:
        fail(f"--resolution must look like 1280x720, got {resolution!r}")
    if preset not in ("day", "night"):
        fail(f"--preset must be 'day' or 'night', got {preset!r}")
    if sequences < 1 or duration_s <= 0 or width < 16 or height < 16 or workers < 1:
        fail("--sequences and --workers must be >= 1, --duration-s > 0, the resolution at least 16x16")
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


# ---- training, evaluation, prediction ------------------------------------------------------------

def _split_shorthands(overrides: List[str]) -> tuple[list[str], list[str]]:
    """``data=DIR`` -> ``data.root=DIR`` and ``model=NAME`` -> preset ``model/NAME``; the rest unchanged."""
    presets, rest = [], []
    for item in overrides:
        key, _, value = item.partition("=")
        if key == "data":
            rest.append(f"data.root={value}")
        elif key == "model":
            presets.append(f"model/{value}")
        else:
            rest.append(item)
    return presets, rest


def _key_values(items: List[str], allowed: tuple[str, ...]) -> dict[str, str]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in allowed:
            fail(f"argument {item!r}: expected one of {', '.join(k + '=...' for k in allowed)}")
        out[key] = value
    return out


@app.command()
def train(
    overrides: Optional[List[str]] = typer.Argument(
        None, help="key=value overrides, e.g. data=DIR model=tiny model.in_stages=[1,2,3,4] "
                   "loss.size_aware.alpha=2.5 training.max_steps=100000 (data=DIR is data.root, model=NAME a preset)."),
    name: Optional[str] = typer.Option(None, "--name", help="Experiment id (default: train_<date>_<time>)."),
    config: Optional[List[str]] = typer.Option(None, "--config", "-c", help="YAML file or preset; repeatable."),
    resume: bool = typer.Option(False, "--resume", help="Continue the named run from its last checkpoint."),
    hypothesis: str = typer.Option("ad-hoc training run", "--hypothesis", help="Hypothesis text or file."),
    root: Path = typer.Option(Path("experiments"), "--root", help="Folder holding the experiment records."),
) -> None:
    """Train a detector; the run is kept as an experiment record (config, logs, checkpoints, results)."""
    import time

    from evdet.experiments.new import new_experiment
    from evdet.experiments.records import RecordError
    from evdet.experiments.run_config import ConfigError
    from evdet.experiments.runner import run_experiment

    exp_id = name or time.strftime("train_%Y%m%d_%H%M%S")
    presets, rest = _split_shorthands(list(overrides or []))
    try:
        if not resume:
            text = Path(hypothesis).read_text() if Path(hypothesis).is_file() else hypothesis
            new_experiment(root, exp_id, text, config_files=[*presets, *(config or [])], overrides=rest,
                           command=" ".join(["evdet", "train", *(overrides or [])]))
        elif overrides:
            fail("--resume continues a run with its recorded config; overrides are not allowed")
        res = run_experiment(root, exp_id, resume=resume,
                             command=f"evdet train --name {exp_id}{' --resume' if resume else ''} --root {root}")
    except (RecordError, ConfigError, FileNotFoundError, ValueError) as err:
        fail(str(err))
    typer.echo(f"{exp_id}: {res['status']} at step {res['step']} ({root / exp_id})")


def _print_eval(results: dict) -> None:
    from rich.table import Table

    def fmt(v):
        return "-" if v is None else f"{v:.4f}"

    out_console = console()
    for protocol, res in results.items():
        d = res.to_dict()
        table = Table(title=f"{protocol}  (fingerprint {d['fingerprint']['digest'][:10]})")
        for col in ("class", "support", "AP", "AP50", "precision", "recall"):
            table.add_column(col, justify="left" if col == "class" else "right")
        table.add_row("all", "", *(fmt(d["metrics"].get(k)) for k in ("AP", "AP50")), "", "")
        for cls, r in d["per_class"].items():
            table.add_row(cls, str(r["support"]), fmt(r["AP"]), fmt(r["AP50"]), fmt(r["precision"]), fmt(r["recall"]))
        for group, r in d["groups"].items():
            table.add_row(f"[group] {group}", str(r["support"]), fmt(r["AP"]), fmt(r["AP50"]), "", "")
        out_console.print(table)
        out_console.print("  " + "  ".join(f"{k}={fmt(v)}" for k, v in d["metrics"].items()))


@app.command("eval")
def eval_(
    ckpt: Path = typer.Argument(..., help="Checkpoint (.ckpt) written by evdet train."),
    args: Optional[List[str]] = typer.Argument(
        None, help="data=DIR (preprocessed root, required), protocol=prophesee,full,etram-paper, split=val|test"),
    out: Optional[Path] = typer.Option(None, "--out", help="Write metrics JSON/CSV and plots here."),
    max_sequences: Optional[int] = typer.Option(None, "--max-sequences", help="Only the first N sequences."),
) -> None:
    """Evaluate a checkpoint on a preprocessed split under named protocols (stream mode, whole sequences)."""
    from evdet.evaluation.run import evaluate_checkpoint

    opts = _key_values(list(args or []), ("data", "protocol", "split"))
    if "data" not in opts:
        fail("data=DIR (a preprocessed dataset root) is required")
    protocols = tuple(p for p in opts.get("protocol", "prophesee,full").split(",") if p)
    try:
        results = evaluate_checkpoint(ckpt, Path(opts["data"]), opts.get("split", "val"), protocols=protocols,
                                      out_dir=out, max_sequences=max_sequences)
    except (FileNotFoundError, ValueError, KeyError) as err:
        fail(str(err))
    _print_eval(results)
    if out:
        typer.echo(f"wrote {out}")


@app.command()
def predict(
    ckpt: Path = typer.Argument(..., help="Checkpoint (.ckpt) written by evdet train."),
    recording: Path = typer.Argument(..., help="Raw recording: .h5, .dat, .raw (EVT 2.0/3.0) or .npy."),
    out: Path = typer.Option(Path("predictions"), "--out", help="Output folder."),
    panels: int = typer.Option(6, "--panels", help="Windows shown in the image strip."),
    conf: Optional[float] = typer.Option(None, "--conf", help="Keep detections scoring at least this "
                                         "(default: the checkpoint's head.conf_threshold)."),
    min_score: float = typer.Option(0.3, "--min-score", help="Smallest score drawn in the strip."),
    sensor: Optional[str] = typer.Option(None, "--sensor", help="WIDTHxHEIGHT when the file does not say it."),
    downsample: str = typer.Option("nearest", "--downsample", help="nearest|sum when the sensor is 2x the input."),
) -> None:
    """Detect road users in a raw recording: writes <name>_bbox.npy (Prophesee boxes, sensor pixels) and
    an annotated image strip <name>_strip.png."""
    import numpy as np

    from evdet.data.labels import save_labels
    from evdet.data.render import render_strip
    from evdet.events import EventFormatError, parse_representation_name, read_events
    from evdet.training.predict import load_module, predict_recording

    sensor_hw = None
    if sensor:
        try:
            w, h = (int(v) for v in sensor.lower().split("x"))
        except ValueError:
            fail(f"--sensor {sensor!r}: expected WIDTHxHEIGHT, e.g. 1280x720")
        sensor_hw = (h, w)
    try:
        module = load_module(ckpt)
        boxes, info = predict_recording(module, recording, sensor_hw=sensor_hw, downsample=downsample,
                                        conf_threshold=conf)
    except (FileNotFoundError, ValueError, EventFormatError) as err:
        fail(str(err))
    stem = recording.name.split(".")[0].removesuffix("_td")
    save_labels(out / f"{stem}_bbox.npy", boxes)
    h, w = info["sensor_hw"]
    ends = np.unique(boxes["t"]) if boxes.size else np.zeros(0, np.int64)
    window_us = parse_representation_name(module.data_cfg.representation)[1]["window_ms"] * 1000
    picks = ends[np.linspace(0, len(ends) - 1, min(panels, len(ends))).astype(int)] if len(ends) else ends
    strip = [(read_events(recording, int(t) - window_us, int(t) + 1, height=h, width=w), boxes[boxes["t"] == t],
              f"t = {int(t) / 1e6:.2f} s") for t in picks]
    if strip:
        render_strip(strip, h, w, module.class_names, out / f"{stem}_strip.png", min_score=min_score)
    typer.echo(f"{info['windows']} windows, {boxes.size} detections -> {out / (stem + '_bbox.npy')}"
               + (f", {out / (stem + '_strip.png')}" if strip else ""))


# ---- experiments, analysis, demo -----------------------------------------------------------------

ROOT_OPT = typer.Option(Path("experiments"), "--root", help="Folder holding the experiment records.")


def _load_exp(root: Path, exp_id: str):
    from evdet.experiments.records import RecordError, load_experiment

    try:
        return load_experiment(root, exp_id)
    except RecordError as err:
        fail(str(err))


def _list_exps(root: Path) -> list:
    """Every experiment under ``root``; exits with an error when there is none or a record is bad."""
    from evdet.experiments.records import RecordError, list_experiments

    try:
        exps = list_experiments(root)
    except RecordError as err:
        fail(str(err))
    if not exps:
        fail(f"{root}: no experiments")
    return exps


@exp_app.command("new")
def exp_new(
    exp_id: str = typer.Argument(..., help="Experiment id, e.g. 4scale_sizeaware_100k."),
    overrides: Optional[List[str]] = typer.Argument(None, help="key=value overrides, e.g. model.in_stages=[1,2,3,4]."),
    hypothesis: str = typer.Option(..., "--hypothesis", help="hypothesis.md file, or the hypothesis as text."),
    base: Optional[str] = typer.Option(None, "--base", help="Baseline experiment id: start from its config."),
    config: Optional[List[str]] = typer.Option(None, "--config", "-c",
                                               help="YAML file or preset (demo, model/small, data/gen1); repeatable."),
    root: Path = ROOT_OPT,
) -> None:
    """Create an experiment record: hypothesis, fully resolved config (base or presets + overrides)."""
    import shlex

    from evdet.experiments.new import new_experiment
    from evdet.experiments.records import RecordError
    from evdet.experiments.run_config import ConfigError

    try:
        text = Path(hypothesis).read_text() if Path(hypothesis).is_file() else hypothesis
    except OSError:  # text too long to be a path
        text = hypothesis
    argv = ["evdet", "exp", "new", exp_id, *(overrides or []), "--hypothesis", hypothesis,
            *(["--base", base] if base else []), *[a for c in (config or []) for a in ("-c", c)],
            "--root", str(root)]
    try:
        path = new_experiment(root, exp_id, text, base=base, config_files=config or (),
                              overrides=overrides or (), command=" ".join(shlex.quote(a) for a in argv))
    except (RecordError, ConfigError) as err:
        fail(str(err))
    typer.echo(f"created {path}")


@exp_app.command("run")
def exp_run(exp_id: str, resume: bool = typer.Option(False, "--resume", help="Continue from checkpoints/last.ckpt."),
            root: Path = ROOT_OPT) -> None:
    """Train an experiment with evaluation attached; fills results.json and status.json."""
    from evdet.experiments.records import RecordError
    from evdet.experiments.run_config import ConfigError
    from evdet.experiments.runner import run_experiment

    try:
        res = run_experiment(root, exp_id, resume=resume,
                             command=f"evdet exp run {exp_id}{' --resume' if resume else ''} --root {root}")
    except (RecordError, ConfigError) as err:
        fail(str(err))
    typer.echo(f"{exp_id}: {res['status']} at step {res['step']}")


@exp_app.command("list")
def exp_list(root: Path = ROOT_OPT) -> None:
    """Table of experiments: id, status, steps, headline metrics, architecture."""
    from evdet.experiments.tables import experiments_table

    console().print(experiments_table(_list_exps(root)))


@exp_app.command("rank")
def exp_rank(by: str = typer.Option("AP", "--by", help="AP, small_AP, AP_S, per_class.<name>.AP, prophesee/AP..."),
             protocol: Optional[str] = typer.Option(None, "--protocol"),
             baseline: Optional[str] = typer.Option(None, "--baseline", help="Delta vs this id (default: each base)."),
             root: Path = ROOT_OPT) -> None:
    """Rank experiments by a metric, with the delta to the baseline and architecture."""
    from evdet.experiments.rank import rank_experiments
    from evdet.experiments.tables import rank_table

    exps = _list_exps(root)
    console().print(rank_table(rank_experiments(exps, by, protocol=protocol, baseline=baseline), by))


@exp_app.command("compare")
def exp_compare(ids: List[str] = typer.Argument(..., help="Two or more experiment ids (deltas vs the first)."),
                protocol: Optional[str] = typer.Option(None, "--protocol"),
                allow_mismatch: bool = typer.Option(False, "--allow-mismatch",
                                                    help="Compare despite different fingerprints (flagged)."),
                plot: Optional[Path] = typer.Option(None, "--plot", help="Write overlaid loss / AP curves PNG."),
                root: Path = ROOT_OPT) -> None:
    """Metric, per-class and per-size deltas between experiments, and overlaid curves."""
    from evdet.experiments.compare import IncomparableError, compare_experiments, plot_curves
    from evdet.experiments.tables import comparison_tables

    if len(ids) < 2:
        fail("compare needs at least two experiment ids")
    exps = [_load_exp(root, i) for i in ids]
    try:
        comp = compare_experiments(exps, protocol=protocol, allow_mismatch=allow_mismatch)
    except IncomparableError as err:
        fail(f"{err} (use --allow-mismatch to show them anyway)")
    out_console = console()
    for p in comp.problems:
        out_console.print(f"[bold red]NOT COMPARABLE:[/] {p}")
    for t in comparison_tables(comp):
        out_console.print(t)
    if plot is not None:
        typer.echo(f"curves: {plot_curves(exps, plot, protocol=comp.protocol)}")


@exp_app.command("diff")
def exp_diff(a: str = typer.Argument(..., help="Experiment id or config YAML (also YOLO hyp.yaml)."),
             b: str = typer.Argument(..., help="Experiment id or config YAML."),
             root: Path = ROOT_OPT) -> None:
    """Changed config keys with relative change and a risk note each, highest risk first."""
    from evdet.experiments.config_diff import ConfigDiffError, diff_configs, load_config_tree
    from evdet.experiments.records import read_status
    from evdet.experiments.tables import diff_table

    try:
        old, new = load_config_tree(a, root), load_config_tree(b, root)
    except ConfigDiffError as err:
        fail(str(err))
    base_done = read_status(root / a).get("state") == "completed" if (root / a).is_dir() else None
    d = diff_configs(old, new, base_completed=base_done)
    out_console = console()
    if not d.changes:
        out_console.print("no differences")
        return
    out_console.print(diff_table(d, f"{a} -> {b}"))
    for n in d.notes:
        out_console.print(f"[bold yellow]{n}[/]")


@exp_app.command("verdict")
def exp_verdict(exp_id: str, root: Path = ROOT_OPT) -> None:
    """Check each success criterion of hypothesis.md against the results (base-relative ones vs the base)."""
    from evdet.experiments.tables import verdict_table
    from evdet.experiments.verdict import CriteriaError, judge, overall_verdict, parse_criteria

    exp = _load_exp(root, exp_id)
    try:
        criteria = parse_criteria(exp.hypothesis, str(exp.path / "hypothesis.md"))
    except CriteriaError as err:
        fail(str(err))
    if not criteria:
        fail(f"{exp.path / 'hypothesis.md'}: no criteria under '## Success criteria'")
    base = _load_exp(root, exp.base) if exp.base else None
    res = judge(criteria, exp, base)
    console().print(verdict_table(res, f"{exp_id}: {overall_verdict(res)}"))


@exp_app.command("report")
def exp_report(ids: Optional[List[str]] = typer.Argument(None, help="Experiment ids (default: all)."),
               out: Optional[Path] = typer.Option(None, "--out", help="HTML file (default <root>/report.html, "
                                                  "or <root>/<ID>/report.html for one id)."),
               protocol: Optional[str] = typer.Option(None, "--protocol"),
               by: str = typer.Option("AP", "--by", help="Ranking metric."),
               root: Path = ROOT_OPT) -> None:
    """Write one self-contained HTML report (plots embedded) of the given experiments."""
    from evdet.experiments.report import write_report

    exps = [_load_exp(root, i) for i in ids] if ids else _list_exps(root)
    target = out or (exps[0].path / "report.html" if ids and len(ids) == 1 else root / "report.html")
    typer.echo(f"report: {write_report(exps, target, root=root, protocol=protocol, by=by)}")


@app.command()
def analyze(data: Path = typer.Argument(..., help="Raw (<split>/*_bbox.npy) or preprocessed dataset root."),
            results: Optional[str] = typer.Option(None, "--results", help="Experiment id whose per-class AP to use."),
            protocol: Optional[str] = typer.Option(None, "--protocol"),
            split: List[str] = typer.Option(["train"], "--split", help="Split(s) to analyse; repeatable."),
            input_size: Optional[str] = typer.Option(None, "--input-size", help="Model input HxW, e.g. 360x640."),
            json_out: Optional[Path] = typer.Option(None, "--json", help="Write the analysis as JSON."),
            plot: Optional[Path] = typer.Option(None, "--plot", help="Write box-size histograms PNG."),
            root: Path = ROOT_OPT) -> None:
    """Per-class data analysis: support, share, AP efficiency, box sizes, FPN level ownership."""
    from evdet.experiments.analysis import AnalysisError, analysis_json, analyze_dataset, plot_histograms
    from evdet.events.atomic import write_text_atomic
    from evdet.experiments.tables import analysis_table

    hw = None
    if input_size:
        try:
            h, w = (int(v) for v in input_size.lower().split("x"))
            hw = (h, w)
        except ValueError:
            fail(f"--input-size {input_size!r}: expected HxW, e.g. 360x640")
    res_doc = _load_exp(root, results).results if results else None
    try:
        a = analyze_dataset(data, splits=split, results=res_doc, protocol=protocol, input_hw=hw)
    except (AnalysisError, ValueError, FileNotFoundError) as err:
        fail(str(err))
    console().print(analysis_table(a))
    if json_out is not None:
        typer.echo(f"json: {write_text_atomic(json_out, analysis_json(a))}")
    if plot is not None:
        typer.echo(f"plot: {plot_histograms(data, a, plot, splits=split)}")



@app.command()
def demo(
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Folder for data, experiments and report.html."),
    steps: int = typer.Option(200, "--steps", help="Training steps per experiment."),
    sequences: int = typer.Option(9, "--sequences", help="Synthetic sequences to generate."),
    duration_s: float = typer.Option(12.0, "--duration-s", help="Length of each synthetic sequence, seconds."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """End-to-end demo on generated data: simulate, preprocess, train a 3-scale baseline and a 4-scale +
    size-aware variant, evaluate both, rank and compare them, and write an HTML report (resumable)."""
    from evdet.experiments.compare import compare_experiments
    from evdet.experiments.demo import BASELINE_ID, VARIANT_ID, DemoSettings, run_demo
    from evdet.experiments.rank import rank_experiments
    from evdet.experiments.records import list_experiments, load_experiment
    from evdet.experiments.tables import comparison_tables, rank_table

    settings = DemoSettings(sequences=sequences, duration_s=duration_s, seed=seed, max_steps=steps,
                            val_every_n_steps=max(1, steps // 2))
    report = run_demo(out, settings, echo=typer.echo)
    root = out / "experiments"
    out_console = console()
    for by in ("AP", "small_AP"):
        out_console.print(rank_table(rank_experiments(list_experiments(root), by, protocol="full"), f"full/{by}"))
    comparison = compare_experiments([load_experiment(root, BASELINE_ID), load_experiment(root, VARIANT_ID)],
                                     protocol="full")
    for table in comparison_tables(comparison):
        out_console.print(table)
    typer.echo(f"report: {report}")


def main() -> None:
    app()


if __name__ == "__main__":
    main()
