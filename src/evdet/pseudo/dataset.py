"""Write a pseudo-labelled copy of a preprocessed dataset: true labels where kept, a teacher's elsewhere.

The label frames of the split (``train``) are divided by ``evdet.data.label_subset`` into kept
frames (true labels copied) and withheld frames (labelled by the teacher). Layout of the output::

    <out>/
      dataset.yaml, preprocess.json          copied from the source dataset
      pseudo_labels.json                     settings, teacher, counts (written first; a rerun with other
                                             settings is refused, the same settings resume)
      INCOMPLETE                             until every sequence is written (training on it is refused)
      <other split>/<sequence> -> source     symlinks (validation / test untouched)
      <split>/<sequence>/
        labels_v2/labels.npz                 true + pseudo boxes (SOURCE pixels), RVT format
        labels_v2/timestamps_us.npy          label frames that hold at least one box
        labels_v2/provenance.npz             sidecar, see below
        event_representations_v2/<repr>/
          event_representations*.h5, timestamps_us.npy   -> symlinks to the source files
          objframe_idx_2_repr_idx.npy        the written label frames' representation indices

``provenance.npz`` (all arrays aligned with labels.npz's rows or frames):

    is_pseudo        (K,) bool     row came from the teacher (False: a true label)
    raw_score        (K,) float32  the teacher's obj x cls for pseudo rows (1.0 for true rows); the
                                   effective score after refinement is the row's class_confidence
    frame_is_pseudo  (F,) bool     written label frame was withheld (its boxes are all pseudo)
    withheld_t_us    (W,) int64    every withheld label frame's time, also those where the teacher kept
                                   nothing (RVT's format cannot hold an empty label frame, so such a
                                   frame is not written and the student sees no label there)
    candidates       (C,) BBOX     the teacher's boxes at withheld frames with an effective score >=
                                   ``candidate_score`` and class probability >= class_thr (SOURCE pixels,
                                   effective score in class_confidence): what a threshold sweep filters

Only the teacher's representation is linked. Each sequence is written into ``<sequence>.tmp`` and
renamed when complete, so an interrupted run resumes at the first unfinished sequence.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from evdet.data.labels import BBOX_DTYPE, DETECTION_DTYPE
from evdet.pseudo.refine import RefineConfig, effective_scores, merge_directions

SETTINGS_FILE = "pseudo_labels.json"
PROVENANCE_FILE = "provenance.npz"


@dataclass(frozen=True)
class PseudoLabelSettings:
    """How a teacher's detections become pseudo-labels.

    ``label_fraction`` / ``label_fraction_by`` / ``label_seed`` None = the teacher checkpoint's data settings
    (seed: its ``data.label_seed``, else its ``training.seed``), so the frames the teacher never saw
    labelled are the ones it labels.
    """

    score_thr: float = 0.4               # effective score (obj x cls, or refined) >= this
    class_thr: float = 0.35              # class probability >= this
    refine: RefineConfig = field(default_factory=RefineConfig)
    label_fraction: Optional[float] = None
    label_fraction_by: Optional[str] = None
    label_seed: Optional[int] = None
    candidate_score: float = 0.05        # lowest score kept as a candidate (detections and sweep floor)
    split: str = "train"

    def check(self) -> None:
        """Raise ``ValueError`` (one line) on a threshold outside [0, 1] or a bad fraction."""
        from evdet.data.label_subset import check_label_fraction

        for name in ("score_thr", "class_thr", "candidate_score"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"--{name.replace('_', '-')}: must lie in [0, 1], got {v}")
        if self.label_fraction is not None:
            check_label_fraction(self.label_fraction, self.label_fraction_by or "frames", "--label-fraction")


def resolve_label_subset(module, settings: PseudoLabelSettings) -> tuple[float, str, int]:
    """(fraction, by, seed) of the withheld frames: the settings', else the teacher's training data's."""
    d, t = module.data_cfg, module.train_cfg
    fraction = d.label_fraction if settings.label_fraction is None else settings.label_fraction
    by = d.label_fraction_by if settings.label_fraction_by is None else settings.label_fraction_by
    seed = settings.label_seed if settings.label_seed is not None else (
        d.label_seed if d.label_seed is not None else t.seed)
    return float(fraction), str(by), int(seed)


def _repr_scale(seq) -> float:
    """Source pixels per representation pixel (2 for the ds2 files)."""
    return 2.0 if seq.downsample.startswith("ds2") else 1.0


