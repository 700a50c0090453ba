"""Experiment lab: run config, records, runner, ranking, comparison, config diff, verdicts, analysis, report.

Modules (one concept each; only ``run_config`` and ``runner`` import the config classes / torch):

- ``run_config``: RunConfig from YAML presets + ``key=value`` overrides (unknown keys are errors).
- ``records``: experiment folders, atomic writes, status with killed-run detection, metrics.csv.
- ``environment``: git commit, package versions, seed, machine.
- ``runner``: trains an experiment with the evaluation callback and fills results.json.
- ``metrics``: reading one metric out of results.json.
- ``intervals``: noise: t-intervals over seeds, Welch / paired-bootstrap intervals of differences.
- ``rank``, ``compare``: ranking with baseline deltas; metric / per-class / per-size deltas, curves.
- ``config_diff``: changed keys with risk notes. ``verdict``: success criteria from hypothesis.md.
- ``analysis``: per-class data analysis and FPN-level ownership. ``report``: one self-contained HTML.
- ``tables``: rich tables for the CLI.
"""
