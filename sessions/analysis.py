"""A study's analysis: its stored settings, baseline correction, and the one pipeline Compare and the report run.

Settings (:class:`AnalysisSettings`, stored per study in ``studies.analysis_settings``): the "expressing"
threshold (default 0.5, on the classifier's probabilities), the exclusion rules and the sessions kept against
them, the minimum analysed frames per second of a bin, an optional baseline (:class:`Baseline`) and the segments
(cut points or markers, :mod:`sessions.segments`).

Baseline correction
    Optional. Each participant's (session's) mean over a baseline window is subtracted from every bin of
    that session, metric by metric, as FaceReader's participant calibration and iMotions' baseline correction
    do (e.g. iMotions, "Facial Expression Analysis: The Complete Pocket Guide", 2017: "subtract the baseline
    mean from the stimulus response"). The window is the first ``seconds`` of the session, or the stretch
    from a marker to another (say a neutral clip: "baseline start" to "baseline end"), in session time. The
    stored observations and per-second rows are never changed: the correction is applied on the way to the
    curves and means. A corrected value is a difference (probability points, or valence units), so its range
    is ``(low - high, high - low)`` of the metric's (:func:`metric_range`). Share expressing stays on the raw
    probabilities (the threshold is one on probabilities); the face-present rate is never corrected. A
    session without a baseline window (no such marker) or without a valid bin in it is left out and listed.

Pipeline (:func:`analyse`): per-second rows of the sessions (:mod:`sessions.second_aggregates`) ->
:func:`sessions.stats.session_bins` (aligned, low-frame bins out) -> quality gate
(:func:`sessions.stats.apply_exclusions` with the study's rules and overrides) -> baseline -> group curves,
session means and group means (:mod:`sessions.stats`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from fer_core.emotions import EMOTIONS
from sessions import stats
from sessions.aggregate import COMPARE_METRICS
from sessions.models import Marker, Study
from sessions.playback import markers_on_stimulus, sessions_share_seen, stimulus_per_second
from sessions.repository import list_sessions, marker_offsets
from sessions.second_aggregates import load_second_aggregates

#: Metrics a baseline is subtracted from: the expressions (the face-present and attention rates measure the
#: recording and the viewing, not an expression, and are never corrected).
CORRECTED_METRICS: tuple[str, ...] = tuple(m for m in COMPARE_METRICS if m in EMOTIONS or m in ("valence", "engagement"))


def _finite(value, name: str, *, low: float | None = None, high: float | None = None) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} has to be a number; got {value!r}") from None
    if not math.isfinite(number) or (low is not None and number < low) or (high is not None and number > high):
        bounds = f" in [{low}, {high}]" if high is not None else f" >= {low}" if low is not None else ""
        raise ValueError(f"{name} has to be a finite number{bounds}; got {value!r}")
    return number


@dataclass(frozen=True)
class Baseline:
    """Where a participant's baseline is taken: the first ``seconds`` of the session, or between two markers.

    Parameters
    ----------
    seconds : float, optional
        Length of the baseline at the start of the session, s (> 0). Used when no ``start_marker`` is given.
    start_marker, end_marker : str, optional
        Marker labels: the baseline runs from the session's first ``start_marker`` to its first ``end_marker``
        after it (or, without ``end_marker``, for ``seconds`` after the start marker).

    Raises
    ------
    ValueError
        Neither ``seconds`` nor ``start_marker``, a non-positive ``seconds``, or an ``end_marker`` without a
        ``start_marker``.
    """

    seconds: float | None = 10.0
    start_marker: str | None = None
    end_marker: str | None = None

    def __post_init__(self):
        if self.seconds is not None:
            object.__setattr__(self, "seconds", _finite(self.seconds, "baseline seconds", low=0.0))
            if self.seconds <= 0:
                raise ValueError(f"baseline seconds has to be > 0; got {self.seconds!r}")
        for name in ("start_marker", "end_marker"):
            value = getattr(self, name)
            object.__setattr__(self, name, (str(value).strip() or None) if value is not None else None)
        if self.end_marker and not self.start_marker:
            raise ValueError("baseline end_marker needs a start_marker")
        if self.seconds is None and not self.end_marker:
            raise ValueError("baseline has to give seconds, or a start_marker and an end_marker")

    def where(self) -> str:
        """The window in words: ``"the first 10 s of the session"``."""
        if self.start_marker and self.end_marker:
            return f"from the marker '{self.start_marker}' to the marker '{self.end_marker}'"
        if self.start_marker:
            return f"the {self.seconds:g} s after the marker '{self.start_marker}'"
        return f"the first {self.seconds:g} s of the session"

    def describe(self) -> str:
        """The baseline in words, for captions, the report and exports."""
        return f"baseline-corrected: each session's mean over {self.where()} subtracted"

    def labels(self) -> tuple[str, ...]:
        """The marker labels this baseline needs."""
        return tuple(label for label in (self.start_marker, self.end_marker) if label)


@dataclass(frozen=True)
class AnalysisSettings:
    """A study's analysis settings (stored as JSON in ``studies.analysis_settings``).

    Parameters
    ----------
    express_threshold : float, default 0.5
        Bin probability above which a session counts as expressing (in [0, 1]).
    exclude_aborted : bool, default True
        Leave out aborted sessions.
    min_face_present : float, default 0.7
        Leave out sessions with a face in fewer than this share of their analysed frames.
    min_frames_per_s : float, default 5.0
        Fewest analysed frames per second that keep a bin.
    min_share_seen : float, default 0.0
        Leave out sessions that showed less than this share of their stimulus (sessions without a stimulus are
        never left out by it); 0: off.
    keep : tuple of int
        Sessions kept whatever the rules say (the Compare page's boxes).
    baseline : Baseline, optional
        Baseline correction; None: none.
    cut_points : tuple of float
        Segment boundaries on the aligned time axis, s (:func:`sessions.segments.cut_point_segments`).
    segment_markers : tuple of str
        Marker labels bounding segments, in order (:func:`sessions.segments.marker_segments`); used instead of
        ``cut_points`` when given.

    Raises
    ------
    ValueError
        A value out of range (the message names the setting).
    """

    express_threshold: float = 0.5
    exclude_aborted: bool = True
    min_face_present: float = 0.7
    min_frames_per_s: float = 5.0
    min_share_seen: float = 0.0
    keep: tuple[int, ...] = ()
    baseline: Baseline | None = None
    cut_points: tuple[float, ...] = ()
    segment_markers: tuple[str, ...] = field(default=())

    def __post_init__(self):
        set_ = object.__setattr__
        set_(self, "express_threshold", _finite(self.express_threshold, "express_threshold", low=0.0, high=1.0))
        set_(self, "min_face_present", _finite(self.min_face_present, "min_face_present", low=0.0, high=1.0))
        set_(self, "min_frames_per_s", _finite(self.min_frames_per_s, "min_frames_per_s", low=0.0, high=1000.0))
        set_(self, "min_share_seen", _finite(self.min_share_seen, "min_share_seen", low=0.0, high=1.0))
        set_(self, "exclude_aborted", bool(self.exclude_aborted))
        set_(self, "keep", tuple(sorted({int(i) for i in self.keep})))
        cuts = tuple(sorted({_finite(c, "cut point") for c in self.cut_points}))
        set_(self, "cut_points", cuts)
        labels = tuple(str(label).strip() for label in self.segment_markers)
        if any(not label for label in labels):
            raise ValueError("segment_markers has to hold non-empty marker labels")
        set_(self, "segment_markers", labels)

    def rules(self) -> stats.ExclusionRules:
        """The exclusion rules with the sessions kept against them."""
        return stats.ExclusionRules(exclude_aborted=self.exclude_aborted, min_face_present=self.min_face_present,
                                    min_share_seen=self.min_share_seen, keep=frozenset(self.keep))  # fmt: skip

    def rules_note(self) -> str:
        """The exclusion rules in words (Compare's "Left out" caption and the report): "aborted sessions, sessions
        with a face in under 70% of their frames"..."""
        rules = [*(["aborted sessions"] if self.exclude_aborted else []),
                 f"sessions with a face in under {self.min_face_present:.0%} of their frames"]  # fmt: skip
        if self.min_share_seen > 0:
            rules.append(f"sessions that showed under {self.min_share_seen:.0%} of their stimulus (sessions "
                         "without a stimulus are not left out by it)")  # fmt: skip
        return ", ".join(rules)

    def to_json(self) -> dict:
        """A JSON-ready dict (what :func:`save_settings` stores)."""
        baseline = None
        if self.baseline is not None:
            baseline = {"seconds": self.baseline.seconds, "start_marker": self.baseline.start_marker,
                        "end_marker": self.baseline.end_marker}  # fmt: skip
        return {"express_threshold": self.express_threshold, "exclude_aborted": self.exclude_aborted,
                "min_face_present": self.min_face_present, "min_frames_per_s": self.min_frames_per_s,
                "min_share_seen": self.min_share_seen, "keep": list(self.keep), "baseline": baseline, "cut_points": list(self.cut_points),
                "segment_markers": list(self.segment_markers)}  # fmt: skip

    @classmethod
    def from_json(cls, data: Mapping | None) -> AnalysisSettings:
        """Settings from :meth:`to_json`'s dict (None or ``{}``: the defaults).

        Raises
        ------
        ValueError
            An unknown key or an invalid value (the message names it).
        """
        data = dict(data or {})
        unknown = sorted(set(data) - set(cls.__dataclass_fields__))
        if unknown:
            raise ValueError(f"analysis settings have unknown keys {unknown}")
        baseline = data.pop("baseline", None)
        if baseline is not None:
            if not isinstance(baseline, Mapping) or set(baseline) - {"seconds", "start_marker", "end_marker"}:
                raise ValueError(f"baseline has to be a mapping of seconds, start_marker, end_marker; got {baseline!r}")
            baseline = Baseline(**baseline)
        for key in ("keep", "cut_points", "segment_markers"):
            if key in data:
                if not isinstance(data[key], list | tuple):
                    raise ValueError(f"{key} has to be a list; got {data[key]!r}")
                data[key] = tuple(data[key])
        return cls(baseline=baseline, **data)

    def labels(self) -> tuple[str, ...]:
        """Marker labels the settings need (baseline and segments)."""
        return (*(self.baseline.labels() if self.baseline else ()), *self.segment_markers)


def load_settings(db: Session, study_id: int) -> AnalysisSettings:
    """The analysis settings stored for a study (the defaults when none are stored).

    Raises
    ------
    LookupError
        Unknown study.
    ValueError
        The stored settings are invalid (only possible if written around :func:`save_settings`).
    """
    study = db.get(Study, int(study_id))
    if study is None:
        raise LookupError(f"no study has id {study_id!r}")
    return AnalysisSettings.from_json(study.analysis_settings)


def save_settings(db: Session, study_id: int, settings: AnalysisSettings) -> None:
    """Store a study's analysis settings (flushed, not committed); raw observations are never touched.

    Raises
    ------
    LookupError
        Unknown study.
    """
    study = db.get(Study, int(study_id))
    if study is None:
        raise LookupError(f"no study has id {study_id!r}")
    study.analysis_settings = settings.to_json()
    db.flush()


def marker_times(db: Session, session_ids: Sequence[int], labels: Sequence[str]) -> dict[str, dict[int, float]]:
    """Per marker label, each session's time (s since its start) of its first marker with that label."""
    return {label: marker_offsets(db, session_ids, label) for label in dict.fromkeys(labels) if label}


def baseline_windows(baseline: Baseline, session_ids: Sequence[int],
                     markers: Mapping[str, Mapping[int, float]]) -> dict[int, tuple[float, float]]:  # fmt: skip
    """Each session's baseline window in session time (s); sessions without the markers it needs are absent.

    Parameters
    ----------
    baseline : Baseline
    session_ids : sequence of int
    markers : mapping of str to mapping of int to float
        :func:`marker_times` for ``baseline.labels()``.

    Returns
    -------
    dict of int to (float, float)
        ``(start_s, end_s)``, start included, end excluded; only windows with ``end_s > start_s``.
    """
    windows = {}
    for sid in session_ids:
        if baseline.start_marker is None:
            windows[sid] = (0.0, float(baseline.seconds))
            continue
        start = markers.get(baseline.start_marker, {}).get(sid)
        if start is None:
            continue
        end = markers.get(baseline.end_marker, {}).get(sid) if baseline.end_marker else start + baseline.seconds
        if end is not None and end > start:
            windows[sid] = (float(start), float(end))
    return windows


def apply_baseline(bins: pd.DataFrame, windows: Mapping[int, tuple[float, float]],
                   align: Mapping[int, float] | None = None, *,
                   reference: pd.DataFrame | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:  # fmt: skip
    """Subtract each session's baseline mean from its bins (a new table; the input is not changed).

    Parameters
    ----------
    bins : pandas.DataFrame
        :func:`sessions.stats.session_bins` (aligned time axis when ``align`` was given there).
    windows : mapping of int to (float, float)
        :func:`baseline_windows`: each session's window in **session** time, s.
    align : mapping of int to float, optional
        The alignment ``bins`` were made with (session time that became 0); windows are moved by it. Ignored
        with ``reference``.
    reference : pandas.DataFrame, optional
        :func:`sessions.stats.session_bins` of the same sessions **without** alignment (session time): the
        baseline means are taken from its bins inside the windows, as they are, and subtracted from ``bins``.
        Per-second rows moved to an aligned grid land up to half a bin away from their session time, so a
        window on the aligned axis would average other seconds than the ones asked for (:func:`analyse`
        passes it).

    Returns
    -------
    corrected : pandas.DataFrame
        ``bins`` with ``CORRECTED_METRICS`` minus the session's baseline mean (NaN for a session without a
        window or without a valid bin in it); ``face_present_rate`` unchanged.
    baseline : pandas.DataFrame
        One row per session of ``bins``: ``session_id``, ``n_bins`` (valid bins in the window, int64), then the
        baseline mean of each of ``CORRECTED_METRICS`` (float64, NaN without one).
    """
    stats._need(bins, ("session_id", "time_s", *CORRECTED_METRICS), "bins")
    ids = [int(i) for i in pd.unique(bins["session_id"])]
    source = bins
    if reference is not None:
        stats._need(reference, ("session_id", "time_s", *CORRECTED_METRICS), "reference")
        source, align = reference[reference["session_id"].isin(ids)], None
    start = source["session_id"].map(lambda i: windows.get(int(i), (np.nan, np.nan))[0]).astype("float64")
    end = source["session_id"].map(lambda i: windows.get(int(i), (np.nan, np.nan))[1]).astype("float64")
    if align:
        shift = source["session_id"].map(lambda i: float(align.get(int(i), 0.0)))
        start, end = start - shift, end - shift
    inside = (source["time_s"] >= start) & (source["time_s"] < end)
    metrics = list(CORRECTED_METRICS)
    window_bins = source.loc[inside, ["session_id", *metrics]]
    means = window_bins.groupby("session_id")[metrics].mean().reindex(ids)
    counts = window_bins.dropna(subset=["happy"]).groupby("session_id").size().reindex(ids).fillna(0)
    corrected = bins.copy()
    corrected[metrics] = bins[metrics].to_numpy() - means.loc[bins["session_id"]].to_numpy()
    table = means.reset_index().rename(columns={"index": "session_id"})
    table.insert(1, "n_bins", counts.to_numpy(dtype=np.int64))
    table["session_id"] = table["session_id"].astype("int64")
    return corrected, table


def metric_range(metric: str, *, corrected: bool = False) -> tuple[float, float]:
    """The range of a metric (``sessions.stats.METRIC_RANGES``), or of its baseline-corrected difference."""
    low, high = stats.METRIC_RANGES[stats._check_metric(metric)]
    if corrected and metric in CORRECTED_METRICS:
        return (low - high, high - low)
    return (low, high)


@dataclass(frozen=True)
class StudyAnalysis:
    """What :func:`analyse` returns: every table the Compare page and the study report show.

    Attributes
    ----------
    settings : AnalysisSettings
    groups : dict of int to str
        Group of each kept session.
    align : dict of int to float or None
        The alignment used (session time that became 0, s).
    bins : pandas.DataFrame
        :func:`sessions.stats.session_bins` of the kept sessions, raw (never corrected).
    values : pandas.DataFrame
        ``bins`` baseline-corrected when the settings ask for it (else ``bins`` itself): what means and curves use.
    quality : pandas.DataFrame
        :func:`sessions.stats.quality_table` of every candidate session, with its ``model`` when ``sessions``
        names it.
    candidates : pandas.DataFrame
        Sessions the rules leave out before overrides (``Exclusions.excluded``).
    excluded : pandas.DataFrame
        Sessions left out after overrides, plus those without a baseline; columns ``session_id,
        participant_code, status, face_present_rate, reason``.
    baseline : pandas.DataFrame or None
        :func:`apply_baseline`'s baseline table (None without baseline correction).
    stimulus : str or None
        The stimulus whose own seconds are the time axis (:func:`load_inputs` with ``stimulus``); None: session
        time (or a marker alignment).
    """

    settings: AnalysisSettings
    groups: dict[int, str]
    align: dict[int, float] | None
    bins: pd.DataFrame
    values: pd.DataFrame
    quality: pd.DataFrame
    candidates: pd.DataFrame
    excluded: pd.DataFrame
    baseline: pd.DataFrame | None
    stimulus: str | None = None
    _curves: dict = field(default_factory=dict, repr=False, compare=False)

    def curves_for(self, metrics: Sequence[str] | None = None) -> pd.DataFrame:
        """:func:`sessions.stats.group_curves` of the (corrected) values for ``metrics`` (default all), computed
        on first use per metric (a page showing one metric computes one); ``share_expressing`` from the raw bins.

        Raises
        ------
        ValueError
            An unknown metric.
        """
        metrics = list(COMPARE_METRICS if metrics is None else metrics)
        for metric in metrics:
            stats._check_metric(metric)
        todo = [m for m in metrics if m not in self._curves]
        if todo and self.kept:
            threshold = self.settings.express_threshold
            ranges = {m: self.value_range(m) for m in todo}
            curves = stats.group_curves(self.values, self.groups, express_threshold=threshold, metrics=todo,
                                        value_ranges=ranges)  # fmt: skip
            if self.corrected:
                raw = stats.group_curves(self.bins, self.groups, express_threshold=threshold, metrics=todo)
                share = raw.set_index(["group", "metric", "time_s"])["share_expressing"]
                curves["share_expressing"] = share.reindex(
                    pd.MultiIndex.from_frame(curves[["group", "metric", "time_s"]])).to_numpy()  # fmt: skip
            for metric, part in curves.groupby("metric", sort=False):
                self._curves[metric] = part
        parts = [self._curves[m] for m in metrics if m in self._curves]
        if not parts:
            return pd.DataFrame(columns=list(stats.CURVE_COLUMNS))
        return pd.concat(parts, ignore_index=True)

    @property
    def kept(self) -> tuple[int, ...]:
        """Ids of the sessions analysed."""
        return tuple(self.groups)

    @property
    def corrected(self) -> bool:
        """Whether values are baseline-corrected."""
        return self.baseline is not None

    def value_range(self, metric: str) -> tuple[float, float]:
        """The y range of ``metric``'s curve (:func:`metric_range`)."""
        return metric_range(metric, corrected=self.corrected)

    def alignment_note(self) -> str:
        """One sentence on the time error of a marker alignment ("" when none is fractional), for captions and
        the report: stored per-second rows are moved to the nearest aligned second (``aggregate._as_bins``)."""
        if not self.align or all(abs(t - round(t)) < 1e-9 for t in self.align.values()):
            return ""
        return ("Aligned on a marker at a fraction of a second: each stored second is moved to the nearest second "
                "of the aligned axis, so a value sits up to 0.5 s from its time after the marker (baselines are "
                "taken in session time).")  # fmt: skip

    def timeline_note(self) -> str:
        """One sentence on the time axis when it is a stimulus's own seconds ("" otherwise), for captions and the
        report."""
        if self.stimulus is None:
            return ""
        return (f"Time axis: the seconds of stimulus {self.stimulus!r} (each session's frames while it played, "
                "whenever the session started it; pauses and stalls add no time; cut points and markers in "
                "stimulus seconds).")  # fmt: skip

    def baseline_note(self) -> str:
        """One sentence on baseline correction, for captions, the report and exports."""
        if self.settings.baseline is None:
            return "No baseline correction (raw probabilities)."
        return (f"Values are {self.settings.baseline.describe()} (share expressing stays on raw probabilities; "
                "stored observations are unchanged).")  # fmt: skip

    def session_means(self, start_s: float | None = None, end_s: float | None = None) -> pd.DataFrame:
        """:func:`sessions.stats.session_means` of the (corrected) values."""
        return stats.session_means(self.values, start_s=start_s, end_s=end_s)


def analyse(
    sessions: pd.DataFrame,
    per_second: Mapping[int, pd.DataFrame],
    *,
    groups: Mapping[int, str],
    settings: AnalysisSettings = AnalysisSettings(),
    align: Mapping[int, float] | None = None,
    markers: Mapping[str, Mapping[int, float]] | None = None,
    stimulus: str | None = None,
) -> StudyAnalysis | None:
    """Run the study pipeline (module docstring) on sessions' per-second rows.

    Parameters
    ----------
    sessions : pandas.DataFrame
        :func:`sessions.repository.list_sessions` rows of the candidate sessions.
    per_second : mapping of int to pandas.DataFrame
        :func:`sessions.second_aggregates.load_second_aggregates` (sessions without rows are left out).
    groups : mapping of int to str
        Group label of every session in ``per_second``.
    settings : AnalysisSettings
    align : mapping of int to float, optional
        Session time (s) that becomes 0 per session; sessions absent from it are left out.
    markers : mapping of str to mapping of int to float, optional
        :func:`marker_times` for ``settings.labels()``.
    stimulus : str, optional
        The stimulus whose seconds ``per_second`` is on (:func:`load_inputs` with ``stimulus``), named in the
        notes (:meth:`StudyAnalysis.timeline_note`).

    Returns
    -------
    StudyAnalysis or None
        None when no session has a per-second row (or an alignment marker).

    Raises
    ------
    ValueError
        A session of ``per_second`` missing from ``groups``.
    """
    tables = {i: t for i, t in per_second.items() if not t.empty and (align is None or i in align)}
    if not tables:
        return None
    session_time = stats.session_bins(tables, min_frames_per_s=settings.min_frames_per_s)
    bins = session_time
    if align:
        bins = stats.session_bins(tables, align={i: align[i] for i in tables},
                                  min_frames_per_s=settings.min_frames_per_s)  # fmt: skip
    quality = stats.quality_table(sessions[sessions["session_id"].isin(list(tables))], bins)
    if "model" in sessions:  # the expression model that analysed each session (the report names them)
        quality["model"] = quality["session_id"].map(sessions.set_index("session_id")["model"])
    candidates = stats.apply_exclusions(quality, replace(settings.rules(), keep=frozenset())).excluded
    outcome = stats.apply_exclusions(quality, settings.rules())
    excluded = outcome.excluded
    kept = list(outcome.kept)
    bins = bins[bins["session_id"].isin(kept)].reset_index(drop=True)
    values, baseline = bins, None
    if settings.baseline is not None and kept:
        windows = baseline_windows(settings.baseline, kept, markers or {})
        values, baseline = apply_baseline(bins, windows, reference=session_time)  # windows in session time
        missing = baseline.loc[baseline["n_bins"] == 0, "session_id"].astype(int).tolist()
        if missing:
            rows = quality[quality["session_id"].isin(missing)][["session_id", "participant_code", "status",
                                                                 "face_present_rate"]].copy()  # fmt: skip
            rows["reason"] = f"no baseline: no valid second in {settings.baseline.where()}"
            excluded = pd.concat([excluded, rows], ignore_index=True)
            kept = [i for i in kept if i not in missing]
            bins = bins[bins["session_id"].isin(kept)].reset_index(drop=True)
            values = values[values["session_id"].isin(kept)].reset_index(drop=True)
            baseline = baseline[baseline["session_id"].isin(kept)].reset_index(drop=True)
    group_of = {i: str(groups[i]) for i in kept}
    return StudyAnalysis(settings=settings, groups=group_of, align=dict(align) if align else None, bins=bins,
                         values=values, quality=quality, candidates=candidates,
                         excluded=excluded.reset_index(drop=True), baseline=baseline, stimulus=stimulus)  # fmt: skip


@dataclass(frozen=True)
class StudyInputs:
    """What :func:`analyse` reads from the store for a set of sessions (:func:`load_inputs`)."""

    #: :func:`sessions.repository.list_sessions` rows of the sessions, with ``share_seen``
    #: (:func:`sessions.playback.sessions_share_seen` of ``stimulus`` or of every video; NaN without a stimulus).
    sessions: pd.DataFrame
    #: :func:`sessions.second_aggregates.load_second_aggregates` of the sessions.
    per_second: dict[int, pd.DataFrame]
    #: Session time (s) of each session's first ``align_on`` marker (0.0 for every session on a stimulus's
    #: timeline); None when aligned on the session start.
    align: dict[int, float] | None
    #: :func:`marker_times` of the labels the settings need.
    markers: dict[str, dict[int, float]]
    #: Every marker label of these sessions, sorted (the choices of "align on" and segments).
    marker_labels: tuple[str, ...]


def session_marker_labels(db: Session, session_ids: Sequence[int]) -> tuple[str, ...]:
    """Every marker label of the sessions, sorted (the choices of "align on", baseline and segment markers)."""
    ids = [int(i) for i in session_ids]
    if not ids:
        return ()
    return tuple(sorted(set(db.scalars(select(Marker.label).where(Marker.session_id.in_(ids)).distinct()))))


def load_inputs(db: Session, session_ids: Sequence[int], *, settings: AnalysisSettings = AnalysisSettings(),
                align_on: str | None = None, stimulus: str | None = None,
                progress: Callable[[int, int], None] | None = None) -> StudyInputs:  # fmt: skip
    """Read what a study analysis needs: session rows, per-second rows (never observations of ended sessions),
    alignment and marker times.

    On a stimulus's timeline (``stimulus``) every second is a second of the stimulus
    (:func:`sessions.playback.stimulus_per_second`: exact whenever a session started it and however it paused),
    markers and so marker segments and baselines are in stimulus seconds
    (:func:`sessions.playback.markers_on_stimulus`), cut points are stimulus seconds, and the sessions in which
    it never played are not among ``sessions`` (nor in ``align``).

    Parameters
    ----------
    db : sqlalchemy.orm.Session
        Open ORM session (per-second rows computed on first read are flushed; the caller commits).
    session_ids : sequence of int
        The sessions.
    settings : AnalysisSettings
        For the marker labels of the baseline and the segments.
    align_on : str, optional
        Marker label whose first occurrence becomes time 0 in each session; None: the session start.
    stimulus : str, optional
        Stimulus name: every session on that stimulus's own seconds instead (``align_on`` is then ignored).
    progress : callable, optional
        ``progress(done, total)`` while per-second rows are computed for sessions of an older database
        (:func:`sessions.second_aggregates.load_second_aggregates`).
    """
    ids = [int(i) for i in session_ids]
    sessions = list_sessions(db, session_ids=ids)
    seen = sessions_share_seen(db, ids, stimulus)  # the quality gate's share of the stimulus shown
    sessions = sessions.assign(share_seen=sessions["session_id"].map(seen).astype("float64"))
    labels = session_marker_labels(db, ids)
    markers = marker_times(db, ids, settings.labels())
    if stimulus is not None:
        per_second = stimulus_per_second(db, ids, stimulus)
        return StudyInputs(sessions=sessions[sessions["session_id"].isin(list(per_second))], per_second=per_second,
                           align={sid: 0.0 for sid in per_second}, markers=markers_on_stimulus(db, markers, stimulus),
                           marker_labels=labels)  # fmt: skip
    per_second = load_second_aggregates(db, ids, progress=progress)
    align = marker_offsets(db, ids, align_on) if align_on else None
    return StudyInputs(sessions=sessions, per_second=per_second, align=align, markers=markers, marker_labels=labels)