def _to_source(dets: np.ndarray, scale: float, source_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Representation-pixel detections -> (BBOX array in source pixels, clipped, flat boxes dropped; the
    bool mask of the detections kept)."""
    out = np.zeros(dets.size, dtype=BBOX_DTYPE)
    for f in BBOX_DTYPE.names:
        out[f] = dets[f]
    x2 = np.minimum((dets["x"] + dets["w"]) * scale, source_hw[1])
    y2 = np.minimum((dets["y"] + dets["h"]) * scale, source_hw[0])
    out["x"], out["y"] = np.maximum(dets["x"] * scale, 0), np.maximum(dets["y"] * scale, 0)
    out["w"], out["h"] = x2 - out["x"], y2 - out["y"]
    keep = (out["w"] > 0) & (out["h"] > 0)
    return out[keep], keep


def teacher_candidates(module, seq, settings: PseudoLabelSettings, device=None) -> tuple[np.ndarray, np.ndarray]:
    """The teacher's detections at every representation (both directions for ``bidirectional``).

    Returns:
        (detections ``DETECTION_DTYPE`` in representation pixels, obj x cls in class_confidence;
        (n,) effective scores after ``settings.refine``).
    """
    from evdet.pseudo.teacher_predict import sequence_detections

    chunk = max(1, int(module.data_cfg.seq_len))
    conf = min(settings.candidate_score, settings.refine.low_score)
    dets = sequence_detections(module, seq, chunk_len=chunk, conf_threshold=conf, device=device)
    if settings.refine.mode == "bidirectional":
        back = sequence_detections(module, seq, reverse=True, chunk_len=chunk, conf_threshold=conf, device=device)
        dets = merge_directions(dets, back, nms_iou=module.model_cfg.head.nms_iou)
    return dets, effective_scores(dets, settings.refine)


def write_pseudo_sequence(seq, out_dir: Path, withheld_frames: np.ndarray, candidates: np.ndarray,
                          effective: np.ndarray, settings: PseudoLabelSettings, source_hw: tuple[int, int]) -> dict:
    """Write one sequence (see the module docstring) into ``out_dir`` (created; must not exist).

    Args:
        seq: the source ``PreprocessedSequence``.
        withheld_frames: label frame indices whose labels are replaced by pseudo-labels.
        candidates, effective: ``teacher_candidates`` output (representation pixels); unused when nothing
            is withheld.
    Returns:
        counts: frames_true, frames_pseudo, frames_empty (withheld, nothing kept), boxes_true, boxes_pseudo.
    """
    scale = _repr_scale(seq)
    withheld = set(np.asarray(withheld_frames).tolist())
    ok = candidates["class_score"] >= settings.class_thr
    cand, eff = candidates[ok], np.asarray(effective, np.float64)[ok]
    rows, frame_t, frame_r, frame_pseudo, is_pseudo, raw, swept = [], [], [], [], [], [], []
    empty = 0
    for f in range(seq.num_label_frames):
        t_label, r = int(seq.label_timestamps_us[f]), int(seq.label_repr_idx[f])
        if f in withheld:
            boxes, raw_f, swept_f = _pseudo_frame(cand, eff, int(seq.repr_timestamps_us[r]), t_label, scale,
                                                  source_hw, settings)
            swept.append(swept_f)
            if boxes.size == 0:
                empty += 1
                continue
        else:
            boxes = seq.label_frame(f, in_repr_pixels=False)
            raw_f = np.ones(boxes.size, np.float32)
        rows.append(boxes)
        raw.append(raw_f)
        is_pseudo.append(np.full(boxes.size, f in withheld))
        frame_t.append(t_label)
        frame_r.append(r)
        frame_pseudo.append(f in withheld)
    provenance = {"is_pseudo": np.concatenate(is_pseudo) if is_pseudo else np.zeros(0, bool),
                  "raw_score": np.concatenate(raw) if raw else np.zeros(0, np.float32),
                  "frame_is_pseudo": np.asarray(frame_pseudo, bool),
                  "withheld_t_us": np.asarray(sorted(int(seq.label_timestamps_us[f]) for f in withheld), np.int64),
                  "candidates": np.concatenate(swept) if swept else np.zeros(0, BBOX_DTYPE)}
    _write_sequence_files(seq, out_dir, rows, frame_t, frame_r, provenance)
    n_pseudo = int(provenance["is_pseudo"].sum())
    return {"frames_true": int(sum(not p for p in frame_pseudo)), "frames_pseudo": int(sum(frame_pseudo)),
            "frames_empty": empty, "boxes_true": sum(b.size for b in rows) - n_pseudo, "boxes_pseudo": n_pseudo}


def _pseudo_frame(cand: np.ndarray, eff: np.ndarray, t_repr_us: int, t_label_us: int, scale: float,
                  source_hw: tuple[int, int], settings: PseudoLabelSettings
                  ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One withheld label frame from the teacher's candidates at its representation time.

    Returns:
        (kept boxes in sensor pixels, effective score >= ``score_thr``, stamped ``t_label_us``; their
        raw scores (float32); every candidate with effective score >= ``candidate_score``).
    """
    at = cand["t"] == t_repr_us
    src, inside = _to_source(cand[at], scale, source_hw)
    raw_at = cand["class_confidence"][at][inside]
    src["class_confidence"] = eff[at][inside]
    src["t"] = t_label_us
    src["track_id"] = 0
    keep = src["class_confidence"] >= settings.score_thr
    return src[keep], raw_at[keep].astype(np.float32), src[src["class_confidence"] >= settings.candidate_score]


def _write_sequence_files(seq, out_dir: Path, rows: list[np.ndarray], frame_t: list[int], frame_r: list[int],
                          provenance: dict[str, np.ndarray]) -> None:
    """The labels (one array per kept frame in ``rows``), provenance and representation links of one
    sequence (layout in the module docstring); the representation files are links to the source's."""
    from evdet.data.preprocessed import LABELS_DIR, REPR_DIR
    from evdet.utils.atomic import save_npy_atomic

    labels = np.concatenate(rows) if rows else np.zeros(0, BBOX_DTYPE)
    starts = np.cumsum([0] + [b.size for b in rows[:-1]]).astype(np.int64) if rows else np.zeros(0, np.int64)
    ldir, rdir = out_dir / LABELS_DIR, out_dir / REPR_DIR / seq.representation
    ldir.mkdir(parents=True)
    rdir.mkdir(parents=True)
    np.savez(ldir / "labels.npz", labels=labels, objframe_idx_2_label_idx=starts)
    save_npy_atomic(ldir / "timestamps_us.npy", np.asarray(frame_t, np.int64))
    np.savez(ldir / PROVENANCE_FILE, **provenance)
    src_rdir = seq.repr_file.parent
    for name in (seq.repr_file.name, "timestamps_us.npy"):
        os.symlink(os.path.abspath(src_rdir / name), rdir / name)
    save_npy_atomic(rdir / "objframe_idx_2_repr_idx.npy", np.asarray(frame_r, np.int64))


def load_provenance(seq_dir: str | Path) -> dict[str, np.ndarray]:
    """A pseudo-labelled sequence's ``labels_v2/provenance.npz`` (see the module docstring).

    Raises:
        FileNotFoundError: the sequence has no provenance (not written by ``pseudo_label_dataset``).
    """
    from evdet.data.preprocessed import LABELS_DIR

    path = Path(seq_dir) / LABELS_DIR / PROVENANCE_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such file (not a pseudo-labelled sequence)")
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def _settings_doc(settings: PseudoLabelSettings, ckpt: Path, data_root: Path, subset: tuple) -> dict:
    return {"teacher": str(Path(ckpt).resolve()), "source": str(Path(data_root).resolve()),
            "settings": asdict(settings),
            "withheld": {"fraction": subset[0], "by": subset[1], "seed": subset[2], "split": settings.split}}


def _start_output(out_root: Path, data_root: Path, split: str, doc: dict, unfinished: str) -> Path:
    """Refuse an ``out_root`` written with other settings (or holding something else), then write the
    settings, the unfinished marker, ``dataset.yaml`` / ``preprocess.json`` and links to the other splits'
    sequences. Returns the marker's path (removed when every sequence is written)."""
    from evdet.data.preprocessed import INCOMPLETE_FILE
    from evdet.utils.atomic import write_text_atomic

    settings_path = out_root / SETTINGS_FILE
    if settings_path.is_file():
        before = json.loads(settings_path.read_text())
        if {k: before.get(k) for k in doc} != doc:
            raise FileExistsError(f"{settings_path}: {out_root} was written with other settings or another "
                                  "teacher; use a new output folder")
    elif out_root.exists() and any(p.name != INCOMPLETE_FILE for p in out_root.iterdir()):
        raise FileExistsError(f"{out_root}: exists and is not a pseudo-labelled dataset; use a new output folder")
    out_root.mkdir(parents=True, exist_ok=True)
    marker = out_root / INCOMPLETE_FILE
    write_text_atomic(marker, unfinished)
    write_text_atomic(settings_path, json.dumps(doc, indent=2) + "\n")
    for name in ("dataset.yaml", "preprocess.json"):
        if (data_root / name).is_file() and not (out_root / name).exists():
            shutil.copyfile(data_root / name, out_root / name)
    for split_dir in sorted(p for p in data_root.iterdir() if p.is_dir() and p.name != split):
        (out_root / split_dir.name).mkdir(exist_ok=True)
        for seq_dir in sorted(p for p in split_dir.iterdir() if p.is_dir()):
            link = out_root / split_dir.name / seq_dir.name
            if not link.exists():
                os.symlink(seq_dir.resolve(), link)
    return marker


def _label_sequences(module, store, count: int, withheld: dict[str, np.ndarray], settings: PseudoLabelSettings,
                     out_root: Path, source_hw: tuple[int, int], dev, progress: bool) -> dict[str, dict]:
    """Write the ``count`` sequences of the split's ``store`` (each into ``<name>.tmp``, then renamed;
    finished ones are kept and their counts read back). Returns ``write_pseudo_sequence``'s counts per
    sequence name."""
    from evdet.utils.atomic import write_text_atomic

    per_seq: dict[str, dict] = {}
    indices = range(count)
    if progress:
        from rich.progress import track

        indices = track(indices, description=f"pseudo-label {settings.split}")
    for i in indices:
        seq = store.get(i)
        final = out_root / settings.split / seq.name
        counts_file = final / "labels_v2" / "pseudo_counts.json"
        if final.is_dir():
            per_seq[seq.name] = json.loads(counts_file.read_text())
            continue
        tmp = final.with_name(seq.name + ".tmp")
        if tmp.exists():
            shutil.rmtree(tmp)
        w = withheld[seq.name]
        cand, eff = teacher_candidates(module, seq, settings, dev) if w.size else (
            np.zeros(0, dtype=DETECTION_DTYPE), np.zeros(0))
        per_seq[seq.name] = write_pseudo_sequence(seq, tmp, w, cand, eff, settings, source_hw)
        write_text_atomic(tmp / "labels_v2" / "pseudo_counts.json", json.dumps(per_seq[seq.name]) + "\n")
        os.replace(tmp, final)
    return per_seq


def pseudo_label_dataset(ckpt: str | Path, data_root: str | Path, out_root: str | Path,
                         settings: PseudoLabelSettings = PseudoLabelSettings(), *, device: Optional[str] = None,
                         progress: bool = True, trusted: bool = False) -> dict:
    """Label the withheld frames of ``data_root``'s split with a teacher checkpoint; write ``out_root``.

    Every check runs before any work: thresholds and fraction, the checkpoint (readable, weights fit
    its config), the dataset (a labelled frame exists; representation size and class map equal the
    teacher's) and an earlier run in ``out_root`` with other settings.

    Args:
        trusted: read a teacher checkpoint holding arbitrary pickled objects (``--trusted``; can run code).
    Returns:
        summary: out_root, withheld {fraction, by, seed}, per-sequence counts and their totals.
    Raises:
        ValueError / CheckpointError / FileNotFoundError / FileExistsError: one line naming the problem.
    """
    import torch

    from evdet.data.sequence_store import SequenceStore, read_split_meta
    from evdet.data.label_subset import withheld_label_frames
    from evdet.data.preprocessed import read_preprocess_info
    from evdet.training.predict import check_data_fits, load_module

    settings.check()
    data_root, out_root = Path(data_root), Path(out_root)
    if out_root.resolve() == data_root.resolve():
        raise ValueError(f"{out_root}: the output must differ from the source dataset")
    module = load_module(ckpt, trusted=trusted)
    subset = resolve_label_subset(module, settings)
    withheld = withheld_label_frames(data_root, subset[0], subset[1], subset[2], split=settings.split)
    if subset[0] >= 1.0:
        raise ValueError(f"{ckpt}: nothing to pseudo-label, the teacher was trained on every label "
                         "(data.label_fraction = 1); pass --label-fraction to withhold some")
    meta = read_split_meta(data_root, settings.split, module.data_cfg.representation)
    store = SequenceStore([m.path for m in meta], module.data_cfg.representation)
    check_data_fits(module, store, len(meta), data_root)
    info = read_preprocess_info(data_root)
    source_hw = tuple(int(v) for v in info["source_hw"])
    marker = _start_output(out_root, data_root, settings.split, _settings_doc(settings, Path(ckpt), data_root, subset),
                           f"evdet pseudo-label {ckpt} {data_root} {out_root} has not finished\n")
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    module.eval().to(dev)
    per_seq = _label_sequences(module, store, len(meta), withheld, settings, out_root, source_hw, dev, progress)
    marker.unlink()
    totals = {k: sum(c[k] for c in per_seq.values()) for k in next(iter(per_seq.values()), {})}
    return {"out_root": str(out_root), "withheld": dict(zip(("fraction", "by", "seed"), subset)),
            "sequences": per_seq, "totals": totals}

