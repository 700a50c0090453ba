"""Two CPU processes (gloo) through Lightning's DDP launcher: fit runs, ranks agree, checkpoint written."""

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

SCRIPT = textwrap.dedent("""
    import json, sys
    import torch
    torch.set_num_threads(1)
    sys.path.insert(0, {tests_dir!r})
    from tiny_dataset import REPR_NAME, make_tiny_dataset
    from pathlib import Path
    from evdet.data.config import AugmentConfig, DataConfig
    from evdet.models.config import LossConfig, ModelConfig
    from evdet.training.config import TrainConfig
    from evdet.training.fit import fit
    import lightning as L

    class Record(L.Callback):
        def on_validation_epoch_end(self, trainer, pl_module):
            # runs after the module gathered the ranks' predictions
            self.names = sorted(pl_module.val_ground_truth)

    out, root = Path(sys.argv[1]), Path(sys.argv[2])
    data = DataConfig(root=str(root), representation=REPR_NAME, sampling="stream", seq_len=2, batch_size=1,
                      eval_batch_size=1, num_workers=0, augment=AugmentConfig(flip_prob=0.0))
    train = TrainConfig(max_steps=3, val_every_n_steps=3, log_every_n_steps=1, loggers=("csv",),
                        accelerator="cpu", devices=2, strategy="ddp", limit_val_batches=4)
    rec = Record()
    s = fit(data, ModelConfig(preset="nano", partition_split=1), LossConfig(), train, out, callbacks=[rec],
            progress=False)
    rank = int(torch.distributed.get_rank()) if torch.distributed.is_initialized() else 0
    (out / f"rank{{rank}}.json").write_text(json.dumps({{"step": s["global_step"], "val_names": rec.names}}))
""")


@pytest.mark.slow
def test_ddp_two_cpu_processes(tmp_path):
    tests_dir = str(Path(__file__).resolve().parent)
    sys.path.insert(0, tests_dir)
    from tiny_dataset import make_tiny_dataset

    root = make_tiny_dataset(tmp_path / "data", lengths={"train": [7, 6, 5, 4], "val": [6, 4]})
    script = tmp_path / "ddp_fit.py"
    script.write_text(SCRIPT.format(tests_dir=tests_dir))
    # a fresh world: no rendezvous settings inherited from this process (Lightning picks a free port)
    env = {k: v for k, v in os.environ.items()
           if k not in ("MASTER_ADDR", "MASTER_PORT", "NODE_RANK", "LOCAL_RANK", "RANK", "WORLD_SIZE")}
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run([sys.executable, str(script), str(tmp_path / "run"), str(root)], capture_output=True,
                          text=True, timeout=240, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = [json.loads((tmp_path / "run" / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert [r["step"] for r in results] == [3, 3]
    # each rank validated its own sequence; after the gather both know both
    assert results[0]["val_names"] == results[1]["val_names"] == ["seq_val_0", "seq_val_1"]
    assert (tmp_path / "run" / "checkpoints" / "last.ckpt").is_file()
    import torch
    saved = torch.load(tmp_path / "run" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    # rank 0 wrote both ranks' stream slots (one each) and RNG states, for an exact resume
    assert sorted(saved["evdet_resume"]["stream_states"]) == [0, 1] and len(saved["evdet_resume"]["rng"]) == 2
