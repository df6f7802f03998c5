"""IoU tracking of face boxes across frames and time-constant EMA smoothing of probabilities.

IoU tracking: each new box takes the id of the live track it overlaps most (greedy matching by
intersection over union, as in Bochinski et al., 2017, "High-Speed Tracking-by-Detection Without
Using Image Information"); unmatched boxes start new tracks, and tracks unseen for longer than
``max_age_s`` seconds end.

Smoothing: an exponential moving average whose weight depends on the time since the previous
update, ``alpha = 1 - exp(-dt / tau)``, so a time constant ``tau`` in seconds gives the same
smoothing at 10, 30 or 60 frames/s and across dropped frames.
"""

from __future__ import annotations

import math

import numpy as np


def _as_boxes(boxes) -> np.ndarray:
    """(N, 4+) array-like -> (N, 4) float64; empty input -> (0, 4)."""
    array = np.asarray(boxes, dtype=np.float64)
    return np.zeros((0, 4)) if array.size == 0 else np.atleast_2d(array)[:, :4]


def iou(boxes_a, boxes_b) -> np.ndarray:
    """Intersection over union of every pair of boxes.

    Parameters
    ----------
    boxes_a : array-like of shape (N, 4)
        Boxes ``[x, y, w, h]`` in pixels (extra columns, e.g. scores, are ignored).
    boxes_b : array-like of shape (M, 4)

    Returns
    -------
    ndarray of shape (N, M), dtype float64
        IoU in [0, 1]; 0 for boxes of zero area.
    """
    a, b = _as_boxes(boxes_a), _as_boxes(boxes_b)
    ax0, ay0, ax1, ay1 = a[:, 0:1], a[:, 1:2], a[:, 0:1] + a[:, 2:3], a[:, 1:2] + a[:, 3:4]
    bx0, by0, bx1, by1 = b[:, 0], b[:, 1], b[:, 0] + b[:, 2], b[:, 1] + b[:, 3]
    inter_w = np.clip(np.minimum(ax1, bx1) - np.maximum(ax0, bx0), 0, None)
    inter_h = np.clip(np.minimum(ay1, by1) - np.maximum(ay0, by0), 0, None)
    inter = inter_w * inter_h
    union = a[:, 2:3] * a[:, 3:4] + (b[:, 2] * b[:, 3])[None, :] - inter
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(union > 0, inter / union, 0.0)


def ema_alpha(dt_s: float, time_constant_s: float) -> float:
    """Weight of a new sample in a time-constant EMA, ``1 - exp(-dt / tau)``.

    Parameters
    ----------
    dt_s : float
        Seconds since the previous sample (>= 0).
    time_constant_s : float
        Time constant ``tau`` in seconds (>= 0); 0 means no smoothing (alpha = 1).
    """
    if time_constant_s <= 0:
        return 1.0
    return 1.0 - math.exp(-max(dt_s, 0.0) / time_constant_s)


class IouTracker:
    """Give face boxes ids that stay the same from frame to frame.

    Parameters
    ----------
    iou_threshold : float, default 0.3
        Smallest IoU for a box to continue a track.
    max_age_s : float, default 1.0
        Seconds a track survives without a matching box.

    Attributes
    ----------
    tracks_ : dict of int -> (ndarray (4,), float)
        Live tracks: last box and the time it was seen.
    """

    def __init__(self, *, iou_threshold: float = 0.3, max_age_s: float = 1.0):
        if not 0.0 < iou_threshold <= 1.0:
            raise ValueError(f"iou_threshold has to be in (0, 1]; got {iou_threshold}")
        if max_age_s < 0:
            raise ValueError(f"max_age_s has to be >= 0 seconds; got {max_age_s}")
        self.iou_threshold = iou_threshold
        self.max_age_s = max_age_s
        self.tracks_: dict[int, tuple[np.ndarray, float]] = {}
        self._next_id = 0
        self._last_time: float | None = None

    def update(self, boxes, time_s: float) -> np.ndarray:
        """Match this frame's boxes to the live tracks.

        Parameters
        ----------
        boxes : array-like of shape (N, 4) or (N, 5)
            Boxes ``[x, y, w, h(, score)]`` in pixels, best first.
        time_s : float
            Frame time in seconds; must not decrease between calls.

        Returns
        -------
        ndarray of shape (N,), dtype int64
            Track id of each box (ids are never reused).

        Raises
        ------
        ValueError
            If ``time_s`` is earlier than the previous call's.
        """
        time_s = float(time_s)
        if self._last_time is not None and time_s < self._last_time:
            raise ValueError(f"time_s has to be non-decreasing; got {time_s} after {self._last_time}")
        self._last_time = time_s
        self.tracks_ = {i: t for i, t in self.tracks_.items() if time_s - t[1] <= self.max_age_s}
        boxes = _as_boxes(boxes)
        ids = np.full(len(boxes), -1, dtype=np.int64)
        track_ids = list(self.tracks_)
        if track_ids and len(boxes):
            overlap = iou(boxes, np.stack([self.tracks_[i][0] for i in track_ids]))
            # Greedy: best-overlapping pairs first.
            for flat in np.argsort(-overlap, axis=None, kind="stable"):
                row, col = divmod(int(flat), len(track_ids))
                if overlap[row, col] < self.iou_threshold:
                    break
                if ids[row] == -1 and track_ids[col] not in ids:
                    ids[row] = track_ids[col]
        for row in range(len(boxes)):
            if ids[row] == -1:
                ids[row] = self._next_id
                self._next_id += 1
            self.tracks_[int(ids[row])] = (boxes[row].copy(), time_s)
        return ids


class EmaSmoother:
    """Per-track exponential moving average of probability vectors with a time constant.

    Parameters
    ----------
    time_constant_s : float, default 0.5
        ``tau`` in seconds; 0 disables smoothing.

    Attributes
    ----------
    state_ : dict of int -> (ndarray (K,), float)
        Per track: smoothed vector and the time of its last update.
    """

    def __init__(self, *, time_constant_s: float = 0.5):
        if time_constant_s < 0:
            raise ValueError(f"time_constant_s has to be >= 0 seconds; got {time_constant_s}")
        self.time_constant_s = time_constant_s
        self.state_: dict[int, tuple[np.ndarray, float]] = {}

    def update(self, track_ids, values, time_s: float) -> np.ndarray:
        """Fold this frame's values into each track's average.

        Parameters
        ----------
        track_ids : array-like of shape (N,)
        values : ndarray of shape (N, K)
            E.g. probabilities (N, 7) float32.
        time_s : float
            Frame time in seconds.

        Returns
        -------
        ndarray of shape (N, K), dtype float32
            Smoothed values; a new track starts at its first value.
        """
        values = np.asarray(values, dtype=np.float32)
        out = np.empty_like(values)
        for row, track in enumerate(np.asarray(track_ids).tolist()):
            previous = self.state_.get(track)
            if previous is None:
                smoothed = values[row].copy()
            else:
                alpha = ema_alpha(float(time_s) - previous[1], self.time_constant_s)
                smoothed = previous[0] + np.float32(alpha) * (values[row] - previous[0])
            self.state_[track] = (smoothed, float(time_s))
            out[row] = smoothed
        return out

    def retain(self, track_ids) -> None:
        """Forget every track not in ``track_ids`` (tracks the tracker has ended)."""
        keep = set(np.asarray(list(track_ids)).tolist())
        self.state_ = {i: s for i, s in self.state_.items() if i in keep}
