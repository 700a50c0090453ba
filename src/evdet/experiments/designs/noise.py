"""The A/A design behind a noise profile: one recipe trained with N seeds, nothing else changed.

``evdet exp noise RECIPE --seeds N`` creates (or resumes) the record ``noise_<name>`` with seeds
0..N-1, trains it, and writes the profile (``statistics.noise_profile.build_profile``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

from evdet.experiments.records.record import RecordError
from evdet.experiments.statistics.noise_profile import PROFILE_DIR, build_profile, write_profile


def measure_noise(root: Path, name: str, config_files: Sequence[str], overrides: Sequence[str],
                  seeds: Sequence[int], *, out: Optional[Path] = None, progress: bool = True) -> Path:
    """Create (or resume) the A/A record ``noise_<name>`` under ``root`` with ``seeds``, train it, and
    write its profile to ``out`` (default ``<root>/_noise/<name>.json``). Returns the profile path.

    Raises:
        RecordError / ConfigError: the record cannot be created or run; ProfileError: see build_profile.
    """
    from evdet.experiments.records.hypotheses import hypothesis_document
    from evdet.experiments.records.new import new_experiment
    from evdet.experiments.records.record import load_experiment
    from evdet.experiments.running.runner import AlreadyCompleted, run_experiment

    root = Path(root)
    exp_id = f"noise_{name}"
    seed_text = ",".join(str(int(s)) for s in seeds)
    if not (root / exp_id).exists():
        text = hypothesis_document(
            exp_id, question=f"How far do the metrics of {name} move from seed to seed?",
            hypothesis=f"An A/A design: {name} trained with seeds {seed_text} and nothing else changed; the "
                       "spread over the seeds is the training noise a one-seed difference must beat.")
        new_experiment(root, exp_id, text, config_files=config_files, overrides=[*overrides, f"seeds=[{seed_text}]"],
                       command=f"evdet exp noise {name} --seeds {len(seeds)}")
    exp = load_experiment(root, exp_id)
    if [int(s) for s in exp.config.get("seeds", [])] != [int(s) for s in seeds]:
        raise RecordError(f"{exp.path}: holds seeds {exp.config.get('seeds')}, not {list(seeds)}")
    if exp.state != "completed":
        try:
            run_experiment(root, exp_id, resume=exp.state != "created", progress=progress,
                           command=f"evdet exp noise {name} --seeds {len(seeds)} --root {root}")
        except AlreadyCompleted:
            pass
    return write_profile(build_profile(load_experiment(root, exp_id), name),
                         Path(out) if out else root / PROFILE_DIR / f"{name}.json")
