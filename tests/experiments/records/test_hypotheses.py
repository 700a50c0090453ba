"""The one hypothesis.md builder: its layout written out by hand, left-out sections, and every
document evdet writes (studies, external records) parses as criteria the verdict can judge."""

from evdet.experiments.analysis.verdict import parse_criteria
from evdet.experiments.records.hypotheses import hypothesis_document


def test_document_layout_by_hand():
    text = hypothesis_document("e1", question="Why?", hypothesis="Because.\nTwo lines.", rationale="R.",
                               criteria="- prophesee/AP >= 0.1\n- full/AP >= base + 0.0", risks="None.")
    assert text == ("# e1\n\n## Question\nWhy?\n\n## Hypothesis\nBecause.\nTwo lines.\n\n## Rationale\nR.\n\n"
                    "## Success criteria\n- prophesee/AP >= 0.1\n- full/AP >= base + 0.0\n\n## Risks\nNone.\n")
    assert [(c.metric, c.op) for c in parse_criteria(text)] == [("prophesee/AP", ">="), ("full/AP", ">=")]


def test_sections_without_text_are_left_out():
    assert hypothesis_document("x", question="Q", hypothesis="H") == "# x\n\n## Question\nQ\n\n## Hypothesis\nH\n"
    assert hypothesis_document("x", question="Q", risks="") == "# x\n\n## Question\nQ\n\n## Risks\n\n"
    assert parse_criteria(hypothesis_document("x", question="Q")) == []


def test_study_documents_come_from_the_builder():
    from evdet.studies import demo
    from evdet.studies.matrix import hypothesis_text
    from evdet.studies.study_plan import make_plan

    plan = make_plan("cpu")
    docs = {v.id: hypothesis_text(v, plan) for v in plan.catalog}
    docs.update({demo.BASELINE_ID: demo.BASELINE_HYPOTHESIS, demo.VARIANT_ID: demo.VARIANT_HYPOTHESIS})
    headings = ["## Question", "## Hypothesis", "## Rationale", "## Success criteria", "## Risks"]
    for exp_id, text in docs.items():
        assert text.startswith(f"# {exp_id}\n\n## Question\n"), exp_id
        assert [ln for ln in text.splitlines() if ln.startswith("## ")] == headings, exp_id
        assert len(parse_criteria(text, exp_id)) >= 2, exp_id
