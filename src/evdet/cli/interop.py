"""Commands that meet frame-based tools at their file formats: YOLO dataset export, external detections."""

from __future__ import annotations

from pathlib import Path

import typer

from evdet.cli.common import ROOT_OPT, app, export_app, fail


@export_app.command("yolo")
def export_yolo_cmd(
    data: Path = typer.Argument(..., help="Preprocessed dataset root."),
    out: Path = typer.Argument(..., help="Output folder (Ultralytics layout: images/, labels/, data.yaml)."),
    representation: str = typer.Option("histogram", "--representation", "-r",
                                       help="Frame image: 'histogram' (event counts per polarity, ON red, OFF "
                                            "blue) or 'time_surface' (recency of the last event per polarity)."),
    split: list[str] | None = typer.Option(None, "--split", help="Split to export (repeatable; default all)."),
    count_cap: int = typer.Option(10, "--count-cap", help="Event count shown at full intensity (histogram)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Rewrite frames already exported."),
) -> None:
    """Export a preprocessed dataset for Ultralytics YOLO: one 8-bit image per label frame with its
    normalised `class cx cy w h` labels and data.yaml (resumable). Train with `yolo detect train
    data=OUT/data.yaml`; evaluate its `predict save_txt=True save_conf=True` output with
    `evdet eval-detections`."""
    from evdet.interop.export_yolo import export_yolo

    try:
        s = export_yolo(data, out, representation=representation, splits=split or None,  # type: ignore[arg-type]
                        count_cap=count_cap, overwrite=overwrite)
    except (FileNotFoundError, ValueError) as err:
        fail(str(err))
    per_split = ", ".join(f"{k} {v}" for k, v in s["images"].items())
    typer.echo(f"exported {per_split} images ({s['skipped']} already there), {s['boxes']} new boxes, "
               f"{s['size'][1]}x{s['size'][0]} px; wrote {s['data_yaml']}")


@app.command("eval-detections")
def eval_detections_cmd(
    data: Path = typer.Argument(..., help="Preprocessed dataset root (ground truth)."),
    dets: Path = typer.Argument(..., help="Detections: folder of YOLO txt files (<seq>_t<t_us>.txt, as exported) "
                                          "or of Prophesee <seq>_bbox.npy files."),
    fmt: str = typer.Option(..., "--format", help="'yolo' (class cx cy w h conf, normalised) or 'prophesee'."),
    split: str = typer.Option("val", "--split", help="Split evaluated."),
    protocol: list[str] | None = typer.Option(None, "--protocol", "-p",
                                                 help="Named protocol (repeatable; default prophesee and full)."),
    pixels: str = typer.Option("source", "--pixels", help="Prophesee boxes in 'source' (sensor) or 'repr' pixels."),
    save_as: str | None = typer.Option(None, "--save-as", help="Keep the result as experiment EXP_ID (ranks "
                                                                  "beside trained runs in `evdet exp rank`)."),
    root: Path = ROOT_OPT,
) -> None:
    """Evaluate another detector's detections (Ultralytics save_txt --save-conf files, or Prophesee
    _bbox.npy) under evdet's named protocols, optionally saved as an experiment record."""
    import sys

    from evdet.cli.train import _print_eval
    from evdet.experiments.records.record import RecordError
    from evdet.interop.external import evaluate_external, save_external_record

    protocols = tuple(p for item in (protocol or ["prophesee", "full"]) for p in item.split(",") if p)
    try:
        results, info = evaluate_external(data, dets, fmt, split, protocols=protocols,  # type: ignore[arg-type]
                                          pixels=pixels)  # type: ignore[arg-type]
        exp_dir = None
        if save_as:
            exp_dir = save_external_record(root, save_as, results, info, data=data, dets=dets,
                                           command=" ".join(["evdet", *sys.argv[1:]]))
    except (FileNotFoundError, ValueError, RecordError) as err:
        fail(str(err))
    _print_eval(results)
    note = f", {info['ignored']} file(s) of other sequences ignored" if info["ignored"] else ""
    typer.echo(f"{info['format']}: {info['files']} file(s) from {info['folder']} over {len(info['sequences'])} "
               f"sequence(s) of {split}{note}")
    if exp_dir is not None:
        typer.echo(f"saved as experiment {save_as} ({exp_dir})")
