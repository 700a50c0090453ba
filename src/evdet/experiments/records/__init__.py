"""Records: run config, record folders (results.json, status.json, hypothesis.md), environment, metric keys."""
