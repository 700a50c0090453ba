"""Benchmark: CPU latency per 640x360 frame of the RVT detector in torch, ONNX Runtime and RVT's reference.

One recurrent step, batch 1, input 1 x 20 x 360 x 640 (padded to 384 x 640 inside the model), tiny preset,
the recurrent state carried from two earlier steps, ``--threads`` threads (default 2) everywhere,
``OMP_WAIT_POLICY=PASSIVE`` (set before torch loads) and no spinning ONNX Runtime threads.
Every implementation runs the SAME weights: random RVT weights (``randomize_``) in the RVT
reference restatement (tests/models/rvt_reference.py, RVT's module names, explicit softmax
attention), imported into evdet (``evdet.training.rvt_checkpoint.import_rvt_checkpoint``) and exported
(``evdet.deploy.export.export_onnx``). Columns:

* ``rvt-restatement``: tests/models/rvt_reference.py (an independent restatement of RVT's network);
* ``rvt-code``: RVT's own model code, ``YoloXDetector`` from ``--rvt-root`` (a checkout of
  uzh-rpg/RVT holding ``models/``, ``data/utils/types.py`` and ``utils/timers.py``; its timm helpers
  may be shimmed), built from RVT's tiny config (below) and loaded strictly with the same weights;
  skipped, with the reason printed, when absent. When present it is the reference of the ratios;
* ``evdet-torch``: evdet's detector (scaled_dot_product_attention), eval mode, inference_mode;
* ``ort-<level>-<graph>[-static]``: the exported graph in ONNX Runtime (CPU execution provider,
  sequential execution, intra-op threads = ``--threads``) at graph-optimisation level "basic" or
  "all"; graph "plain" = the detector traced as written, "fast" = ``evdet.deploy.rewrite`` (the
  default of ``evdet export onnx``); ``static`` = batch fixed to 1 at export.

Before timing, three recurrent steps of every implementation are compared with evdet-torch:
logits/probabilities and states within 1e-4 (absolute + relative), boxes in stride units within 1e-4
(the script stops if not). Timing interleaves the implementations (rotating order) for ``--rounds``
rounds of best-of-``--repeats`` calls (``timing.best_time``) and reports the best round and the
median round; ratios are taken against the RVT reference of the same run. Prints a table and writes
``bench_onnx.json`` next to this file.

    python benchmarks/bench_onnx.py [--rounds 12] [--repeats 2] [--threads 2] [--rvt-root /path/to/RVT]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # before torch / onnxruntime load OpenMP

import numpy as np  # noqa: E402
import torch  # noqa: E402
from timing import best_time  # noqa: E402

HERE = Path(__file__).resolve().parent
INPUT_HW = (360, 640)
PADDED_HW = (384, 640)
PARTITION = (6, 10)
IN_CHANNELS = 20
NUM_CLASSES = 2
TOL = 1e-4
WARM_STEPS = 2
RVT_TINY = dict(embed_dim=32, dim_head=32, fpn_depth=0.33)
# RVT's config/model/maxvit_yolox/default.yaml with its tiny overrides (embed_dim 32, fpn depth 0.33), 640x360
RVT_TINY_CONFIG = {
    "backbone": {"name": "MaxViTRNN", "compile": {"enable": False}, "input_channels": IN_CHANNELS,
                 "enable_masking": False, "partition_split_32": 2, "embed_dim": 32, "dim_multiplier": [1, 2, 4, 8],
                 "num_blocks": [1, 1, 1, 1], "T_max_chrono_init": [4, 8, 16, 32], "stem": {"patch_size": 4},
                 "stage": {"downsample": {"type": "patch", "overlap": True, "norm_affine": True},
                           "attention": {"use_torch_mha": False, "partition_size": list(PARTITION), "dim_head": 32,
                                         "attention_bias": True, "mlp_activation": "gelu", "mlp_gated": False,
                                         "mlp_bias": True, "mlp_ratio": 4, "drop_mlp": 0, "drop_path": 0,
                                         "ls_init_value": 1e-5},
                           "lstm": {"dws_conv": False, "dws_conv_only_hidden": True, "dws_conv_kernel_size": 3,
                                    "drop_cell_update": 0}}},
    "fpn": {"name": "PAFPN", "compile": {"enable": False}, "depth": 0.33, "in_stages": [2, 3, 4],
            "depthwise": False, "act": "silu"},
    "head": {"name": "YoloX", "compile": {"enable": False}, "depthwise": False, "act": "silu",
             "num_classes": NUM_CLASSES},
}

# ONNX Runtime settings compared: (name, graph optimisation level, export (fast graph, static batch))
ORT_VARIANTS = [
    ("ort-basic-plain", "basic", (False, False)),
    ("ort-all-plain", "all", (False, False)),
    ("ort-all-fast", "all", (True, False)),
    ("ort-all-fast-static", "all", (True, True)),
]


def frames(steps: int, seed: int = 0) -> list[torch.Tensor]:
    """Sparse event-histogram-like inputs (1, 20, 360, 640): counts 0..10 at 5% of the entries."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(steps):
        counts = torch.randint(0, 11, (1, IN_CHANNELS, *INPUT_HW), generator=g)
        out.append((counts * (torch.rand(counts.shape, generator=g) < 0.05)).float())
    return out


