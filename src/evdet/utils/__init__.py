"""Generic helpers used by several evdet packages (atomic writes, process liveness).

The bottom level of the import order: it imports nothing from evdet, and every package may import it.
"""
