"""``evdet exp matrix``: a study's experiment matrix (variants x seeds, configs/studies/), resumable."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from evdet.cli.common import exp_app, fail, parse_seeds


@exp_app.command("matrix")
def exp_matrix(
    plan: str = typer.Option("cpu", "--plan", help="cpu (nano, 320x180 input from 640x360 sensors) or gpu "
                             "(tiny, 640x360 input from 1280x720 sensors)."),
    study: str = typer.Option("small_objects", "--study", help="Study file in configs/studies/: small_objects "
                              "(six variants) or roadmap (every roadmap switch alone, and combinations)."),
    work: Optional[Path] = typer.Option(None, "--work", help="Data and experiment records "
                                        "(default: the plan's, e.g. runs/matrix_cpu)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Results folder: results.md, results.json, "
                                       "report.html, preview.png (default: the plan's, e.g. docs/results/cpu)."),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Seeds of every variant (default 0,1,2)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Training steps per run (default: the plan's)."),
    only: Optional[str] = typer.Option(None, "--only", help="Comma-separated variant ids (the baseline is "
                                       "always included)."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Training processes side by side "
                                          "(default: the plan's; cpu 2, gpu 6). Each uses cores / workers torch threads: on 2 cores, "
                                          "2 one-thread runs side by side train about 1.6 times as many steps per "
                                          "hour as one two-thread run."),
    no_train: bool = typer.Option(False, "--no-train", help="Only refresh the results from the records."),
    n_boot: int = typer.Option(100, "--n-boot", help="Bootstrap resamples for single-seed intervals "
                               "(each re-evaluates a validation run)."),
    machine: str = typer.Option("this machine", "--machine", help="Machine named in results.md."),
) -> None:
    """Run a study's matrix. small_objects: 3-scale baseline, 4-scale, size-aware (3/4-scale), patch 2 +
    4-scale, and the baseline at twice the input resolution; roadmap: every architecture module and training
    strategy alone against the RVT-faithful baseline, and combinations (with their interaction). Each variant
    trains several seeds and is evaluated under prophesee and full; writes a results table with 95% intervals
    and a Holm correction over the family. Rerun the same command to resume; the training prints
    where it stands every minute. Training is seed-major (every variant's first seed before any second seed),
    so a partly finished matrix already compares every variant."""
    from evdet.data.preprocess.inputs import PreprocessError
    from evdet.experiments.records.record import RecordError
    from evdet.experiments.records.run_config import ConfigError
    from evdet.studies.matrix import run_matrix
    from evdet.studies.study_plan import MatrixError, make_plan

    seed_list = parse_seeds("--seeds", seeds) if seeds else None
    if workers is not None and workers < 1:
        fail(f"--workers must be >= 1, got {workers}")
    if n_boot < 10:
        fail(f"--n-boot must be >= 10, got {n_boot}")
    try:
        p = make_plan(plan, study=study, seeds=seed_list, max_steps=steps,
                      variants=[v.strip() for v in only.split(",") if v.strip()] if only else None)
    except MatrixError as err:
        fail(str(err))
    work = work or Path(p.work or f"runs/{p.study}_{p.name}")
    out = out or Path(p.out or f"docs/results/{p.study}_{p.name}")
    one_command = " ".join(["evdet exp matrix", *([f"--study {study}"] if study != "small_objects" else []),
                            f"--plan {p.name}", f"--work {work}", f"--out {out}",
                            *([f"--seeds {seeds}"] if seeds else []), *([f"--steps {steps}"] if steps else []),
                            *([f"--only {only}"] if only else [])])
    try:
        path = run_matrix(p, work, out, one_command=one_command, train=not no_train,
                          workers=workers if workers is not None else p.train_workers, machine=machine,
                          echo=typer.echo, n_boot=n_boot)
    except (MatrixError, PreprocessError, RecordError, ConfigError) as err:
        fail(str(err))
    typer.echo(f"results: {path}")
