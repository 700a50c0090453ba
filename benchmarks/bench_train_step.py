"""Benchmark: one CPU training step of evdet's tiny detector against RVT's own code, same run.

A step is forward + YOLOX/SimOTA loss + backward (gradients zeroed first; no optimiser step), tiny
preset, batch ``--batch`` (default 2) at 384x640 (RVT's padded 1Mpx input; no padding needed), two
boxes per item. RVT's side is ``YoloXDetector`` from ``--rvt-root`` (a checkout of uzh-rpg/RVT;
its training path needs no torchvision, so a stub module stands in for the import of its
post-processing). Rounds alternate the two sides; the statistic is the best round. Then one
evdet step runs under the torch profiler and the table of the operators that take the most time
is kept (where the time goes).

Writes ``bench_train_step.json`` (provenance, seconds, ratio evdet / RVT, profile).

    python benchmarks/bench_train_step.py --rvt-root /path/to/RVT [--rounds 5] [--threads 1]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import types
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
HW, NUM_CLASSES, IN_CHANNELS = (384, 640), 3, 20
BOXES = [[0.0, 100.0, 120.0, 40.0, 80.0], [1.0, 400.0, 200.0, 16.0, 16.0]]    # class, cx, cy, w, h


def batch_input(batch: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    counts = torch.randint(0, 11, (batch, IN_CHANNELS, *HW), generator=g)
    return (counts * (torch.rand(counts.shape, generator=g) < 0.05)).float()


def evdet_step(batch: int):
    from evdet.models import build_loss, build_model
    from evdet.models.config import LossConfig, ModelConfig

    torch.manual_seed(0)
    model = build_model(ModelConfig(preset="tiny"), NUM_CLASSES, HW, IN_CHANNELS).train()
    criterion = build_loss(LossConfig(), NUM_CLASSES)
    x, targets = batch_input(batch), [torch.tensor(BOXES)] * batch

    def step() -> float:
        model.zero_grad(set_to_none=True)
        loss = criterion(model(x).head, targets)["loss"]
        loss.backward()
        return float(loss.detach())
    return step


def rvt_step(rvt_root: Path, batch: int):
    if not (rvt_root / "models" / "detection" / "yolox_extension" / "models" / "detector.py").is_file():
        raise SystemExit(f"--rvt-root {rvt_root}: models/detection/yolox_extension/models/detector.py not found "
                         f"(give a checkout of uzh-rpg/RVT)")
    if "torchvision" not in sys.modules:      # imported by RVT's post-processing only; not used in training
        stub = types.ModuleType("torchvision")
        stub.ops = types.SimpleNamespace()
        sys.modules["torchvision"] = stub
    sys.path.insert(0, str(rvt_root))
    sys.path.insert(0, str(HERE))
    from bench_onnx import RVT_TINY_CONFIG
    from models.detection.yolox_extension.models.detector import YoloXDetector  # type: ignore
    from omegaconf import OmegaConf

    torch.manual_seed(0)
    config = dict(RVT_TINY_CONFIG, head=dict(RVT_TINY_CONFIG["head"], num_classes=NUM_CLASSES))
    config["backbone"] = dict(config["backbone"], stage=dict(config["backbone"]["stage"]))
    config["backbone"]["stage"]["attention"] = dict(config["backbone"]["stage"]["attention"],
                                                    partition_size=[HW[0] // 64, HW[1] // 64])
    model = YoloXDetector(OmegaConf.create(config)).train()
    x = batch_input(batch)
    labels = torch.tensor(BOXES)[None].repeat(batch, 1, 1)          # YOLOX labels (B, max objects, 5)

    def step() -> float:
        model.zero_grad(set_to_none=True)
        _, losses, _ = model(x, targets=labels)
        losses["loss"].backward()
        return float(losses["loss"].detach())
    return step


def profile_table(step, rows: int = 15) -> list[dict]:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    return [{"op": e.key, "self_ms": e.self_cpu_time_total / 1e3, "share": e.self_cpu_time_total / total,
             "calls": e.count} for e in events[:rows]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rvt-root", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--out", type=Path, default=HERE / "bench_train_step.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from evdet.utils.provenance import provenance

    steps = {"evdet": evdet_step(args.batch), "rvt": rvt_step(args.rvt_root, args.batch)}
    losses = {name: step() for name, step in steps.items()}          # warm-up
    best = {name: float("inf") for name in steps}
    for r in range(args.rounds):
        for name in (list(steps) if r % 2 == 0 else list(steps)[::-1]):
            t0 = time.perf_counter()
            steps[name]()
            best[name] = min(best[name], time.perf_counter() - t0)
        print(f"round {r + 1}/{args.rounds}: " + ", ".join(f"{k} {v:.2f} s" for k, v in best.items()), flush=True)
    record = {"benchmark": "train_step", "preset": "tiny", "batch": args.batch, "input_hw": list(HW),
              "threads": args.threads, "rounds": args.rounds, "statistic": "best of interleaved rounds",
              "step": "forward + SimOTA loss + backward", "seconds": best, "ratio_evdet_to_rvt": best["evdet"] / best["rvt"],
              "first_losses": losses, "evdet_profile": profile_table(steps["evdet"]), "provenance": provenance()}
    args.out.write_text(json.dumps(record, indent=1))
    print(f"evdet / RVT step time: {record['ratio_evdet_to_rvt']:.2f}x")
    for row in record["evdet_profile"]:
        print(f"  {row['op'][:50]:50s} {row['self_ms']:8.1f} ms {row['share']:6.1%} ({row['calls']} calls)")


if __name__ == "__main__":
    main()
