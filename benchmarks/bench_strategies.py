"""Benchmark: demo-size cost per training step of every training strategy switch.

Demo size: the demo recipe's shapes (nano, stored 320x180 stacked histograms with 10 bins, stream
sampling 4 slots x 4 steps, 3 classes), on a generated preprocessed dataset (sparse random counts,
three moving objects per label frame, one of them small; a label frame on every second window). For
each switch: a fresh module (seed 0) and ``--epochs`` epochs of which ``--steps`` training steps each
are timed (the first epoch is a warm-up): batch loading (data ms, the augmentations and resampling)
and forward + loss + backward + AdamW step (step ms), medians over the timed steps, one thread.
Distillation uses a randomly initialised nano teacher with 4 FPN scales at 2x input (its weights do
not change the cost). Resolution rows hold one scale each (training over several scales costs the
average of theirs, weighted by how often each is drawn); ``input_hw_drawn`` lists the sizes the timed
steps ran at (jitter: one draw per epoch).

Writes ``bench_strategies.json`` next to this file (with provenance). Timings drift with machine load:
the baseline is timed first and last, and ``ratio_to_baseline`` divides by the mean of the two.

    python benchmarks/bench_strategies.py [--epochs 3] [--steps 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import h5py  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import yaml  # noqa: E402

from evdet.data.config import AugmentConfig, DataConfig, MultiResConfig, SampleWeightConfig  # noqa: E402
from evdet.data.datamodule import EventDataModule  # noqa: E402
from evdet.data.labels import BBOX_DTYPE  # noqa: E402
from evdet.models import build_model  # noqa: E402
from evdet.models.config import (  # noqa: E402
    ClassBalanceConfig,
    HardNegativeConfig,
    HeadConfig,
    LossConfig,
    ModelConfig,
    SizeFeedbackConfig,
)
from evdet.training import strategies  # noqa: E402
from evdet.training.config import TemporalConsistencyConfig, TrainConfig  # noqa: E402
from evdet.training.distill import Distiller  # noqa: E402
from evdet.training.module import DetectionModule  # noqa: E402
from evdet.utils.provenance import provenance  # noqa: E402

HEIGHT, WIDTH, BINS, CLASSES = 180, 320, 10, ("pedestrian", "car", "bicycle")
REPR = f"stacked_histogram_dt=50_nbins={BINS}"
R = dataclasses.replace


def write_dataset(root: Path, sequences: int = 4, reprs: int = 32) -> Path:
    """Preprocessed layout with sparse counts and three tracked objects (pedestrian 8x12 is small)."""
    (root / "dataset.yaml").write_text(yaml.safe_dump(
        {"classes": {"names": list(CLASSES), "groups": {"small_road_users": ["pedestrian", "bicycle"]}}}))
    rng = np.random.default_rng(0)
    for split, count in (("train", sequences), ("val", 1)):
        for s in range(count):
            seq = root / split / f"seq{s}"
            rdir, ldir = seq / "event_representations_v2" / REPR, seq / "labels_v2"
            rdir.mkdir(parents=True)
            ldir.mkdir(parents=True)
            data = (rng.random((reprs, 2 * BINS, HEIGHT, WIDTH)) < 0.02).astype(np.uint8) * 2
            repr_t = (np.arange(reprs, dtype=np.int64) + 1) * 50_000
            frames = np.arange(1, reprs, 2)
            boxes = []
            for i, r in enumerate(frames):
                for obj, (w, h, c) in enumerate([(8, 12, 0), (40, 30, 1), (14, 20, 2)]):
                    x, y = 20.0 + 60 * obj + 2 * i, 40.0 + 30 * obj
                    boxes.append((repr_t[r], x, y, w, h, c, obj + 1, 1.0))
                    data[r, 3, int(y):int(y + h), int(x):int(x + w)] = 4
            with h5py.File(rdir / "event_representations.h5", "w") as fh:
                fh.create_dataset("data", data=data, chunks=(1, 2 * BINS, HEIGHT, WIDTH))
            np.save(rdir / "objframe_idx_2_repr_idx.npy", frames)
            np.save(rdir / "timestamps_us.npy", repr_t)
            np.savez(ldir / "labels.npz", labels=np.array(boxes, dtype=BBOX_DTYPE),
                     objframe_idx_2_label_idx=np.arange(len(frames), dtype=np.int64) * 3)
            np.save(ldir / "timestamps_us.npy", repr_t[frames])
    return root


def cases(data: DataConfig, loss: LossConfig, train: TrainConfig) -> dict:
    """Strategy name -> (data, loss, train, distill?) with only that switch on."""
    aug = data.augment
    return {
        "baseline (RVT recipe)": (data, loss, train, False),
        "event dropout": (R(data, augment=R(aug, dropout_prob=1.0, dropout_rate=0.2)), loss, train, False),
        "time reversal": (R(data, augment=R(aug, time_reversal_prob=1.0)), loss, train, False),
        "noise injection (background activity + hot pixels)": (
            R(data, augment=R(aug, noise_prob=1.0, noise_rate_hz=2.0, hot_pixels=20)), loss, train, False),
        "small-object sampling": (R(data, sample_weighting=SampleWeightConfig(mode="small_objects")), loss, train, False),
        "class-balanced sampling (effective number)": (
            R(data, sample_weighting=SampleWeightConfig(mode="class_effective")), loss, train, False),
        "multi-resolution 0.5x": (R(data, multires=MultiResConfig(scales=(0.5,))), loss, train, False),
        "multi-resolution 2x": (R(data, multires=MultiResConfig(scales=(2.0,))), loss, train, False),
        "scale jitter 0.8-1.2": (R(data, multires=MultiResConfig(scales=(1.0,), jitter=(0.8, 1.2))), loss, train, False),
        "class-balanced loss (effective number)": (
            data, R(loss, class_balance=ClassBalanceConfig(mode="effective")), train, False),
        "hard negative mining near small objects": (data, R(loss, hard_negative=HardNegativeConfig(ratio=3.0)), train,
                                                    False),
        "size-aware loss v2 (feedback)": (data, R(loss, size_feedback=SizeFeedbackConfig(enabled=True)), train, False),
        "temporal consistency loss": (
            data, loss, R(train, temporal_consistency=TemporalConsistencyConfig(weight=1.0)), False),
        "distillation from a 2x teacher": (data, loss, train, True),
        "baseline again (drift check)": (data, loss, train, False),
    }


def attach_teacher(module: DetectionModule) -> None:
    """A nano teacher (4 FPN scales) built for twice the input size, as training.distill would load it."""
    torch.manual_seed(1)
    hw = (2 * module.input_hw[0], 2 * module.input_hw[1])
    teacher = build_model(R(module.model_cfg, in_stages=(1, 2, 3, 4)), module.num_classes, hw, module.in_channels)
    module._distill = (Distiller(teacher, module.model, in_channels=module.in_channels, student_hw=module.input_hw),)


def bench_case(data, loss, train, model, distill: bool, epochs: int, steps: int) -> dict:
    torch.manual_seed(0)
    dm = EventDataModule(data, seed=0)
    module = DetectionModule(data, model, loss, train, len(CLASSES), dm.input_hw, dm.in_channels, CLASSES)
    strategies.setup_fit(module, dm)
    if distill:
        attach_teacher(module)
    opt = torch.optim.AdamW(list(module.model.parameters()) + strategies.extra_parameters(module), lr=1e-4)
    loader = dm.train_dataloader()
    data_ms, step_ms, sizes = [], [], []
    for epoch in range(epochs):
        loader.start_epoch(epoch)
        it = iter(loader)
        for _ in range(steps):
            t0 = time.perf_counter()
            batch = next(it)
            t1 = time.perf_counter()
            losses, out = module._run(batch, module.train_states)
            losses = strategies.add_losses(module, batch, out, losses)
            losses["loss"].backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            t2 = time.perf_counter()
            if not torch.isfinite(losses["loss"]):
                raise RuntimeError("non-finite loss")
            if epoch > 0:
                data_ms.append(1e3 * (t1 - t0))
                step_ms.append(1e3 * (t2 - t1))
                sizes.append(list(batch["frames"].shape[-2:]))
    return {"data_ms": statistics.median(data_ms), "step_ms": statistics.median(step_ms),
            "total_ms": statistics.median([a + b for a, b in zip(data_ms, step_ms)]),
            "input_hw_drawn": sorted({tuple(s) for s in sizes}), "timed_steps": len(step_ms)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--steps", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = write_dataset(Path(tmp))
        data = DataConfig(root=str(root), representation=REPR, sampling="stream", seq_len=4, batch_size=4,
                          eval_batch_size=2, num_workers=0, augment=AugmentConfig(flip_prob=0.5))
        model = ModelConfig(preset="nano", head=HeadConfig(conf_threshold=0.01))
        train = TrainConfig(accelerator="cpu")
        results = {}
        for name, (d, ls, t, distill) in cases(data, LossConfig(), train).items():
            results[name] = bench_case(d, ls, t, model, distill, args.epochs, args.steps)
            print(f"{name:55s} data {results[name]['data_ms']:7.1f} ms  step {results[name]['step_ms']:7.1f} ms  "
                  f"sizes {results[name]['input_hw_drawn']}", flush=True)
    # the machine is shared: the baseline is timed first and last, ratios are to the mean of the two
    base = (results["baseline (RVT recipe)"]["total_ms"] + results["baseline again (drift check)"]["total_ms"]) / 2
    for r in results.values():
        r["ratio_to_baseline"] = r["total_ms"] / base
    doc = {"provenance": provenance(), "settings": {"preset": "nano", "input_hw": [HEIGHT, WIDTH], "bins": BINS,
                                                    "sampling": "stream", "batch": 4, "seq_len": 4, "threads": 1,
                                                    "epochs": args.epochs, "steps_per_epoch": args.steps},
           "results": results}
    out = Path(__file__).with_suffix(".json")
    out.write_text(json.dumps(doc, indent=1) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
