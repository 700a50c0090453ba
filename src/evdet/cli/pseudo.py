"""Commands of label-efficient training: pseudo-label, pseudo-quality, self-train."""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional

import typer

from evdet.cli.common import TRUSTED_OPT, app, fail

_REFINE = typer.Option("none", "--refine", help="none | track (keep boxes on tracks of >= --min-track-len boxes) "
                       "| bidirectional (also the model on the time-reversed sequence).")


def _settings(score_thr, class_thr, refine, min_track_len, track_score, label_fraction, label_by, label_seed,
              candidate_score, split):
    from evdet.pseudo import PseudoLabelSettings, RefineConfig

    return PseudoLabelSettings(
        score_thr=score_thr, class_thr=class_thr, candidate_score=candidate_score, split=split,
        refine=RefineConfig(mode=refine, min_track_len=min_track_len,
                            track_score=score_thr if track_score is None else track_score),
        label_fraction=label_fraction, label_fraction_by=label_by, label_seed=label_seed)


def _print_quality(result: dict, paths: dict) -> None:
    from evdet.pseudo import format_quality_table

    typer.echo(f"pseudo-label quality over {result['frames']} withheld label frames ({result['boxes']}, "
               f"IoU >= {result['iou_thr']}):")
    typer.echo(format_quality_table(result["rows"], result["class_names"]))
    typer.echo(f"wrote {paths['json']}, {paths['plot']}")


@app.command("pseudo-label")
def pseudo_label(
    ckpt: Path = typer.Argument(..., help="Teacher checkpoint (.ckpt of evdet train)."),
    data: Path = typer.Argument(..., help="Preprocessed dataset whose withheld label frames get pseudo-labels."),
    out: Path = typer.Argument(..., help="Output dataset (same layout; train with `evdet train data=OUT`)."),
    score_thr: float = typer.Option(0.4, "--score-thr", help="Keep boxes with (refined) obj x cls >= this."),
    class_thr: float = typer.Option(0.35, "--class-thr", help="Keep boxes with class probability >= this."),
    refine: str = _REFINE,
    min_track_len: int = typer.Option(3, "--min-track-len", help="Boxes a track needs for its boxes to persist."),
    track_score: Optional[float] = typer.Option(None, "--track-score",
                                                help="Tracker's track score (default: --score-thr)."),
    label_fraction: Optional[float] = typer.Option(
        None, "--label-fraction", help="Labels kept (0, 1]; the others are pseudo-labelled (default: the teacher's "
                                       "data.label_fraction)."),
    label_by: Optional[str] = typer.Option(None, "--label-by", help="frames | sequences (default: the teacher's)."),
    label_seed: Optional[int] = typer.Option(None, "--label-seed", help="Seed of that choice (default: the "
                                             "teacher's data.label_seed, else its training.seed)."),
    candidate_score: float = typer.Option(0.05, "--candidate-score", help="Lowest score stored for the sweep."),
    split: str = typer.Option("train", "--split", help="Split to pseudo-label (other splits are linked)."),
    quality: bool = typer.Option(False, "--quality", help="Measure against the withheld ground truth, write "
                                 "OUT/quality/{quality.json,quality.txt,quality_sweep.png}."),
    device: Optional[str] = typer.Option(None, "--device", help="cpu, cuda, ... (default: CUDA when available)."),
    trusted: bool = TRUSTED_OPT,
) -> None:
    """Label a dataset's withheld frames with a teacher; write the dataset with each label's provenance."""
    from evdet.pseudo import measure_pseudo_labels, pseudo_label_dataset, write_quality_report
    from evdet.training.checkpoints import CheckpointError

    try:
        settings = _settings(score_thr, class_thr, refine, min_track_len, track_score, label_fraction, label_by,
                             label_seed, candidate_score, split)
        summary = pseudo_label_dataset(ckpt, data, out, settings, device=device, trusted=trusted)
        w, t = summary["withheld"], summary["totals"]
        typer.echo(f"{out}: {t.get('frames_pseudo', 0)} pseudo-labelled frames ({t.get('boxes_pseudo', 0)} boxes, "
                   f"{t.get('frames_empty', 0)} withheld frames left empty), {t.get('frames_true', 0)} true frames; "
                   f"withheld {w['fraction']:g} by {w['by']}, seed {w['seed']}")
        if quality:
            result = measure_pseudo_labels(data, out, split=split)
            _print_quality(result, write_quality_report(result, out / "quality"))
    except (CheckpointError, FileNotFoundError, FileExistsError, ValueError) as err:
        fail(str(err))


