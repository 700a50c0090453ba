"""Designed experiments: ablation, bisection, Optuna sweeps and the Optuna trial queue."""
