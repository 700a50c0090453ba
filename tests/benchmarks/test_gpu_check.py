"""The GPU check runs end to end on the CPU in its dry mode and writes a complete record."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_gpu_check_dry_run_writes_every_part(tmp_path):
    out = tmp_path / "gpu_check.json"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--dry", "--no-compile",
                           "--out", str(out)], capture_output=True, text=True, timeout=300, env=env, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads(out.read_text())
    assert record["dry"] is True and "errors" not in record and "skipped" not in record
    checks = record["cuda_checks"]
    assert checks["passed"] and checks["head_max_abs_diff"] == 0.0 and checks["nms_same_kept"]
    assert [(r["preset"], r["dtype"], r["compiled"]) for r in record["train_steps"]] == [
        ("nano", "bf16", False), ("nano", "fp16", False)]
    assert all(r["loss_finite"] and r["step_s"] > 0 for r in record["train_steps"])
    assert [r["dtype"] for r in record["latency"]] == ["fp32", "fp16", "bf16"]
    assert all(math.isfinite(r["ms"]) and r["ms"] > 0 for r in record["latency"])
    assert [(r["workers"], r["steps"]) for r in record["loader_fed"]] == [(0, 2), (1, 2)]
    assert set(record["provenance"]) >= {"commit", "machine", "date"}


def test_gpu_check_refuses_without_cuda(tmp_path):
    pytest.importorskip("torch")
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), "--out", str(tmp_path / "x.json")],
                          capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert proc.returncode != 0
    assert "gpu_check: no CUDA device" in proc.stderr
    assert "Traceback" not in proc.stderr
