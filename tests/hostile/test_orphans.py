"""kill -9 of a parent running training workers (exp matrix): no orphan worker, the record reads killed."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from evdet.experiments.records.record import load_experiment
from evdet.utils.processes import process_alive
from tests.experiments.exp_fixtures import make_experiment

PARENT = """
import sys
sys.path[:0] = [{here!r}, {repo!r}]
from hostile_workers import train_forever
from evdet.experiments.running.executors import run_in_processes
run_in_processes(train_forever, ({exp_dir!r},), 1, progress_line=lambda: "", stagger_s=0.0)
"""


def wait_for(condition, timeout_s: float) -> bool:
    end = time.monotonic() + timeout_s
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups and /proc semantics (Linux)")
def test_killed_parent_leaves_no_training_worker(tmp_path):
    root = tmp_path / "exps"
    exp_dir = make_experiment(root, "variant", state="created")
    here = str(Path(__file__).resolve().parent)
    code = PARENT.format(here=here, repo=str(Path(here).parents[1]), exp_dir=str(exp_dir))
    parent = subprocess.Popen([sys.executable, "-c", code], start_new_session=True)
    try:
        assert wait_for(lambda: (exp_dir / "worker.pid").is_file(), 60), "the worker did not start"
        worker = int((exp_dir / "worker.pid").read_text())
        assert process_alive(worker) and load_experiment(root, "variant").state == "running"
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        assert wait_for(lambda: not process_alive(worker), 10), "orphan worker still running"
        assert load_experiment(root, "variant").state == "killed"          # a rerun resumes it
    finally:
        if parent.poll() is None:
            parent.kill()
        pid_file = exp_dir / "worker.pid"
        if pid_file.is_file() and process_alive(int(pid_file.read_text())):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)

