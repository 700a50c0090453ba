"""Every measured figure in README.md and docs/ is read from a committed results file.

``docs/numbers.yaml`` lists, per document, quotes whose figures are placeholders
``{source:json/path:format}`` (``source`` names a results JSON under ``sources``; the path walks dict
keys and list indexes separated by ``/``, and ``a / b`` with spaces is the ratio of two paths; ``format`` is a Python format spec such as ``.3f``, ``+.3f``
or ``.0%``). The tests render each quote from its file and require the document to contain it
(whitespace runs count as one space), require every source to carry ``provenance`` (commit, machine,
date), and require every decimal figure inside the document's listed ``sections`` to lie inside a
rendered quote, in code, or in a listed ``settings`` phrase (configuration values, not measurements).

When a command re-measures a file, the quotes render the new numbers and this test names every
sentence of the docs to update (``python tests/test_documented_numbers.py`` prints them rendered).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
REGISTRY = ROOT / "docs" / "numbers.yaml"
PLACEHOLDER = re.compile(r"\{(?P<src>[A-Za-z0-9_]+):(?P<path>[^{}:]+)(?::(?P<fmt>[^{}]*))?\}")
DECIMAL = re.compile(r"(?<![\w.])[-+−]?\d+\.\d+")


class NumberError(ValueError):
    """A quote names a missing source, path or non-numeric value."""


def lookup(doc, path: str):
    """The value at ``a/b/0/c`` in a JSON document (list indexes as integers; a key that holds ``/``
    itself, such as ``full/AP``, matches the longest run of parts that is a key)."""
    node, parts = doc, path.split("/")
    while parts:
        if isinstance(node, list):
            part = parts.pop(0)
            if not part.isdigit() or int(part) >= len(node):
                raise NumberError(f"{path!r}: {part!r} is not an index of a list of {len(node)}")
            node = node[int(part)]
            continue
        keys = [k for k in ("/".join(parts[:n]) for n in range(len(parts), 0, -1))
                if isinstance(node, dict) and k in node]
        if not keys:
            raise NumberError(f"{path!r}: no key {parts[0]!r}")
        node, parts = node[keys[0]], parts[len(keys[0].split("/")):]
    return node


def render(quote: str, sources: dict) -> str:
    """``quote`` with every ``{source:path:format}`` replaced by the formatted value from its file."""
    def one(m: re.Match) -> str:
        if m["src"] not in sources:
            raise NumberError(f"{quote[:60]!r}: unknown source {m['src']!r}")
        parts = [lookup(sources[m["src"]], p.strip()) for p in m["path"].split(" / ")]
        if not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in parts):
            raise NumberError(f"{m['src']}:{m['path']} is {parts!r}, not a number")
        value = parts[0] / parts[1] if len(parts) == 2 else parts[0]
        return format(value, m["fmt"] or "")
    return PLACEHOLDER.sub(one, quote)


def squash(text: str) -> str:
    return re.sub(r"\s+", " ", text)


def load_registry(path: Path = REGISTRY) -> tuple[dict, dict, dict]:
    """(sources {name: parsed JSON}, source paths {name: path}, docs {doc: {quotes, sections, settings}})."""
    reg = yaml.safe_load(path.read_text())
    paths = {name: ROOT / rel for name, rel in reg["sources"].items()}
    sources = {name: json.loads(p.read_text()) for name, p in paths.items()}
    return sources, paths, reg["docs"]


def sections_text(markdown: str, titles) -> list[tuple[str, str]]:
    """(title, body) of each ``##``-or-deeper section whose heading text is in ``titles`` (to the next
    heading of the same or a higher level), fenced code blocks removed."""
    out, lines = [], markdown.splitlines()
    for i, line in enumerate(lines):
        m = re.match(r"^(#+)\s+(.*?)\s*$", line)
        if not m or m[2] not in titles:
            continue
        level, body = len(m[1]), []
        for nxt in lines[i + 1:]:
            h = re.match(r"^(#+)\s", nxt)
            if h and len(h[1]) <= level:
                break
            body.append(nxt)
        out.append((m[2], re.sub(r"```.*?```", " ", "\n".join(body), flags=re.S)))
    return out


def unbacked_figures(markdown: str, quotes: list[str], sections, settings) -> list[tuple[str, str]]:
    """(section, figure) of decimal figures in ``sections`` outside every rendered quote and setting."""
    missing = []
    for title, body in sections_text(markdown, set(sections)):
        text = squash(body)
        for phrase in [*quotes, *settings]:
            text = text.replace(squash(phrase), " ")
        text = re.sub(r"`[^`]*`", " ", text)
        missing += [(title, m.group()) for m in DECIMAL.finditer(text)]
    return missing


# ---------------------------------------------------------------- the renderer itself


def test_render_hand_case():
    doc = {"rows": [{"ap": 0.04812, "ci": [0.0391, 0.0579]}], "share": 0.2649, "n": 2171, "d": -0.01234}
    quote = ("AP {s:rows/0/ap:.3f} [{s:rows/0/ci/0:.3f}, {s:rows/0/ci/1:.3f}], {s:share:.0%} of {s:n:,d}, "
             "{s:d:+.3f}, {s:rows/0/ci/1 / rows/0/ap:.2f}x")
    assert render(quote, {"s": doc}) == "AP 0.048 [0.039, 0.058], 26% of 2,171, -0.012, 1.20x"


def test_keys_holding_a_slash():
    doc = {"metrics": {"full/AP": {"sd": 0.02}, "full": {"x": 1.0}}}
    assert render("{s:metrics/full/AP/sd:.3f} {s:metrics/full/x:.1f}", {"s": doc}) == "0.020 1.0"


def test_render_names_bad_path_and_non_numbers():
    with pytest.raises(NumberError, match="no key 'x'"):
        render("{s:rows/x}", {"s": {"rows": {}}})
    with pytest.raises(NumberError, match="not a number"):
        render("{s:name}", {"s": {"name": "nano"}})
    with pytest.raises(NumberError, match="unknown source"):
        render("{t:a}", {"s": {}})


def test_unbacked_figures_hand_case():
    md = ("# T\n## Results\nAP 0.048 after 300 steps, alpha 2.5, `lr=0.002`, and 0.17 left.\n"
          "```\n0.99\n```\n## Other\n0.5\n")
    found = unbacked_figures(md, ["AP 0.048 after"], ["Results"], ["alpha 2.5"])
    assert found == [("Results", "0.17")]


# ---------------------------------------------------------------- the documents


def _docs():
    _, _, docs = load_registry()
    return sorted(docs)


@pytest.mark.parametrize("doc", _docs())
def test_documented_numbers_match_their_results_files(doc):
    sources, paths, docs = load_registry()
    text = squash((ROOT / doc).read_text())
    stale = [render(q, sources) for q in docs[doc].get("quotes", [])]
    stale = [q for q in stale if squash(q) not in text]
    assert not stale, (f"{doc} does not say what its results files say; update these passages "
                       "(or docs/numbers.yaml):\n" + "\n".join(f"  - {q}" for q in stale))


@pytest.mark.parametrize("doc", _docs())
def test_every_figure_in_the_measured_sections_has_a_results_file(doc):
    sources, _, docs = load_registry()
    entry = docs[doc]
    quotes = [render(q, sources) for q in entry.get("quotes", [])]
    missing = unbacked_figures((ROOT / doc).read_text(), quotes, entry.get("sections", []),
                               entry.get("settings", []))
    assert not missing, (f"{doc}: figures without a results file (add a quote to docs/numbers.yaml, "
                         f"or list a configuration value under settings): {missing}")


def test_results_files_carry_commit_machine_and_date():
    sources, paths, _ = load_registry()
    bad = [f"{paths[n].relative_to(ROOT)}: provenance lacks {k}" for n, d in sources.items()
           for k in ("commit", "machine", "date") if not (d.get("provenance") or {}).get(k)]
    assert not bad, "\n".join(bad)


if __name__ == "__main__":   # print every quote as its files render it
    _sources, _, _registry = load_registry()
    for _doc, _entry in _registry.items():
        print(f"## {_doc}")
        for _q in _entry.get("quotes", []):
            print(render(_q, _sources))
    sys.exit(0)
