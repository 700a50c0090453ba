"""GPU check: CUDA correctness, training step, loader-fed training and inference latency, one JSON.

Run by ``benchmarks/gpu_check.sh`` on a machine with one CUDA GPU, within ``--budget-s`` (default
420 s; each part is skipped, and says so, once the budget is spent). Parts, in order:

1. ``cuda_checks``: the tiny detector, its SimOTA loss and the post-processing (NMS) on CUDA
   against the same weights and inputs on the CPU (float32; max abs differences and pass/fail),
   and ``pytest -m gpu`` (tests marked as needing CUDA).
2. ``train_steps``: one optimiser step (forward over ``seq_len`` recurrent steps + SimOTA loss +
   backward + AdamW) of tiny and base at 640x360 (padded 384x640), batch 8, under fp16 (with a
   grad scaler) and bf16 autocast, eager and ``torch.compile``: median step seconds, compile
   seconds, peak memory, loss.
3. ``loader_fed``: training steps per second of tiny (bf16, eager) fed by the ``EventDataModule``
   stream loader over a synthetic RVT-layout dataset (``bench_loader.write_dataset``), for each
   worker count; the step rate without the loader is the ceiling.
4. ``latency``: inference per recurrent step (batch 1, state carried), tiny and base, fp32 / fp16 /
   bf16 eager and bf16 compiled, CUDA-event timed median; goal for base: <= 5 ms.

``--dry`` runs every part on the CPU with tiny sizes (nano preset, 64x96 input, batch 1, two
steps; ``torch.compile`` with the ``eager`` backend) so that a test can exercise the script.

    bash benchmarks/gpu_check.sh            # or: python benchmarks/gpu_check.py [--dry] [--out X.json]
"""

from __future__ import annotations

import argparse
import json
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
NUM_CLASSES, IN_CHANNELS = 3, 20
LATENCY_GOAL_MS = 5.0


@dataclass(frozen=True)
class Plan:
    device: str
    presets: tuple[str, ...]
    input_hw: tuple[int, int]
    batch: int
    seq_len: int
    repeats: int
    latency_repeats: int
    compile_backend: str
    loader_workers: tuple[int, ...]
    loader_batches: int


FULL = Plan("cuda", ("tiny", "base"), (360, 640), 8, 5, 5, 50, "inductor", (0, 4, 8), 12)
DRY = Plan("cpu", ("nano",), (64, 96), 1, 2, 1, 2, "eager", (0, 1), 2)
DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


class Budget:
    def __init__(self, seconds: float):
        self.end = time.perf_counter() + seconds

    def left(self) -> float:
        return self.end - time.perf_counter()


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def build(preset: str, plan: Plan):
    from evdet.models import build_loss, build_model
    from evdet.models.config import LossConfig, ModelConfig

    torch.manual_seed(0)
    model = build_model(ModelConfig(preset=preset), NUM_CLASSES, plan.input_hw, IN_CHANNELS)
    return model, build_loss(LossConfig(), NUM_CLASSES)


def inputs(plan: Plan, batch: int, steps: int, device: str):
    """Histogram-like counts (B, T, C, H, W) and two boxes (class, cx, cy, w, h) per item."""
    g = torch.Generator().manual_seed(0)
    h, w = plan.input_hw
    x = (torch.rand(batch, steps, IN_CHANNELS, h, w, generator=g) < 0.05).float() * 3
    box = torch.tensor([[0.0, 0.3 * w, 0.4 * h, 0.1 * w, 0.2 * h], [1.0, 0.7 * w, 0.5 * h, 0.05 * w, 0.05 * h]])
    return x.to(device), [box.to(device)] * (batch * steps)


def peak_mib(device: str) -> float | None:
    return torch.cuda.max_memory_allocated() / 2**20 if device == "cuda" else None


