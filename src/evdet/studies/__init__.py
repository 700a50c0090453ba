"""Studies built on the experiment lab: the small-object matrix and the end-to-end demo."""
