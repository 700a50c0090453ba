"""Pictures of events with boxes: one event frame per panel, boxes labelled with class (and score)."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from evdet.utils.atomic import save_figure

ON_RGB = (0.85, 0.1, 0.1)
OFF_RGB = (0.1, 0.25, 0.9)


def event_frame_rgb(events: np.ndarray, height: int, width: int) -> np.ndarray:
    """(H, W, 3) float image: white background, red where the last event was ON, blue where OFF."""
    img = np.ones((height, width, 3), np.float32)
    on = events["p"] == 1
    img[events["y"][on], events["x"][on]] = ON_RGB
    img[events["y"][~on], events["x"][~on]] = OFF_RGB
    return img


def render_strip(panels: Sequence[tuple[np.ndarray, np.ndarray, str]], height: int, width: int,
                 class_names: Sequence[str], out_png: str | Path, *, min_score: float = 0.0) -> Path:
    """Write a row of event frames with their boxes as one PNG (atomically).

    Args:
        panels: (events, boxes, title) per panel; boxes are a BBOX array in the frame's pixels
            (a score below 1 is printed after the class name).
        height, width: frame size in pixels.
        class_names: names by class id.
        min_score: boxes with ``class_confidence`` below this are not drawn.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Rectangle

    n = max(len(panels), 1)
    panel_w = 4.0
    fig, axes = plt.subplots(1, n, figsize=(panel_w * n, panel_w * height / width + 0.4), squeeze=False)
    for ax, (events, boxes, title) in zip(axes[0], panels):
        ax.imshow(event_frame_rgb(events, height, width), interpolation="nearest")
        for b in boxes[boxes["class_confidence"] >= min_score]:
            ax.add_patch(Rectangle((b["x"], b["y"]), b["w"], b["h"], fill=False, lw=1.0, ec="#1a9e3a"))
            cid = int(b["class_id"])
            name = class_names[cid] if cid < len(class_names) else str(cid)
            score = float(b["class_confidence"])
            ax.text(b["x"], b["y"] - 1, name if score >= 1.0 else f"{name} {score:.2f}", color="#1a9e3a",
                    fontsize=6, va="bottom")
        ax.set_title(title, fontsize=8)
        ax.set_axis_off()
    fig.tight_layout()
    out_png = Path(out_png)
    save_figure(fig, out_png, dpi=120)
    return out_png
