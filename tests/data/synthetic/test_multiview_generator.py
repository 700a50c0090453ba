"""Multi-view generator: cross-view ids are one 3-D object, one view is the single-view generator,
layout on disk, views.yaml, preview."""

from dataclasses import replace

import numpy as np
import pytest

from evdet.data.labels import load_labels
from evdet.data.synthetic import preset_config, simulate_sequence
from evdet.data.synthetic.multiview import simulate_multiview
from evdet.data.synthetic.multiview_camera import ViewSpec
from evdet.data.synthetic.multiview_io import generate_multiview_dataset, list_scenes, read_views_yaml
from evdet.data.synthetic.multiview_preview import render_multiview_preview

HW = (144, 256)


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    root = tmp_path_factory.mktemp("mv")
    generate_multiview_dataset(root, scenes=1, views=3, duration_s=1.5, resolution=HW, seed=3,
                               splits=(1.0, 0.0, 0.0))
    return list_scenes(root, "train")[0]


def _ground_point(view: dict, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Ray through pixel (u, v) met with the ground plane Y = 0 (from K, R, t alone), (N, 2) X, Z."""
    k_inv = np.linalg.inv(view["K"])
    r, t = view["R"], view["t"]
    centre = -r.T @ t
    rays = (r.T @ (k_inv @ np.stack([u, v, np.ones_like(u)]))).T          # (N, 3) world directions
    lam = -centre[1] / rays[:, 1]
    return (centre[None] + lam[:, None] * rays)[:, [0, 2]]


def _foot_points(scene_dir, name: str, view: dict) -> dict:
    """(t, track_id) -> (ground X, Z of the box's bottom centre, class) for unclipped boxes."""
    b = load_labels(next((scene_dir / name).glob("*_bbox.npy")))
    h, w = view["resolution"]
    inside = ((b["x"] > 1) & (b["y"] > view["wall_row"] + 1) & (b["x"] + b["w"] < w - 1)
              & (b["y"] + b["h"] < h - 1))
    b = b[inside]
    pts = _ground_point(view, b["x"] + b["w"] / 2.0, b["y"] + b["h"])
    return {(int(r["t"]), int(r["track_id"])): (p, int(r["class_id"])) for r, p in zip(b, pts)}


def test_cross_view_ids_are_one_ground_object(scene):
    doc = read_views_yaml(scene)
    cfg = preset_config("day")
    foot = {n: _foot_points(scene, n, v) for n, v in doc["views"].items()}
    names = list(foot)
    pairs = 0
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            for key in foot[a].keys() & foot[b].keys():
                (pa, cls), (pb, _) = foot[a][key], foot[b][key]
                length, width, _ = cfg.classes[cls].size_m
                # the bottom centre lies on the footprint (size jitter <= 1.3): two of them at most
                # one footprint diagonal apart
                tol = 1.3 * float(np.hypot(length, width)) + 0.3
                assert np.linalg.norm(pa - pb) <= tol, (a, b, key, cfg.classes[cls].name, pa, pb)
                pairs += 1
    assert pairs >= 20, pairs


def test_views_yaml_geometry(scene):
    doc = read_views_yaml(scene)
    assert list(doc["views"]) == ["view0", "view1", "view2"]
    for v in doc["views"].values():
        assert np.allclose(v["R"] @ v["R"].T, np.eye(3), atol=1e-7)
        # world X right / Y up / Z forward is left-handed, camera x right / y down / z forward is not
        assert np.isclose(np.linalg.det(v["R"]), -1.0)
        centre = -v["R"].T @ v["t"]
        assert np.allclose(centre, v["pose"]["centre_m"], atol=1e-4)
    for name in ("view1", "view2"):          # aimed at the crossing (view 0 keeps its own pitch)
        v = doc["views"][name]
        cx, cz = doc["crossing_m"]
        cam = v["R"] @ (np.array([cx, 0.0, cz]) - np.asarray(v["pose"]["centre_m"]))
        u, vv = (v["K"] @ (cam / cam[2]))[:2]
        assert abs(u - HW[1] / 2) < 1e-3 and abs(vv - HW[0] / 2) < 1e-3


def test_one_view_is_the_single_view_generator():
    cfg = replace(preset_config("day"), label_rate_hz=10.0)
    single = simulate_sequence(cfg, 1.0, (64, 96), np.random.default_rng(5))
    multi = simulate_multiview(cfg, 1.0, (64, 96), np.random.default_rng(5), views=1)
    assert len(multi.views) == 1
    assert np.array_equal(multi.views[0].events, single.events)
    assert np.array_equal(multi.views[0].boxes, single.boxes)


def test_layout_and_preview(scene, tmp_path):
    for v in ("view0", "view1", "view2"):
        stem = f"{scene.name}_{v}"
        assert (scene / v / f"{stem}_td.h5").exists() and (scene / v / f"{stem}_bbox.npy").exists()
    out = render_multiview_preview(scene, tmp_path / "p.png")
    assert out.stat().st_size > 1000


def test_bad_view_spec():
    with pytest.raises(ValueError, match="ViewSpec.hfov_deg"):
        ViewSpec(azimuth_deg=90.0, hfov_deg=200.0)


@pytest.mark.slow
def test_cli_simulate_views(tmp_path):
    from typer.testing import CliRunner

    from evdet.cli import app

    out = tmp_path / "cli"
    res = CliRunner().invoke(app, ["simulate", str(out), "--sequences", "1", "--duration-s", "0.5",
                                   "--resolution", "96x64", "--views", "2", "--preview"])
    assert res.exit_code == 0, res.output
    scene = list_scenes(out, "train")[0]
    assert list(read_views_yaml(scene)["views"]) == ["view0", "view1"]
    assert (out / "preview.png").exists()
    bad = CliRunner().invoke(app, ["simulate", str(out), "--views", "0"])
    assert bad.exit_code != 0 and "--views must be >= 1" in bad.output