def pad(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.pad(x, (0, PADDED_HW[1] - INPUT_HW[1], 0, PADDED_HW[0] - INPUT_HW[0]))


def build_models(tmp: Path, threads: int):
    """(reference restatement, evdet module, ONNX paths per (fast, static)) with the same random weights."""
    sys.path.insert(0, str(HERE.parent / "tests" / "models"))
    from rvt_reference import RvtReference, randomize_

    from evdet.deploy.export import export_onnx
    from evdet.training.rvt_checkpoint import import_rvt_checkpoint
    from evdet.training.predict import load_module

    ref = RvtReference(**RVT_TINY, num_classes=NUM_CLASSES, in_stages=(2, 3, 4), patch_size=4,
                       partition_size=PARTITION, in_channels=IN_CHANNELS).eval()
    randomize_(ref, seed=0)
    rvt_ckpt, evdet_ckpt = tmp / "rvt.ckpt", tmp / "evdet.ckpt"
    torch.save({"state_dict": {"mdl." + k: v for k, v in ref.state_dict().items()}}, rvt_ckpt)
    import_rvt_checkpoint(rvt_ckpt, evdet_ckpt, input_hw=INPUT_HW, classes="car,pedestrian")
    module = load_module(evdet_ckpt).eval()
    onnx_paths = {}
    for fast, static in sorted({v[2] for v in ORT_VARIANTS}):
        t0 = time.perf_counter()
        onnx_paths[fast, static] = tmp / f"tiny_{'fast' if fast else 'plain'}_{'static' if static else 'dynamic'}.onnx"
        export_onnx(evdet_ckpt, onnx_paths[fast, static], dynamic_batch=not static, fast=fast)
        print(f"  exported {onnx_paths[fast, static].name} in {time.perf_counter() - t0:.0f} s", flush=True)
    return ref, module, onnx_paths


def load_rvt_code(rvt_root: Path | None, ref_state: dict):
    """RVT's own YoloXDetector from a checkout (``--rvt-root``), weights of the restatement; or (None, reason)."""
    if rvt_root is None:
        return None, "no --rvt-root given (a checkout of uzh-rpg/RVT's model code)"
    if not (rvt_root / "models" / "detection" / "yolox_extension" / "models" / "detector.py").is_file():
        return None, f"{rvt_root}: models/detection/yolox_extension/models/detector.py not found"
    sys.path.insert(0, str(rvt_root))
    try:
        from models.detection.yolox_extension.models.detector import YoloXDetector  # type: ignore
        from omegaconf import OmegaConf

        model = YoloXDetector(OmegaConf.create(RVT_TINY_CONFIG)).eval()
        model.load_state_dict(ref_state)  # strict: RVT's names, the restatement's weights
    except Exception as err:  # a partial checkout: say why the column is missing
        return None, f"{rvt_root}: RVT's code did not load ({type(err).__name__}: {err})"
    return model, ""


class Runners:
    """One-step callables with the state carried in, all on the same weights."""

    def __init__(self, ref, module, onnx_paths: dict, threads: int, rvt_code=None):
        from evdet.deploy.onnx_runtime import OnnxDetector

        self.ref, self.module, self.rvt_code = ref, module, rvt_code
        self.ort = {name: OnnxDetector(onnx_paths[export], threads=threads, optimization=level)
                    for name, level, export in ORT_VARIANTS}

    @torch.inference_mode()
    def torch_step(self, x, states):
        out = self.module.model(x, states)
        h = out.head
        return {"boxes": h.boxes, "obj": torch.sigmoid(h.obj_logits), "cls": torch.sigmoid(h.cls_logits)}, out.states

    @torch.inference_mode()
    def ref_step(self, x, states, model=None):
        decoded, states = (model or self.ref)(pad(x), states)
        if isinstance(decoded, tuple):  # RVT's YoloXDetector.forward returns (outputs, losses)
            decoded = decoded[0]
        return {"boxes": decoded[..., :4], "obj": decoded[..., 4], "cls": decoded[..., 5:]}, states

    def rvt_code_step(self, x, states):
        with torch.inference_mode():
            backbone_features, states = self.rvt_code.forward_backbone(pad(x), states)
            decoded, _ = self.rvt_code.forward_detect(backbone_features)
        return {"boxes": decoded[..., :4], "obj": decoded[..., 4], "cls": decoded[..., 5:]}, states

    def ort_step(self, name, x, states):
        head, states = self.ort[name].step(x.numpy(), states)
        return {"boxes": head["boxes"], "obj": 1 / (1 + np.exp(-head["obj_logits"])),
                "cls": 1 / (1 + np.exp(-head["cls_logits"]))}, states

    def all(self) -> dict:
        """name -> step(x, states) -> (outputs, states)."""
        steps = {"rvt-restatement": self.ref_step}
        if self.rvt_code is not None:
            steps["rvt-code"] = self.rvt_code_step
        steps["evdet-torch"] = self.torch_step
        for name in self.ort:
            steps[name] = functools.partial(self.ort_step, name)
        return steps


def as_numpy(t) -> np.ndarray:
    return t.detach().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)


