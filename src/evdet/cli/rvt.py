"""``evdet import-rvt`` (RVT checkpoints into evdet checkpoints) and ``evdet scoring-diff`` (RVT vs YOLOX scoring)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from evdet.cli.common import TRUSTED_OPT, app, fail, parse_size


@app.command("import-rvt")
def import_rvt(
    src: Path = typer.Argument(..., help="RVT Lightning checkpoint (state_dict with 'mdl.' keys)."),
    dst: Path = typer.Argument(..., help="evdet checkpoint to write (usable by evdet eval / predict)."),
    size: Optional[str] = typer.Option(None, "--input", help="WIDTHxHEIGHT of the model input (Gen1 304x240, "
                                       "1 Mpx / eTraM 640x360); it fixes the attention partitions. Default: the "
                                       "size the checkpoint records; asked for when it records none."),
    partition_split: Optional[int] = typer.Option(None, "--partition-split",
                                                  help="RVT's partition_split_32 (default 1 for 304x240, else 2)."),
    classes: Optional[str] = typer.Option(None, "--classes", help="etram|gen1|gen4 or names in id order "
                                          "(a,b,c); default by class count: 2 gen1, 3 gen4, 8 etram."),
    trusted: bool = TRUSTED_OPT,
) -> None:
    """Import an RVT checkpoint: infer preset, patch size, FPN stages and classes from its tensors,
    map the names (qkv rows per head -> q|k|v), and write an evdet checkpoint."""
    from evdet.training.rvt_checkpoint import import_rvt_checkpoint

    hw = None if size is None else parse_size("--input", size)
    try:
        s = import_rvt_checkpoint(src, dst, input_hw=hw, partition_split=partition_split, classes=classes,
                                  trusted=trusted)
    except (ValueError, OSError) as err:
        fail(str(err))
    typer.echo(f"{src}: RVT {s['preset']}, patch {s['patch_size']}, FPN stages {s['in_stages']}, "
               f"{s['num_classes']} classes ({', '.join(s['class_names'])}), {s['in_channels']} input channels, "
               f"{s['params'] / 1e6:.3f} M parameters")
    h, w = s["input_hw"]
    typer.echo(f"wrote {dst} (input {w}x{h} {s['input_hw_source']}, partition split {s['partition_split']}, "
               f"representation {s['representation']})")


@app.command("scoring-diff")
def scoring_diff(
    ckpt: Path = typer.Argument(..., help="evdet checkpoint (trained, or written by import-rvt)."),
    data: Path = typer.Option(..., "--data", help="Preprocessed dataset root."),
    split: str = typer.Option("val", "--split", help="Split to evaluate."),
    protocols: str = typer.Option("prophesee,full", "--protocol", help="Comma-separated protocols."),
    max_sequences: Optional[int] = typer.Option(None, "--max-sequences", help="Only the first N sequences."),
    trusted: bool = TRUSTED_OPT,
) -> None:
    """How far RVT's scoring (rank by class confidence) and YOLOX's (obj x cls) differ on a checkpoint:
    one prediction pass, both evaluations, metric by metric."""
    from rich.table import Table

    from evdet.cli.common import console
    from evdet.evaluation.run import scoring_difference

    try:
        diff = scoring_difference(ckpt, data, split, protocols=tuple(p for p in protocols.split(",") if p),
                                  max_sequences=max_sequences, trusted=trusted)
    except (FileNotFoundError, ValueError, KeyError) as err:
        fail(str(err))

    from evdet.utils.formatting import number as fmt

    table = Table(title=f"{ckpt} on {data}/{split}: scoring class (RVT) vs obj_x_cls (YOLOX)")
    for col in ("protocol", "metric", "class", "obj_x_cls", "class - obj_x_cls"):
        table.add_column(col, justify="left" if col in ("protocol", "metric") else "right")
    for protocol, rows in diff.items():
        for metric, r in rows.items():
            table.add_row(protocol, metric, fmt(r["class"]), fmt(r["obj_x_cls"]), fmt(r["delta"], signed=True))
    console().print(table)
