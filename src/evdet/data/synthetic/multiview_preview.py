"""Preview of a multi-view scene: the views side by side, each with its events and label boxes at
one common time; a road user's track id is printed beside its box in every view."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evdet.data.classes import load_class_map
from evdet.data.labels import load_labels
from evdet.data.pictures import event_frame_rgb
from evdet.data.synthetic.multiview_io import read_views_yaml
from evdet.data.synthetic.preview import PREVIEW_WINDOW_US, _draw_frame
from evdet.utils.atomic import save_figure


def _view_files(scene_dir: Path, view: str) -> tuple[Path, Path]:
    vdir = scene_dir / view
    h5 = sorted(vdir.glob("*_td.h5"))
    if not h5:
        raise FileNotFoundError(f"{vdir}: no *_td.h5 file")
    return h5[0], h5[0].with_name(h5[0].name[: -len("_td.h5")] + "_bbox.npy")


def render_multiview_preview(scene_dir: str | Path, out_png: str | Path, t_us: int | None = None,
                             window_us: int = PREVIEW_WINDOW_US) -> Path:
    """Draw every view of ``scene_dir`` (events of ``[t_us - window_us, t_us)``, boxes at t_us).

    Args:
        scene_dir: a scene folder holding ``views.yaml`` and one sub-folder per view.
        t_us: a label time; None picks the one with the most boxes over all views.

    Returns:
        The written path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from evdet.events import read_events, sensor_size

    scene_dir = Path(scene_dir)
    views = list(read_views_yaml(scene_dir)["views"])
    files = [_view_files(scene_dir, v) for v in views]
    boxes = [load_labels(npy) for _, npy in files]
    root = scene_dir.parent.parent
    names = load_class_map(root).names if (root / "dataset.yaml").exists() else load_class_map(scene_dir).names
    if t_us is None:
        all_t = np.concatenate([b["t"] for b in boxes]) if any(b.size for b in boxes) else np.zeros(0)
        if all_t.size == 0:
            raise ValueError(f"{scene_dir}: no label boxes in any view (give t_us)")
        times, counts = np.unique(all_t, return_counts=True)
        t_us = int(times[np.argmax(counts)])
    height, width = sensor_size(files[0][0])
    fig_w = 5.0 * len(views)
    fig = plt.figure(figsize=(fig_w, 5.0 * height / width + 0.5), dpi=120)
    for i, (view, (h5, _), b) in enumerate(zip(views, files, boxes)):
        events = read_events(h5, t_us - window_us, t_us)
        frame = b[b["t"] == t_us] if b.size else b
        ax = fig.add_axes((i / len(views), 0.0, 1.0 / len(views), 0.9))
        _draw_frame(ax, event_frame_rgb(events, height, width), frame, names,
                    f"{view}  t={t_us / 1e6:.3f}s  {frame.size} boxes", width, height)
        for row in frame:
            ax.text(row["x"] + row["w"], row["y"] + row["h"], f"#{int(row['track_id'])}",
                    color="#b06000", fontsize=5, va="top", ha="right")
    out_png = Path(out_png)
    save_figure(fig, out_png)
    return out_png


__all__ = ["render_multiview_preview"]
