"""Benchmark: cost of cross-view fusion against K (memory tokens per level) and the number of views.

One step of one scene (batch = V views) at 640x360 (padded 384x640: FPN levels of 48x80, 24x40 and
12x20 tokens, so K = 256 / 1024 / 2048 pools the finest level and K = 1024+ keeps the two coarser
levels whole), eval mode, ``--threads`` CPU threads (default 1), fusion at all 3 levels, 2 heads,
1 layer, MLP ratio 2 (the result recipe's block). For every preset, V in ``--views`` and K in ``--ks``,
and the single-view network (fusion off) on the same V items:

* parameters (all, and the fusion's);
* MACs: ``FlopCounterMode`` FLOPs / 2 (conv, linear, matmul, attention), per scene step;
* latency: median of ``--repeats`` forwards after one warm-up;
* peak memory: rise of the resident-set high-water mark during one forward (``bench_model``'s method).

Same-run ratios are what to compare (absolute timings drift with machine load). Writes
``bench_fusion.json`` next to this file.

    python benchmarks/bench_fusion.py [--presets nano tiny] [--views 1 2 3] [--ks 256 1024 2048]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_model import count_macs, peak_memory_mb, time_forward  # noqa: E402

from evdet.models import build_model  # noqa: E402
from evdet.models.config import FusionConfig, ModelConfig  # noqa: E402
from evdet.utils.provenance import provenance  # noqa: E402

INPUT_HW = (360, 640)
IN_CHANNELS = 20
NUM_CLASSES = 8


def _frames(views: int) -> torch.Tensor:
    """Sparse event-histogram-like input (V, 20, 360, 640)."""
    g = torch.Generator().manual_seed(0)
    counts = torch.randint(0, 11, (views, IN_CHANNELS, *INPUT_HW), generator=g)
    return (counts * (torch.rand(counts.shape, generator=g) < 0.05)).float()


def _row(preset: str, views: int, k: int | None, repeats: int) -> dict:
    fusion = FusionConfig(enabled=k is not None, num_views=views, max_tokens=k or 256)
    model = build_model(ModelConfig(preset=preset, fusion=fusion), NUM_CLASSES, INPUT_HW, IN_CHANNELS).eval()
    x = _frames(views)
    fusion_params = sum(p.numel() for p in model.fusion.parameters()) if model.fusion is not None else 0
    row = {"preset": preset, "views": views, "K": k, "fusion": k is not None,
           "params_M": sum(p.numel() for p in model.parameters()) / 1e6, "fusion_params_M": fusion_params / 1e6,
           "GMACs": count_macs(model, x) / 1e9}
    with torch.inference_mode():
        row["peak_mem_MiB"] = peak_memory_mb(lambda: model(x))
    row["latency_ms"] = time_forward(model, x, repeats, warm_up=False) * 1e3
    return row


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--presets", nargs="+", default=["nano", "tiny"])
    p.add_argument("--views", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--ks", type=int, nargs="+", default=[256, 1024, 2048])
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for preset in args.presets:
        for views in args.views:
            for k in [None, *args.ks]:
                row = _row(preset, views, k, args.repeats)
                rows.append(row)
                print(f"{preset:5s} V={views} K={k or '-':>5}: {row['params_M']:.3f} M params, "
                      f"{row['GMACs']:.2f} GMACs, {row['latency_ms']:.0f} ms, {row['peak_mem_MiB']:.0f} MiB",
                      flush=True)
    record = {"benchmark": "bench_fusion", "provenance": provenance(), "input_hw": list(INPUT_HW),
              "threads": args.threads, "repeats": args.repeats, "num_classes": NUM_CLASSES,
              "fusion_block": {"levels": [0, 1, 2], "num_heads": 2, "layers": 1, "mlp_ratio": 2,
                               "pooling": "top-K by L2 norm"},
              "rows": rows}
    out = Path(__file__).with_suffix(".json")
    out.write_text(json.dumps(record, indent=1))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
