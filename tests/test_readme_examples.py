"""The README's Python examples run as written (on small files made here with the names they use)."""

import re
from pathlib import Path

import numpy as np

from evdet.data.labels import BBOX_DTYPE, save_labels
from evdet.events.h5 import write_events_h5
from evdet.events.types import EVENT_DTYPE

README = Path(__file__).resolve().parents[1] / "README.md"


def python_blocks() -> list[str]:
    return re.findall(r"^```python\n(.*?)^```", README.read_text(), flags=re.S | re.M)


def _files(folder: Path) -> None:
    """rec_td.h5 (events over 0-2 s at 1280x720), rec_bbox.npy (two boxes), rec_dets.npy (one hit, one miss)."""
    rng = np.random.default_rng(0)
    ev = np.zeros(20_000, dtype=EVENT_DTYPE)
    ev["t"] = np.sort(rng.integers(0, 2_000_000, ev.size))
    ev["x"], ev["y"], ev["p"] = rng.integers(0, 1280, ev.size), rng.integers(0, 720, ev.size), rng.integers(0, 2, ev.size)
    write_events_h5(folder / "rec_td.h5", ev, height=720, width=1280)
    gt = np.zeros(2, dtype=BBOX_DTYPE)
    gt["t"], gt["x"], gt["y"], gt["w"], gt["h"], gt["class_id"] = 1_000_000, [100, 600], [100, 300], 80, 60, [1, 0]
    gt["class_confidence"] = 1.0
    save_labels(folder / "rec_bbox.npy", gt)
    dets = gt.copy()
    dets["x"][1] = 1100                                  # the pedestrian box misses
    dets["class_confidence"] = [0.9, 0.8]
    save_labels(folder / "rec_dets.npy", dets)


def test_readme_has_python_examples():
    assert python_blocks()


def test_readme_python_examples_run(tmp_path: Path, monkeypatch, capsys):
    _files(tmp_path)
    monkeypatch.chdir(tmp_path)
    for block in python_blocks():
        exec(compile(block, str(README), "exec"), {"__name__": "readme"})
    printed = capsys.readouterr().out.split()
    assert float(printed[0]) == 0.5                     # AP: the car found, the pedestrian missed