@app.command("pseudo-quality")
def pseudo_quality(
    data: Path = typer.Argument(..., help="The source dataset (ground truth of the withheld frames)."),
    pseudo: Path = typer.Argument(..., help="A dataset written by `evdet pseudo-label`."),
    boxes: str = typer.Option("candidates", "--boxes", help="candidates (full threshold sweep) | written "
                              "(the training labels)."),
    split: str = typer.Option("train", "--split"),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder of quality.json / .txt / quality_sweep.png "
                                       "(default: PSEUDO/quality)."),
) -> None:
    """Precision / recall of pseudo-labels per class, size and small road users, at each score threshold."""
    from evdet.pseudo import measure_pseudo_labels, write_quality_report

    if boxes not in ("candidates", "written"):
        fail(f"--boxes: {boxes!r} is not one of ['candidates', 'written']")
    try:
        result = measure_pseudo_labels(data, pseudo, split=split, boxes=boxes)
        _print_quality(result, write_quality_report(result, out or pseudo / "quality"))
    except (FileNotFoundError, ValueError) as err:
        fail(str(err))


@app.command("self-train")
def self_train(
    data: Path = typer.Argument(..., help="Preprocessed source dataset."),
    out: Path = typer.Argument(..., help="Folder of the pseudo-labelled datasets (pseudo_r<k>) and self_train.json."),
    overrides: Optional[List[str]] = typer.Argument(
        None, help="key=value overrides of every round, e.g. model=nano data.label_fraction=0.1 training.max_steps=2000."),
    rounds: int = typer.Option(1, "--rounds", help="Pseudo-label -> student rounds after the supervised teacher."),
    name: str = typer.Option("selftrain", "--name", help="Experiment ids: <name>_r0 (teacher), <name>_r1, ..."),
    config: Optional[List[str]] = typer.Option(None, "--config", "-c", help="YAML file or preset; repeatable."),
    root: Path = typer.Option(Path("experiments"), "--root", help="Folder holding the experiment records."),
    score_thr: float = typer.Option(0.4, "--score-thr"),
    class_thr: float = typer.Option(0.35, "--class-thr"),
    refine: str = _REFINE,
    min_track_len: int = typer.Option(3, "--min-track-len"),
    device: Optional[str] = typer.Option(None, "--device"),
) -> None:
    """Teacher (labelled fraction) -> pseudo-labels -> student, for --rounds rounds; each round is an
    experiment record (compare them with `evdet exp compare <name>_r0 <name>_r1`)."""
    from evdet.cli.train import _split_shorthands
    from evdet.experiments.records.record import RecordError
    from evdet.experiments.records.run_config import ConfigError
    from evdet.studies.self_training import self_train_records
    from evdet.training.checkpoints import CheckpointError

    presets, rest = _split_shorthands(list(overrides or []))
    try:
        settings = _settings(score_thr, class_thr, refine, min_track_len, None, None, None, None, 0.05, "train")
        history = self_train_records(data, out, rounds, settings, root=root, name=name,
                                     config_files=[*presets, *(config or [])], overrides=rest, device=device,
                                     command=f"evdet self-train {data} {out} --name {name}")
    except (RecordError, ConfigError, CheckpointError, FileNotFoundError, FileExistsError, ValueError) as err:
        fail(str(err))
    for h in history:
        q = h.get("quality")
        extra = "" if q is None else (f"  pseudo precision {q['overall']['precision']}, recall {q['overall']['recall']}")
        typer.echo(f"round {h['round']}: {h['checkpoint']}{extra}")
