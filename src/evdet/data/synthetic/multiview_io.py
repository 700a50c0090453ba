"""Write multi-view synthetic datasets and read their ``views.yaml``.

```
<out_dir>/
  dataset.yaml                              # classes (eTraM), resolution, generator, views: N
  <split>/<scene>/views.yaml                # world frame, crossing, per view: pose + intrinsics
  <split>/<scene>/<view>/<scene>_<view>_td.h5, <scene>_<view>_bbox.npy
```
Views are named ``view0``, ``view1``, ...; a box's ``track_id`` names the same road user in every
view of its scene. Scene i uses ``SeedSequence(seed).spawn(scenes)[i]``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import yaml

from evdet.data.classes import ETRAM, write_dataset_yaml
from evdet.data.labels import save_labels
from evdet.data.synthetic.config import Preset, SceneConfig, preset_config
from evdet.data.synthetic.dataset import SPLITS, split_counts
from evdet.data.synthetic.multiview import simulate_multiview
from evdet.data.synthetic.multiview_camera import ViewSpec, default_view_specs
from evdet.utils.atomic import atomic_path

VIEWS_YAML = "views.yaml"
GENERATOR_NAME = "evdet.data.synthetic.multiview"
MULTIVIEW_LABEL_RATE_HZ = 10.0   # one 100 ms label grid for every view: their 50 ms windows coincide
WORLD_FRAME = ("metres; view 0's pole at the origin; X right, Y up, Z forward along view 0's ground "
               "(left-handed, so det R = -1); "
               "camera = R_world_to_camera @ (world - centre_m), camera axes x right, y down, z optical "
               "axis; pixel = K @ camera / depth")


def view_name(index: int) -> str:
    return f"view{index}"


def write_views_yaml(scene_dir: Path, cameras, crossing_m, stats: list[dict]) -> Path:
    """Write ``<scene_dir>/views.yaml`` (atomically)."""
    doc = {"world_frame": WORLD_FRAME, "crossing_m": [round(float(c), 6) for c in crossing_m],
           "views": {view_name(i): {**cam.to_dict(), "wall_row": int(st["wall_row"])}
                     for i, (cam, st) in enumerate(zip(cameras, stats))}}
    path = Path(scene_dir) / VIEWS_YAML
    with atomic_path(path) as tmp:
        Path(tmp).write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def read_views_yaml(scene_dir: str | Path) -> dict:
    """``views.yaml`` of a scene folder, with K, R and t as float arrays per view."""
    path = Path(scene_dir) / VIEWS_YAML
    if not path.exists():
        raise FileNotFoundError(f"{path}: missing (not a multi-view scene folder)")
    doc = yaml.safe_load(path.read_text()) or {}
    if not isinstance(doc.get("views"), dict) or not doc["views"]:
        raise ValueError(f"{path}: field 'views' is missing or empty")
    for name, v in doc["views"].items():
        try:
            v["K"] = np.asarray(v["intrinsics"]["K"], dtype=np.float64).reshape(3, 3)
            v["R"] = np.asarray(v["pose"]["R_world_to_camera"], dtype=np.float64).reshape(3, 3)
            v["t"] = np.asarray(v["pose"]["t"], dtype=np.float64).reshape(3)
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"{path}: view {name!r} lacks a valid intrinsics.K / pose "
                             f"(R_world_to_camera, t): {exc}") from None
    return doc


def _write_scene(out_dir: Path, split: str, name: str, cfg: SceneConfig, duration_s: float,
                 resolution: tuple[int, int], views, child: np.random.SeedSequence) -> dict:
    from evdet.events import write_events_h5

    mv = simulate_multiview(cfg, duration_s, resolution, np.random.default_rng(child), views)
    scene_dir = out_dir / split / name
    rows = []
    for i, seq in enumerate(mv.views):
        vdir = scene_dir / view_name(i)
        vdir.mkdir(parents=True, exist_ok=True)
        stem = f"{name}_{view_name(i)}"
        write_events_h5(vdir / f"{stem}_td.h5", seq.events, *resolution)
        save_labels(vdir / f"{stem}_bbox.npy", seq.boxes)
        rows.append({"view": view_name(i), **{k: seq.stats[k] for k in ("events", "boxes", "tracks")},
                     "class_counts": np.bincount(seq.boxes["class_id"], minlength=len(ETRAM.names)).tolist()})
    write_views_yaml(scene_dir, mv.cameras, mv.crossing_m, [s.stats for s in mv.views])
    return {"name": name, "split": split, "views": rows}


def generate_multiview_dataset(out_dir: str | Path, *, scenes: int = 6, views: int | tuple[ViewSpec, ...] = 2,
                               duration_s: float = 10.0, resolution: tuple[int, int] = (720, 1280),
                               preset: Preset = "day", seed: int = 0,
                               splits: tuple[float, float, float] = (0.67, 0.17, 0.16),
                               config: SceneConfig | None = None, workers: int = 1) -> dict:
    """Generate ``scenes`` multi-view scenes (layout in the module docstring).

    Args:
        views: number of views (default poles) or the extra views' :class:`ViewSpec` s.
        config: full scene settings instead of a preset; its label rate is set to
            ``MULTIVIEW_LABEL_RATE_HZ`` so that all views share one window grid.
        workers: processes (files do not depend on it).

    Returns:
        {"out_dir", "resolution", "views", "scenes": [{"name", "split", "views": [per view counts]}]}.
    """
    specs = default_view_specs(views) if isinstance(views, int) else tuple(views)
    cfg = replace(config if config is not None else preset_config(preset),
                  label_rate_hz=MULTIVIEW_LABEL_RATE_HZ)
    height, width = (int(v) for v in resolution)
    counts = split_counts(scenes, splits)
    split_of = [s for s, c in zip(SPLITS, counts) for _ in range(c)]
    out_dir = Path(out_dir)
    names = [f"multiview_{preset}_{seed}_{i:03d}" for i in range(scenes)]
    jobs = list(zip(split_of, names, np.random.SeedSequence(seed).spawn(scenes)))
    args = (cfg, duration_s, (height, width), specs)
    if workers <= 1:
        rows = [_write_scene(out_dir, sp, nm, *args, ch) for sp, nm, ch in jobs]
    else:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as pool:
            futs = [pool.submit(_write_scene, out_dir, sp, nm, *args, ch) for sp, nm, ch in jobs]
            rows = [f.result() for f in futs]
    out_dir.mkdir(parents=True, exist_ok=True)
    write_dataset_yaml(out_dir, ETRAM, resolution=[height, width], generator=GENERATOR_NAME,
                       preset=preset, seed=seed, duration_s=duration_s, scenes=scenes,
                       views=len(specs) + 1, label_rate_hz=cfg.label_rate_hz)
    return {"out_dir": str(out_dir), "resolution": [height, width], "views": len(specs) + 1,
            "scenes": rows}


def list_scenes(root: str | Path, split: str) -> list[Path]:
    """Scene folders (holding ``views.yaml``) of ``<root>/<split>``, sorted."""
    d = Path(root) / split
    return sorted(p for p in d.iterdir() if (p / VIEWS_YAML).exists()) if d.is_dir() else []


__all__ = ["VIEWS_YAML", "MULTIVIEW_LABEL_RATE_HZ", "generate_multiview_dataset", "list_scenes",
           "read_views_yaml", "view_name", "write_views_yaml"]
