"""The analysis rate: how many camera frames per second a live stream analyses, apart from the camera's rate.

A stream analyses at most ``fps`` frames per second (the dashboard's ``analysis_fps`` setting): a frame is *due*
when its capture time has reached the next slot of a grid ``1 / fps`` apart (up to :data:`EARLY_SLACK` of a slot
early), and each due frame moves the grid one slot on (after a pause of more than one slot the grid restarts at
the frame). Frames between slots are not
analysed and not stored, and they are **not** counted anywhere: ``skipped_frames`` keeps its meaning, due frames
that were not analysed because analysis was busy (``sessions.lifecycle.add_frame_counts``), and ``refused_frames``
the analysed frames the recorder's queue refused. A camera at or below the rate has every frame due.

Stored rows therefore come at about ``min(fps, camera fps)`` a second, unevenly spaced when the camera's rate is
not a multiple of ``fps`` (15 fps at 10 Hz: 2 of every 3 frames). Per-second aggregates are means over the
analysed frames of each second, so they estimate the same quantity from fewer frames: :func:`rate_effect` measures
by how much, on a table analysed at every frame, by keeping the rows :func:`at_rate` keeps (the same grid as live
streams). Raw probabilities of a frame do not depend on which other frames were analysed (every analysed frame is
detected again with ``detect_every=1``), so this equals analysing at that rate; the smoothed values would not.

Live streams also detect faces less often than they classify them: every :data:`DEFAULT_DETECT_EVERY`-th analysed
frame (the dashboard's ``detect_every`` setting; 5 detections a second at 10 Hz, as py-feat's live mode decouples
detection from display), with the IoU-tracked boxes of the last detection reused in between; every analysed frame
is still classified and stored. A face that moves is cropped from a box up to one analysed frame old, and a face
that leaves the picture is still looked for in its last box until the next detection (a bin's face-present rate
can be off by one analysed frame). :func:`per_second_difference` measures what this and the rate do together
against every frame detected and analysed (``tests/sessions/test_analysis_rate.py``, on the real clips).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from fer_core.emotions import EMOTIONS

#: Frames analysed per second per live stream unless the ``analysis_fps`` setting says otherwise.
DEFAULT_ANALYSIS_FPS = 10.0
#: Live streams detect faces on every n-th analysed frame unless the ``detect_every`` setting says otherwise.
DEFAULT_DETECT_EVERY = 2
#: A frame this share of a slot early still takes it: a camera at the analysis rate whose timestamps jitter by a
#: few ms keeps every frame (the grid moves one slot per due frame, so the rate is kept on average).
EARLY_SLACK = 0.25


def check_fps(fps: float | None, name: str = "analysis_fps") -> float | None:
    """``fps`` as a float (None or 0: no cap, every frame), else ``ValueError`` naming ``name``."""
    if fps is None:
        return None
    try:
        value = float(fps)
    except (TypeError, ValueError):
        raise ValueError(f"{name} has to be a number of frames per second; got {fps!r}") from None
    if not math.isfinite(value) or value < 0 or value > 120:
        raise ValueError(f"{name} has to be between 0 (every frame) and 120 frames per second; got {fps!r}")
    return value or None


class AnalysisRate:
    """Which frames of one stream are due for analysis at ``fps`` (None: every frame).

    Parameters
    ----------
    fps : float or None
        Largest number of frames analysed per second; None or 0 for every frame.

    Raises
    ------
    ValueError
        If ``fps`` is negative, above 120 or not a number.
    """

    def __init__(self, fps: float | None = DEFAULT_ANALYSIS_FPS) -> None:
        self.fps = check_fps(fps)
        self._interval = 0.0 if self.fps is None else 1.0 / self.fps
        self._next: float | None = None

    def due(self, time_s: float) -> bool:
        """Whether the frame captured at ``time_s`` (seconds, any origin, non-decreasing) is due; a due frame takes its
        slot, so call it once per frame, oldest first."""
        if self.fps is None:
            return True
        time_s = float(time_s)
        if self._next is not None and time_s < self._next - EARLY_SLACK * self._interval:
            return False
        slot = self._next if self._next is not None and time_s < self._next + self._interval else time_s
        self._next = slot + self._interval
        return True

    def count_due(self, times_s) -> int:
        """How many of the frames captured at ``times_s`` (oldest first) are due (each due frame takes its slot)."""
        return sum(self.due(t) for t in times_s)


def at_rate(observations: pd.DataFrame, fps: float | None) -> pd.DataFrame:
    """The rows of the frames a live stream at ``fps`` would have analysed (:class:`AnalysisRate` over ``time_s``).

    Parameters
    ----------
    observations : pandas.DataFrame
        One session's observations analysed at every frame (``OBSERVATION_COLUMNS``; at least ``frame`` and
        ``time_s``, seconds), in frame order; all rows of a frame are kept or left out together.
    fps : float or None
        The analysis rate; None or 0 keeps every row.

    Returns
    -------
    pandas.DataFrame
        The kept rows, index and columns unchanged.

    Raises
    ------
    ValueError
        A bad ``fps``, or ``frame``/``time_s`` missing.
    """
    missing = [c for c in ("frame", "time_s") if c not in observations.columns]
    if missing:
        raise ValueError(f"observations has to have columns frame and time_s; missing {missing}")
    rate = AnalysisRate(fps)
    frames = observations.drop_duplicates("frame")
    kept = {frame for frame, t in zip(frames["frame"], frames["time_s"], strict=True) if rate.due(t)}
    return observations[observations["frame"].isin(kept)]


def per_second_difference(reference: pd.DataFrame, other: pd.DataFrame, *, bin_s: float = 1.0) -> dict:
    """How far the per-second mean probabilities of ``other`` are from those of ``reference`` (the same clip).

    Parameters
    ----------
    reference, other : pandas.DataFrame
        Observations of the same source (``OBSERVATION_COLUMNS``, ``time_s`` in seconds on the same clock), e.g.
        every frame analysed, and the frames a live stream would analyse with its settings.
    bin_s : float, default 1.0
        Bin width (seconds) of the aggregates (:func:`sessions.aggregate.per_bin`).

    Returns
    -------
    dict
        ``frames_per_bin`` (mean analysed frames per bin of ``other``), ``bins`` (bins with a face in both),
        ``mean_abs_diff``, ``p95_abs_diff``, ``max_abs_diff`` (absolute difference of a bin's mean probability of an
        emotion, over all those bins and the seven emotions; probability units, 0 to 1; NaN without such bins) and
        ``face_present_max_diff`` (of the bins' face-present rate).

    Raises
    ------
    ValueError, KeyError
        As :func:`sessions.aggregate.per_bin` raises for a table without its columns or a bad ``bin_s``.
    """
    from sessions.aggregate import per_bin

    full = per_bin(reference, bin_s).set_index("time_s")
    sub = per_bin(other, bin_s).set_index("time_s")
    both = full.index.intersection(sub.index)
    diff = (sub.loc[both, list(EMOTIONS)] - full.loc[both, list(EMOTIONS)]).abs().to_numpy().ravel()
    diff = diff[~np.isnan(diff)]
    return {
        "frames_per_bin": float(sub["n_frames"].mean()), "bins": int(len(diff) // len(EMOTIONS)),
        "mean_abs_diff": float(diff.mean()) if diff.size else math.nan,
        "p95_abs_diff": float(np.percentile(diff, 95)) if diff.size else math.nan,
        "max_abs_diff": float(diff.max()) if diff.size else math.nan,
        "face_present_max_diff": float((sub.loc[both, "face_present_rate"] - full.loc[both, "face_present_rate"]).abs().max()),
    }  # fmt: skip


def rate_effect(observations: pd.DataFrame, rates=(15.0, 10.0, 5.0), *, bin_s: float = 1.0) -> pd.DataFrame:
    """How much the per-second mean probabilities change when a stream is analysed at each of ``rates``.

    Parameters
    ----------
    observations : pandas.DataFrame
        One session's observations analysed at every frame (see :func:`at_rate`).
    rates : sequence of float
        Analysis rates (frames per second) to compare with every frame.
    bin_s : float, default 1.0
        Bin width (seconds) of the aggregates (:func:`sessions.aggregate.per_bin`).

    Returns
    -------
    pandas.DataFrame
        One row per rate: ``fps`` and the figures of :func:`per_second_difference` against every frame.
    """
    return pd.DataFrame([{"fps": float(fps), **per_second_difference(observations, at_rate(observations, fps),
                                                                        bin_s=bin_s)} for fps in rates])  # fmt: skip