def cuda_checks(plan: Plan) -> dict:
    """CUDA (dry: the CPU itself) against the CPU, float32: head outputs, SimOTA loss, NMS."""
    from evdet.models.boxes import batched_nms, cxcywh_to_xyxy

    model, criterion = build("nano" if plan.device == "cpu" else "tiny", plan)
    x, targets = inputs(plan, 2, 2, "cpu")
    model.eval()
    with torch.no_grad():
        ref = model(x)
        ref_loss = float(criterion(ref.head, targets)["loss"])
        got = model.to(plan.device)(x.to(plan.device))
        got_loss = float(criterion(got.head, [t.to(plan.device) for t in targets])["loss"])
    head_diff = max(float((a.float().cpu() - b.float()).abs().max()) for a, b in zip(_tensors(got.head), _tensors(ref.head)))
    # NMS on the same CPU boxes and scores: identical kept indices expected.
    scores = torch.sigmoid(ref.head.obj_logits[0]) * torch.sigmoid(ref.head.cls_logits[0]).amax(-1)
    top = scores.topk(min(2000, scores.numel())).indices
    boxes, classes = cxcywh_to_xyxy(ref.head.boxes[0, top]), ref.head.cls_logits[0, top].argmax(-1)
    kept_cpu = batched_nms(boxes, scores[top], classes, 0.45)
    kept_dev = batched_nms(boxes.to(plan.device), scores[top].to(plan.device), classes.to(plan.device), 0.45)
    out = {"head_max_abs_diff": head_diff, "loss_abs_diff": abs(got_loss - ref_loss),
           "nms_same_kept": bool(torch.equal(kept_cpu, kept_dev.cpu())), "nms_kept": int(kept_cpu.numel())}
    out["passed"] = head_diff < 1e-3 and out["loss_abs_diff"] < 1e-3 * max(1.0, abs(ref_loss)) and out["nms_same_kept"]
    if plan.device == "cuda":       # the dry run skips it: collecting the whole suite takes long on a CPU
        proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider", "tests"],
                              capture_output=True, text=True, timeout=240, cwd=HERE.parent)
        out["pytest_gpu"] = {"returncode": proc.returncode, "last_line": (proc.stdout.strip().splitlines() or [""])[-1]}
    return out


def _tensors(obj) -> list[torch.Tensor]:
    """The tensors of a head output / detection list, in order (dataclass fields, lists, dicts)."""
    if isinstance(obj, torch.Tensor):
        return [obj]
    if isinstance(obj, dict):
        return [t for v in obj.values() for t in _tensors(v)]
    if isinstance(obj, (list, tuple)):
        return [t for v in obj for t in _tensors(v)]
    if hasattr(obj, "__dataclass_fields__"):
        return [t for k in obj.__dataclass_fields__ for t in _tensors(getattr(obj, k))]
    return []


def train_step(preset: str, dtype: str, compiled: bool, plan: Plan) -> dict:
    """Median seconds of one optimiser step over a (batch, seq_len) sequence."""
    device = plan.device
    model, criterion = build(preset, plan)
    model = model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    scaler = torch.amp.GradScaler(device, enabled=dtype == "fp16")
    forward = torch.compile(model, backend=plan.compile_backend) if compiled else model
    x, targets = inputs(plan, plan.batch, plan.seq_len, device)

    def step() -> float:
        with torch.autocast(device, dtype=DTYPES[dtype], enabled=dtype != "fp32"):
            losses = criterion(forward(x).head, targets)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(losses["loss"]).backward()
        scaler.step(optimizer)
        scaler.update()
        return float(losses["loss"].detach())

    t0 = time.perf_counter()
    step()                                  # warm-up; compiles when compiled
    sync(device)
    first_s = time.perf_counter() - t0
    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    times, loss = [], float("nan")
    for _ in range(plan.repeats):
        t0 = time.perf_counter()
        loss = step()
        sync(device)
        times.append(time.perf_counter() - t0)
    return {"preset": preset, "dtype": dtype, "compiled": compiled, "batch": plan.batch, "seq_len": plan.seq_len,
            "step_s": statistics.median(times), "first_step_s": first_s, "peak_MiB": peak_mib(device),
            "loss": loss, "loss_finite": bool(torch.isfinite(torch.tensor(loss)))}


def loader_fed(plan: Plan, tmp: Path) -> list[dict]:
    """Training steps/s of tiny (bf16 eager) fed by the stream loader, per worker count."""
    sys.path.insert(0, str(HERE))
    from bench_loader import REPR, write_dataset

    from evdet.data.config import DataConfig
    from evdet.data.datamodule import EventDataModule

    device = plan.device
    h, w = plan.input_hw
    root = write_dataset(tmp / "loader", plan.batch, 40, h, w)
    model, criterion = build(plan.presets[0], plan)
    model = model.to(device).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    rows = []
    for workers in plan.loader_workers:
        cfg = DataConfig(root=str(root), representation=REPR, sampling="stream", seq_len=plan.seq_len,
                         batch_size=plan.batch, num_workers=workers)
        it = iter(EventDataModule(cfg, seed=0).train_dataloader())
        steps, t0 = 0, None
        for batch in it:
            x = batch["frames"].to(device, non_blocking=True)
            targets = [t.to(device) for item in batch["targets"] for t in item]
            with torch.autocast(device, dtype=torch.bfloat16):
                losses = criterion(model(x).head, targets)
            optimizer.zero_grad(set_to_none=True)
            losses["loss"].backward()
            optimizer.step()
            sync(device)
            if t0 is None:
                t0 = time.perf_counter()     # after the first step (worker start-up, warm-up)
                continue
            steps += 1
            if steps >= plan.loader_batches:
                break
        seconds = time.perf_counter() - t0 if t0 is not None else float("nan")
        rows.append({"workers": workers, "steps": steps, "steps_per_s": steps / seconds if steps else 0.0})
    return rows


