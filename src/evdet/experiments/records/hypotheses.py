"""hypothesis.md: the one template of a record's question, hypothesis, rationale, criteria and risks.

Every hypothesis.md evdet writes comes from ``hypothesis_document`` (new records, the designs, the
studies, external evaluations)::

    # <exp_id>

    ## Question
    ...
    ## Hypothesis / ## Rationale / ## Success criteria / ## Risks     (in this order; a section
                                                                     without text is left out)

``analysis.verdict`` reads the bullets under ``## Success criteria`` (``- protocol/metric OP value``
or ``OP base +- delta``); everything else is for people.
"""

from __future__ import annotations

from typing import Optional

SECTIONS = ("Question", "Hypothesis", "Rationale", "Success criteria", "Risks")


def hypothesis_document(exp_id: str, *, question: str, hypothesis: Optional[str] = None,
                        rationale: Optional[str] = None, criteria: Optional[str] = None,
                        risks: Optional[str] = None) -> str:
    """The text of hypothesis.md: the title, then each section that has text, in ``SECTIONS`` order.

    Args:
        criteria: bullet lines (``- protocol/metric OP value``), one criterion each.
        hypothesis, rationale, criteria, risks: None leaves the section out (a record of an external
            evaluation has no rationale or criteria).
    """
    texts = (question, hypothesis, rationale, criteria, risks)
    body = "\n".join(f"## {name}\n{text}\n" for name, text in zip(SECTIONS, texts) if text is not None)
    return f"# {exp_id}\n\n{body}"
