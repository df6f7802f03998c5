"""Long videos in time ranges: plan them at key frames, analyse each on its own, stitch the results in order.

A range starts at a key frame, so a worker can seek straight to it (PyAV/FFmpeg ``seek`` to the key frame at or
before a time) and decode from there without the frames before it. :func:`plan_ranges` reads the container's
packets (demuxing only, no decoding) to find the key frames and the presentation time of every frame: range
``k + 1`` starts at the first key frame at least ``split_s`` seconds after the start of range ``k``, so every
range but the last lasts at least ``split_s`` seconds and ends just before the next range's first frame. Each
range knows the index of its first frame in the whole video, so frame indices and times come out as in an
analysis of the whole video (decoding every frame, detection on every frame: the ranges' rows are those of the
whole video, row for row).

Tracking ids across ranges (:class:`RangeStitcher`): each range is analysed with a fresh tracker, so its ids
start at 0. When ranges are stitched in order, the faces of a range's first frame with a face are matched to the
tracks of the ranges before it that are still alive at that time, with the same IoU tracker the analysis uses
(:class:`fer_core.tracking.IouTracker`: greedy IoU matching, same threshold and maximum age), and continue their
ids; every other track of the range gets a new id, above every id handed out before. So a face in view across
a boundary keeps its id, and ids never collide. (They differ from an analysis of the whole video only when a
face that was in view before a boundary reappears within the tracker's maximum age but after the range's first
frame with a face: the whole-video tracker would give it its old id, the stitched one a new id.)
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd

from fer_core.analyzer import FrameAnalyzer
from fer_core.emotions import BOX_COLUMNS, NO_FACE_ID
from fer_core.tracking import IouTracker
from fer_core.video import VideoDecodeError, _open_video, analyze_video


class VideoRange(NamedTuple):
    """One time range of a video, analysed on its own.

    Attributes
    ----------
    index : int
        Position of the range in its video (0-based).
    start_s : float
        Decoder time (seconds) of the range's first frame, a key frame; 0.0 for the first range.
    end_s : float or None
        Upper bound in seconds (inclusive), halfway between the range's last frame and the next range's first;
        None for the last range (to the end of the video).
    first_frame : int
        Index, in the whole video (presentation order), of the range's first frame.
    n_frames : int
        Frames in the range according to the container's packets (0 when the video was not scanned).
    """

    index: int
    start_s: float
    end_s: float | None
    first_frame: int
    n_frames: int = 0


def plan_ranges(path: str | Path, split_s: float | None) -> list[VideoRange]:
    """Split a video into ranges of at least ``split_s`` seconds that start at key frames.

    Parameters
    ----------
    path : str or Path
        Video file.
    split_s : float or None
        Shortest range in seconds; None (or a video shorter than it) gives one range, the whole video, without
        reading the file.

    Returns
    -------
    list of VideoRange
        In order; range ``k + 1`` starts at the first key frame at least ``split_s`` seconds after the start of
        range ``k``, so a video with a key frame every 3 s split at 5 s gives ranges starting at 0, 6, 12... s.

    Raises
    ------
    VideoDecodeError
        The file is missing or holds no video stream (or its packets cannot be read).
    ValueError
        ``split_s`` is not a positive number of seconds.
    """
    if split_s is None:
        return [VideoRange(0, 0.0, None, 0)]
    if not (isinstance(split_s, int | float) and math.isfinite(split_s) and split_s > 0):
        raise ValueError(f"split_s has to be a positive number of seconds; got {split_s!r}")
    path = Path(path)
    times, keys = _frame_times(path)
    if len(times) == 0:
        return [VideoRange(0, 0.0, None, 0)]
    starts = [0]  # positions in `times` (presentation order) of each range's first frame
    for key_time, position in zip(keys, np.searchsorted(times, keys), strict=True):
        if key_time >= times[starts[-1]] + split_s and position > starts[-1]:
            starts.append(int(position))
    ranges = []
    for k, position in enumerate(starts):
        last = k == len(starts) - 1
        next_position = len(times) if last else starts[k + 1]
        end_s = None if last else float((times[next_position - 1] + times[next_position]) / 2)
        start_s = 0.0 if k == 0 else float(times[position])
        ranges.append(VideoRange(k, start_s, end_s, position, next_position - position))
    return ranges


def _frame_times(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Sorted presentation times (seconds, as the decoder reports them) of every video packet, and of the key ones.

    Times are computed as PyAV's ``Frame.time`` computes them (``float(pts) * num / den``) minus the stream's
    start time, exactly as :func:`fer_core.video.analyze_video` reads them.
    """
    import av

    container = _open_video(path)
    try:
        stream = container.streams.video[0]
        base = stream.time_base
        offset_s = float(stream.start_time * base) if stream.start_time is not None else 0.0
        pts, keys = [], []
        try:
            for packet in container.demux(stream):
                if packet.pts is None:
                    continue
                time_s = float(packet.pts) * base.numerator / base.denominator - offset_s
                pts.append(time_s)
                if packet.is_keyframe:
                    keys.append(time_s)
        except (av.FFmpegError, OSError) as exc:
            raise VideoDecodeError(f"{path}: its packets cannot be read ({exc})") from exc
    finally:
        container.close()
    return np.sort(np.asarray(pts, dtype=np.float64)), np.sort(np.asarray(keys, dtype=np.float64))


