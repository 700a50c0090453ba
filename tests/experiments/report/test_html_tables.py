"""The one HTML table builder (``report.html.table``): every former builder (the designs' section, the
matrix's tables) goes through it, so a hostile cell comes out escaped from each, and the table's shape
(one row per record, one cell per header) is what the parser reads back."""

from html.parser import HTMLParser
from pathlib import Path

from evdet.experiments.report.designs import ablation_html, bisection_html, sweep_html
from evdet.experiments.report.html import code_text, table
from evdet.studies.matrix_results import tables_html

PAYLOAD = '"><script>alert(1)</script><img src=x onerror="alert(2)'


class Cells(HTMLParser):
    """Tags seen, and the text of every <th> / <td> per table row."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[str] = []
        self.rows: list[list[str]] = []
        self._cell = None

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(self._cell)
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell += data


def read(html: str) -> Cells:
    p = Cells()
    p.feed(html)
    return p


def assert_inert(html: str) -> Cells:
    cells = read(html)
    assert "script" not in cells.tags and "img" not in cells.tags
    assert any(PAYLOAD in c for row in cells.rows for c in row)        # the text survives, as text
    return cells


def test_table_escapes_headers_and_takes_cells_as_html():
    cells = read(table(["a<b", "n"], [["<i>x</i>", "1"], ["y", "2"]], num_cols=(1,)))
    assert cells.rows == [["a<b", "n"], ["x", "1"], ["y", "2"]] and "i" in cells.tags
    assert 'class="num">2<' in table(["a", "n"], [["y", "2"]], num_cols=(1,))


def test_code_text_escapes_first_then_marks_backticks():
    assert code_text("`a<b` & c") == "<code>a&lt;b</code> &amp; c"
    assert "<code>" not in code_text("no ticks")


def test_a_hostile_cell_is_escaped_in_the_designs_tables():
    diff = {"mean": 0.1, "low": 0.0, "high": 0.2, "method": PAYLOAD, "n_a": 1, "n_b": 1, "confidence": 0.95,
            "detail": ""}
    ablation = {"name": "n", "base": "a", "variant": "b", "keys": [PAYLOAD],
                "effects": [{"metric": "AP", "single": {PAYLOAD: diff}, "leave_one_out": {PAYLOAD: diff},
                             "full": diff, "interaction": diff, "adds_up": True}]}
    cells = assert_inert(ablation_html(ablation))
    assert cells.rows[1][0] == PAYLOAD and len(cells.rows) == 3             # header, the key, "all keys"
    bisection = {"name": "n", "good": "g", "bad": "b", "metric": "AP", "keys": ["k"], "culprit": ["k"],
                 "probes": [1], "proof": [{"role": PAYLOAD, "keys": ["k"], "state": "completed", "value": 0.5,
                                           "bad": True, "exp_id": PAYLOAD}]}
    assert read(bisection_html(bisection)).rows[1] == [PAYLOAD, "all", "completed", "0.5", "bad", PAYLOAD]
    assert_inert(bisection_html(bisection))
    sweep = {"name": "s", "direction": "maximize", "definition": {"metric": "AP", "base": "a"},
             "counts": {"COMPLETE": 1}, "best": [{"number": 3, "value": 0.25, "exp_id": PAYLOAD, "params": {"x": 1}}]}
    assert read(sweep_html(sweep, Path("."))).rows[1] == ["3", "0.25", PAYLOAD, '{"x": 1}']


def test_a_hostile_cell_is_escaped_in_the_matrix_tables():
    html = tables_html([("title <b>", PAYLOAD, ["h1", PAYLOAD], [["`id`", PAYLOAD], ["x", "y"]])])
    cells = assert_inert(html)
    assert cells.rows == [["h1", PAYLOAD], ["id", PAYLOAD], ["x", "y"]]
    assert "<code>id</code>" in html and "<b>" not in html
