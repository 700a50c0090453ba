"""A shared experiments folder is hostile input to `exp report`: no markup injection, no files from
outside the root, malformed design summaries reported, not crashed on."""

import base64
import json
from html.parser import HTMLParser

from typer.testing import CliRunner

from evdet.cli import app
from hostile_files import one_line_error
from tests.experiments.exp_fixtures import CLASSES, make_experiment, protocol_block

PAYLOAD = '"><script>alert(1)</script><img src=x onerror="alert(2)'


class Tags(HTMLParser):
    """Every start tag and its attributes, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict]] = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))


def parse(text: str) -> list[tuple[str, dict]]:
    parser = Tags()
    parser.feed(text)
    return parser.tags


def report(root, tmp_path) -> str:
    out = tmp_path / "report.html"
    res = CliRunner().invoke(app, ["exp", "report", "--out", str(out), "--root", str(root)])
    assert res.exit_code == 0, res.output
    return out.read_text()


def hostile_root(tmp_path, sweep: dict):
    root = tmp_path / "exps"
    make_experiment(root, "a", protocols={"prophesee": protocol_block(0.3, 0.1, {c: 0.3 for c in CLASSES})},
                    config={"model": {"preset": PAYLOAD}, "data": {"root": PAYLOAD}})
    (root / "_designs").mkdir()
    (root / "_designs" / "evil.json").write_text(json.dumps(sweep))
    return root


def sweep_doc(**changes) -> dict:
    doc = {"kind": "sweep", "direction": PAYLOAD, "definition": {"metric": PAYLOAD, "base": "a"},
           "counts": {"COMPLETE": 1}, "best": [{"number": 0, "value": 0.5, "exp_id": PAYLOAD, "params": {"x": 1}}],
           "importances": {}, "plots": {}}
    doc.update(changes)
    return doc


def test_no_markup_from_records_or_summaries_reaches_the_page(tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG secret bytes")
    text = report(hostile_root(tmp_path, sweep_doc(plots={PAYLOAD: str(secret)})), tmp_path)
    tags = parse(text)
    assert not [t for t, _ in tags if t == "script"]
    assert not [a for _, a in tags if "onerror" in a]
    assert not [a for t, a in tags if t == "img" and a.get("src") == "x"]
    assert base64.b64encode(secret.read_bytes()).decode() not in text
    assert f"{secret}: outside" in text and "not embedded" in text


def test_plot_path_climbing_out_of_the_root_is_not_embedded(tmp_path):
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"\x89PNG secret bytes")
    text = report(hostile_root(tmp_path, sweep_doc(plots={"history": "../../secret.png"})), tmp_path)
    assert base64.b64encode(secret.read_bytes()).decode() not in text and "not embedded" in text


def test_malformed_design_summary_is_a_warning_naming_the_file(tmp_path):
    root = hostile_root(tmp_path, {"kind": "ablate"})
    text = report(root, tmp_path)
    assert f"{root / '_designs' / 'evil.json'}: malformed ablate summary (missing field" in text


def test_report_out_existing_folder_is_one_line(tmp_path):
    root = hostile_root(tmp_path, sweep_doc())
    folder = tmp_path / "reports"
    folder.mkdir()
    line = one_line_error(["exp", "report", "--out", folder, "--root", root])
    assert f"--out {folder}: is a folder" in line
