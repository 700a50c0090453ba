"""Commands that train, evaluate and predict."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from evdet.cli.common import TRUSTED_OPT, app, console, fail, parse_size


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
    trusted: bool = TRUSTED_OPT,
) -> None:
    """Train a detector; the run is kept as an experiment record (config, logs, checkpoints, results)."""
    import time

    from evdet.experiments.records.new import new_experiment
    from evdet.experiments.records.record import RecordError
    from evdet.experiments.records.run_config import ConfigError
    from evdet.experiments.running.runner import AlreadyCompleted, run_experiment

    exp_id = name or time.strftime("train_%Y%m%d_%H%M%S")
    presets, rest = _split_shorthands(list(overrides or []))
    try:
        if not resume:
            text = Path(hypothesis).read_text() if Path(hypothesis).is_file() else hypothesis
            new_experiment(root, exp_id, text, config_files=[*presets, *(config or [])], overrides=rest,
                           command=" ".join(["evdet", "train", *(overrides or [])]))
        elif overrides:
            fail("--resume continues a run with its recorded config; overrides are not allowed")
        res = run_experiment(root, exp_id, resume=resume, trusted=trusted,
                             command=f"evdet train --name {exp_id}{' --resume' if resume else ''} --root {root}")
    except AlreadyCompleted as done:
        typer.echo(str(done))
        return
    except (RecordError, ConfigError, FileNotFoundError, ValueError) as err:
        fail(str(err))
    typer.echo(f"{exp_id}: {res['status']} at step {res['step']} ({root / exp_id})")


def _print_eval(results: dict) -> None:
    from rich.table import Table

    from evdet.utils.formatting import number as fmt

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
        None, help="data=DIR (preprocessed root, required), protocol=prophesee,full,etram-paper, split=val|test, "
                   "scoring=class|obj_x_cls (default class: RVT's ranking by class confidence)"),
    out: Optional[Path] = typer.Option(None, "--out", help="Write metrics JSON/CSV and plots here."),
    max_sequences: Optional[int] = typer.Option(None, "--max-sequences", help="Only the first N sequences."),
    trusted: bool = TRUSTED_OPT,
) -> None:
    """Evaluate a checkpoint on a preprocessed split under named protocols (stream mode, whole sequences)."""
    from evdet.evaluation.run import evaluate_checkpoint

    opts = _key_values(list(args or []), ("data", "protocol", "split", "scoring"))
    if "data" not in opts:
        fail("data=DIR (a preprocessed dataset root) is required")
    protocols = tuple(p for p in opts.get("protocol", "prophesee,full").split(",") if p)
    try:
        results = evaluate_checkpoint(ckpt, Path(opts["data"]), opts.get("split", "val"), protocols=protocols,
                                      out_dir=out, max_sequences=max_sequences, scoring=opts.get("scoring"),
                                      trusted=trusted)
    except (FileNotFoundError, ValueError, KeyError) as err:
        fail(str(err))
    _print_eval(results)
    if out:
        typer.echo(f"wrote {out}")


@app.command()
def predict(
    ckpt: Path = typer.Argument(..., help="Checkpoint (.ckpt) written by evdet train, or a model (.onnx) "
                                "written by evdet export onnx (run with ONNX Runtime)."),
    recording: Path = typer.Argument(..., help="Raw recording: .h5, .dat, .raw (EVT 2.0/3.0) or .npy."),
    out: Path = typer.Option(Path("predictions"), "--out", help="Output folder."),
    panels: int = typer.Option(6, "--panels", help="Windows shown in the image strip."),
    conf: Optional[float] = typer.Option(None, "--conf", help="Keep detections scoring at least this "
                                         "(default: the checkpoint's head.conf_threshold)."),
    min_score: float = typer.Option(0.3, "--min-score", help="Smallest score drawn in the strip (and video)."),
    sensor: Optional[str] = typer.Option(None, "--sensor", help="WIDTHxHEIGHT when the file does not say it."),
    downsample: str = typer.Option("nearest", "--downsample", help="nearest|sum when the sensor is 2x the input."),
    video: Optional[Path] = typer.Option(None, "--video", help="Also write a video (.mp4 or .gif) of every window: "
                                         "events, boxes, scores, class names, track ids."),
    gt: Optional[Path] = typer.Option(None, "--gt", help="Ground-truth *_bbox.npy shown beside the predictions "
                                      "in the video."),
    track: bool = typer.Option(True, "--track/--no-track", help="Track the detections for the video's track ids."),
    trusted: bool = TRUSTED_OPT,
) -> None:
    """Detect road users in a raw recording: writes <name>_bbox.npy (Prophesee boxes, sensor pixels) and
    an annotated image strip <name>_strip.png (and with --video a video)."""
    from evdet.events import EventFormatError
    from evdet.training.predict import load_module, predict_recording, save_recording_predictions

    sensor_hw = parse_size("--sensor", sensor, "1280x720") if sensor else None
    try:
        if ckpt.suffix == ".onnx":
            from evdet.deploy.onnx_runtime import predict_recording_onnx

            boxes, info = predict_recording_onnx(ckpt, recording, sensor_hw=sensor_hw, downsample=downsample,
                                                 conf_threshold=conf)
        else:
            boxes, info = predict_recording(load_module(ckpt, trusted=trusted), recording, sensor_hw=sensor_hw,
                                            downsample=downsample, conf_threshold=conf)
        paths = save_recording_predictions(recording, boxes, info, out, panels=panels, min_score=min_score)
        if video:
            from evdet.evaluation.video import write_recording_video
            from evdet.tracking import track_sequence

            paths["video"] = write_recording_video(recording, boxes, info, video, gt_path=gt, min_score=min_score,
                                                   track_fn=track_sequence if track else None)["path"]
    except (FileNotFoundError, ValueError, EventFormatError) as err:
        fail(str(err))
    typer.echo(f"{info['windows']} windows, {boxes.size} detections -> "
               + ", ".join(str(p) for p in paths.values()))