def latency(preset: str, dtype: str, compiled: bool, plan: Plan) -> dict:
    """Median ms of one recurrent inference step (batch 1, state carried)."""
    device = plan.device
    model, _ = build(preset, plan)
    model = model.to(device).eval()
    forward = torch.compile(model, backend=plan.compile_backend) if compiled else model
    x, _ = inputs(plan, 1, 1, device)
    x = x[:, 0]
    times, states = [], None
    with torch.inference_mode(), torch.autocast(device, dtype=DTYPES[dtype], enabled=dtype != "fp32"):
        for i in range(plan.latency_repeats + 5):
            sync(device)
            t0 = time.perf_counter()
            states = forward(x, states).states
            sync(device)
            if i >= 5:
                times.append((time.perf_counter() - t0) * 1e3)
    ms = statistics.median(times)
    return {"preset": preset, "dtype": dtype, "compiled": compiled, "ms": ms,
            "meets_goal": ms <= LATENCY_GOAL_MS if preset == "base" else None}


class OutOfBudget(Exception):
    """The budget ran out during a part."""


def _alarm(signum, frame):
    raise OutOfBudget("the time budget ran out during this part")


def run_part(record: dict, name: str, budget: Budget, fn, *args):
    """Run one measurement, cut at the end of the budget (SIGALRM); record its result, its error,
    or that it was skipped."""
    if budget.left() < 1:
        record.setdefault("skipped", []).append(name)
        return None
    start = time.perf_counter()
    signal.signal(signal.SIGALRM, _alarm)
    signal.alarm(max(1, int(budget.left())))
    try:
        return fn(*args)
    except Exception as exc:                 # one failing part must not lose the others
        record.setdefault("errors", {})[name] = f"{type(exc).__name__}: {exc}"
        return None
    finally:
        signal.alarm(0)
        record.setdefault("part_seconds", {})[name] = round(time.perf_counter() - start, 2)
        if torch.cuda.is_available():
            torch.cuda.empty_cache()


def collect(record: dict, budget: Budget, kind: str, fn, plan: Plan, settings: list[tuple]) -> list[dict]:
    """``fn(preset, dtype, compiled, plan)`` for each setting, the results that came back."""
    results = (run_part(record, f"{kind} {p} {d} {'compiled' if c else 'eager'}", budget, fn, p, d, c, plan)
               for p, d, c in settings)
    return [r for r in results if r is not None]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dry", action="store_true", help="CPU, tiny sizes (for tests)")
    parser.add_argument("--budget-s", type=float, default=420.0)
    parser.add_argument("--out", type=Path, default=HERE / "gpu_check.json")
    parser.add_argument("--no-compile", action="store_true", help="skip the torch.compile parts")
    args = parser.parse_args()
    plan = DRY if args.dry else FULL
    if plan.device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA device (torch.cuda.is_available() is False); use --dry on a CPU")
    from evdet.utils.provenance import provenance

    budget = Budget(args.budget_s)
    record: dict = {"benchmark": "gpu_check", "dry": args.dry, "plan": asdict(plan), "torch": torch.__version__,
                    "device_name": torch.cuda.get_device_name() if plan.device == "cuda" else "cpu"}
    record["cuda_checks"] = run_part(record, "cuda_checks", budget, cuda_checks, plan)
    # Eager parts first; compiled ones last (compilation may take minutes and is cut by the budget).
    record["train_steps"] = collect(record, budget, "train", train_step, plan,
                                    [(p, d, False) for p in plan.presets for d in ("bf16", "fp16")])
    record["latency"] = collect(record, budget, "latency", latency, plan,
                                [(p, d, False) for p in plan.presets for d in ("fp32", "fp16", "bf16")])
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        record["loader_fed"] = run_part(record, "loader_fed", budget, loader_fed, plan, Path(tmp))
    if not args.no_compile:
        record["latency"] += collect(record, budget, "latency", latency, plan, [(p, "bf16", True) for p in plan.presets[::-1]])
        record["train_steps"] += collect(record, budget, "train", train_step, plan,
                                         [(p, d, True) for d in ("bf16", "fp16") for p in plan.presets])
    record["seconds"] = args.budget_s - budget.left()
    record["provenance"] = provenance()
    args.out.write_text(json.dumps(record, indent=1))
    print(json.dumps({k: record.get(k) for k in ("cuda_checks", "errors", "skipped", "seconds")}, indent=1))


if __name__ == "__main__":
    main()
