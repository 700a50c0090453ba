import base64
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from evdet.experiments.records import list_experiments
from evdet.experiments.report import write_report

from exp_fixtures import make_experiment, make_seeded_experiment, protocol_block

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
    out = write_report(list_experiments(report_root), tmp_path / "report.html", root=report_root)
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