def flat_states(states) -> list[np.ndarray]:
    if states and isinstance(states[0], (tuple, list)):
        return [as_numpy(t) for pair in states for t in pair]
    return [as_numpy(t) for t in states]


def compare(steps: dict, inputs: list[torch.Tensor], strides: np.ndarray) -> dict:
    """Max abs / rel differences to evdet-torch over the recurrent steps; raises if beyond TOL."""
    outs = {}
    for name, step in steps.items():
        states, seq = None, []
        for x in inputs:
            o, states = step(x, states)
            seq.append(({k: as_numpy(v) for k, v in o.items()}, flat_states(states)))
        outs[name] = seq
    report = {}
    for name, seq in outs.items():
        worst_abs = worst_rel = worst_ratio = 0.0
        for (o, s), (o_ref, s_ref) in zip(seq, outs["evdet-torch"]):
            pairs = [(o["boxes"] / strides, o_ref["boxes"] / strides), (o["obj"], o_ref["obj"]),
                     (o["cls"], o_ref["cls"]), *zip(s, s_ref)]
            for a, b in pairs:
                diff = np.abs(a.astype(np.float64) - b)
                worst_abs = max(worst_abs, float(diff.max()))
                big = np.abs(b) >= 1e-3  # relative differences of values near 0 say nothing
                worst_rel = max(worst_rel, float((diff[big] / np.abs(b[big])).max(initial=0.0)))
                worst_ratio = max(worst_ratio, float((diff / (TOL + TOL * np.abs(b))).max()))
        report[name] = {"max_abs_diff": worst_abs, "max_rel_diff": worst_rel, "within_1e-4": worst_ratio <= 1.0}
        if worst_ratio > 1.0:
            raise SystemExit(f"{name}: outputs differ from evdet-torch beyond {TOL} (abs + rel): "
                             f"max abs {worst_abs:.2e}, max rel {worst_rel:.2e}")
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=12)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rvt-root", type=Path, default=None, help="checkout of RVT's model code (optional)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message="torch.meshgrid")  # RVT's YOLOX head
    with tempfile.TemporaryDirectory() as tmp:
        ref, module, onnx_paths = build_models(Path(tmp), args.threads)
        rvt_code, rvt_code_reason = load_rvt_code(args.rvt_root, ref.state_dict())
        runners = Runners(ref, module, onnx_paths, args.threads, rvt_code)
        steps = runners.all()
        inputs = frames(WARM_STEPS + 1)
        with torch.no_grad():
            strides = module.model(inputs[0]).head.strides.numpy()[None, :, None]
        diffs = compare(steps, inputs, strides)
        # states after WARM_STEPS steps, per implementation; the timed call is the next step
        start_states = {}
        for name, step in steps.items():
            states = None
            for x in inputs[:WARM_STEPS]:
                _, states = step(x, states)
            start_states[name] = states
        x = inputs[WARM_STEPS]
        rounds: dict[str, list[float]] = {name: [] for name in steps}
        cpu: dict[str, list[float]] = {name: [] for name in steps}
        names = list(steps)
        for r in range(args.rounds):
            for name in names[r % len(names):] + names[:r % len(names)]:
                cpu_start = time.process_time()
                seconds, _ = best_time(functools.partial(steps[name], x, start_states[name]), args.repeats)
                cpu[name].append((time.process_time() - cpu_start) / args.repeats)
                rounds[name].append(seconds)
            print(f"  round {r + 1}/{args.rounds}: " + "  ".join(f"{n} {rounds[n][-1] * 1e3:.0f}" for n in names),
                  flush=True)
    baseline = "rvt-code" if "rvt-code" in steps else "rvt-restatement"
    rows = []
    for name in names:
        best, median = min(rounds[name]), statistics.median(rounds[name])
        rows.append({"implementation": name, "best_ms": best * 1e3, "median_ms": median * 1e3,
                     "ratio_to_reference_best": best / min(rounds[baseline]),
                     "ratio_to_reference_median": median / statistics.median(rounds[baseline]),
                     "cpu_ms": min(cpu[name]) * 1e3, "cpu_ratio_to_reference": min(cpu[name]) / min(cpu[baseline]),
                     **diffs[name]})
    record = {"date": time.strftime("%Y-%m-%d"), "machine": platform.machine(), "processor": platform.processor(),
              "cpu_count": os.cpu_count(), "load_avg_1min": os.getloadavg()[0], "threads": args.threads,
              "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"), "torch": torch.__version__,
              "onnxruntime": __import__("onnxruntime").__version__, "preset": "tiny",
              "input": [1, IN_CHANNELS, *INPUT_HW], "padded": list(PADDED_HW), "rounds": args.rounds,
              "repeats": args.repeats, "reference": baseline,
              "rvt_root": str(args.rvt_root) if args.rvt_root else None,
              "rvt_code_skipped": rvt_code_reason or None, "results": rows}
    print(f"\nRVT tiny, one recurrent step, 1 x {IN_CHANNELS} x {INPUT_HW[0]} x {INPUT_HW[1]} "
          f"(padded {PADDED_HW[0]}x{PADDED_HW[1]}), {args.threads} threads, best of {args.repeats} x {args.rounds} "
          f"interleaved rounds; reference timed: {baseline}"
          + (f" (rvt-code skipped: {rvt_code_reason})" if rvt_code_reason else ""))
    print(f"{'implementation':22s} {'best ms':>8s} {'median ms':>10s} {'x ref (best)':>13s} {'x ref (median)':>15s} "
          f"{'CPU ms':>7s} {'x ref (CPU)':>12s} {'max abs diff':>13s} {'max rel diff':>13s}")
    for r in rows:
        print(f"{r['implementation']:22s} {r['best_ms']:8.1f} {r['median_ms']:10.1f} "
              f"{r['ratio_to_reference_best']:13.2f} {r['ratio_to_reference_median']:15.2f} "
              f"{r['cpu_ms']:7.1f} {r['cpu_ratio_to_reference']:12.2f} "
              f"{r['max_abs_diff']:13.1e} {r['max_rel_diff']:13.1e}")
    print("(latency = wall time of one call; CPU ms = process CPU time per call, all threads, less sensitive to "
          "other load;\n differences against evdet-torch over 3 recurrent steps: probabilities, states, boxes in "
          "stride units, all within 1e-4 abs + rel; max rel over values >= 1e-3)")
    from evdet.utils.atomic import write_text_atomic
    from evdet.utils.provenance import provenance

    record["provenance"] = provenance()   # commit, machine, date (docs quote this file)
    write_text_atomic(HERE / "bench_onnx.json", json.dumps(record, indent=2) + "\n")
    print(f"wrote {HERE / 'bench_onnx.json'}")


if __name__ == "__main__":
    main()
