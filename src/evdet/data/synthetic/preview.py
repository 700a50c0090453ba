"""Preview image of a synthetic (or any raw) dataset: an event frame with its label boxes, beside
the box statistics (where box centres lie in the image, and box size against image row per class)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evdet.data.classes import load_class_map
from evdet.data.labels import load_labels
from evdet.data.pictures import event_frame_rgb
from evdet.utils.atomic import save_figure

PREVIEW_WINDOW_US = 50_000
GRID_ROWS, GRID_COLS = 6, 8          # cells of the box-centre heat map


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


def centre_grid(boxes: np.ndarray, height: int, width: int, rows: int = GRID_ROWS,
                cols: int = GRID_COLS) -> np.ndarray:
    """Share of box centres per image cell, (rows, cols) summing to 1 (zeros without boxes)."""
    cx = boxes["x"].astype(np.float64) + boxes["w"] / 2
    cy = boxes["y"].astype(np.float64) + boxes["h"] / 2
    r = np.clip((cy * rows / height).astype(int), 0, rows - 1)
    c = np.clip((cx * cols / width).astype(int), 0, cols - 1)
    grid = np.zeros((rows, cols))
    np.add.at(grid, (r, c), 1.0)
    return grid / max(boxes.size, 1)


def _dataset_boxes(h5: Path, root: Path) -> np.ndarray:
    """All labels of the dataset at ``root`` (or of the one sequence when ``h5`` stands alone)."""
    if (root / "dataset.yaml").exists():
        files = sorted(root.rglob("*_bbox.npy"))
        if files:
            return np.concatenate([load_labels(f) for f in files])
    return load_labels(h5.with_name(h5.name[: -len("_td.h5")] + "_bbox.npy"))


def _draw_frame(ax, img, frame_boxes, names, title: str, width: int, height: int) -> None:
    from matplotlib.patches import Rectangle

    ax.imshow(img, interpolation="nearest")
    fs = max(5.0, 8.0 * (width / 1280.0) ** 0.3)
    for b in frame_boxes:
        ax.add_patch(Rectangle((b["x"], b["y"]), b["w"], b["h"], fill=False, lw=1.0, ec="#1a9e3a"))
        cid = int(b["class_id"])
        ax.text(b["x"], b["y"] - 1, names[cid] if cid < len(names) else str(cid), color="#1a6e2a",
                fontsize=fs, va="bottom")
    ax.set_xlim(0, width)
    ax.set_ylim(height, 0)
    ax.set_title(title, fontsize=8)
    ax.axis("off")


def _draw_centre_grid(ax, boxes: np.ndarray, height: int, width: int) -> None:
    grid = centre_grid(boxes, height, width)
    ax.imshow(grid * 100, cmap="viridis", extent=(0, width, height, 0), aspect="auto")
    for i in range(GRID_ROWS):
        for j in range(GRID_COLS):
            ax.text((j + 0.5) * width / GRID_COLS, (i + 0.5) * height / GRID_ROWS,
                    f"{100 * grid[i, j]:.0f}", ha="center", va="center", fontsize=6, color="w")
    cy = boxes["y"] + boxes["h"] / 2
    bottom = float(np.mean(cy >= height / 2)) if boxes.size else 0.0
    ax.axhline(height / 2, color="w", lw=0.6, ls="--")
    ax.set_title(f"box centres, % per cell ({boxes.size} boxes; bottom half {100 * bottom:.0f}%)",
                 fontsize=8)
    ax.tick_params(labelsize=6)


def _draw_size_by_row(ax, boxes: np.ndarray, names, height: int) -> None:
    import matplotlib.pyplot as plt

    cmap = plt.get_cmap("tab10")
    rng = np.random.default_rng(0)                          # thinning only, for a readable plot
    for cid in np.unique(boxes["class_id"]):
        b = boxes[boxes["class_id"] == cid]
        if b.size > 600:
            b = b[rng.choice(b.size, 600, replace=False)]
        side = np.sqrt(b["w"].astype(np.float64) * b["h"])
        name = names[int(cid)] if int(cid) < len(names) else str(cid)
        med = np.median(np.sqrt(boxes["w"][boxes["class_id"] == cid] * boxes["h"][boxes["class_id"] == cid]))
        ax.scatter(b["y"] + b["h"] / 2, side, s=3, alpha=0.5, color=cmap(int(cid) % 10),
                   label=f"{name} (n={int(np.sum(boxes['class_id'] == cid))}, median {med:.0f} px)")
    ax.set_yscale("log")
    ax.set_xlim(0, height)
    ax.set_xlabel("box centre row (px, 0 = top)", fontsize=7)
    ax.set_ylabel("sqrt(box area) (px)", fontsize=7)
    ax.set_title("box size against image row, per class", fontsize=8)
    ax.tick_params(labelsize=6)
    ax.legend(fontsize=5, markerscale=2, loc="upper left")


def render_preview(seq_h5_path: str | Path, out_png: str | Path, t_us: int | None = None,
                   window_us: int = PREVIEW_WINDOW_US, with_stats: bool = True) -> Path:
    """Draw the events of ``[t_us - window_us, t_us)`` (red ON, blue OFF) with the label boxes at
    t_us and, beside them, the dataset's box-centre grid and box size against row per class.

    Args:
        seq_h5_path: a ``<seq>_td.h5`` file (its ``<seq>_bbox.npy`` beside it) or a folder holding one.
        out_png: image to write (atomically).
        t_us: a label time; None picks the label frame with the most boxes.
        window_us: event window length.
        with_stats: add the statistics panels (over every sequence when the file lies in a dataset
            with a ``dataset.yaml``, else over this sequence).

    Returns:
        The written path.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

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
    frame_boxes = boxes[boxes["t"] == t_us] if boxes.size else boxes
    title = (f"{h5.name}  t={t_us / 1e6:.3f}s  {events.size} events / {window_us // 1000} ms  "
             f"{frame_boxes.size} boxes")
    frame_w_in = 6.4
    frame_h_in = frame_w_in * height / width
    if with_stats:
        fig = plt.figure(figsize=(frame_w_in + 4.6, max(frame_h_in, 5.2) + 0.4), dpi=120)
        gs = fig.add_gridspec(2, 2, width_ratios=(frame_w_in, 4.6), left=0.01, right=0.97,
                              top=0.95, bottom=0.08, wspace=0.18, hspace=0.35)
        _draw_frame(fig.add_subplot(gs[:, 0]), event_frame_rgb(events, height, width), frame_boxes,
                    names, title, width, height)
        all_boxes = _dataset_boxes(h5, root)
        _draw_centre_grid(fig.add_subplot(gs[0, 1]), all_boxes, height, width)
        _draw_size_by_row(fig.add_subplot(gs[1, 1]), all_boxes, names, height)
    else:
        fig = plt.figure(figsize=(frame_w_in, frame_h_in + 0.3), dpi=120)
        _draw_frame(fig.add_axes((0, 0, 1, 0.93)), event_frame_rgb(events, height, width),
                    frame_boxes, names, title, width, height)
    out_png = Path(out_png)
    save_figure(fig, out_png)
    return out_png
