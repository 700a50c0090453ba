"""Numbers as table text: the one formatter of the CLI tables, the HTML report and the results files."""

from __future__ import annotations

from typing import Optional


def number(v: Optional[float], *, signed: bool = False, digits: int = 4, missing: str = "-") -> str:
    """``v`` with ``digits`` decimals (a sign when ``signed``); ``missing`` for None."""
    if v is None:
        return missing
    return f"{v:+.{digits}f}" if signed else f"{v:.{digits}f}"
