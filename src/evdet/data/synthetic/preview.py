"""Preview image of a synthetic (or any raw) sequence: an event frame with its label boxes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evdet.data.classes import load_class_map
from evdet.data.labels import load_labels
from evdet.data.render import event_frame_rgb
from evdet.events.atomic import atomic_path

PREVIEW_WINDOW_US = 50_000


def _find_pair(path: Path) -> tuple[Path, Path]:
    """(events .h5, labels .npy) from a ``*_td.h5`` file or a dataset / split folder (first sequence)."""
    if path.is_dir():
        found = sorted(path.rglob("*_td.h5"))
        if not found:
            raise FileNotFoundError(f"{path}: no *_td.h5 sequence below this folder")
        path = found[0]
    if not path.name.endswith("_td.h5"):
        raise ValueError(f"{path}: expected a '<seq>_td.h5' file")
    labels = path.with_name(path.name[: -len("_td.h5")] + "_bbox.npy")
    if not labels.exists():
        raise FileNotFoundError(f"{labels}: label file of {path.name} is missing")
    return path, labels


def render_preview(seq_h5_path: str | Path, out_png: str | Path, t_us: int | None = None,
                   window_us: int = PREVIEW_WINDOW_US) -> Path:
    """Draw the events of ``[t_us - window_us, t_us)`` (red ON, blue OFF) and the label boxes at t_us.

    Args:
        seq_h5_path: a ``<seq>_td.h5`` file (its ``<seq>_bbox.npy`` beside it) or a folder holding one.
        out_png: image to write (atomically).
        t_us: a label time; None picks the label frame with the most boxes.
        window_us: event window length.

    Returns:
        The written path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    from evdet.events import read_events, sensor_size

    h5, npy = _find_pair(Path(seq_h5_path))
    boxes = load_labels(npy)
    height, width = sensor_size(h5)
    root = h5.parent.parent if (h5.parent.parent / "dataset.yaml").exists() else h5.parent
    names = load_class_map(root).names
    if t_us is None:
        if boxes.size:
            times, counts = np.unique(boxes["t"], return_counts=True)
            t_us = int(times[np.argmax(counts)])
        else:
            from evdet.events import H5EventReader
            with H5EventReader(h5) as reader:
                t_us = int(reader.t_last_us)
    events = read_events(h5, t_us - window_us, t_us)
    img = event_frame_rgb(events, height, width)
    frame_boxes = boxes[boxes["t"] == t_us] if boxes.size else boxes
    scale = max(width / 1280.0, 0.25)
    fig = plt.figure(figsize=(width / 100 * max(1.0, 640 / width), height / 100 * max(1.0, 640 / width)),
                     dpi=100)
    ax = fig.add_axes((0, 0, 1, 1))
    ax.imshow(img, interpolation="nearest")
    for b in frame_boxes:
        ax.add_patch(Rectangle((b["x"], b["y"]), b["w"], b["h"], fill=False, lw=1.2, ec="#1a9e3a"))
        cid = int(b["class_id"])
        label = names[cid] if cid < len(names) else str(cid)
        ax.text(b["x"], b["y"] - 1, label, color="#1a6e2a", fontsize=max(6, 9 * scale ** 0.3),
                va="bottom")
    ax.text(4, 4, f"{h5.name}  t={t_us / 1e6:.3f}s  {events.size} events / {window_us // 1000} ms  "
            f"{frame_boxes.size} boxes", fontsize=7, va="top", color="black")
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.axis("off")
    out_png = Path(out_png)
    try:
        with atomic_path(out_png) as tmp:
            fig.savefig(tmp, format="png")
    finally:
        plt.close(fig)
    return out_png
