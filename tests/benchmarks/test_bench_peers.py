"""bench_peers: its workers agree with RVT's algorithm, and its README table matches its registry quotes."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "tests"))


def ask(side: str, requests: list[dict]) -> list[dict]:
    proc = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "peers_worker.py"), side, "--threads", "1"],
                          input="".join(json.dumps(r) + "\n" for r in requests), capture_output=True, text=True,
                          timeout=180, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return [json.loads(line) for line in proc.stdout.splitlines()]


@pytest.mark.slow
def test_evdet_and_rvt_workers_give_the_same_histograms(tmp_path):
    pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    n = 20_000
    t = np.sort(rng.integers(0, 50_000, n))
    np.savez(tmp_path / "ev.npz", t=t, x=rng.integers(0, 1280, n).astype(np.uint16),
             y=rng.integers(0, 720, n).astype(np.uint16), p=rng.integers(0, 2, n).astype(np.uint8))
    requests = [{"op": "histogram", "args": {"path": str(tmp_path / "ev.npz"), "ds2": ds2}} for ds2 in (False, True)]
    ours, rvt = ask("evdet", requests), ask("rvt", requests)
    assert [r["digest"]["shape"] for r in ours] == [[20, 720, 1280], [20, 360, 640]]
    assert [r["digest"] for r in ours] == [r["digest"] for r in rvt]
    assert all(r["seconds"] > 0 for r in ours + rvt)
    bad = ask("evdet", [{"op": "histogram", "args": {"path": str(tmp_path / "missing.npz"), "ds2": False}}])
    assert "error" in bad[0] and "missing.npz" in bad[0]["error"]


def test_readme_table_and_registry_quotes_render_alike():
    from bench_peers import speed_table

    from test_documented_numbers import render

    rows = [{"measure": "EVT 3.0 decode", "peer": "evt3", "threads": t, "evdet_s": 0.0412 * t, "peer_s": 0.0523,
             "speed_ratio": 0.0523 / (0.0412 * t), "outputs_equal": True} for t in (1, 2)]
    result = {"rows": rows, "rounds": 3}
    table = speed_table(result).splitlines()
    quotes = [q.strip()[3:-1] for q in speed_table(result, placeholders=True).splitlines()]
    assert [render(q, {"bench_peers": result}) for q in quotes] == table[2:4]
    assert table[2] == "| EVT 3.0 decode | evt3 | 1 | 0.041 | 0.052 | 1.27x | equal |"
