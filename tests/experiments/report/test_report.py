import base64
import json
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from evdet.data.labels import BBOX_DTYPE
from evdet.experiments.statistics.intervals import save_validation_detections
from evdet.experiments.records.record import list_experiments
from evdet.experiments.report.build import build_report, write_report
from evdet.experiments.report.lab import TRACKING_METRICS

from exp_fixtures import CLASSES, make_experiment, make_seeded_experiment, protocol_block

VOID = {"img", "meta", "br", "hr", "link", "input", "col", "source", "wbr"}
CHROMIUM = Path("/usr/bin/chromium")


class StructureChecker(HTMLParser):
    """Checks that every non-void tag is closed in order; collects img sources, external refs, text."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[str] = []
        self.errors: list[str] = []
        self.imgs: list[str] = []
        self.alts: list[str] = []
        self.external: list[str] = []
        self.tags: set[str] = set()
        self.text: list[str] = []

    def handle_starttag(self, tag, attrs):
        self.tags.add(tag)
        a = dict(attrs)
        if tag == "img":
            self.imgs.append(a.get("src", ""))
            self.alts.append(a.get("alt", ""))
        for key in ("src", "href"):
            if key in a and not a[key].startswith(("data:", "#")):
                self.external.append(a[key])
        if tag not in VOID:
            self.stack.append(tag)

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"unexpected </{tag}> with open {self.stack[-3:]}")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture
def report_root(three_runs: Path) -> Path:
    make_experiment(three_runs, "otherproto", base="baseline", protocols={"prophesee": protocol_block(
        0.40, 0.2, {"pedestrian": 0.3, "car": 0.6, "bicycle": 0.3}, digest="e" * 40)},
        hypothesis="## Success criteria\n- AP >= base + 0.5\n")
    return three_runs


def test_report_html_structure_and_content(report_root: Path, tmp_path: Path):
    out = write_report(list_experiments(report_root), tmp_path / "r" / "report.html", root=report_root)
    html_text = out.read_text()
    assert html_text.startswith("<!DOCTYPE html>")
    p = StructureChecker()
    p.feed(html_text)
    p.close()
    assert p.errors == [] and p.stack == []
    assert {"html", "head", "body", "title", "table", "img", "style"} <= p.tags
    assert p.external == []                                   # self-contained
    # error bars + curves + per-class bars + one confusion matrix per experiment (4)
    assert len(p.imgs) == 7
    for src in p.imgs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    text = " ".join(p.text)
    for needle in ("sizeaware", "loss.size_aware.alpha", "size-aware weighting switched on",
                   "model.in_stages", "Not comparable", "fingerprints differ", "inconclusive", "no criteria",
                   "dddddddddddddddd", "tiny p4 FPN[1,2,3,4]", "loss_cv", "no saved validation detections"):
        assert needle in text, needle


def test_report_states_the_method_and_draws_error_bars(tmp_path: Path):
    root = tmp_path / "exps"
    make_seeded_experiment(root, "base", {0: (0.30, 0.10), 1: (0.32, 0.12), 2: (0.31, 0.11)})
    make_seeded_experiment(root, "var", {3: (0.40, 0.2), 4: (0.42, 0.2), 5: (0.41, 0.2)}, base="base",
                           hypothesis="## Success criteria\n- AP >= base + 0.05\n")
    out = write_report(list_experiments(root), tmp_path / "r.html", root=root)
    p = StructureChecker()
    p.feed(out.read_text())
    text = " ".join(p.text)
    assert "welch-t over seeds" in text and "paired bootstrap over evaluation sequences" in text
    assert "[+0.0773, +0.1227]" in text and "beyond noise" in text and "supported" in text
    assert any("with 95% intervals" in a for a in p.alts)


def test_report_escapes_text(tmp_path: Path):
    root = tmp_path / "exps"
    make_experiment(root, "xss", hypothesis="## Success criteria\n- AP >= 0.1\n",
                    config={"model": {"preset": "<b>tiny</b>", "patch_size": 4, "in_stages": [2, 3, 4]}},
                    protocols={"prophesee": protocol_block(0.2, 0.1, {"pedestrian": 0.1, "car": 0.3,
                                                                    "bicycle": 0.2})})
    html_text = write_report(list_experiments(root), tmp_path / "r.html").read_text()
    assert "<b>tiny</b>" not in html_text and "&lt;b&gt;tiny&lt;/b&gt;" in html_text


@pytest.mark.slow
def test_report_renders_in_chromium(report_root: Path, tmp_path: Path):
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium not installed: headless render check skipped (CI installs it)")
    gt = tracks_gt()
    save_dets(report_root / "baseline", [gt], [detections_of(gt, drop_late_bicycle=True)])   # + tracking section
    out = write_report(list_experiments(report_root), tmp_path / "report.html", root=report_root)
    assert 'id="tracking"' in out.read_text()
    png = tmp_path / "shot.png"
    cmd = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
           "--disable-component-update", "--disable-sync", "--no-first-run",
           f"--user-data-dir={tmp_path / 'profile'}", f"--screenshot={png}", "--window-size=1200,2000",
           out.resolve().as_uri()]
    subprocess.run(cmd, check=True, timeout=120, capture_output=True)
    import numpy as np
    from matplotlib import image as mpimg

    img = mpimg.imread(png)
    assert img.ndim == 3 and img.shape[0] > 100
    assert float(np.std(img[..., :3])) > 0.01       # not a blank page


# ---------------------------------------------------------------- sections of the lab features


class SectionTables(HTMLParser):
    """Rows (cell texts) of every table, by the id of the enclosing <section>; img sources per section."""

    def __init__(self) -> None:
        super().__init__()
        self.section: list[str] = []
        self.tables: dict[str, list[list[list[str]]]] = {}
        self.imgs: dict[str, list[str]] = {}
        self.row: list[str] | None = None
        self.cell: list[str] | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.section.append(a.get("id") or a.get("class") or "")
        sid = self.section[-1] if self.section else ""
        if tag == "table":
            self.tables.setdefault(sid, []).append([])
        elif tag == "tr":
            self.row = []
        elif tag in ("td", "th"):
            self.cell = []
        elif tag == "img":
            self.imgs.setdefault(sid, []).append(a.get("src", ""))

    def handle_endtag(self, tag):
        sid = self.section[-1] if self.section else ""
        if tag == "section":
            self.section.pop()
        elif tag in ("td", "th") and self.row is not None:
            self.row.append("".join(self.cell or []).strip())
            self.cell = None
        elif tag == "tr" and self.row is not None:
            self.tables[sid][-1].append(self.row)
            self.row = None

    def handle_data(self, data):
        if self.cell is not None:
            self.cell.append(data)


def page_text(html_text: str) -> str:
    p = StructureChecker()
    p.feed(html_text)
    p.close()
    assert p.errors == [] and p.stack == []
    return "".join(p.text)


def sections(html_text: str) -> SectionTables:
    p = SectionTables()
    p.feed(html_text)
    p.close()
    return p


def tracks_gt() -> np.ndarray:
    """Three objects (one per class) over 10 label frames at 10 Hz, track ids 1..3."""
    rows = []
    for k in range(10):
        t = 100_000 * (k + 1)
        rows += [(t, 10 + 3 * k, 20, 20, 16, 0, 1, 1.0), (t, 80, 40 + 2 * k, 12, 24, 1, 2, 1.0),
                 (t, 150 - 4 * k, 90, 30, 20, 2, 3, 1.0)]
    return np.array(rows, dtype=BBOX_DTYPE)


def detections_of(gt: np.ndarray, drop_late_bicycle: bool = False) -> np.ndarray:
    """The ground truth as detections (score 1, no ids); optionally without the bicycle after 0.5 s."""
    dt = gt.copy()
    dt["track_id"] = 0
    return dt[~((dt["class_id"] == 2) & (dt["t"] > 500_000))] if drop_late_bicycle else dt


def save_dets(run_dir: Path, gts, dts) -> Path:
    return save_validation_detections(run_dir / "validation" / "detections.npz", [f"seq{i}" for i in range(len(gts))],
                                      gts, dts, {"class_names": CLASSES})


def tracking_rows(html_text: str) -> tuple[dict, dict]:
    """(overall row by id, per-class row by (id, class)) of the tracking section, metric name -> cell."""
    overall, per_class = sections(html_text).tables["tracking"]
    head_o, head_c = overall[0], per_class[0]
    return ({r[0]: dict(zip(head_o, r)) for r in overall[1:]},
            {(r[0], r[1]): dict(zip(head_c, r)) for r in per_class[1:]})


def test_tracking_section_by_hand(tmp_path: Path):
    root = tmp_path / "exps"
    gt = tracks_gt()
    save_dets(make_experiment(root, "perfect"), [gt], [detections_of(gt)])
    # bicycle found in 5 of its 10 frames: TP 25 FN 5 -> MOTA 1 - 5/30, DetA 25/30, AssA (20 + 5 * 5/10) / 25
    save_dets(make_experiment(root, "halfbike"), [gt], [detections_of(gt, drop_late_bicycle=True)])
    # two seeds pooled: TP 55 FN 5 of 60 -> MOTA 55/60, AssA (50 + 2.5) / 55, IDF1 110 / 115
    d = make_seeded_experiment(root, "seeded", {0: (0.3, 0.1), 1: (0.3, 0.1)})
    save_dets(d, [gt], [detections_of(gt)])
    save_dets(d / "seeds" / "seed_1", [gt], [detections_of(gt, drop_late_bicycle=True)])
    weak = detections_of(gt)
    weak["class_confidence"] = 0.4                 # below the tracker's new-track score 0.6: no track starts
    save_dets(make_experiment(root, "weak"), [gt], [weak])
    make_experiment(root, "nodets")
    html_text = build_report(list_experiments(root), root=root, n_boot=20, clip=False)
    overall, per_class = tracking_rows(html_text)
    assert set(overall) == {"perfect", "halfbike", "seeded", "weak"}          # no row without saved detections
    assert [overall["weak"][k] for k in ("HOTA", "MOTA", "IDF1", "MOTP", "best score")] == \
        ["0.0000", "0.0000", "0.0000", "-", "0.400"]
    assert "no tracks" in page_text(html_text)
    assert all(overall["perfect"][k] == "1.0000" for k in TRACKING_METRICS)
    deta, assa = 25 / 30, (20 + 2.5) / 25
    expect = {"HOTA": (deta * assa) ** 0.5, "DetA": deta, "AssA": assa, "MOTA": 1 - 5 / 30, "MOTP": 1.0,
              "IDF1": 50 / 55}
    assert {k: overall["halfbike"][k] for k in TRACKING_METRICS} == {k: f"{v:.4f}" for k, v in expect.items()}
    assert per_class["halfbike", "bicycle"]["HOTA"] == "0.5000" and per_class["halfbike", "bicycle"]["IDF1"] == \
        f"{10 / 15:.4f}"
    assert per_class["halfbike", "car"]["MOTA"] == "1.0000"
    deta, assa = 55 / 60, 52.5 / 55
    assert overall["seeded"]["runs"] == "2"
    assert overall["seeded"]["MOTA"] == f"{55 / 60:.4f}" and overall["seeded"]["AssA"] == f"{assa:.4f}"
    assert overall["seeded"]["HOTA"] == f"{(deta * assa) ** 0.5:.4f}" and overall["seeded"]["IDF1"] == \
        f"{110 / 115:.4f}"


def test_tracking_section_equals_the_library_on_noisy_detections(tmp_path: Path):
    from evdet.tracking import track_and_evaluate

    rng = np.random.default_rng(5)
    gt = tracks_gt()
    dt = detections_of(gt)
    for f in ("x", "y"):
        dt[f] += rng.normal(0, 2.0, dt.size).astype(np.float32)
    dt["class_confidence"] = rng.uniform(0.2, 1.0, dt.size)
    fp = dt[rng.choice(dt.size, 6, replace=False)]
    fp["x"] += 60
    dt = np.sort(np.concatenate([dt[rng.random(dt.size) > 0.15], fp]), order="t")
    root = tmp_path / "exps"
    save_dets(make_experiment(root, "noisy"), [gt], [dt])
    overall, per_class = tracking_rows(build_report(list_experiments(root), n_boot=20, clip=False))
    ref = track_and_evaluate([gt], [dt], class_names=CLASSES)
    fmt = lambda v: "-" if v is None else f"{v:.4f}"  # noqa: E731
    assert {k: overall["noisy"][k] for k in TRACKING_METRICS} == {k: fmt(ref["overall"][k]) for k in TRACKING_METRICS}
    assert overall["noisy"]["best score"] == f"{dt['class_confidence'].max():.3f}"
    for name in CLASSES:
        assert {k: per_class["noisy", name][k] for k in TRACKING_METRICS} == \
            {k: fmt(ref["per_class"][name][k]) for k in TRACKING_METRICS}


def test_lab_sections_absent_without_their_data(report_root: Path):
    html_text = build_report(list_experiments(report_root), root=report_root, n_boot=20)
    for marker in ('id="tracking"', 'id="clip"', 'id="pseudo"', "Designed experiments"):
        assert marker not in html_text, marker


def write_tiny_checkpoint(path: Path, class_names, input_hw) -> Path:
    """A nano detector with random weights saved as `evdet train` saves checkpoints."""
    import lightning as L
    import torch

    from evdet.data.config import DataConfig
    from evdet.models.config import LossConfig, ModelConfig
    from evdet.training.config import TrainConfig
    from evdet.training.module import DetectionModule

    torch.manual_seed(0)
    module = DetectionModule(DataConfig(representation="stacked_histogram_dt=50_nbins=10"),
                             ModelConfig(preset="nano", partition_split=1), LossConfig(), TrainConfig(),
                             len(class_names), input_hw, 20, tuple(class_names))
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": module.state_dict(), "hyper_parameters": dict(module.hparams),
                "pytorch-lightning_version": L.__version__}, path)
    return path


def write_recording(path: Path, hw=(64, 96), duration_us: int = 1_100_000) -> Path:
    """Noise plus a square moving right, as an h5 event file."""
    from evdet.events import make_events, write_events_h5

    rng = np.random.default_rng(3)
    n = 20_000
    t = np.sort(rng.integers(0, duration_us, n))
    obj = rng.random(n) < 0.6
    x = np.where(obj, 10 + (t / duration_us * 60).astype(int) + rng.integers(0, 16, n), rng.integers(0, hw[1], n))
    y = np.where(obj, 20 + rng.integers(0, 20, n), rng.integers(0, hw[0], n))
    path.parent.mkdir(parents=True, exist_ok=True)
    write_events_h5(path, make_events(t, x, y, rng.integers(0, 2, n), height=hw[0], width=hw[1]), *hw)
    return path


def test_clip_of_the_best_experiment_is_embedded(tmp_path: Path):
    import imageio.v3 as iio

    from evdet.data.labels import save_labels
    from evdet.experiments.report.lab import CLIP_WINDOWS

    raw, pre, root = tmp_path / "raw", tmp_path / "pre", tmp_path / "exps"
    write_recording(raw / "val" / "seqA_td.h5")
    gt = tracks_gt()[:3]
    gt["x"], gt["y"], gt["w"], gt["h"] = 10, 10, 20, 20
    save_labels(raw / "val" / "seqA_bbox.npy", gt)
    (pre / "val" / "seqA").mkdir(parents=True)             # the preprocessed dataset: raw/ lies beside it
    cfg = {"model": {"preset": "nano"}, "data": {"root": str(pre)}}
    for exp_id, ap in (("worse", 0.2), ("best", 0.3)):
        make_experiment(root, exp_id, config=cfg, protocols={"prophesee": protocol_block(
            ap, 0.1, {"pedestrian": ap, "car": ap, "bicycle": ap})})
    ckpt = write_tiny_checkpoint(root / "best" / "checkpoints" / "last.ckpt", CLASSES, (64, 96))
    shutil.copyfile(ckpt, root / "worse" / "checkpoints" / "best.ckpt")
    exps = list_experiments(root)
    html_text = build_report(exps, root=root, n_boot=20, clip=True)
    p = sections(html_text)
    [src] = p.imgs["clip"]
    assert src.startswith("data:image/gif;base64,")
    frames = iio.imread(base64.b64decode(src.split(",", 1)[1]), index=None, extension=".gif")
    # one frame per window; predictions and ground truth side by side: two 320 px panels
    assert frames.shape[0] == CLIP_WINDOWS and frames.shape[2] == 2 * 320
    assert "best (rank 1 by AP" in html_text and "seqA_td.h5" in html_text
    assert 'id="clip"' not in build_report(exps, root=root, n_boot=20)   # off unless asked
    (raw / "val" / "seqA_td.h5").unlink()                    # no raw recording: no clip, no message
    assert 'id="clip"' not in build_report(exps, root=root, n_boot=20, clip=True)


def test_designed_experiments_are_included(report_root: Path):
    designs = report_root / "_designs"
    designs.mkdir()
    proof = [{"role": role, "keys": keys, "state": "completed", "value": v, "bad": bad, "exp_id": f"b_{role}"}
             for role, keys, v, bad in (("good", [], 0.30, False), ("culprit alone", ["loss.size_aware.alpha"],
                                                                     0.20, True))]
    (designs / "alpha_hunt.json").write_text(json.dumps({
        "kind": "bisect", "good": "baseline", "bad": "sizeaware", "metric": "AP",
        "keys": ["loss.size_aware.alpha", "training.lr"], "culprit": ["loss.size_aware.alpha"],
        "probes": [{}, {}], "proof": proof}))
    html_text = build_report(list_experiments(report_root), root=report_root, n_boot=20, clip=False)
    text = page_text(html_text)
    assert "Designed experiments" in text and "Bisection alpha_hunt" in text
    assert "Culprit: loss.size_aware.alpha (2 configurations looked at, 2 changed keys)" in text


def pseudo_boxes(rows) -> np.ndarray:
    """rows of (t, x, y, w, h, class_id, score) as a BBOX array."""
    out = np.zeros(len(rows), dtype=BBOX_DTYPE)
    for i, (t, x, y, w, h, c, s) in enumerate(rows):
        out[i] = (t, x, y, w, h, c, 0, s)
    return out


def write_pseudo_dataset(tmp_path: Path) -> Path:
    """A source dataset with 4 true boxes in 2 withheld frames and a pseudo-labelled copy whose sidecar holds
    6 teacher candidates (layout of evdet.pseudo.dataset). Returns the pseudo root."""
    src, pseudo = tmp_path / "pre", tmp_path / "pseudo"
    names = {"classes": {"names": ["car", "pedestrian"]}}
    gt = pseudo_boxes([(1, 0, 0, 10, 10, 0, 1), (1, 20, 20, 10, 10, 1, 1), (1, 50, 50, 4, 4, 1, 1),  # A car B C ped
                       (2, 0, 0, 20, 20, 0, 1)])                                                  # D car
    candidates = pseudo_boxes([(1, 0, 0, 10, 10, 0, 0.9),     # = A
                               (1, 21, 20, 10, 10, 1, 0.6),   # ~ B (IoU 90/110)
                               (1, 20, 20, 10, 10, 0, 0.8),   # on B, wrong class: false positive
                               (1, 100, 100, 10, 10, 1, 0.3),  # nothing there
                               (2, 0, 0, 20, 10, 0, 0.5),     # ~ D (IoU 0.5)
                               (2, 0, 0, 20, 20, 0, 0.4)])    # = D, but D is taken by the higher score
    for root in (src, pseudo):
        (root / "train" / "seq0" / "labels_v2").mkdir(parents=True)
        (root / "train" / "seq0" / "event_representations_v2").mkdir()
        (root / "dataset.yaml").write_text(json.dumps(names))
    np.savez(src / "train" / "seq0" / "labels_v2" / "labels.npz", labels=gt)
    np.savez(pseudo / "train" / "seq0" / "labels_v2" / "provenance.npz", candidates=candidates,
             withheld_t_us=np.array([1, 2], dtype=np.int64), is_pseudo=np.zeros(0, bool))
    (pseudo / "pseudo_labels.json").write_text(json.dumps({"teacher": "teacher.ckpt", "source": str(src),
                                                           "withheld": {"split": "train"}}))
    return pseudo


def test_pseudo_label_quality_by_hand(tmp_path: Path):
    pseudo = write_pseudo_dataset(tmp_path)
    root = tmp_path / "exps"
    make_experiment(root, "student", config={"model": {"preset": "nano"}, "data": {"root": str(pseudo)}})
    make_experiment(root, "supervised", config={"model": {"preset": "nano"}, "data": {"root": str(tmp_path / "pre")}})
    html_text = build_report(list_experiments(root), root=root, n_boot=20, clip=False)
    p = sections(html_text)
    [table] = p.tables["pseudo"]
    rows = {r[0]: dict(zip(table[0], r)) for r in table[1:]}
    # kept at 0.35: A B(wrong class too) D D -> TP 3 of 5 kept, 3 of 4 GT; at 0.55: 2 of 3, 2 of 4; 0.85: 1 of 1
    for thr, prec, rec, kept in (("0.35", 3 / 5, 3 / 4, 5), ("0.55", 2 / 3, 2 / 4, 3), ("0.85", 1.0, 1 / 4, 1)):
        assert (rows[thr]["precision"], rows[thr]["recall"], rows[thr]["pseudo boxes"], rows[thr]["GT boxes"]) == \
            (f"{prec:.3f}", f"{rec:.3f}", str(kept), "4"), thr
    # small road users = pedestrians here: of B and C only B found, by the one pedestrian box kept (0.6)
    assert rows["0.35"]["small road users recall"] == "0.500" and rows["0.35"]["small road users precision"] == "1.000"
    [png] = p.imgs["pseudo"]
    assert base64.b64decode(png.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert "used by student" in page_text(html_text) and "supervised" not in page_text(html_text).split(
        "Pseudo-label quality")[1].split("Config changes")[0]
