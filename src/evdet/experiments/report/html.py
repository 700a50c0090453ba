"""HTML building blocks of the experiment report: page style, escaping, number cells, tables, embedded PNGs.

``esc`` is the one escaping of the report: every text and attribute value from a record, a summary or a
file name goes through it (its sections never call ``html.escape`` themselves)."""

from __future__ import annotations

import base64
import html
import io
import re
from pathlib import Path
from typing import Optional, Sequence

from evdet.utils.formatting import number

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px;color:#222;
     background:#fff;max-width:1200px}
h1{font-size:22px} h2{font-size:18px;border-bottom:1px solid #ddd;padding-bottom:4px;margin-top:28px}
table{border-collapse:collapse;margin:8px 0;font-size:13px} th,td{border:1px solid #ccc;padding:3px 8px;
text-align:left} th{background:#f0f3f7} td.num{text-align:right;font-variant-numeric:tabular-nums}
.high{color:#b00020;font-weight:600} .medium{color:#b36b00} .low{color:#555} .info{color:#888}
.warn{background:#fff4e5;border-left:4px solid #f0a000;padding:6px 10px;margin:8px 0}
.ok{color:#1b7f3b;font-weight:600} .bad{color:#b00020;font-weight:600} .und{color:#777}
img{max-width:100%;border:1px solid #eee} code{background:#f5f5f5;padding:0 3px}
"""


def esc(v: object) -> str:
    """``str(v)`` escaped for HTML text and attributes."""
    return html.escape(str(v), quote=True)


def code_text(v: object) -> str:
    """``esc(v)`` with every `backticked` span set as ``<code>`` (identifiers in plain-text tables)."""
    return re.sub(r"`([^`]*)`", r"<code>\1</code>", esc(v))


def fmt(v: Optional[float], signed: bool = False, digits: int = 4) -> str:
    """A number with ``digits`` decimals ('-' for None): ``utils.formatting.number``."""
    return number(v, signed=signed, digits=digits)


def table(headers: Sequence[str], rows: Sequence[Sequence[str]], num_cols: Sequence[int] = ()) -> str:
    """The one HTML table of the report and the studies: headers are text (escaped here), cells are HTML
    (``esc`` / ``code_text`` / ``fmt`` of their values); ``num_cols`` are right-aligned."""
    head = "".join(f"<th>{esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f'<td class="num">{c}</td>' if i in num_cols else f"<td>{c}</td>"
                                    for i, c in enumerate(r)) + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def img(png: bytes, alt: str) -> str:
    """An ``<img>`` holding the PNG bytes (base64 data URI)."""
    return f'<img alt="{esc(alt)}" src="data:image/png;base64,{base64.b64encode(png).decode("ascii")}">'


def img_file(path: Path, alt: str, inside: Path) -> str:
    """An ``<img>`` of the PNG file ``path`` when it lies inside the folder ``inside`` (after resolving links and
    ``..``), else a warning: a record or summary must not make the report embed files from elsewhere."""
    resolved, folder = Path(path).resolve(), Path(inside).resolve()
    if not resolved.is_relative_to(folder):
        return f'<div class="warn">{esc(path)}: outside {esc(folder)}, not embedded</div>'
    if not resolved.is_file():
        return ""
    return img(resolved.read_bytes(), alt)


def fig_png(fig) -> bytes:
    """PNG bytes of a matplotlib figure at 90 dpi."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90)
    return buf.getvalue()
