"""Benchmark: RVT detector size, compute, CPU latency and memory per preset and variant.

For every preset (nano, tiny, small, base) and variant (patch 4 / 2, FPN 3 / 4 scales), at one
640x360 frame (padded to 384x640), batch 1, eval mode, ``--threads`` CPU threads (default 2):

* parameters;
* MACs: ``torch.utils.flop_counter.FlopCounterMode`` FLOPs / 2 (conv, linear, matmul, attention);
* latency: median of ``--repeats`` forwards after one warm-up (recurrent state from zeros);
  ``OMP_WAIT_POLICY=PASSIVE`` unless set (spinning threads are very slow on a shared machine);
* peak memory: rise of the process's resident-set high-water mark (Linux ``VmHWM``, reset
  through ``/proc/self/clear_refs``) during one forward, above the resident size before it
  (glibc's mmap threshold is fixed and the heap trimmed first, so freed tensors leave RSS);
  tracemalloc cannot see torch's allocations.

Compared in the same run (ratios > 1 mean the first option is faster):

* attention: ``scaled_dot_product_attention`` vs an explicit softmax(QK^T / sqrt(d)) V;
* memory format: channels-last vs contiguous (NCHW) for model and input;
* one training step (tiny, ``--train-batch`` items, forward + SimOTA loss + backward + AdamW).

Prints a table and writes ``bench_model.json`` next to this file. Absolute timings drift with
machine load; compare ratios taken in the same run.

    python benchmarks/bench_model.py [--repeats 2] [--threads 2] [--presets nano tiny small base]
"""

from __future__ import annotations

import argparse
import ctypes
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

# Threads that spin while waiting make 2-thread runs several times slower on a shared, busy machine
# (measured here: 7.1 s vs 2.2 s per tiny frame); waiting passively keeps the comparison fair.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402  (after the OpenMP setting)
from torch.utils.flop_counter import FlopCounterMode  # noqa: E402

from evdet.models import build_loss, build_model  # noqa: E402
from evdet.models.config import LossConfig, ModelConfig  # noqa: E402
from evdet.models.maxvit import set_attention_impl  # noqa: E402
from evdet.utils.provenance import provenance  # noqa: E402

INPUT_HW = (360, 640)
IN_CHANNELS = 20
NUM_CLASSES = 2
VARIANTS = [(4, (2, 3, 4)), (4, (1, 2, 3, 4)), (2, (2, 3, 4)), (2, (1, 2, 3, 4))]


def _libc() -> ctypes.CDLL | None:
    """glibc, with a fixed mmap threshold so that freed tensors go back to the OS (else RSS hides peaks)."""
    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD: stop glibc from raising it after large frees
        return libc
    except (OSError, AttributeError):
        return None


LIBC = _libc()


def _status_kb(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"/proc/self/status has no {field}")


def peak_memory_mb(fn) -> float | None:
    """Peak resident memory added while running fn(), in MiB (None where /proc is unavailable)."""
    try:
        if LIBC is not None:
            LIBC.malloc_trim(0)
        Path("/proc/self/clear_refs").write_text("5")  # resets VmHWM to the current VmRSS
        before = _status_kb("VmRSS")
        fn()
        return (_status_kb("VmHWM") - before) / 1024
    except OSError:
        return None


def frame(batch: int = 1, channels_last: bool = False) -> torch.Tensor:
    """Sparse event-histogram-like input (B, 20, 360, 640), values 0..10 cast to float."""
    g = torch.Generator().manual_seed(0)
    counts = torch.randint(0, 11, (batch, IN_CHANNELS, *INPUT_HW), generator=g)
    x = (counts * (torch.rand(counts.shape, generator=g) < 0.05)).float()
    return x.to(memory_format=torch.channels_last) if channels_last else x


def time_forward(model: torch.nn.Module, x: torch.Tensor, repeats: int, warm_up: bool = True) -> float:
    """Median seconds of model(x), after one warm-up forward unless warm_up is False."""
    times = []
    with torch.inference_mode():
        if warm_up:
            model(x)
        for _ in range(repeats):
            t0 = time.perf_counter()
            model(x)
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def count_macs(model: torch.nn.Module, x: torch.Tensor) -> int:
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(x)
    return counter.get_total_flops() // 2


def bench_variants(presets: list[str], repeats: int) -> list[dict]:
    rows = []
    x = frame()
    for preset in presets:
        for patch, stages in VARIANTS:
            cfg = ModelConfig(preset=preset, patch_size=patch, in_stages=stages)
            model = build_model(cfg, NUM_CLASSES, INPUT_HW, IN_CHANNELS).eval()
            row = {"preset": preset, "patch_size": patch, "in_stages": list(stages),
                   "params_M": sum(p.numel() for p in model.parameters()) / 1e6,
                   "GMACs": count_macs(model, x) / 1e9}
            with torch.inference_mode():
                row["peak_mem_MiB"] = peak_memory_mb(lambda: model(x))
            row["latency_ms"] = time_forward(model, x, repeats, warm_up=False) * 1e3  # memory run warmed up
            rows.append(row)
            print(f"  {preset:5s} patch {patch} stages {stages}: {row['latency_ms']:.0f} ms", flush=True)
    return rows


