"""Benchmark: cost of each architecture module (``model.modules``) on the tiny detector at 640x360.

For the baseline (all modules off, 3-scale FPN; the 4-scale FPN as P1's baseline) and each module
switched on alone (then all of them together), one 640x360 frame (padded to 384x640), batch 1, eval
mode, ``--threads`` CPU threads (default 1):

* parameters, and the change against the baseline;
* MACs: ``torch.utils.flop_counter.FlopCounterMode`` FLOPs / 2 (convolutions, matmuls / einsums,
  attention; element-wise work such as the deformable convolution's bilinear gathers is not counted);
* CPU latency of one recurrent step with the state carried (temporal memory full): per round every
  variant runs once, in turn, after one warm-up step each; the ratio to the baseline is the median
  over rounds of the same-round ratio (the machine's load drifts; ratios taken side by side hold),
  and ``latency_ratio_best`` the ratio of the fastest rounds.

``--train-steps N`` also trains each module alone (nano, 32x64 moving-box batches, random and stream
chunks alternating, AdamW 1e-3, gradient clipping 1.0) for N steps and records whether every loss
stayed finite and the mean loss of the first and last 20 steps.

Prints a table and writes ``bench_modules.json`` next to this file.

    python benchmarks/bench_modules.py [--rounds 5] [--threads 1] [--train-steps 200]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # spinning threads are very slow on a shared machine

import torch  # noqa: E402
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from evdet.data.config import DataConfig  # noqa: E402
from evdet.models import build_model  # noqa: E402
from evdet.models.config import (DeformConvConfig, DensityFusionConfig, LossConfig, ModelConfig,  # noqa: E402
                                 ModulesConfig, P1EnhanceConfig, SmallObjectAttentionConfig,
                                 SqueezeExcitationConfig, TemporalAttentionConfig)
from evdet.training.config import TrainConfig  # noqa: E402
from evdet.training.module import DetectionModule  # noqa: E402
from evdet.utils.provenance import provenance  # noqa: E402

INPUT_HW = (360, 640)
IN_CHANNELS = 20
NUM_CLASSES = 2
THREE, FOUR = (2, 3, 4), (1, 2, 3, 4)

# name -> (FPN stages, modules, baseline name)
VARIANTS: dict[str, tuple[tuple[int, ...], ModulesConfig, str]] = {
    "baseline": (THREE, ModulesConfig(), "baseline"),
    "baseline 4-scale": (FOUR, ModulesConfig(), "baseline"),
    "squeeze_excitation backbone": (THREE, ModulesConfig(squeeze_excitation=SqueezeExcitationConfig("backbone")),
                                    "baseline"),
    "squeeze_excitation fpn": (THREE, ModulesConfig(squeeze_excitation=SqueezeExcitationConfig("fpn")), "baseline"),
    "deform_conv fpn": (THREE, ModulesConfig(deform_conv=DeformConvConfig("fpn")), "baseline"),
    "deform_conv head": (THREE, ModulesConfig(deform_conv=DeformConvConfig("head")), "baseline"),
    "small_object_attention cbam": (
        THREE, ModulesConfig(small_object_attention=SmallObjectAttentionConfig("cbam")), "baseline"),
    "small_object_attention cbam_motion scale_aware": (
        THREE, ModulesConfig(small_object_attention=SmallObjectAttentionConfig("cbam_motion", scale_aware=True)),
        "baseline"),
    "temporal_attention K=3 stages 3,4": (
        THREE, ModulesConfig(temporal_attention=TemporalAttentionConfig("attention")), "baseline"),
    "density_fusion": (THREE, ModulesConfig(density_fusion=DensityFusionConfig("gate")), "baseline"),
    "p1_enhance": (FOUR, ModulesConfig(p1_enhance=P1EnhanceConfig("refine")), "baseline 4-scale"),
}
ALL_ON = ModulesConfig(
    squeeze_excitation=SqueezeExcitationConfig("both"), deform_conv=DeformConvConfig("both"),
    small_object_attention=SmallObjectAttentionConfig("cbam_motion", scale_aware=True),
    temporal_attention=TemporalAttentionConfig("attention"), density_fusion=DensityFusionConfig("gate"),
    p1_enhance=P1EnhanceConfig("refine"))
VARIANTS["all modules (4-scale)"] = (FOUR, ALL_ON, "baseline 4-scale")


def frame() -> torch.Tensor:
    """Sparse event-histogram-like input (1, 20, 360, 640), values 0..10 cast to float."""
    g = torch.Generator().manual_seed(0)
    counts = torch.randint(0, 11, (1, IN_CHANNELS, *INPUT_HW), generator=g)
    return (counts * (torch.rand(counts.shape, generator=g) < 0.05)).float()


def count_macs(model: torch.nn.Module, x: torch.Tensor) -> int:
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(x)
    return counter.get_total_flops() // 2


def build(stages: tuple[int, ...], modules: ModulesConfig, preset: str = "tiny", hw=INPUT_HW):
    cfg = ModelConfig(preset=preset, in_stages=stages, modules=modules)
    return cfg, build_model(cfg, NUM_CLASSES, hw, IN_CHANNELS).eval()


def bench_costs(rounds: int) -> list[dict]:
    x = frame()
    rows, models, states = [], {}, {}
    for name, (stages, modules, base) in VARIANTS.items():
        _, model = build(stages, modules)
        with torch.inference_mode():
            states[name] = model(x).states  # warm-up step; its state is carried into the timed steps
        models[name] = model
        rows.append({"variant": name, "in_stages": list(stages), "baseline": base, "modules": asdict(modules),
                     "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
                     "GMACs": count_macs(model, x) / 1e9, "latency_ms": []})
    for _ in range(rounds):
        for row in rows:
            model = models[row["variant"]]
            with torch.inference_mode():
                t0 = time.perf_counter()
                model(x, states[row["variant"]])
                row["latency_ms"].append((time.perf_counter() - t0) * 1e3)
    by_name = {row["variant"]: row for row in rows}
    for row in rows:
        base = by_name[row["baseline"]]
        row["params_delta_M"] = row["params_M"] - base["params_M"]
        row["GMACs_delta"] = row["GMACs"] - base["GMACs"]
        row["macs_ratio"] = row["GMACs"] / base["GMACs"]
        ratios = [a / b for a, b in zip(row["latency_ms"], base["latency_ms"])]
        row["latency_ratio"] = statistics.median(ratios)
        row["latency_ratio_best"] = min(row["latency_ms"]) / min(base["latency_ms"])  # fastest round of each
    for row in rows:
        row["latency_rounds_ms"] = row.pop("latency_ms")
        row["latency_ms"] = statistics.median(row["latency_rounds_ms"])
    return rows


def moving_box_batch(step: int, stream: bool, chunk: int, hw=(32, 64)) -> dict:
    """Two items, one step: a 12x10 box of events moving 2 px per chunk (stream) or placed at random."""
    g = torch.Generator().manual_seed(step)
    frames = torch.zeros(2, 1, IN_CHANNELS, *hw)
    targets = []
    for b in range(2):
        x = (2 * chunk) % 48 if stream else int(torch.randint(0, 48, (1,), generator=g))
        y = 8 + 4 * b
        frames[b, 0, :, y:y + 10, x:x + 12] = torch.randint(0, 4, (IN_CHANNELS, 10, 12), generator=g).float()
        targets.append([torch.tensor([[0.0, x + 6.0, y + 5.0, 12.0, 10.0]])])
    return {"frames": frames, "targets": targets, "label_mask": torch.ones(2, 1, dtype=torch.bool),
            "is_first": torch.full((2,), (not stream) or chunk == 0),
            "stream_slot": torch.tensor([0, 1] if stream else [-1, -1])}


def bench_training(steps: int) -> list[dict]:
    rows = []
    for name, (stages, modules, _) in VARIANTS.items():
        if name.startswith("baseline"):
            continue
        torch.manual_seed(0)
        cfg = ModelConfig(preset="nano", partition_split=1, in_stages=stages, modules=modules)
        module = DetectionModule(DataConfig(), cfg, LossConfig(), TrainConfig(), NUM_CLASSES, (32, 64),
                                 IN_CHANNELS, ("car", "pedestrian")).train()
        opt = torch.optim.AdamW(module.model.parameters(), lr=1e-3)
        losses, t0 = [], time.perf_counter()
        for step in range(steps):
            stream = step % 2 == 1
            out, _ = module._run(moving_box_batch(step, stream, (step // 2) % 10), module.train_states)
            opt.zero_grad()
            out["loss"].backward()
            torch.nn.utils.clip_grad_value_(module.model.parameters(), 1.0)
            opt.step()
            losses.append(float(out["loss"].detach()))
        finite = all(math.isfinite(v) for v in losses) and all(
            bool(torch.isfinite(p).all()) for p in module.model.parameters())
        rows.append({"variant": name, "steps": steps, "all_finite": finite,
                     "loss_first20": statistics.mean(losses[:20]), "loss_last20": statistics.mean(losses[-20:]),
                     "wall_s": time.perf_counter() - t0})
        print(f"train {name:48s} finite={finite} loss {rows[-1]['loss_first20']:.3f} -> "
              f"{rows[-1]['loss_last20']:.3f} ({rows[-1]['wall_s']:.0f} s)", flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--train-steps", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    record = {"input_hw": list(INPUT_HW), "preset": "tiny", "threads": args.threads, "rounds": args.rounds,
              "torch": torch.__version__, "results": bench_costs(args.rounds)}
    print(f"{'variant':50s} {'params M':>9s} {'dM':>7s} {'GMACs':>7s} {'xMACs':>6s} {'ms':>7s} {'x time':>7s}")
    for r in record["results"]:
        print(f"{r['variant']:50s} {r['params_M']:9.3f} {r['params_delta_M']:+7.3f} {r['GMACs']:7.2f} "
              f"{r['macs_ratio']:6.3f} {r['latency_ms']:7.0f} {r['latency_ratio']:7.2f}")
    write(record)
    if args.train_steps:
        record["training"] = bench_training(args.train_steps)
        write(record)


def write(record: dict) -> None:
    """bench_modules.json next to this file, with provenance, atomically."""
    out_path = Path(__file__).with_suffix(".json")
    fd, tmp = tempfile.mkstemp(dir=out_path.parent, suffix=".json.tmp")
    with os.fdopen(fd, "w") as fh:
        record["provenance"] = provenance()   # commit, machine, date (the README quotes this file)
        json.dump(record, fh, indent=2)
    os.replace(tmp, out_path)
    print(f"wrote {out_path}", flush=True)


if __name__ == "__main__":
    main()
