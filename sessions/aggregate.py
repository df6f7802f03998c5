"""Aggregation of observations per time bin, per session and across sessions (vectorised pandas).

Definitions
-----------
Primary face
    A participant session has one subject; when a frame holds several faces (a bystander), the largest box
    (``w * h``) is taken as the participant's. Bins average over frames, not over faces.
Mean probability of an emotion (per bin)
    Mean of the primary face's raw classifier probability over the bin's frames with a face.
Dominant share (``dominant_<emotion>``)
    Share of the bin's frames with a face in which the emotion has the highest probability.
Face-present rate
    Share of the bin's analysed frames in which at least one face was found.
Valence
    ``happy - (angry + disgust + fear + sad)``: probability of positive expression minus probability of
    negative expression, in [-1, 1]. This follows the valence axis of Russell's circumplex model of affect
    (Russell, 1980, "A circumplex model of affect", J. Pers. Soc. Psychol. 39(6)) as operationalised by
    facial-coding vendors (iMotions/Affectiva AFFDEX "valence": positive minus negative expressions;
    McDuff et al., 2016, "AFFDEX SDK"). Surprise and neutral count as neither.
Engagement
    ``1 - neutral``: expressiveness, the probability that the face shows any expression (cf. the AFFDEX
    "engagement"/expressiveness measure). In [0, 1].
Attention rate
    Share of the bin's analysed frames in which the primary face is turned to the screen (``attentive``, head
    yaw and pitch within the analyzer's angle: :mod:`fer_core.attention`); a frame without a face is not
    attentive (Realeyes' and Affectiva's attention: face present and facing the screen). NaN when a face of the
    bin has no pose (a detector without keypoints, rows stored before attention existed).
Across sessions (:func:`compare`)
    Kept for the benchmark and old callers; the Compare page and its CSV use :mod:`sessions.stats` (each session
    once, bootstrap bands at pilot sizes, clipped to the metric's range, quality gate). For each group, bin and metric, the mean over sessions of the sessions' bin values, with a 95%
    confidence interval from Student's t distribution (``mean +- t(0.975, n-1) * sd / sqrt(n)``,
    ``scipy.stats.t``; NaN for n < 2), ``n_sessions`` the sessions with a value in the bin, and
    ``share_expressing``: the share of those sessions whose **bin mean probability** of the emotion exceeds
    ``express_threshold`` (default 0.5), the "percentage of participants expressing" that market-research
    panels report. ``share_expressing`` is NaN for the non-emotion metrics.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from scipy import stats

from fer_core.emotions import EMOTIONS, NO_FACE_ID

#: Columns of :func:`per_bin`.
BIN_COLUMNS: tuple[str, ...] = (
    "time_s", *EMOTIONS, *(f"dominant_{e}" for e in EMOTIONS), "face_present_rate", "valence", "engagement",
    "attention_rate", "n_frames",
)  # fmt: skip
#: Metrics compared across sessions by :func:`compare`, in display order.
COMPARE_METRICS: tuple[str, ...] = (*EMOTIONS, "valence", "engagement", "face_present_rate", "attention_rate")
#: Columns of :func:`compare`.
COMPARE_COLUMNS: tuple[str, ...] = (
    "group", "time_s", "metric", "mean", "ci_low", "ci_high", "n_sessions", "share_expressing",
)  # fmt: skip
NEGATIVE_EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "sad")


def _check_bin(bin_s: float) -> float:
    bin_s = float(bin_s)
    if not (math.isfinite(bin_s) and bin_s > 0):
        raise ValueError(f"bin_s has to be a positive number of seconds; got {bin_s!r}")
    return bin_s


def _check_columns(frame: pd.DataFrame, needed: tuple[str, ...], name: str) -> None:
    missing = [c for c in needed if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} has to have the columns {list(needed)}; missing {missing}")


def per_bin(observations: pd.DataFrame, bin_s: float = 1.0) -> pd.DataFrame:
    """Aggregate one session's observations per time bin (definitions in the module docstring).

    Parameters
    ----------
    observations : pandas.DataFrame
        Columns ``OBSERVATION_COLUMNS`` (at least ``time_s``, ``frame``, ``face_id``, ``w``, ``h`` and the seven
        probabilities), one row per face per frame, one no-face row (``face_id = -1``) per frame without a face.
    bin_s : float, default 1.0
        Bin width in seconds.

    Returns
    -------
    pandas.DataFrame
        One row per bin holding at least one frame, ordered by time; columns ``BIN_COLUMNS``: ``time_s``
        (bin start, s), the seven mean probabilities (NaN when no face in the bin), ``dominant_<emotion>``
        shares, ``face_present_rate``, ``valence``, ``engagement``, ``attention_rate`` (float64; NaN where a face
        has no pose, or the table has no ``attentive`` column), ``n_frames`` (int64).

    Raises
    ------
    ValueError
        Missing columns or a non-positive ``bin_s``.
    """
    bin_s = _check_bin(bin_s)
    _check_columns(observations, ("time_s", "frame", "face_id", "w", "h", *EMOTIONS), "observations")
    if observations.empty:
        return pd.DataFrame({c: pd.Series(dtype="int64" if c == "n_frames" else "float64") for c in BIN_COLUMNS})
    bins = np.floor(observations["time_s"].to_numpy(dtype=np.float64) / bin_s + 1e-9).astype(np.int64)
    frame_no = observations["frame"].to_numpy(dtype=np.int64)
    probs = observations[list(EMOTIONS)].to_numpy(dtype=np.float64)
    is_face = (observations["face_id"].to_numpy() != NO_FACE_ID) & ~np.isnan(probs).any(axis=1)
    area = observations["w"].to_numpy(dtype=np.float64) * observations["h"].to_numpy(dtype=np.float64)
    # rows grouped by (bin, frame), the frame's largest face first and its no-face row last
    order = np.lexsort((np.where(is_face, -np.nan_to_num(area, nan=0.0), np.inf), frame_no, bins))
    sorted_bins, sorted_frames = bins[order], frame_no[order]
    first = np.ones(len(order), dtype=bool)
    first[1:] = (sorted_bins[1:] != sorted_bins[:-1]) | (sorted_frames[1:] != sorted_frames[:-1])
    primary = order[first]  # one row per frame: its primary face, or its no-face row
    frame_bins = bins[primary]
    has_face = is_face[primary]
    bin_ids, inverse = np.unique(frame_bins, return_inverse=True)

    n_frames = np.bincount(inverse, minlength=len(bin_ids))
    n_face = np.bincount(inverse, weights=has_face, minlength=len(bin_ids))
    face_probs = np.where(has_face[:, None], probs[primary], 0.0)
    one_hot = np.zeros_like(face_probs)
    one_hot[np.arange(len(primary)), np.argmax(face_probs, axis=1)] = has_face
    with np.errstate(invalid="ignore", divide="ignore"):
        denominator = np.where(n_face > 0, n_face, np.nan)
        out = {"time_s": bin_ids.astype(np.float64) * bin_s}
        for k, emotion in enumerate(EMOTIONS):
            out[emotion] = np.bincount(inverse, weights=face_probs[:, k], minlength=len(bin_ids)) / denominator
        for k, emotion in enumerate(EMOTIONS):
            out[f"dominant_{emotion}"] = (
                np.bincount(inverse, weights=one_hot[:, k], minlength=len(bin_ids)) / denominator
            )
        out["face_present_rate"] = n_face / n_frames
        out["attention_rate"] = _attention_rate(observations, primary, has_face, inverse, n_frames)
    result = pd.DataFrame(out)
    result["valence"] = result["happy"] - result[list(NEGATIVE_EMOTIONS)].sum(axis=1, min_count=len(NEGATIVE_EMOTIONS))
    result["engagement"] = 1.0 - result["neutral"]
    result["n_frames"] = n_frames.astype(np.int64)
    return result[list(BIN_COLUMNS)]


def _attention_rate(observations: pd.DataFrame, primary: np.ndarray, has_face: np.ndarray, inverse: np.ndarray,
                    n_frames: np.ndarray) -> np.ndarray:  # fmt: skip
    """Per bin: attentive frames over analysed frames (no face: not attentive); NaN where a face has no pose."""
    if "attentive" in observations.columns:
        values = pd.array(observations["attentive"], dtype="boolean").to_numpy(dtype=np.float64, na_value=np.nan)
        values = values[primary]
    else:
        values = np.full(len(primary), np.nan)
    unknown = has_face & np.isnan(values)
    looking = has_face & (values == 1.0)
    rate = np.bincount(inverse, weights=looking, minlength=len(n_frames)) / n_frames
    rate[np.bincount(inverse, weights=unknown, minlength=len(n_frames)) > 0] = np.nan
    return rate


def _json_float(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def session_summary(observations: pd.DataFrame, markers: pd.DataFrame | None = None, *,
                    bin_s: float = 1.0) -> dict:  # fmt: skip
    """Summarise one session (JSON-serialisable; NaN becomes None).

    Parameters
    ----------
    observations : pandas.DataFrame
        Columns ``OBSERVATION_COLUMNS`` (see :func:`per_bin`).
    markers : pandas.DataFrame, optional
        Columns ``time_s, label, note`` (:func:`sessions.repository.load_markers`).
    bin_s : float, default 1.0
        Bin width used for the peaks.

    Returns
    -------
    dict
        ``duration_s`` (time of the last observation, s), ``n_frames``, ``face_present_rate``,
        ``emotions``: per emotion ``{"mean", "peak", "peak_time_s"}`` (mean over face frames of the primary
        face's probability; peak = highest per-bin mean and the start time of that bin, s),
        ``dominant_distribution`` (share of face frames in which each emotion is dominant), ``valence`` and
        ``engagement`` (session means), ``markers`` (list of ``{"time_s", "label", "note"}``).
        Probabilities and shares are floats in [0, 1] (``valence`` in [-1, 1]); each is None when the
        session has no face frame (``face_present_rate`` None without frames, ``duration_s`` 0.0 without
        observations).

    Raises
    ------
    ValueError
        ``observations`` lacks columns needed by :func:`per_bin`, or ``bin_s`` is not a positive number.
    KeyError
        ``markers`` has rows but lacks one of the columns ``time_s``, ``label``, ``note``.
    """
    bins = per_bin(observations, bin_s)
    n_frames = int(bins["n_frames"].sum())
    face_frames = bins["face_present_rate"] * bins["n_frames"]
    n_face = float(face_frames.sum())

    def weighted(column: str) -> float | None:
        # frame-weighted mean of the per-bin means = mean over all face frames
        if n_face == 0:
            return None
        return _json_float((bins[column].fillna(0.0) * face_frames).sum() / n_face)

    emotions = {}
    for emotion in EMOTIONS:
        series = bins[emotion]
        has = series.notna().any()
        peak_at = int(series.idxmax()) if has else None
        emotions[emotion] = {
            "mean": weighted(emotion),
            "peak": _json_float(series[peak_at]) if has else None,
            "peak_time_s": _json_float(bins["time_s"][peak_at]) if has else None,
        }
    marker_list = []
    if markers is not None and len(markers):
        marker_list = [{"time_s": float(t), "label": str(label), "note": str(note or "")}
                       for t, label, note in markers[["time_s", "label", "note"]].itertuples(index=False)]  # fmt: skip
    return {
        "duration_s": _json_float(observations["time_s"].max()) if len(observations) else 0.0,
        "n_frames": n_frames,
        "face_present_rate": _json_float(n_face / n_frames) if n_frames else None,
        "emotions": emotions,
        "dominant_distribution": {e: weighted(f"dominant_{e}") for e in EMOTIONS},
        "valence": weighted("valence"),
        "engagement": weighted("engagement"),
        "attention_rate": _attention_mean(bins),
        "markers": marker_list,
    }


def _attention_mean(bins: pd.DataFrame) -> float | None:
    """Share of the analysed frames with an attentive face, over the bins where attention is known; None if none."""
    known = bins["attention_rate"].notna()
    frames = bins.loc[known, "n_frames"].sum()
    return _json_float((bins.loc[known, "attention_rate"] * bins.loc[known, "n_frames"]).sum() / frames) if frames else None


def _as_bins(frame: pd.DataFrame, offset: float, bin_s: float) -> pd.DataFrame:
    """Bins of one session on the aligned time axis (``time_s - offset``): observations are shifted, then binned;
    a per-bin table's bins move to the nearest aligned bin (at most ``bin_s / 2`` from where they belong)."""
    if "frame" in frame.columns:  # observations: shift, then bin
        shifted = frame.assign(time_s=frame["time_s"] - offset)
        return per_bin(shifted, bin_s)
    _check_columns(frame, ("time_s", *COMPARE_METRICS), "a per-bin table")
    if offset == 0:
        return frame
    # already binned: move each bin to the nearest bin of the aligned grid (round to nearest, ties up) and
    # average bins that land together (frames add up). A fractional offset puts a stored bin up to half a bin
    # from where the observations would have landed (floor would put it up to a whole bin off).
    counted = ["n_frames"] if "n_frames" in frame.columns else []
    shifted = frame[["time_s", *COMPARE_METRICS, *counted]].assign(
        time_s=np.floor((frame["time_s"] - offset) / bin_s + 0.5 + 1e-9) * bin_s
    )
    grouped = shifted.groupby("time_s", as_index=False)
    moved = grouped[list(COMPARE_METRICS)].mean()
    if counted:
        moved["n_frames"] = grouped["n_frames"].sum()["n_frames"].to_numpy()
    return moved


def compare(
    per_session: dict[int, pd.DataFrame],
    *,
    groups: dict[int, str] | None = None,
    align: dict[int, float] | None = None,
    bin_s: float = 1.0,
    express_threshold: float = 0.5,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Compare sessions per time bin: mean, confidence interval and share expressing, per group.

    Parameters
    ----------
    per_session : dict of int to pandas.DataFrame
        Session id to its observations (``OBSERVATION_COLUMNS``, binned here after alignment) or to its
        :func:`per_bin` table (then each bin is moved to the nearest bin of the aligned grid of ``bin_s``: with a
        fractional offset a stored bin lands up to half a bin from where its observations would).
    groups : dict of int to str, optional
        Session id to group label (e.g. the ``variant`` tag); default: every session in group ``"all"``.
    align : dict of int to float, optional
        Session id to the session time (s) that becomes time 0, e.g. the time of its "stimulus start" marker
        (:func:`sessions.repository.marker_offsets`); default: session time as recorded.
    bin_s : float, default 1.0
        Bin width in seconds.
    express_threshold : float, default 0.5
        Bin mean probability above which a session counts as expressing an emotion.
    confidence : float, default 0.95
        Confidence level of the t interval.

    Returns
    -------
    pandas.DataFrame
        Tidy, columns ``COMPARE_COLUMNS``: ``group`` (str), ``time_s`` (aligned bin start, s), ``metric``
        (one of ``COMPARE_METRICS``), ``mean``, ``ci_low``, ``ci_high`` (float64), ``n_sessions`` (int64),
        ``share_expressing`` (float64, NaN for non-emotion metrics). Ordered by group, metric, time.

    Raises
    ------
    ValueError
        Empty ``per_session``, a session missing from ``groups`` or ``align``, a non-positive ``bin_s``,
        a ``confidence`` outside (0, 1), or a table lacking the observation or per-bin columns.
    """
    bin_s = _check_bin(bin_s)
    if not per_session:
        raise ValueError("per_session has to hold at least one session; got none")
    if not 0 < confidence < 1:
        raise ValueError(f"confidence has to be in (0, 1); got {confidence!r}")
    ids = list(per_session)
    for name, mapping in (("groups", groups), ("align", align)):
        if mapping is not None:
            missing = [i for i in ids if i not in mapping]
            if missing:
                raise ValueError(f"{name} has to give every session in per_session; missing {missing}")
    parts = []
    for sid in ids:
        bins = _as_bins(per_session[sid], float(align[sid]) if align else 0.0, bin_s)
        part = bins[["time_s", *COMPARE_METRICS]].copy()
        part["group"] = str(groups[sid]) if groups else "all"
        parts.append(part)
    wide = pd.concat(parts, ignore_index=True)
    wide["time_s"] = np.round(wide["time_s"].to_numpy(dtype=np.float64), 9)
    metrics = list(COMPARE_METRICS)
    emotions = list(EMOTIONS)
    expressing = wide[emotions].gt(express_threshold).astype("float64").where(wide[emotions].notna())
    expressing[["group", "time_s"]] = wide[["group", "time_s"]]
    grouped = wide.groupby(["group", "time_s"], sort=True)[metrics]
    mean, sd, count = grouped.mean(), grouped.std(), grouped.count()
    share = expressing.groupby(["group", "time_s"], sort=True)[emotions].mean()
    pieces = []
    for metric in metrics:
        piece = pd.DataFrame({"mean": mean[metric], "sd": sd[metric], "n_sessions": count[metric]})
        piece["share_expressing"] = share[metric] if metric in share else np.nan
        piece["metric"] = metric
        pieces.append(piece[piece["n_sessions"] > 0])
    table = pd.concat(pieces).reset_index()
    n = table["n_sessions"].to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        half = stats.t.ppf(0.5 + confidence / 2, np.where(n > 1, n - 1, np.nan)) * table["sd"] / np.sqrt(n)
    table["ci_low"] = table["mean"] - half
    table["ci_high"] = table["mean"] + half
    table["n_sessions"] = table["n_sessions"].astype("int64")
    table["share_expressing"] = table["share_expressing"].astype("float64")
    table["group"] = table["group"].astype(object)
    order = {m: i for i, m in enumerate(COMPARE_METRICS)}
    table = table.sort_values(["group", "metric", "time_s"], key=lambda s: s.map(order) if s.name == "metric" else s,
                              kind="stable")  # fmt: skip
    return table[list(COMPARE_COLUMNS)].reset_index(drop=True)
