"""Commands that track detections over time and score the tracks (HOTA, MOTA, MOTP, IDF1)."""

from __future__ import annotations

from pathlib import Path

import typer

from evdet.cli.common import app, console, fail
from evdet.utils.formatting import number


def _fmt(value) -> str:
    return number(value, digits=3) if value is None or isinstance(value, float) else str(value)


def print_tracking_table(res: dict, title: str) -> None:
    """Per-class and overall tracking metrics as a rich table."""
    from rich.table import Table

    cols = ("HOTA", "DetA", "AssA", "MOTA", "MOTP", "IDF1", "IDSW", "FP", "FN", "gt_boxes", "gt_tracks")
    table = Table(title=title)
    table.add_column("class")
    for c in cols:
        table.add_column(c, justify="right")
    for name, m in [*res["per_class"].items(), ("overall", res["overall"])]:
        table.add_row(name, *(_fmt(m.get(c)) for c in cols), style="bold" if name == "overall" else None)
    console().print(table)


@app.command("track")
def track_cmd(
    dets: Path = typer.Argument(..., help="Folder of <sequence>_bbox.npy detections (Prophesee boxes, scores in "
                                          "class_confidence), e.g. written by evdet predict."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the tracks (<sequence>_bbox.npy with track_id)."),
    high_score: float = typer.Option(0.5, "--high-score", help="First association stage: detections scoring at "
                                                               "least this."),
    low_score: float = typer.Option(0.1, "--low-score", help="Second stage takes detections in [low, high); lower "
                                                             "ones are dropped."),
    new_track_score: float = typer.Option(0.6, "--new-track-score", help="Least score that starts a track."),
    max_lost_ms: float = typer.Option(1000.0, "--max-lost-ms", help="A track unmatched this long is dropped."),
    class_agnostic: bool = typer.Option(False, "--class-agnostic", help="Let detections of any class join a track."),
    output_box: str = typer.Option("detection", "--output-box", help="Reported box: 'detection' or 'filtered' "
                                                                     "(Kalman estimate)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Redo sequences already tracked in OUT."),
) -> None:
    """Track objects by detection (ByteTrack-style: high- then low-score association, constant-velocity
    Kalman motion, class-aware); resumable, writes Prophesee boxes with track ids."""
    from evdet.tracking.bytetrack import TrackerConfig
    from evdet.tracking.io import track_folder
    from evdet.utils.value_checks import ConfigValueError

    try:
        cfg = TrackerConfig(high_score=high_score, low_score=low_score, new_track_score=new_track_score,
                            max_lost_us=int(max_lost_ms * 1000), class_aware=not class_agnostic,
                            output_box=output_box)  # type: ignore[arg-type]
        s = track_folder(dets, out, cfg)
    except ConfigValueError as err:    # name the option, not the config field
        option = {"max_lost_us": "max-lost-ms"}.get(err.key, err.key.replace("_", "-"))
        fail(f"--{option}: {err.problem}")
    except (FileNotFoundError, ValueError) as err:
        fail(str(err))
    typer.echo(f"tracked {s['tracked']} sequence(s) ({s['skipped']} already done): {s['detections']} detections -> "
               f"{s['tracked_boxes']} tracked boxes in {s['tracks']} tracks; wrote {out}")


@app.command("eval-tracks")
def eval_tracks_cmd(
    data: Path = typer.Argument(..., help="Dataset root with ground-truth track ids (preprocessed or raw)."),
    tracks: Path = typer.Argument(..., help="Folder of <sequence>_bbox.npy tracks in sensor pixels."),
    split: str = typer.Option("val", "--split", help="Split whose sequences are scored."),
    tolerance_ms: float = typer.Option(25.0, "--tolerance-ms", help="A ground-truth frame takes the tracks of the "
                                                                     "nearest track time within this."),
    pixels: str = typer.Option("source", "--pixels", help="Tracks in 'source' (sensor) pixels, or 'repr' "
                                                          "(representation pixels of a preprocessed DATA)."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the full results as JSON here."),
) -> None:
    """Score tracks against the ground-truth track ids: HOTA (DetA, AssA), MOTA, MOTP (mean IoU), IDF1,
    per class and overall."""
    from evdet.tracking.io import evaluate_track_folder

    try:
        res = evaluate_track_folder(data, tracks, split, time_tolerance_us=int(tolerance_ms * 1000),
                                    pixels=pixels)  # type: ignore[arg-type]
    except (FileNotFoundError, ValueError) as err:
        fail(str(err))
    if json_out is not None:
        from evdet.experiments.records.record import atomic_write_json

        atomic_write_json(json_out, res)
    print_tracking_table(res, f"tracking, split {split}: {len(res['sequences'])} sequence(s)")
