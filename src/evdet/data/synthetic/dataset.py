"""Write a synthetic dataset in the raw eTraM layout.

```
<out_dir>/
  dataset.yaml                     # classes (eTraM), resolution [h, w], generator, preset, seed
  train/<seq>_td.h5, <seq>_bbox.npy
  val/...
  test/...
```
Sequence i uses its own ``numpy.random.Generator`` from ``SeedSequence(seed).spawn(sequences)[i]``,
so a dataset is a pure function of its arguments; each file is written atomically.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from evdet.data.classes import ETRAM, write_dataset_yaml
from evdet.data.labels import save_labels
from evdet.data.synthetic.config import Preset, SceneConfig, preset_config
from evdet.data.synthetic.simulate import simulate_sequence

SPLITS = ("train", "val", "test")
GENERATOR_NAME = "evdet.data.synthetic"


def split_counts(sequences: int, splits: tuple[float, float, float]) -> tuple[int, int, int]:
    """Sequences per split (train, val, test): proportional, and at least one each when >= 3."""
    if sequences < 1:
        raise ValueError(f"sequences must be >= 1, got {sequences}")
    fr = np.asarray(splits, dtype=np.float64)
    if fr.shape != (3,) or np.any(fr < 0) or fr.sum() <= 0:
        raise ValueError(f"splits must be three non-negative fractions, got {splits}")
    fr = fr / fr.sum()
    counts = np.floor(fr * sequences).astype(int)
    for i in np.argsort(-(fr * sequences - counts), kind="stable")[: sequences - counts.sum()]:
        counts[i] += 1                                    # largest remainders first
    if sequences >= 3:
        for i in range(3):
            while counts[i] == 0:
                counts[int(np.argmax(counts))] -= 1
                counts[i] += 1
    return int(counts[0]), int(counts[1]), int(counts[2])


def _write_sequence(out_dir: Path, split: str, name: str, cfg: SceneConfig, duration_s: float,
                    resolution: tuple[int, int], child: np.random.SeedSequence,
                    on_progress=None) -> dict:
    """Simulate one sequence, write its two files, return its summary row."""
    from evdet.events import write_events_h5

    seq = simulate_sequence(cfg, duration_s, resolution, np.random.default_rng(child),
                            on_progress=on_progress)
    write_events_h5(out_dir / split / f"{name}_td.h5", seq.events, *resolution)
    save_labels(out_dir / split / f"{name}_bbox.npy", seq.boxes)
    return {"name": name, "split": split,
            **{k: seq.stats[k] for k in ("events", "signal_events", "noise_events", "boxes", "tracks")},
            "class_counts": np.bincount(seq.boxes["class_id"], minlength=len(ETRAM.names)).tolist()}


def _write_sequences(out_dir: Path, jobs: list[tuple[str, str, np.random.SeedSequence]], cfg: SceneConfig,
                     duration_s: float, resolution: tuple[int, int], *, workers: int, progress: bool) -> list[dict]:
    """``_write_sequence`` of every (split, name, seed) job, in job order, in ``workers`` processes;
    a tqdm bar counts milliseconds of scene. Returns the rows of the summary."""
    from tqdm.auto import tqdm

    bar = tqdm(total=int(round(len(jobs) * duration_s * 1000)), unit="ms", desc="simulating", disable=not progress)
    done_ms = [0.0, 0]

    def advance(seconds: float) -> None:
        done_ms[0] += seconds * 1000.0
        step = int(done_ms[0]) - done_ms[1]
        if step > 0:
            bar.update(step)
            done_ms[1] += step

    try:
        if workers <= 1:
            return [_write_sequence(out_dir, split, name, cfg, duration_s, resolution, child, on_progress=advance)
                    for split, name, child in jobs]
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as pool:
            futures = [pool.submit(_write_sequence, out_dir, split, name, cfg, duration_s, resolution, child)
                       for split, name, child in jobs]
            rows = []
            for fut in futures:
                rows.append(fut.result())
                advance(duration_s)
            return rows
    finally:
        bar.close()


def generate_dataset(out_dir: str | Path, *, sequences: int = 6, duration_s: float = 10.0,
                     resolution: tuple[int, int] = (720, 1280), preset: Preset = "day",
                     seed: int = 0, splits: tuple[float, float, float] = (0.67, 0.17, 0.16),
                     progress: bool = True, config: SceneConfig | None = None,
                     workers: int = 1) -> dict:
    """Generate ``sequences`` synthetic traffic recordings with labels.

    Args:
        out_dir: dataset root (created; existing sequence files of the same names are replaced).
        sequences: number of recordings.
        duration_s: length of each recording, seconds.
        resolution: (height, width) pixels; the same scene at any size (objects scale with it).
        preset: "day" or "night" (ignored when ``config`` is given).
        seed: master seed.
        splits: train / val / test fractions.
        progress: show a tqdm bar (seconds of scene generated).
        config: full scene settings instead of a preset.
        workers: processes generating sequences in parallel (the files do not depend on it).

    Returns:
        Summary: {"out_dir", "resolution", "preset", "seed", "sequences": [{"name", "split",
        "events", "signal_events", "noise_events", "boxes", "tracks", "class_counts"}], "class_names"}.
    """
    height, width = (int(v) for v in resolution)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    cfg = config if config is not None else preset_config(preset)
    if tuple(cfg.class_names) != ETRAM.names:
        raise ValueError(f"SceneConfig.classes must follow the eTraM class order {ETRAM.names}, "
                         f"got {cfg.class_names}")
    counts = split_counts(sequences, splits)
    split_of = [s for s, c in zip(SPLITS, counts) for _ in range(c)]
    out_dir = Path(out_dir)
    for split in SPLITS:
        (out_dir / split).mkdir(parents=True, exist_ok=True)
    children = np.random.SeedSequence(seed).spawn(sequences)
    summary = {"out_dir": str(out_dir), "resolution": [height, width], "preset": preset,
               "seed": seed, "duration_s": duration_s, "class_names": list(ETRAM.names),
               "sequences": []}
    names = [f"synthetic_{preset}_{seed}_{i:03d}" for i in range(sequences)]
    summary["sequences"] = _write_sequences(out_dir, list(zip(split_of, names, children)), cfg, duration_s,
                                            (height, width), workers=workers, progress=progress)
    write_dataset_yaml(out_dir, ETRAM, resolution=[height, width], generator=GENERATOR_NAME,
                       preset=preset, seed=seed, duration_s=duration_s, sequences=sequences,
                       label_rate_hz=cfg.label_rate_hz)
    return summary
