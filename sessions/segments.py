"""Segments of a study's time axis and their statistics per group: mean, peak, time to peak, share expressing.

A segment is a stretch of the (aligned) time axis: between cut points the researcher sets (the same for every
session, :func:`cut_point_segments`), or between markers (each session's own times, :func:`marker_segments`;
with stimuli, the stimulus-time map of :mod:`sessions.stimuli` can give the same windows per session).

Definitions (each session counts once, as in :mod:`sessions.stats`)
-------------------------------------------------------------------
Session mean
    Mean over the session's valid bins in the segment (bins left out for too few frames do not count).
Session peak, time to peak
    The highest bin value in the segment, and the time from the segment's start to the start of that bin
    (s; the first such bin on ties).
Expressing
    A session expresses in a segment when its peak **raw** bin value is above the threshold (for valence:
    above 0; not defined for the face-present rate), the "share of participants who showed a smile during the
    ad" of market-research reports.
Group figures
    ``mean``: mean over sessions of the session means; ``peak``: mean over sessions of the session peaks;
    ``time_to_peak_s``: median over sessions (robust to the few sessions that peak late); ``share_expressing``:
    share of the group's sessions that express.
Two groups
    Per segment, :func:`sessions.stats.compare_two` on the session means (Welch's t test, permutation test,
    Hedges' g, a note when n is too small).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import NamedTuple

import numpy as np
import pandas as pd

from sessions import stats

#: Columns of :func:`session_segments`.
SESSION_SEGMENT_COLUMNS: tuple[str, ...] = (
    "segment", "session_id", "start_s", "end_s", "n_bins", "mean", "peak", "time_to_peak_s", "expressing",
)  # fmt: skip
#: Columns of :func:`segment_table`.
SEGMENT_COLUMNS: tuple[str, ...] = (
    "segment", "group", "n_sessions", "mean", "peak", "time_to_peak_s", "share_expressing",
)  # fmt: skip
#: Columns of :func:`segment_differences`: the segment, then ``sessions.stats.DIFFERENCE_COLUMNS``.
SEGMENT_DIFFERENCE_COLUMNS: tuple[str, ...] = ("segment", *stats.DIFFERENCE_COLUMNS)


class Segment(NamedTuple):
    """A named stretch ``[start_s, end_s)`` of the aligned time axis (s; ``end_s`` may be ``inf``)."""

    name: str
    start_s: float
    end_s: float


def _seconds(value: float) -> str:
    return f"{value:g}"


def cut_point_segments(cut_points: Sequence[float], start_s: float, end_s: float) -> list[Segment]:
    """Segments between consecutive cut points, from ``start_s`` to ``end_s`` (aligned seconds).

    Cut points outside ``(start_s, end_s)`` are ignored; no cut point gives one segment, the whole range.
    Names read ``"0-30 s"``.

    Raises
    ------
    ValueError
        ``start_s`` not below ``end_s``, or a cut point that is not a finite number.
    """
    if not start_s < end_s:
        raise ValueError(f"start_s has to be below end_s; got {start_s!r} and {end_s!r}")
    cuts = []
    for cut in cut_points:
        cut = float(cut)
        if not math.isfinite(cut):
            raise ValueError(f"cut points have to be finite numbers of seconds; got {cut!r}")
        if start_s < cut < end_s:
            cuts.append(cut)
    edges = [float(start_s), *sorted(set(cuts)), float(end_s)]
    return [Segment(f"{_seconds(a)}-{_seconds(b)} s", a, b) for a, b in zip(edges[:-1], edges[1:], strict=True)]


def marker_segments(labels: Sequence[str], markers: Mapping[str, Mapping[int, float]],
                    align: Mapping[int, float] | None = None) -> dict[int, list[Segment]]:  # fmt: skip
    """Each session's segments between consecutive markers of ``labels`` (in that order), on the aligned axis.

    Segment ``"A to B"`` runs from the session's first marker ``A`` to its first marker ``B``; the last label
    opens ``"after C"``, to the end of the session. A session lacking a label, or whose markers are not in the
    given order, has no segment there (it is left out of that segment, not guessed).

    Parameters
    ----------
    labels : sequence of str
        Marker labels in time order.
    markers : mapping of str to mapping of int to float
        :func:`sessions.analysis.marker_times` (session time, s).
    align : mapping of int to float, optional
        Session time that became 0 per session (the windows are moved by it).

    Returns
    -------
    dict of int to list of Segment
        Session id to its segments (every session having at least one of the labels).
    """
    names = [f"{a} to {b}" for a, b in zip(labels[:-1], labels[1:], strict=True)] + ([f"after {labels[-1]}"] if labels else [])
    ids = sorted({sid for label in labels for sid in markers.get(label, {})})
    out: dict[int, list[Segment]] = {}
    for sid in ids:
        shift = float(align.get(sid, 0.0)) if align else 0.0
        times = [markers.get(label, {}).get(sid) for label in labels] + [math.inf]
        segments = []
        for k, name in enumerate(names):
            start, end = times[k], times[k + 1]
            if start is None or end is None or not end > start:
                continue
            segments.append(Segment(name, start - shift, end - shift))
        out[sid] = segments
    return out


def session_segments(values: pd.DataFrame, segments: Sequence[Segment] | Mapping[int, Sequence[Segment]],
                     metric: str, *, threshold: float = 0.5, raw: pd.DataFrame | None = None) -> pd.DataFrame:  # fmt: skip
    """Per segment and session: mean, peak, time to peak and whether it expresses (module definitions).

    Parameters
    ----------
    values : pandas.DataFrame
        :func:`sessions.stats.session_bins` (possibly baseline-corrected): ``session_id``, ``time_s`` and
        ``metric``.
    segments : sequence of Segment, or mapping of int to sequence of Segment
        The same segments for every session (cut points), or each session's own (markers).
    metric : str
        One of ``sessions.aggregate.COMPARE_METRICS``.
    threshold : float, default 0.5
        Expressing threshold on the raw probability (not used for valence: above 0).
    raw : pandas.DataFrame, optional
        The uncorrected bins (same rows as ``values``) for ``expressing``; default ``values``.

    Returns
    -------
    pandas.DataFrame
        Columns ``SESSION_SEGMENT_COLUMNS``: ``segment`` (str), ``session_id`` (int64), ``start_s``, ``end_s``
        (aligned s), ``n_bins`` (int64, valid bins in it), ``mean``, ``peak`` (metric units), ``time_to_peak_s``
        (s from the segment start), ``expressing`` (float64 1.0/0.0, NaN where not defined or no valid bin).
        Ordered by segment (first appearance), then session.

    Raises
    ------
    ValueError
        Missing columns, an unknown metric or a threshold outside [0, 1].
    """
    stats._check_metric(metric)
    stats._need(values, ("session_id", "time_s", metric), "values")
    if not 0 <= threshold <= 1:
        raise ValueError(f"threshold has to be in [0, 1]; got {threshold!r}")
    raw = values if raw is None else raw
    defined = stats.share_definition(metric, threshold) is not None
    cut = stats.expressing_cut(metric, threshold)  # as the curves: attention above ATTENDING_SHARE of frames
    ids = [int(i) for i in pd.unique(values["session_id"])]
    if isinstance(segments, Mapping):
        windows = [(seg, sid) for sid in ids for seg in segments.get(sid, [])]
    else:
        windows = [(seg, sid) for seg in segments for sid in ids]
    frame = pd.DataFrame({"session_id": values["session_id"].to_numpy(), "time_s": values["time_s"].to_numpy(),
                          "value": values[metric].to_numpy(dtype=np.float64),
                          "raw": raw[metric].to_numpy(dtype=np.float64)})  # fmt: skip
    by_session = {int(sid): part for sid, part in frame.groupby("session_id")}
    rows = []
    for seg, sid in windows:
        part = by_session.get(sid)
        inside = part[(part["time_s"] >= seg.start_s) & (part["time_s"] < seg.end_s)] if part is not None else None
        valid = inside.dropna(subset=["value"]) if inside is not None else pd.DataFrame(columns=frame.columns)
        row = {"segment": seg.name, "session_id": sid, "start_s": seg.start_s, "end_s": seg.end_s,
               "n_bins": len(valid), "mean": math.nan, "peak": math.nan, "time_to_peak_s": math.nan,
               "expressing": math.nan}  # fmt: skip
        if len(valid):
            top = valid["value"].to_numpy()
            at = int(np.argmax(top))
            start = seg.start_s if math.isfinite(seg.start_s) else float(valid["time_s"].min())
            row.update(mean=float(top.mean()), peak=float(top[at]),
                       time_to_peak_s=float(valid["time_s"].iloc[at]) - start)  # fmt: skip
            raw_valid = valid["raw"].dropna()
            if defined and len(raw_valid):
                row["expressing"] = float(raw_valid.max() > cut)
        rows.append(row)
    table = pd.DataFrame(rows, columns=list(SESSION_SEGMENT_COLUMNS))
    table["session_id"] = table["session_id"].astype("int64")
    table["n_bins"] = table["n_bins"].astype("int64")
    for column in ("start_s", "end_s", "mean", "peak", "time_to_peak_s", "expressing"):
        table[column] = table[column].astype("float64")
    order = {name: k for k, name in enumerate(dict.fromkeys(table["segment"]))}
    return table.sort_values(["segment", "session_id"], key=lambda s: s.map(order) if s.name == "segment" else s,
                             kind="stable").reset_index(drop=True)  # fmt: skip


def segment_table(per_session: pd.DataFrame, groups: Mapping[int, str] | None = None) -> pd.DataFrame:
    """Per segment and group: sessions, mean, peak, median time to peak and share expressing.

    Parameters
    ----------
    per_session : pandas.DataFrame
        :func:`session_segments`.
    groups : mapping of int to str, optional
        Session id to group label; default every session in ``"all"``.

    Returns
    -------
    pandas.DataFrame
        Columns ``SEGMENT_COLUMNS``: ``segment``, ``group`` (str), ``n_sessions`` (int64, sessions with a valid
        bin in the segment), ``mean``, ``peak`` (means over sessions), ``time_to_peak_s`` (median, s),
        ``share_expressing`` (float64 in [0, 1], NaN where not defined). Segments in order, groups sorted.

    Raises
    ------
    ValueError
        Missing columns or a session missing from ``groups``.
    """
    stats._need(per_session, SESSION_SEGMENT_COLUMNS, "per_session")
    labels = stats._labels(per_session["session_id"], groups) if len(per_session) else {}
    valid = per_session[per_session["n_bins"] > 0].assign(group=lambda t: t["session_id"].map(labels))
    rows = []
    for segment in dict.fromkeys(per_session["segment"]):
        for group in sorted(set(labels.values())):
            part = valid[(valid["segment"] == segment) & (valid["group"] == group)]
            rows.append({"segment": segment, "group": group, "n_sessions": len(part),
                         "mean": part["mean"].mean() if len(part) else math.nan,
                         "peak": part["peak"].mean() if len(part) else math.nan,
                         "time_to_peak_s": part["time_to_peak_s"].median() if len(part) else math.nan,
                         "share_expressing": part["expressing"].mean() if part["expressing"].notna().any() else math.nan})  # fmt: skip
    table = pd.DataFrame(rows, columns=list(SEGMENT_COLUMNS))
    table["n_sessions"] = table["n_sessions"].astype("int64")
    return table


def segment_differences(per_session: pd.DataFrame, groups: Mapping[int, str], metric: str) -> pd.DataFrame:
    """Per segment, every pair of groups compared on the session means (:func:`sessions.stats.compare_two`).

    Returns
    -------
    pandas.DataFrame
        Columns ``SEGMENT_DIFFERENCE_COLUMNS``; no rows with fewer than two groups.

    Raises
    ------
    ValueError
        Missing columns, an unknown metric or a session missing from ``groups``.
    """
    stats._need(per_session, SESSION_SEGMENT_COLUMNS, "per_session")
    parts = []
    for segment in dict.fromkeys(per_session["segment"]):
        rows = per_session[per_session["segment"] == segment]
        means = pd.DataFrame({"session_id": rows["session_id"].to_numpy(), "metric": metric,
                              "mean": rows["mean"].to_numpy(), "n_bins": rows["n_bins"].to_numpy()})  # fmt: skip
        found = stats.group_differences(means, groups, metric)
        found.insert(0, "segment", segment)
        parts.append(found)
    if not parts:
        return pd.DataFrame(columns=list(SEGMENT_DIFFERENCE_COLUMNS))
    return pd.concat(parts, ignore_index=True)[list(SEGMENT_DIFFERENCE_COLUMNS)]
