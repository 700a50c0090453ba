"""Statistics: intervals of one metric and of differences (over seeds, over evaluation blocks)."""
