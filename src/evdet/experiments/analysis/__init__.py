"""Analysis of finished records: rank, compare, config diff with risk notes, verdicts, CLI tables."""
