"""What a sweep found: its summary document, parameter importances and plots (the report draws them from the
summary that `save_sweep_summary` leaves: `report.designs.sweep_html`)."""

from __future__ import annotations

from pathlib import Path

from evdet.experiments.designs.queue import open_storage


def save_sweep_summary(root: Path, study) -> dict:
    """Write ``<root>/_designs/<study>.json`` (kind "sweep") and its history / importances PNGs for the report."""
    from evdet.experiments.designs.arms import write_design_summary

    summary = sweep_summary(study)
    pngs = plot_sweep(study, Path(root) / "_designs")
    write_design_summary(root, study.study_name, {"kind": "sweep", **summary,
                                                  "plots": {k: p.name for k, p in pngs.items()}})
    return summary


def sweep_summary(study, top: int = 5) -> dict:
    """Trial counts by state, the best trials (value, record, params) and Optuna's parameter importances."""
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    counts: dict[str, int] = {}
    for t in trials:
        label = "SURPLUS" if t.user_attrs.get("surplus") else t.state.name
        counts[label] = counts.get(label, 0) + 1
    done = [t for t in trials if t.state == TrialState.COMPLETE and t.value is not None]
    best = sorted(done, key=lambda t: t.value, reverse=study.direction.name == "MAXIMIZE")[:top]
    importances, why = None, ""
    if len(done) >= 2:
        try:
            importances = dict(_importances(study))
        except (RuntimeError, ValueError, ZeroDivisionError) as err:
            why = str(err).splitlines()[0]
    else:
        why = "fewer than 2 completed trials"
    return {"study": study.study_name, "direction": study.direction.name.lower(),
            "definition": study.user_attrs.get("evdet", {}), "counts": counts,
            "best": [{"number": t.number, "value": t.value, "exp_id": t.user_attrs.get("exp_id"),
                      "params": t.params} for t in best],
            "importances": importances, "importances_note": why}


def _importances(study) -> dict:
    import warnings

    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return optuna.importance.get_param_importances(study)


def load_sweep(storage_url: str, name: str):
    """An existing sweep study (QueueError when storage or study is missing)."""
    import optuna

    from evdet.experiments.designs.queue import QueueError, redact_url

    storage = open_storage(storage_url, create=False)
    try:
        return optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise QueueError(f"storage {redact_url(storage_url)}: no study {name!r}; studies: {names}") from None


def sweep_pngs(study) -> dict[str, bytes]:
    """PNG bytes of Optuna's optimisation history and (with >= 2 completed trials) parameter importances."""
    import io
    import warnings

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna.visualization.matplotlib as ovm

    plots = {"history": ovm.plot_optimization_history}
    if sweep_summary(study)["importances"]:
        plots["importances"] = ovm.plot_param_importances
    out = {}
    for kind, fn in plots.items():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            ax = fn(study)
        fig = ax.figure
        fig.set_size_inches(7, 4)
        fig.tight_layout()
        buf = io.BytesIO()
        fig.savefig(buf, dpi=100, format="png")
        plt.close(fig)
        out[kind] = buf.getvalue()
    return out


def plot_sweep(study, out_dir: Path) -> dict[str, Path]:
    """Write ``<study>_history.png`` and ``<study>_importances.png`` under ``out_dir`` (atomic)."""
    from evdet.utils.atomic import write_bytes_atomic

    return {kind: write_bytes_atomic(Path(out_dir) / f"{study.study_name}_{kind}.png", png)
            for kind, png in sweep_pngs(study).items()}
