"""hypothesis.md: the one template of a record's question, hypothesis, rationale, criteria and risks.

``analysis.verdict`` reads the bullets under ``## Success criteria`` (``- protocol/metric OP value``
or ``OP base +- delta``); everything else is for people.
"""

from __future__ import annotations

HYPOTHESIS_TEMPLATE = """# {exp_id}

## Question
{question}

## Hypothesis
{hypothesis}

## Rationale
{rationale}

## Success criteria
{criteria}

## Risks
{risks}
"""


def hypothesis_document(exp_id: str, *, question: str, hypothesis: str, rationale: str, criteria: str,
                        risks: str) -> str:
    """The text of hypothesis.md (sections in the template's order; ``criteria``: bullet lines)."""
    return HYPOTHESIS_TEMPLATE.format(exp_id=exp_id, question=question, hypothesis=hypothesis, rationale=rationale,
                                      criteria=criteria, risks=risks)
