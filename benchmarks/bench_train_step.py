"""Benchmark: one CPU training step of evdet's tiny detector against RVT's own code, same run.

A step is forward + YOLOX/SimOTA loss + backward (gradients zeroed first; no optimiser step), tiny
preset, batch ``--batch`` (default 2) at 384x640 (RVT's padded 1Mpx input; no padding needed), two
boxes per item. RVT's side is ``YoloXDetector`` from ``--rvt-root`` (a checkout of uzh-rpg/RVT;
its training path needs no torchvision, so a stub module stands in for the import of its
post-processing). Besides evdet's default step: the same network in channels-last memory
(``model.memory_format=channels_last``: weights and input in NHWC, same values) and, with
``--compile``, under ``torch.compile``. Rounds alternate the sides; the statistic is the best
round. Then one evdet step runs under the torch profiler: the operators that take the most time,
and the share of each group (convolution, matmul, attention, memory, the rest): where the time goes.

Writes ``bench_train_step.json`` (provenance, seconds, ratios to RVT, profile).

    python benchmarks/bench_train_step.py --rvt-root /path/to/RVT [--rounds 5] [--threads 1] [--compile]
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


def evdet_step(batch: int, *, channels_last: bool = False, compiled: bool = False):
    """evdet's step; ``channels_last``: ``model.memory_format=channels_last`` (weights and input in NHWC
    memory, same values), ``compiled``: the network under ``torch.compile`` (inductor; compile time
    excluded, it runs in the warm-up)."""
    from evdet.models import build_loss, build_model
    from evdet.models.config import LossConfig, ModelConfig

    torch.manual_seed(0)
    memory_format = "channels_last" if channels_last else "contiguous"
    model = build_model(ModelConfig(preset="tiny", memory_format=memory_format), NUM_CLASSES, HW, IN_CHANNELS).train()
    criterion = build_loss(LossConfig(), NUM_CLASSES)
    x, targets = batch_input(batch), [torch.tensor(BOXES)] * batch
    network = torch.compile(model) if compiled else model

    def step() -> float:
        model.zero_grad(set_to_none=True)
        loss = criterion(network(x).head, targets)["loss"]
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


OP_GROUPS = {   # operator name fragment -> where the time goes (first match)
    "convolution": ("convolution", "conv2d"), "matmul (linear layers)": ("aten::mm", "addmm", "bmm"),
    "attention kernel": ("scaled_dot_product",),
    "memory (copies, fills, concatenations)": ("copy_", "fill_", "cat", "zero")}


def op_group(name: str) -> str:
    return next((g for g, keys in OP_GROUPS.items() if any(k in name for k in keys)), "elementwise, norms, rest")


def profile_table(step, rows: int = 15) -> tuple[list[dict], dict[str, float]]:
    """The ``rows`` operators of one step that take the most self time, and the share of each group."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    events = sorted(prof.key_averages(), key=lambda e: e.self_cpu_time_total, reverse=True)
    total = sum(e.self_cpu_time_total for e in events)
    groups: dict[str, float] = {}
    for e in events:
        groups[op_group(e.key)] = groups.get(op_group(e.key), 0.0) + e.self_cpu_time_total / total
    return [{"op": e.key, "self_ms": e.self_cpu_time_total / 1e3, "share": e.self_cpu_time_total / total,
             "calls": e.count} for e in events[:rows]], dict(sorted(groups.items(), key=lambda kv: -kv[1]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rvt-root", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=2)
    parser.add_argument("--compile", action="store_true", help="also time evdet under torch.compile (minutes "
                                                                  "of compilation in the warm-up)")
    parser.add_argument("--out", type=Path, default=HERE / "bench_train_step.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from evdet.utils.provenance import provenance

    steps = {"evdet": evdet_step(args.batch), "evdet channels_last": evdet_step(args.batch, channels_last=True),
             "rvt": rvt_step(args.rvt_root, args.batch)}
    if args.compile:
        steps["evdet compiled"] = evdet_step(args.batch, compiled=True)
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
              "step": "forward + SimOTA loss + backward", "seconds": best,
              "ratio_to_rvt": {k: v / best["rvt"] for k, v in best.items() if k != "rvt"},
              "ratio_evdet_to_rvt": best["evdet"] / best["rvt"], "first_losses": losses}
    record["evdet_profile"], record["evdet_profile_groups"] = profile_table(steps["evdet"])
    record["provenance"] = provenance()
    args.out.write_text(json.dumps(record, indent=1))
    for name, ratio in record["ratio_to_rvt"].items():
        print(f"{name} / RVT step time: {ratio:.2f}x")
    for group, share in record["evdet_profile_groups"].items():
        print(f"  {group:45s} {share:6.1%}")
    for row in record["evdet_profile"]:
        print(f"  {row['op'][:50]:50s} {row['self_ms']:8.1f} ms {row['share']:6.1%} ({row['calls']} calls)")


if __name__ == "__main__":
    main()