def analyze_range(
    path: str | Path,
    video_range: VideoRange,
    *,
    analyzer: FrameAnalyzer,
    progress: Callable[[float], None] | None = None,
) -> pd.DataFrame:
    """Analyse one range of a video (seeking to its start) with :func:`fer_core.video.analyze_video`.

    Parameters
    ----------
    path : str or Path
        Video file.
    video_range : VideoRange
        From :func:`plan_ranges`.
    analyzer : FrameAnalyzer
        Reset first: tracking ids start at 0 in every range (:class:`RangeStitcher` makes them consistent).
    progress : callable, optional
        Called with the fraction of the range done (0-1).

    Returns
    -------
    pandas.DataFrame
        As :func:`fer_core.video.analyze_video`: columns ``OBSERVATION_COLUMNS``, ``frame`` the index in the
        whole video, ``time_s`` the decoder's time; ``attrs`` ``decoded_s``, ``duration_s`` and, when decoding
        stopped early, ``decode_error``.

    Raises
    ------
    VideoDecodeError
        The file is missing or no frame of the range can be decoded.
    """
    first = video_range.index == 0
    return analyze_video(
        path,
        analyzer=analyzer,
        start_s=None if first else video_range.start_s,
        end_s=video_range.end_s,
        first_frame=None if first else video_range.first_frame,
        progress=progress,
        show_progress=False,
    )


class RangeStitcher:
    """Join the observation tables of a video's ranges, in order, into one with consistent tracking ids.

    Parameters
    ----------
    iou_threshold : float, default 0.3
        Smallest IoU for a face of a range's first frame to continue a track of the ranges before it (the
        analyzer's default).
    max_age_s : float, default 1.0
        Seconds a track survives unseen (the analyzer's default).

    Attributes
    ----------
    next_id_ : int
        Smallest id not handed out yet.
    tracks_ : dict of int -> (ndarray (4,), float)
        Per stitched id: its last box ``(x, y, w, h)`` in pixels and the time (seconds) it was last seen.
    """

    def __init__(self, *, iou_threshold: float = 0.3, max_age_s: float = 1.0):
        self.iou_threshold = iou_threshold
        self.max_age_s = max_age_s
        self.next_id_ = 0
        self.tracks_: dict[int, tuple[np.ndarray, float]] = {}

    def add(self, table: pd.DataFrame) -> pd.DataFrame:
        """Renumber the tracking ids of the next range's table (range-local ids from 0) and return it.

        Parameters
        ----------
        table : pandas.DataFrame
            Columns ``OBSERVATION_COLUMNS`` of the next range in order (:func:`analyze_range`).

        Returns
        -------
        pandas.DataFrame
            A copy with ``face_id`` renumbered (no-face rows keep ``NO_FACE_ID``); ``attrs`` kept.
        """
        table = table.copy()
        faces = table["face_id"] != NO_FACE_ID
        if not faces.any():
            return table
        mapping = self._first_frame_matches(table[faces])
        for local in sorted(set(table.loc[faces, "face_id"].astype(int)) - set(mapping)):
            mapping[local] = self.next_id_
            self.next_id_ += 1
        table.loc[faces, "face_id"] = table.loc[faces, "face_id"].astype(int).map(mapping).astype("int64")
        for face_id, rows in table[faces].groupby("face_id"):
            last = rows.iloc[-1]
            self.tracks_[int(face_id)] = (last[list(BOX_COLUMNS)].to_numpy(np.float64), float(last["time_s"]))
        return table

    def _first_frame_matches(self, faces: pd.DataFrame) -> dict[int, int]:
        """Range-local id -> stitched id for the faces of the range's first frame with a face that continue a track."""
        first_time = float(faces["time_s"].iloc[0])
        first = faces[faces["time_s"] == first_time]
        alive = {i: t for i, t in self.tracks_.items() if first_time - t[1] <= self.max_age_s}
        if not alive:
            return {}
        # The analysis' own tracker, seeded with the live tracks under placeholder ids (-2, -3, ...), decides.
        tracker = IouTracker(iou_threshold=self.iou_threshold, max_age_s=self.max_age_s)
        placeholders = {-2 - n: stitched for n, stitched in enumerate(alive)}
        tracker.tracks_ = {p: alive[s] for p, s in placeholders.items()}
        ids = tracker.update(first[list(BOX_COLUMNS)].to_numpy(np.float64), first_time)
        return {int(local): placeholders[int(i)] for local, i in zip(first["face_id"], ids, strict=True)
                if int(i) in placeholders}  # fmt: skip


def stitch_attrs(attrs: list[dict]) -> dict:
    """The ``attrs`` of a stitched table from those of its ranges, in order.

    Returns
    -------
    dict
        ``decoded_s`` of the last range, ``duration_s`` of the first, and ``decode_error`` (the ranges' errors
        joined by ``"; "``) when decoding stopped early in any range.
    """
    out = {"decoded_s": attrs[-1].get("decoded_s"), "duration_s": attrs[0].get("duration_s")}
    errors = [a["decode_error"] for a in attrs if a.get("decode_error")]
    if errors:
        out["decode_error"] = "; ".join(errors)
    return out

