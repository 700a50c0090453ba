"""Commands that export trained models for other runtimes (ONNX)."""

from __future__ import annotations

from pathlib import Path

import typer

from evdet.cli.common import TRUSTED_OPT, export_app, fail


@export_app.command("onnx")
def export_onnx_cmd(
    ckpt: Path = typer.Argument(..., help="Checkpoint (.ckpt) written by evdet train."),
    out: Path = typer.Argument(..., help="ONNX file to write, e.g. model.onnx."),
    opset: int = typer.Option(20, "--opset", help="ONNX opset version."),
    static_batch: bool = typer.Option(False, "--static-batch", help="Fix the batch size to 1 (default: dynamic)."),
    trusted: bool = TRUSTED_OPT,
) -> None:
    """Export a checkpoint's detector to ONNX: one recurrent step per call, LSTM states as explicit inputs
    (h1, c1, ... h4, c4) and outputs, dynamic batch; run it with `evdet predict OUT.onnx RECORDING`."""
    from evdet.deploy.export import export_onnx

    try:
        info = export_onnx(ckpt, out, opset=opset, dynamic_batch=not static_batch, trusted=trusted)
    except (FileNotFoundError, ValueError) as err:
        fail(str(err))
    # c<i> has h<i>'s shape; architecture modules add their own states (m<i>, v<i>: temporal memory)
    shapes = ", ".join(f"{n}{tuple(s)}" for n, s in zip(info["state_names"], info["state_shapes"]) if n[0] != "c")
    typer.echo(f"wrote {out}: input frame (B, {info['in_channels']}, {info['input_hw'][0]}, {info['input_hw'][1]}), "
               f"states {shapes} (c<i> as h<i>), classes {', '.join(info['class_names'])}")
