"""Experiment lab, in rooms (imports go down the list; tests/test_architecture.py enforces it):

- ``records``: run config (YAML presets + overrides), the record layout (results.json, status.json,
  hypothesis.md), environment, the metric-key grammar, the architecture label.
- ``statistics``: intervals over seeds and over evaluation blocks.
- ``running``: the runner (trains one record over its seeds).
- ``analysis``: rank, compare, config diff, verdicts, CLI tables.
- ``designs``: ablate, bisect, Optuna sweeps and queue.
- ``report``: the self-contained HTML report and its sections.

Studies built on this lab (the small-object matrix, the demo) live in ``evdet.studies``.
See docs/ARCHITECTURE.md.
"""
