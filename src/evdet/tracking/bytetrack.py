"""ByteTrack-style multi-object tracking by detection (Zhang et al., ECCV 2022).

Per frame: predict every track with a constant-velocity Kalman filter, then associate in stages:
1. high-score detections with tracked and lost tracks (IoU, optionally weighted by the score);
2. low-score detections with the tracked tracks left over (recovers occluded / faint objects);
3. remaining high-score detections with unconfirmed tracks (born in the previous frame).
Unmatched high-score detections above ``new_track_score`` start unconfirmed tracks; a track is
reported from its second matched frame on (or from the first frame of the sequence). Lost tracks
are dropped after ``max_lost_us``. Association is class-aware: a detection never joins a track of
another class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np

from evdet.data.labels import empty_boxes
from evdet.tracking import kalman
from evdet.tracking.assignment import linear_assignment
from evdet.tracking.boxes import as_bbox_array, iou_xywh, xywh
from evdet.utils.value_checks import NON_NEGATIVE, PROBABILITY, ConfigValueError, Range, check_fields


@dataclass(frozen=True)
class TrackerConfig:
    """ByteTrack settings (defaults are ByteTrack's MOT17 ones, times for event data)."""

    high_score: float = 0.5           # first-stage detections: score >= high_score
    low_score: float = 0.1            # second-stage detections: low_score <= score < high_score
    new_track_score: float = 0.6      # an unmatched detection starts a track from this score
    match_iou_high: float = 0.2       # least (score-weighted) IoU of a first-stage pair
    match_iou_low: float = 0.5        # least IoU of a second-stage pair
    match_iou_unconfirmed: float = 0.3  # least (score-weighted) IoU with an unconfirmed track
    fuse_score: bool = True           # weight first/third-stage IoU by the detection score
    max_lost_us: int = 1_000_000      # a lost track is dropped after this long without a match
    class_aware: bool = True          # False: any class may join a track (track takes the new class)
    output_box: Literal["detection", "filtered"] = "detection"  # box reported for a matched track

    def __post_init__(self) -> None:
        iou = Range(0.0, 1.0, lo_open=True)
        check_fields(self, high_score=PROBABILITY, low_score=PROBABILITY, new_track_score=PROBABILITY,
                     match_iou_high=iou, match_iou_low=iou, match_iou_unconfirmed=iou, max_lost_us=NON_NEGATIVE)
        if self.low_score > self.high_score:
            raise ConfigValueError("low_score", f"must be <= high_score ({self.high_score}), got {self.low_score}")
        if self.output_box not in ("detection", "filtered"):
            raise ValueError(f"output_box must be 'detection' or 'filtered', got {self.output_box!r}")


class _Track:
    """One tracked object: Kalman state plus bookkeeping."""

    def __init__(self, track_id: int, det: np.void, t_us: int, confirmed: bool):
        self.id = track_id
        self.class_id = int(det["class_id"])
        self.mean, self.cov = kalman.initiate(_cxcywh(det))
        self.last_t_us = t_us
        self.confirmed = confirmed
        self.det = det

    def predict(self, dt_steps: float) -> None:
        self.mean, self.cov = kalman.predict(self.mean, self.cov, dt_steps)

    def update(self, det: np.void, t_us: int) -> None:
        self.mean, self.cov = kalman.update(self.mean, self.cov, _cxcywh(det))
        self.class_id = int(det["class_id"])
        self.last_t_us = t_us
        self.det = det

    def box_xywh(self) -> np.ndarray:
        cx, cy, w, h = self.mean[:4]
        return np.array([cx - w / 2, cy - h / 2, w, h])


def _cxcywh(det: np.void) -> np.ndarray:
    return np.array([det["x"] + det["w"] / 2, det["y"] + det["h"] / 2, det["w"], det["h"]], dtype=np.float64)


class ByteTracker:
    """Online tracker of one sequence; call ``step`` once per frame in time order.

    Args:
        config: association thresholds and lifetimes.
        frame_step_us: nominal time between frames; Kalman steps are ``dt / frame_step_us``.
    """

    def __init__(self, config: TrackerConfig = TrackerConfig(), frame_step_us: float = 50_000.0):
        if frame_step_us <= 0:
            raise ValueError(f"frame_step_us must be positive, got {frame_step_us}")
        self.cfg = config
        self.frame_step_us = float(frame_step_us)
        self.tracked: list[_Track] = []     # matched in the last frame (confirmed or not)
        self.lost: list[_Track] = []        # confirmed, currently unmatched
        self._next_id = 1
        self._last_t_us: int | None = None
        self._first_frame = True

    def step(self, t_us: int, dets: np.ndarray) -> np.ndarray:
        """Associate the detections of the frame at ``t_us``.

        Args:
            dets: ``BBOX_DTYPE`` detections of this frame (score in ``class_confidence``).
        Returns:
            ``BBOX_DTYPE`` boxes of the confirmed tracks matched in this frame, ``track_id`` set.
        """
        cfg = self.cfg
        t_us = int(t_us)
        if self._last_t_us is not None and t_us <= self._last_t_us:
            raise ValueError(f"frames must come in increasing time: {t_us} after {self._last_t_us}")
        dt_steps = 0.0 if self._last_t_us is None else (t_us - self._last_t_us) / self.frame_step_us
        self._last_t_us = t_us
        # drop tracks unmatched for too long before associating: frames may be far apart
        self.tracked = [tr for tr in self.tracked if t_us - tr.last_t_us <= cfg.max_lost_us]
        self.lost = [tr for tr in self.lost if t_us - tr.last_t_us <= cfg.max_lost_us]
        for tr in self.tracked + self.lost:
            tr.predict(dt_steps)

        score = dets["class_confidence"]
        high = dets[score >= cfg.high_score]
        low = dets[(score >= cfg.low_score) & (score < cfg.high_score)]
        confirmed = [tr for tr in self.tracked if tr.confirmed]
        unconfirmed = [tr for tr in self.tracked if not tr.confirmed]
        pool = confirmed + self.lost

        # 1. high-score detections with tracked and lost tracks
        m1, u_pool, u_high = self._associate(pool, high, cfg.match_iou_high, cfg.fuse_score)
        matched = [(pool[i], high[j]) for i, j in m1]
        # 2. low-score detections with tracks that were tracked (not lost) and are still unmatched
        rest = [pool[i] for i in u_pool if pool[i] in confirmed]
        m2, u_rest, _ = self._associate(rest, low, cfg.match_iou_low, fuse=False)
        matched += [(rest[i], low[j]) for i, j in m2]
        newly_lost = [rest[i] for i in u_rest]
        # 3. remaining high-score detections with unconfirmed tracks
        high_left = high[u_high]
        m3, _, u_new = self._associate(unconfirmed, high_left, cfg.match_iou_unconfirmed, cfg.fuse_score)
        for i, j in m3:
            unconfirmed[i].confirmed = True
        matched += [(unconfirmed[i], high_left[j]) for i, j in m3]

        for tr, det in matched:
            tr.update(det, t_us)
        matched_tracks = [tr for tr, _ in matched]
        # 4. new tracks (confirmed at once on the sequence's first frame, as ByteTrack does)
        born = [self._new_track(d, t_us) for d in high_left[u_new] if d["class_confidence"] >= cfg.new_track_score]
        self.lost = [tr for tr in self.lost if tr not in matched_tracks] + newly_lost
        self.tracked = matched_tracks + born
        self._first_frame = False
        return self._output([tr for tr in self.tracked if tr.confirmed], t_us)

    def _new_track(self, det: np.void, t_us: int) -> _Track:
        tr = _Track(self._next_id, det, t_us, confirmed=self._first_frame)
        self._next_id += 1
        return tr

    def _associate(self, tracks: list[_Track], dets: np.ndarray, min_iou: float, fuse: bool):
        if not tracks or dets.size == 0:
            return np.zeros((0, 2), dtype=np.int64), np.arange(len(tracks)), np.arange(dets.size)
        sim = iou_xywh(np.stack([tr.box_xywh() for tr in tracks]), xywh(dets))
        if fuse:
            sim = sim * dets["class_confidence"][None, :].astype(np.float64)
        if self.cfg.class_aware:
            same = np.array([tr.class_id for tr in tracks])[:, None] == dets["class_id"][None, :].astype(np.int64)
            sim = np.where(same, sim, -np.inf)
        return linear_assignment(1.0 - sim, max_cost=1.0 - min_iou)

    def _output(self, tracks: list[_Track], t_us: int) -> np.ndarray:
        out = empty_boxes(len(tracks))
        for k, tr in enumerate(tracks):
            out[k] = tr.det
            if self.cfg.output_box == "filtered":
                out[k]["x"], out[k]["y"], out[k]["w"], out[k]["h"] = tr.box_xywh()
            out[k]["track_id"] = tr.id
            out[k]["t"] = t_us
        return out


def frame_step_us(t_us: np.ndarray, default_us: float = 50_000.0) -> float:
    """Median time between distinct frame times (``default_us`` with fewer than two frames)."""
    gaps = np.diff(np.unique(np.asarray(t_us, dtype=np.int64)))
    return float(np.median(gaps)) if gaps.size else float(default_us)


def track_sequence(dets: np.ndarray, config: TrackerConfig = TrackerConfig(),
                   frame_step: float | None = None) -> np.ndarray:
    """Track the detections of one sequence.

    Args:
        dets: detections of every frame (``BBOX_DTYPE`` or any structured array with its fields,
            sorted by ``t`` or not); a frame is one distinct timestamp. Scores in ``class_confidence``.
        config: tracker settings.
        frame_step: nominal frame period in microseconds (default: median gap between frames).
    Returns:
        ``BBOX_DTYPE`` tracked boxes (confirmed tracks), sorted by time, ``track_id`` >= 1.
    """
    dets = as_bbox_array(dets, "detections")
    tracker = ByteTracker(config, frame_step_us=frame_step or frame_step_us(dets["t"]))
    times, starts = np.unique(dets["t"], return_index=True)
    bounds = np.append(starts, dets.size)
    out = [tracker.step(int(t), dets[bounds[k]:bounds[k + 1]]) for k, t in enumerate(times)]
    return np.concatenate(out) if out else empty_boxes(0)
