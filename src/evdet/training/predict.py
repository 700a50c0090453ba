"""Stream-mode prediction over whole sequences (state carried from the first representation on)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import numpy as np
import torch

from evdet.data.datamodule import SequenceStore, StreamDataset, read_split_meta
from evdet.data.labels import BBOX_DTYPE, boxes_from_detections
from evdet.training.module import DetectionModule
from evdet.training.state import StreamStates


def load_module(module_or_ckpt: DetectionModule | str | Path, map_location: str = "cpu") -> DetectionModule:
    """A DetectionModule as given, or rebuilt from a checkpoint file."""
    if isinstance(module_or_ckpt, DetectionModule):
        return module_or_ckpt
    path = Path(module_or_ckpt)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: checkpoint not found")
    return DetectionModule.load_from_checkpoint(str(path), map_location=map_location, weights_only=False)


@torch.no_grad()
def predict_sequences(module_or_ckpt: DetectionModule | str | Path, pre_root: str | Path, split: str, *,
                      batch_size: int = 2, max_sequences: Optional[int] = None, progress: bool = True,
                      chunk_len: Optional[int] = None, all_reprs: bool = False,
                      device: Optional[str] = None) -> tuple[list[str], list[np.ndarray], list[np.ndarray]]:
    """Detections of every sequence of a split, in stream mode.

    Each batch slot walks one sequence after another in chunks of ``chunk_len`` representations
    (default: the training seq_len), with the recurrent state carried between chunks and reset at
    each sequence start, exactly as one pass over the whole sequence.

    Args:
        module_or_ckpt: a DetectionModule or a checkpoint path.
        pre_root: preprocessed dataset root; split: its split folder ("val", "test").
        batch_size: sequences processed in parallel.
        max_sequences: only the first N sequences (sorted by name).
        all_reprs: predict at every representation, not only at labelled ones.
        device: "cpu", "cuda", ... (default: CUDA when available).
    Returns:
        (names, gt_list, dt_list): per sequence, the name, the ground truth (every label frame, BBOX
        array in representation pixels) and the detections (BBOX array, t = representation end time,
        score in class_confidence).
    """
    module = load_module(module_or_ckpt)
    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    representation = module.data_cfg.representation
    meta = read_split_meta(pre_root, split, representation)
    if max_sequences is not None:
        meta = meta[:max_sequences]
    if not meta:
        raise FileNotFoundError(f"{Path(pre_root) / split}: no preprocessed sequences found")
    store = SequenceStore([m.path for m in meta], representation)
    frame_shape = (module.in_channels, *module.input_hw)
    ds = StreamDataset(store, [m.num_reprs for m in meta], frame_shape, seq_len=chunk_len or module.data_cfg.seq_len,
                       num_slots=min(batch_size, len(meta)), shuffle=False)
    was_training = module.training
    module.eval()
    module.to(dev)
    head_cfg = module.model_cfg.head
    states = StreamStates()
    dets: dict[str, list[np.ndarray]] = {m.name: [] for m in meta}
    batches = iter(ds)
    if progress:
        from rich.progress import track

        batches = track(batches, total=ds.num_batches(), description=f"predict {split}")
    for batch in batches:
        frames = batch["frames"].to(dev)
        select = (batch["t_us"] >= 0) if all_reprs else batch["label_mask"]
        slots = batch["stream_slot"].tolist()
        st = states.gather(slots, batch["is_first"].tolist(), dev)
        if not bool(select.any()):
            states.scatter(slots, module.model(frames, st, None).states)
            continue
        out = module.model(frames, st, select.to(dev))
        states.scatter(slots, out.states)
        found = module.model.postprocess(out.head, conf_threshold=head_cfg.conf_threshold,
                                         nms_iou=head_cfg.nms_iou, max_detections=head_cfg.max_detections)
        for (b, t), d in zip(select.nonzero().tolist(), found):
            d = d.float().cpu().numpy()
            dets[batch["seq_names"][b]].append(
                boxes_from_detections(d[:, :4], d[:, 4], d[:, 5].astype(np.int64), int(batch["t_us"][b, t])))
    module.train(was_training)
    names = [m.name for m in meta]
    gt_list = [np.asarray(store.get(i).all_labels(in_repr_pixels=True)) for i in range(len(meta))]
    dt_list = [np.concatenate(dets[n]) if dets[n] else np.zeros(0, dtype=BBOX_DTYPE) for n in names]
    return names, gt_list, dt_list