def bench_attention(presets: list[str], repeats: int) -> list[dict]:
    rows = []
    x = frame()
    for preset in presets:
        model = build_model(ModelConfig(preset=preset), NUM_CLASSES, INPUT_HW, IN_CHANNELS).eval()
        set_attention_impl(model, "sdpa")
        sdpa = time_forward(model, x, repeats)
        set_attention_impl(model, "manual")
        manual = time_forward(model, x, repeats)
        rows.append({"preset": preset, "sdpa_ms": sdpa * 1e3, "manual_ms": manual * 1e3,
                     "speedup_sdpa_over_manual": manual / sdpa})
    return rows


def bench_channels_last(presets: list[str], repeats: int) -> list[dict]:
    rows = []
    for preset in presets:
        model = build_model(ModelConfig(preset=preset), NUM_CLASSES, INPUT_HW, IN_CHANNELS).eval()
        contiguous = time_forward(model, frame(), repeats)
        model = model.to(memory_format=torch.channels_last)
        channels_last = time_forward(model, frame(channels_last=True), repeats)
        rows.append({"preset": preset, "contiguous_ms": contiguous * 1e3, "channels_last_ms": channels_last * 1e3,
                     "speedup_channels_last": contiguous / channels_last})
    return rows


def bench_train_step(batch: int, repeats: int) -> dict:
    torch.manual_seed(0)
    model = build_model(ModelConfig(preset="tiny"), NUM_CLASSES, INPUT_HW, IN_CHANNELS).train()
    criterion = build_loss(LossConfig(), NUM_CLASSES)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    x = frame(batch)
    targets = [torch.tensor([[0.0, 100.0, 120.0, 40.0, 80.0], [1.0, 400.0, 200.0, 16.0, 16.0]])] * batch

    def step() -> None:
        losses = criterion(model(x).head, targets)
        optimizer.zero_grad(set_to_none=True)
        losses["loss"].backward()
        optimizer.step()

    peak = peak_memory_mb(step)  # also the warm-up step
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        times.append(time.perf_counter() - t0)
    return {"preset": "tiny", "batch": batch, "input_hw": list(INPUT_HW), "step_s": statistics.median(times),
            "peak_mem_MiB": peak}


def print_tables(record: dict) -> None:
    print(f"\nRVT detector, 1 x {IN_CHANNELS} x {INPUT_HW[0]} x {INPUT_HW[1]} (padded 384x640), "
          f"{record['threads']} threads, eval mode")
    print(f"{'preset':6s} {'patch':>5s} {'scales':>6s} {'params M':>9s} {'GMACs':>7s} {'ms':>8s} {'peak MiB':>9s}")
    for r in record["variants"]:
        mem = "n/a" if r["peak_mem_MiB"] is None else f"{r['peak_mem_MiB']:.0f}"
        print(f"{r['preset']:6s} {r['patch_size']:5d} {len(r['in_stages']):6d} {r['params_M']:9.3f} "
              f"{r['GMACs']:7.2f} {r['latency_ms']:8.1f} {mem:>9s}")
    print("\nattention: scaled_dot_product_attention vs manual softmax (patch 4, 3 scales)")
    for r in record["attention"]:
        print(f"  {r['preset']:6s} sdpa {r['sdpa_ms']:7.1f} ms  manual {r['manual_ms']:7.1f} ms  "
              f"sdpa speed-up x{r['speedup_sdpa_over_manual']:.2f}")
    print("memory format: channels-last vs contiguous (patch 4, 3 scales)")
    for r in record["channels_last"]:
        print(f"  {r['preset']:6s} contiguous {r['contiguous_ms']:7.1f} ms  channels-last "
              f"{r['channels_last_ms']:7.1f} ms  speed-up x{r['speedup_channels_last']:.2f}")
    t = record["train_step"]
    mem = "n/a" if t["peak_mem_MiB"] is None else f"{t['peak_mem_MiB']:.0f} MiB"
    print(f"training step (tiny, batch {t['batch']}, 640x360, fwd + loss + bwd + AdamW): "
          f"{t['step_s']:.2f} s, peak {mem}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--presets", nargs="+", default=["nano", "tiny", "small", "base"])
    parser.add_argument("--compare-presets", nargs="+", default=["tiny"])
    parser.add_argument("--train-batch", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    t_start = time.perf_counter()
    print("variants:", flush=True)
    record = {"torch": torch.__version__, "machine": platform.processor() or platform.machine(),
              "threads": args.threads, "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
              "load_avg_1min": os.getloadavg()[0], "repeats": args.repeats, "input_hw": list(INPUT_HW),
              "variants": bench_variants(args.presets, args.repeats)}
    record["attention"] = bench_attention(args.compare_presets, args.repeats)
    record["channels_last"] = bench_channels_last(args.compare_presets, args.repeats)
    record["train_step"] = bench_train_step(args.train_batch, 1)
    record["total_s"] = time.perf_counter() - t_start
    print_tables(record)
    print(f"total {record['total_s']:.0f} s")
    out_path = Path(__file__).with_suffix(".json")
    fd, tmp = tempfile.mkstemp(dir=out_path.parent, suffix=".json.tmp")
    with os.fdopen(fd, "w") as fh:
        record["provenance"] = provenance()   # commit, machine, date (docs quote this file)
        json.dump(record, fh, indent=2)
    os.replace(tmp, out_path)
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
