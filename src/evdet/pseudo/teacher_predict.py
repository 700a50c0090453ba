"""A teacher's detections at every representation of one sequence, forward or backward in time.

Backward = the model run on the time-reversed sequence: representations in reverse order and, for
the stacked histogram, each window reversed too (time bin b -> nbins-1-b, polarity p -> 1-p, which is
what reversing the events' time does to the histogram). Other representations are fed in reverse
order unchanged. In reversed time the window of representation k (covering (t_{k-1}, t_k]) ends at
t_{k-1}, so its detections describe the scene at t_{k-1} and are stamped with the time of
representation k - 1 (representation 0's are dropped).
"""

from __future__ import annotations

from typing import Optional

import numpy as np
import torch

from evdet.data.labels import DETECTION_DTYPE, boxes_from_detections


def reversed_channel_order(representation: str, channels: int) -> Optional[np.ndarray]:
    """Channel permutation that time-reverses one stacked histogram window (None for others).

    Channels are polarity-major: c = p * nbins + b; reversed c' = (1 - p) * nbins + (nbins - 1 - b).
    """
    from evdet.events import parse_representation_name

    kind, params = parse_representation_name(representation)
    nbins = params.get("nbins")
    if kind != "stacked_histogram" or not nbins or channels != 2 * nbins:
        return None
    return np.array([(1 - p) * nbins + (nbins - 1 - b) for p in (0, 1) for b in range(nbins)], dtype=np.int64)


@torch.no_grad()
def sequence_detections(module, seq, *, reverse: bool = False, chunk_len: int = 16, conf_threshold: float = 0.05,
                        device: Optional[torch.device] = None) -> np.ndarray:
    """Detections of a ``DetectionModule`` at every representation of a ``PreprocessedSequence``.

    Args:
        module: the teacher (eval mode is set here and restored).
        reverse: run on the time-reversed sequence (see the module docstring).
        chunk_len: representations per forward call (the state is carried between calls).
        conf_threshold: keep detections with obj x cls >= this.
    Returns:
        ``DETECTION_DTYPE`` array in representation pixels, t = representation end time, obj x cls in
        ``class_confidence``, class probability in ``class_score``; sorted by t.
    """
    dev = device or next(module.parameters()).device
    model, head_cfg = module.model, module.model_cfg.head
    was_training = model.training
    model.eval()
    n = int(seq.num_reprs)
    order = np.arange(n)[::-1] if reverse else np.arange(n)
    perm = reversed_channel_order(seq.representation, int(seq.channels)) if reverse else None
    times = np.asarray(seq.repr_timestamps_us, np.int64)
    found, states = [], None
    for start in range(0, n, chunk_len):
        idx = order[start:start + chunk_len]
        lo, hi = int(idx.min()), int(idx.max()) + 1
        block = seq.reprs(lo, hi)[idx - lo]
        if perm is not None:
            block = block[:, perm]
        frames = torch.from_numpy(np.ascontiguousarray(block)).float().unsqueeze(0).to(dev)
        out = model(frames, states)
        states = out.states
        dets = model.postprocess(out.head, conf_threshold=conf_threshold, nms_iou=head_cfg.nms_iou,
                                 max_detections=head_cfg.max_detections)
        for r, d in zip(idx.tolist(), dets):
            stamp = r - 1 if reverse else r
            if stamp < 0:
                continue
            d = d.float().cpu().numpy()
            found.append(boxes_from_detections(d[:, :4], d[:, 4], d[:, 5].astype(np.int64), int(times[stamp]),
                                               class_scores=d[:, 6]))
    model.train(was_training)
    if not found:
        return np.zeros(0, dtype=DETECTION_DTYPE)
    out_arr = np.concatenate(found)
    return out_arr[np.argsort(out_arr["t"], kind="stable")]
