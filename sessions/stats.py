"""Statistics across participants: each session counts once, bands that hold at pilot sizes, a quality gate.

Pure functions on tidy pandas frames; the Compare page and the exports print what they return. Bins and
metrics (valence, engagement, probabilities) are those of :func:`sessions.aggregate.per_bin`.

Definitions
-----------
Session curve
    A session's per-bin values (:func:`session_bins`), aligned on a marker when asked. A bin with fewer than
    ``min_frames_per_s * bin_s`` analysed frames (default 5 per second) is left out of the curve (NaN) and
    counted (``low_frames``): a 2-frame second is not an estimate of the same quality as a 15-frame one.
Group curve
    Per bin, the mean over the group's sessions of each session's bin value (each session once, whatever its
    length or frame rate); ``n_sessions`` the sessions with a value in the bin.
Group mean of a metric
    The mean over sessions of each session's mean over its bins (:func:`session_means`, :func:`group_means`):
    a 123 s session and a 20 s one weigh the same.
95% band
    Over sessions, never over frames or bins. With fewer than 3 sessions: no band (NaN). With 3-9 sessions: the
    bootstrap percentile interval (Efron B. & Tibshirani R. J., 1993, *An Introduction to the Bootstrap*,
    Chapman & Hall, ch. 13): sessions are resampled with replacement ``n_resamples`` times (default 2000) with
    a fixed seed, so a figure is the same every time it is drawn; the interval is the 2.5 and 97.5 percentiles
    of the resampled means; at such sizes it covers the true mean somewhat less often than 95% (about 89-91% of
    simulated groups of 8 normal sessions, ``tests/sessions/test_stats.py``), and it never reaches beyond the
    observed sessions' values. With 10 or more: Student's t interval ``mean +- t(0.975, n-1) * sd / sqrt(n)``.
    Both are clipped to the metric's range (:data:`METRIC_RANGES`): a Student-t band over two sessions (one
    degree of freedom, t = 12.7) otherwise runs far outside [-1, 1].
Share expressing
    Per bin, the share of sessions (each once) whose bin value is above the threshold (default 0.5), for the
    probabilities (the seven emotions) and engagement (``1 - neutral``, a probability too); for valence, which
    is not a probability, the share of sessions with **positive valence** (bin valence above 0; the threshold
    does not apply); for the attention rate, the share of sessions **attending** (face turned to the screen in
    more than half of the bin's frames: Realeyes' "share of viewers attentive" per second; the threshold does not
    apply); not defined for the face-present rate (a quality measure, not an expression).
Quality gate
    :func:`quality_table` and :class:`ExclusionRules`: by default aborted sessions and sessions with a face in
    under 70% of their analysed frames are left out; a researcher keeps any of them by id.
Two groups
    :func:`compare_two`: on session means, the difference of means, Welch's t test
    (``scipy.stats.ttest_ind(equal_var=False)``), a two-sided permutation test of the difference of means
    (``scipy.stats.permutation_test``, fixed seed; exact when there are fewer distinct splits than resamples),
    and Hedges' g (Hedges L. V., 1981, J. Educ. Stat. 6(2); pooled SD, small-sample factor
    ``1 - 3 / (4 (n_a + n_b) - 9)``).
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from fer_core.emotions import EMOTIONS
from sessions.aggregate import COMPARE_COLUMNS, COMPARE_METRICS, _as_bins, _check_bin

#: Range of each metric of ``COMPARE_METRICS``: bands and axes are clipped to it.
METRIC_RANGES: dict[str, tuple[float, float]] = {
    **{e: (0.0, 1.0) for e in EMOTIONS}, "valence": (-1.0, 1.0), "engagement": (0.0, 1.0),
    "face_present_rate": (0.0, 1.0), "attention_rate": (0.0, 1.0),
}  # fmt: skip
#: A session attends in a bin when its face was turned to the screen in more than this share of the bin's frames.
ATTENDING_SHARE = 0.5
#: Fewest sessions with a band; below, ``ci_low``/``ci_high`` are NaN.
MIN_BAND_SESSIONS = 3
#: From this many sessions on, Student's t interval; below it, the bootstrap.
T_FROM_SESSIONS = 10
DEFAULT_RESAMPLES = 2000
DEFAULT_SEED = 20_240_601
#: Columns of :func:`session_bins`.
SESSION_BIN_COLUMNS: tuple[str, ...] = ("session_id", "time_s", *COMPARE_METRICS, "n_frames", "low_frames")
#: Columns of :func:`group_curves`: ``COMPARE_COLUMNS``, then the bins left out and the band method.
CURVE_COLUMNS: tuple[str, ...] = (*COMPARE_COLUMNS, "n_low_frames", "method")
#: Columns of :func:`session_means`.
SESSION_MEAN_COLUMNS: tuple[str, ...] = ("session_id", "metric", "mean", "n_bins")
#: Columns of :func:`group_means`.
GROUP_MEAN_COLUMNS: tuple[str, ...] = ("group", "metric", "mean", "ci_low", "ci_high", "n_sessions", "method")
#: Columns of :func:`quality_table`.
QUALITY_COLUMNS: tuple[str, ...] = (
    "session_id", "participant_code", "status", "face_present_rate", "analysed_frames", "frames_per_s",
    "dropped_share", "low_frame_bins", "share_seen",
)  # fmt: skip
#: Columns of :func:`group_differences`.
DIFFERENCE_COLUMNS: tuple[str, ...] = (
    "metric", "group_a", "group_b", "n_a", "n_b", "mean_a", "mean_b", "difference", "welch_t", "welch_p",
    "permutation_p", "hedges_g", "note",
)  # fmt: skip
NO_BAND = f"no band (fewer than {MIN_BAND_SESSIONS} sessions)"
T_METHOD = "Student-t {level:.0%} interval over sessions"
BOOTSTRAP_METHOD = "bootstrap percentile {level:.0%} interval over sessions, {n_resamples} resamples"
TOO_FEW = "too few sessions to say anything (fewer than 3 in a group)"
FEW = "few sessions: read with caution (fewer than 5 in a group)"


def _check_confidence(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence has to be in (0, 1); got {confidence!r}")
    return float(confidence)


def _check_metric(metric: str) -> str:
    if metric not in METRIC_RANGES:
        raise ValueError(f"metric has to be one of {list(COMPARE_METRICS)}; got {metric!r}")
    return metric


def session_bins(
    per_session: Mapping[int, pd.DataFrame],
    *,
    align: Mapping[int, float] | None = None,
    bin_s: float = 1.0,
    min_frames_per_s: float = 5.0,
) -> pd.DataFrame:
    """Each session's per-bin values on a common time axis, bins with too few analysed frames left out.

    Parameters
    ----------
    per_session : mapping of int to pandas.DataFrame
        Session id to its observations (``OBSERVATION_COLUMNS``) or its :func:`sessions.aggregate.per_bin`
        table (observations are binned with :func:`sessions.aggregate.per_bin` after alignment, as ``compare``
        does; a per-bin table's bins move to the nearest aligned bin, so with a marker at a fractional second a
        stored bin's values sit up to half a bin, 0.5 s for 1 s bins, from where its observations would land).
    align : mapping of int to float, optional
        Session id to the session time (s) that becomes time 0 (:func:`sessions.repository.marker_offsets`).
    bin_s : float, default 1.0
        Bin width, s.
    min_frames_per_s : float, default 5.0
        Fewest analysed frames per second of bin; a bin with fewer than ``min_frames_per_s * bin_s`` frames
        gets NaN metrics and ``low_frames`` True. 0 keeps every bin. A per-bin table without ``n_frames``
        keeps every bin.

    Returns
    -------
    pandas.DataFrame
        Columns ``SESSION_BIN_COLUMNS``: ``session_id`` (int64), ``time_s`` (aligned bin start, s),
        ``COMPARE_METRICS`` (float64), ``n_frames`` (int64, analysed frames in the bin), ``low_frames`` (bool).
        Ordered by session, time.

    Raises
    ------
    ValueError
        Empty ``per_session``, a session missing from ``align``, a non-positive ``bin_s``, a negative or
        non-finite ``min_frames_per_s``, or a table lacking the observation or per-bin columns.
    """
    bin_s = _check_bin(bin_s)
    if not per_session:
        raise ValueError("per_session has to hold at least one session; got none")
    if not (math.isfinite(min_frames_per_s) and min_frames_per_s >= 0):
        raise ValueError(f"min_frames_per_s has to be a number >= 0; got {min_frames_per_s!r}")
    if align is not None:
        missing = [i for i in per_session if i not in align]
        if missing:
            raise ValueError(f"align has to give every session in per_session; missing {missing}")
    parts = []
    for sid, frame in per_session.items():
        bins = _as_bins(frame, float(align[sid]) if align else 0.0, bin_s)
        part = bins[["time_s", *COMPARE_METRICS]].copy()
        part["n_frames"] = bins["n_frames"].to_numpy() if "n_frames" in bins else -1
        part.insert(0, "session_id", int(sid))
        parts.append(part)
    table = pd.concat(parts, ignore_index=True)
    table["time_s"] = np.round(table["time_s"].to_numpy(dtype=np.float64), 9)
    table["n_frames"] = table["n_frames"].astype("int64")
    low = (table["n_frames"] >= 0) & (table["n_frames"] < min_frames_per_s * bin_s)
    table.loc[low, list(COMPARE_METRICS)] = np.nan
    table["low_frames"] = low.to_numpy()
    table["session_id"] = table["session_id"].astype("int64")
    return table.sort_values(["session_id", "time_s"], kind="stable")[list(SESSION_BIN_COLUMNS)].reset_index(drop=True)


def band_method(n_sessions: int, *, confidence: float = 0.95, n_resamples: int = DEFAULT_RESAMPLES) -> str:
    """The band method used for ``n_sessions`` sessions, in words (printed under charts and in exports)."""
    if n_sessions < MIN_BAND_SESSIONS:
        return NO_BAND
    if n_sessions < T_FROM_SESSIONS:
        return BOOTSTRAP_METHOD.format(level=confidence, n_resamples=n_resamples)
    return T_METHOD.format(level=confidence)


def interval_bands(
    values: np.ndarray,
    *,
    value_range: tuple[float, float],
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
) -> dict[str, np.ndarray]:
    """Mean and 95% band over sessions of each column (a bin or a metric), NaN for a missing value.

    Parameters
    ----------
    values : ndarray of shape (n_sessions, n_columns), float
        One row per session; NaN where the session has no value.
    value_range : (float, float)
        The metric's range; the band is clipped to it.
    confidence : float, default 0.95
        Level of the interval.
    n_resamples : int, default 2000
        Bootstrap resamples (3 to 9 sessions; see the module docstring).
    seed : int
        Seed of the resampling; the resamples for ``k`` sessions come from ``numpy.random.default_rng([seed,
        k])``, so a column's band depends only on its values.

    Returns
    -------
    dict of str to ndarray of shape (n_columns,)
        ``mean``, ``ci_low``, ``ci_high`` (float64, NaN below 3 sessions), ``n`` (int64, sessions with a value),
        ``method`` (object: :func:`band_method` of ``n``).

    Raises
    ------
    ValueError
        ``values`` not two-dimensional, ``confidence`` outside (0, 1), ``n_resamples`` < 100, or a range whose
        low end is not below its high end.
    """
    confidence = _check_confidence(confidence)
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 2:
        raise ValueError(f"values has to be a 2-d array (sessions, columns); got shape {values.shape}")
    if int(n_resamples) < 100:
        raise ValueError(f"n_resamples has to be at least 100; got {n_resamples!r}")
    low_end, high_end = (float(v) for v in value_range)
    if not low_end < high_end:
        raise ValueError(f"value_range has to be (low, high) with low < high; got {value_range!r}")
    present = ~np.isnan(values)
    n = present.sum(axis=0).astype(np.int64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(n > 0, np.nansum(values, axis=0) / np.where(n > 0, n, 1), np.nan)
    ci_low, ci_high = np.full(n.shape, np.nan), np.full(n.shape, np.nan)
    alpha = 1.0 - confidence
    t_cols = n >= T_FROM_SESSIONS
    if t_cols.any():
        sd = np.sqrt(np.nansum((values[:, t_cols] - mean[t_cols]) ** 2, axis=0) / (n[t_cols] - 1))
        half = stats.t.ppf(1 - alpha / 2, n[t_cols] - 1) * sd / np.sqrt(n[t_cols])
        ci_low[t_cols], ci_high[t_cols] = mean[t_cols] - half, mean[t_cols] + half
    for k in np.unique(n[(n >= MIN_BAND_SESSIONS) & ~t_cols]):
        cols = np.flatnonzero(n == k)
        # each column's k values first (stable: NaN rows sorted after), as a (columns, k) matrix
        block = values[:, cols].T
        order = np.argsort(np.isnan(block), axis=1, kind="stable")[:, :k]
        compact = np.take_along_axis(block, order, axis=1)
        weights = np.random.default_rng([int(seed), int(k)]).multinomial(k, np.full(k, 1.0 / k), size=int(n_resamples))
        resampled = compact @ (weights.T / k)  # (columns, resamples): the mean of each resample
        ci_low[cols], ci_high[cols] = np.quantile(resampled, [alpha / 2, 1 - alpha / 2], axis=1)
    counts, inverse = np.unique(n, return_inverse=True)  # one sentence per session count, not per column
    words = np.array([band_method(int(k), confidence=confidence, n_resamples=int(n_resamples)) for k in counts],
                     dtype=object)  # fmt: skip
    method = words[inverse.reshape(n.shape)] if len(n) else np.array([], dtype=object)
    return {"mean": mean, "ci_low": np.clip(ci_low, low_end, high_end), "ci_high": np.clip(ci_high, low_end, high_end),
            "n": n, "method": method}  # fmt: skip


def share_definition(metric: str, threshold: float = 0.5) -> str | None:
    """What "share expressing" means for ``metric`` in words, or None where it is not defined.

    Raises
    ------
    ValueError
        ``metric`` is not one of ``COMPARE_METRICS``.
    """
    _check_metric(metric)
    if metric in EMOTIONS:
        return f"share of sessions whose bin mean probability of {metric} is above {threshold:.2f}"
    if metric == "engagement":
        return f"share of sessions whose bin engagement (1 - neutral) is above {threshold:.2f}"
    if metric == "valence":
        return (
            "share of sessions with positive valence (bin valence above 0; the threshold applies to probabilities only)"
        )
    if metric == "attention_rate":
        return (f"share of sessions attending: face turned to the screen in more than {ATTENDING_SHARE:.0%} of the "
                "bin's frames (the threshold applies to probabilities only)")  # fmt: skip
    return None


def share_not_defined(metric: str) -> str:
    """Why there is no share expressing for ``metric`` (for a page to say so)."""
    return f"Share expressing is not defined for {metric}: it measures recording quality, not an expression."


def expressing_cut(metric: str, threshold: float) -> float:
    """The value above which a session's bin (or segment) counts as expressing ``metric``: 0 for valence,
    :data:`ATTENDING_SHARE` of the frames for the attention rate, else ``threshold`` (a probability). Curves
    and segments both use it (:func:`share_definition` says it in words)."""
    return {"valence": 0.0, "attention_rate": ATTENDING_SHARE}.get(metric, threshold)


def _expressing(values: np.ndarray, metric: str, threshold: float) -> np.ndarray:
    if share_definition(metric, threshold) is None:
        return np.full(values.shape, np.nan)
    cut = expressing_cut(metric, threshold)
    return np.where(np.isnan(values), np.nan, (values > cut).astype(np.float64))


def _share(expressing: np.ndarray) -> np.ndarray:
    counted = (~np.isnan(expressing)).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counted > 0, np.nansum(expressing, axis=0) / counted, np.nan)


def group_curves(
    bins: pd.DataFrame,
    groups: Mapping[int, str] | None = None,
    *,
    express_threshold: float = 0.5,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    metrics: Iterable[str] = COMPARE_METRICS,
    value_ranges: Mapping[str, tuple[float, float]] | None = None,
) -> pd.DataFrame:
    """Per group, bin and metric: the equal-weighted mean over sessions, its 95% band and the share expressing.

    Parameters
    ----------
    bins : pandas.DataFrame
        :func:`session_bins` (``session_id``, ``time_s``, ``COMPARE_METRICS``, ``low_frames``).
    groups : mapping of int to str, optional
        Session id to group label; default: every session in ``"all"``.
    express_threshold : float, default 0.5
        Bin value above which a session counts as expressing (see :func:`share_definition`).
    confidence, n_resamples, seed
        As in :func:`interval_bands`.
    metrics : iterable of str, default ``COMPARE_METRICS``
        The metrics to compute (a page showing one metric asks for that one only).
    value_ranges : mapping of str to (float, float), optional
        The range each band is clipped to; default :data:`METRIC_RANGES` (a baseline-corrected value, a
        difference, has a wider one: ``sessions.analysis.metric_range``).

    Returns
    -------
    pandas.DataFrame
        Columns ``CURVE_COLUMNS``: ``group`` (str), ``time_s`` (s), ``metric``, ``mean``, ``ci_low``,
        ``ci_high`` (float64; NaN below 3 sessions), ``n_sessions`` (int64, sessions with a value in the bin),
        ``share_expressing`` (float64 in [0, 1]; NaN where not defined), ``n_low_frames`` (int64, sessions
        whose bin was left out for too few frames), ``method`` (str, :func:`band_method`). Ordered by group,
        metric, time; bins where no session has a value and none was left out are absent.

    Raises
    ------
    ValueError
        Missing columns, a session missing from ``groups``, or ``express_threshold`` outside [0, 1].
    """
    _need(bins, ("session_id", "time_s", *COMPARE_METRICS, "low_frames"), "bins")
    if not 0 <= express_threshold <= 1:
        raise ValueError(f"express_threshold has to be in [0, 1]; got {express_threshold!r}")
    labels = _labels(bins["session_id"], groups)
    pieces = []
    for group in sorted(set(labels.values())):
        part = bins[bins["session_id"].map(labels) == group]
        low = part.pivot(index="session_id", columns="time_s", values="low_frames").astype("float64").fillna(0.0)
        for metric in metrics:
            wide = part.pivot(index="session_id", columns="time_s", values=_check_metric(metric))
            values = wide.to_numpy(dtype=np.float64)
            value_range = (value_ranges or {}).get(metric, METRIC_RANGES[metric])
            band = interval_bands(values, value_range=value_range, confidence=confidence,
                                  n_resamples=n_resamples, seed=seed)  # fmt: skip
            share = _share(_expressing(values, metric, express_threshold))
            piece = pd.DataFrame({"time_s": wide.columns.to_numpy(dtype=np.float64), "mean": band["mean"],
                                  "ci_low": band["ci_low"], "ci_high": band["ci_high"], "n_sessions": band["n"],
                                  "share_expressing": share, "n_low_frames": low.sum(axis=0).to_numpy(),
                                  "method": band["method"]})  # fmt: skip
            piece = piece[(piece["n_sessions"] > 0) | (piece["n_low_frames"] > 0)]
            pieces.append(piece.assign(group=str(group), metric=metric))
    table = pd.concat(pieces, ignore_index=True)
    for column in ("n_sessions", "n_low_frames"):
        table[column] = table[column].astype("int64")
    table["share_expressing"] = table["share_expressing"].astype("float64")
    table["group"] = table["group"].astype(object)
    return table[list(CURVE_COLUMNS)]


def session_means(bins: pd.DataFrame, *, start_s: float | None = None, end_s: float | None = None) -> pd.DataFrame:
    """Each session's mean over its bins of each metric, optionally within a time range.

    Parameters
    ----------
    bins : pandas.DataFrame
        :func:`session_bins`.
    start_s, end_s : float, optional
        Keep the bins with ``start_s <= time_s < end_s`` (aligned time, s); default: all.

    Returns
    -------
    pandas.DataFrame
        Columns ``SESSION_MEAN_COLUMNS``: ``session_id`` (int64), ``metric``, ``mean`` (float64, NaN when the
        session has no bin with a value), ``n_bins`` (int64, bins with a value). One row per session and
        metric, sessions in order, metrics in ``COMPARE_METRICS`` order.

    Raises
    ------
    ValueError
        Missing columns, or ``start_s`` not below ``end_s``.
    """
    _need(bins, ("session_id", "time_s", *COMPARE_METRICS), "bins")
    if start_s is not None and end_s is not None and not start_s < end_s:
        raise ValueError(f"start_s has to be below end_s; got {start_s!r} and {end_s!r}")
    keep = pd.Series(True, index=bins.index)
    if start_s is not None:
        keep &= bins["time_s"] >= start_s
    if end_s is not None:
        keep &= bins["time_s"] < end_s
    ids = pd.Index(sorted(bins["session_id"].unique()), name="session_id")
    grouped = bins[keep].groupby("session_id")[list(COMPARE_METRICS)]
    mean = grouped.mean().reindex(ids).rename_axis(columns="metric")
    count = grouped.count().reindex(ids).fillna(0).rename_axis(columns="metric")
    long = pd.DataFrame({"mean": mean.stack(future_stack=True), "n_bins": count.stack(future_stack=True)}).reset_index()
    long["n_bins"] = long["n_bins"].astype("int64")
    long["session_id"] = long["session_id"].astype("int64")
    return long[list(SESSION_MEAN_COLUMNS)]


def group_means(
    means: pd.DataFrame,
    groups: Mapping[int, str] | None = None,
    *,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_RESAMPLES,
    seed: int = DEFAULT_SEED,
    value_ranges: Mapping[str, tuple[float, float]] | None = None,
) -> pd.DataFrame:
    """Per group and metric, the mean over sessions of the session means, with its 95% band.

    Parameters
    ----------
    means : pandas.DataFrame
        :func:`session_means`.
    groups : mapping of int to str, optional
        Session id to group label; default: every session in ``"all"``.
    confidence, n_resamples, seed
        As in :func:`interval_bands`.
    value_ranges : mapping of str to (float, float), optional
        The range each band is clipped to, per metric; default :data:`METRIC_RANGES`. Baseline-corrected means
        (differences, possibly negative) need the wider range of ``sessions.analysis.metric_range``, as in
        :func:`group_curves`.

    Returns
    -------
    pandas.DataFrame
        Columns ``GROUP_MEAN_COLUMNS``: ``group``, ``metric``, ``mean``, ``ci_low``, ``ci_high`` (float64),
        ``n_sessions`` (int64), ``method`` (str). Ordered by group, then ``COMPARE_METRICS``.

    Raises
    ------
    ValueError
        Missing columns or a session missing from ``groups``.
    """
    _need(means, SESSION_MEAN_COLUMNS, "means")
    labels = _labels(means["session_id"], groups)
    rows = []
    for group in sorted(set(labels.values())):
        wide = means[means["session_id"].map(labels) == group].pivot(
            index="session_id", columns="metric", values="mean"
        )
        for metric in COMPARE_METRICS:
            column = wide[metric].to_numpy(dtype=np.float64)[:, None] if metric in wide else np.empty((0, 1))
            value_range = (value_ranges or {}).get(metric, METRIC_RANGES[metric])
            band = interval_bands(column, value_range=value_range, confidence=confidence,
                                  n_resamples=n_resamples, seed=seed)  # fmt: skip
            rows.append({"group": str(group), "metric": metric, **{k: v[0] for k, v in band.items() if k != "n"},
                         "n_sessions": int(band["n"][0])})  # fmt: skip
    table = pd.DataFrame(rows, columns=list(GROUP_MEAN_COLUMNS))
    table["n_sessions"] = table["n_sessions"].astype("int64")
    return table


@dataclass(frozen=True)
class GroupDifference:
    """Two groups compared on one metric's session means (see :func:`compare_two`)."""

    metric: str
    group_a: str
    group_b: str
    n_a: int
    n_b: int
    mean_a: float
    mean_b: float
    difference: float
    welch_t: float
    welch_p: float
    permutation_p: float
    hedges_g: float
    note: str


def hedges_g(a: np.ndarray, b: np.ndarray) -> float:
    """Hedges' g of ``a`` minus ``b``: Cohen's d on the pooled SD times ``1 - 3 / (4 (n_a + n_b) - 9)``.

    NaN with fewer than 2 values in a group or a pooled SD of 0.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    n_a, n_b = len(a), len(b)
    if n_a < 2 or n_b < 2:
        return math.nan
    pooled = math.sqrt(((n_a - 1) * a.var(ddof=1) + (n_b - 1) * b.var(ddof=1)) / (n_a + n_b - 2))
    if pooled == 0:
        return math.nan
    return float((a.mean() - b.mean()) / pooled * (1 - 3 / (4 * (n_a + n_b) - 9)))


def small_sample_note(n_a: int, n_b: int) -> str:
    """``TOO_FEW`` below 3 sessions in either group, ``FEW`` below 5, else an empty string."""
    smallest = min(n_a, n_b)
    return TOO_FEW if smallest < 3 else FEW if smallest < 5 else ""


def compare_two(
    means: pd.DataFrame,
    groups: Mapping[int, str],
    metric: str,
    group_a: str,
    group_b: str,
    *,
    n_resamples: int = 9999,
    seed: int = DEFAULT_SEED,
) -> GroupDifference:
    """Compare two groups on one metric's session means (each session once).

    Parameters
    ----------
    means : pandas.DataFrame
        :func:`session_means` (over the time range of interest).
    groups : mapping of int to str
        Session id to group label.
    metric : str
        One of ``COMPARE_METRICS``.
    group_a, group_b : str
        The two labels; the difference is ``mean_a - mean_b``.
    n_resamples : int, default 9999
        Permutations drawn when there are more distinct splits (otherwise the test is exact).
    seed : int
        Seed of the permutations.

    Returns
    -------
    GroupDifference
        ``n_a``, ``n_b`` (sessions with a value), the group means and their ``difference`` (metric units),
        ``welch_t``, ``welch_p`` (two-sided), ``permutation_p`` (two-sided, difference of means), ``hedges_g``;
        NaN where a group has fewer than 2 sessions; ``note``: :func:`small_sample_note`.

    Raises
    ------
    ValueError
        Missing columns, an unknown ``metric``, or a session missing from ``groups``.
    """
    _need(means, SESSION_MEAN_COLUMNS, "means")
    _check_metric(metric)
    labels = _labels(means["session_id"], groups)
    rows = means[(means["metric"] == metric) & means["mean"].notna()]
    by_group = rows["session_id"].map(labels)
    a = rows.loc[by_group == group_a, "mean"].to_numpy(dtype=np.float64)
    b = rows.loc[by_group == group_b, "mean"].to_numpy(dtype=np.float64)
    welch_t = welch_p = permutation_p = math.nan
    if len(a) >= 2 and len(b) >= 2:
        with warnings.catch_warnings():  # near-identical session means: scipy warns, the result says NaN or inf
            warnings.simplefilter("ignore", RuntimeWarning)
            welch = stats.ttest_ind(a, b, equal_var=False)
        welch_t, welch_p = float(welch.statistic), float(welch.pvalue)
        permutation = stats.permutation_test((a, b), _difference_of_means, permutation_type="independent",
                                             n_resamples=n_resamples, alternative="two-sided",
                                             random_state=np.random.default_rng(seed))  # fmt: skip
        permutation_p = float(permutation.pvalue)
    mean_a = float(a.mean()) if len(a) else math.nan
    mean_b = float(b.mean()) if len(b) else math.nan
    return GroupDifference(metric, str(group_a), str(group_b), len(a), len(b), mean_a, mean_b, mean_a - mean_b,
                           welch_t, welch_p, permutation_p, hedges_g(a, b), small_sample_note(len(a), len(b)))  # fmt: skip


def _difference_of_means(a: np.ndarray, b: np.ndarray, axis: int = -1) -> np.ndarray:
    return np.mean(a, axis=axis) - np.mean(b, axis=axis)


def group_differences(means: pd.DataFrame, groups: Mapping[int, str], metric: str, *,
                      seed: int = DEFAULT_SEED) -> pd.DataFrame:  # fmt: skip
    """:func:`compare_two` for every pair of groups (in sorted order), one row each.

    Returns
    -------
    pandas.DataFrame
        Columns ``DIFFERENCE_COLUMNS`` (the fields of :class:`GroupDifference`); no rows for one group.

    Raises
    ------
    ValueError
        As :func:`compare_two`.
    """
    labels = _labels(means["session_id"], groups) if "session_id" in means else {}
    pairs = itertools.combinations(sorted(set(labels.values())), 2)
    rows = [compare_two(means, groups, metric, a, b, seed=seed).__dict__ for a, b in pairs]
    return pd.DataFrame(rows, columns=list(DIFFERENCE_COLUMNS))


def quality_table(sessions: pd.DataFrame, bins: pd.DataFrame) -> pd.DataFrame:
    """One row per session: face-present rate, analysed frames per second, dropped share, status.

    Parameters
    ----------
    sessions : pandas.DataFrame
        :func:`sessions.repository.list_sessions` rows (``session_id``, ``participant_code``, ``status``,
        ``duration_s``, ``face_present_rate``, ``dropped_frames``), optionally ``share_seen``
        (:func:`sessions.playback.sessions_share_seen`; NaN for a session without a stimulus).
    bins : pandas.DataFrame
        :func:`session_bins` of these sessions (``session_id``, ``n_frames``, ``low_frames``); a session
        absent from it has no analysed frame.

    Returns
    -------
    pandas.DataFrame
        Columns ``QUALITY_COLUMNS``: ``session_id`` (int64), ``participant_code``, ``status``,
        ``face_present_rate`` (share of analysed frames with a face, NaN without frames), ``analysed_frames``
        (int64), ``frames_per_s`` (analysed frames per second of session time, NaN for a zero duration),
        ``dropped_share`` (``dropped / (dropped + analysed)``, NaN when both are 0), ``low_frame_bins``
        (int64, bins left out for too few frames), ``share_seen`` (float64 share of the stimulus shown, NaN
        without a stimulus or without the column). In the order of ``sessions``.

    Raises
    ------
    ValueError
        Missing columns.
    """
    _need(sessions, ("session_id", "participant_code", "status", "duration_s", "face_present_rate",
                     "dropped_frames"), "sessions")  # fmt: skip
    _need(bins, ("session_id", "n_frames", "low_frames"), "bins")
    ids = sessions["session_id"].astype("int64").to_numpy()
    per_session = (
        bins.assign(n_frames=bins["n_frames"].clip(lower=0)).groupby("session_id")[["n_frames", "low_frames"]].sum()
    )
    analysed = per_session["n_frames"].reindex(ids).fillna(0).to_numpy(dtype=np.int64)
    dropped = sessions["dropped_frames"].fillna(0).to_numpy(dtype=np.float64)
    duration = sessions["duration_s"].to_numpy(dtype=np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        frames_per_s = np.where(duration > 0, analysed / duration, np.nan)
        dropped_share = np.where(analysed + dropped > 0, dropped / (analysed + dropped), np.nan)
    return pd.DataFrame({
        "session_id": ids, "participant_code": sessions["participant_code"].to_numpy(),
        "status": sessions["status"].to_numpy(), "face_present_rate": sessions["face_present_rate"].to_numpy(dtype=np.float64),
        "analysed_frames": analysed, "frames_per_s": frames_per_s, "dropped_share": dropped_share,
        "low_frame_bins": per_session["low_frames"].reindex(ids).fillna(0).to_numpy(dtype=np.int64),
        "share_seen": (sessions["share_seen"].to_numpy(dtype=np.float64) if "share_seen" in sessions
                       else np.full(len(ids), np.nan)),
    })  # fmt: skip


@dataclass(frozen=True)
class ExclusionRules:
    """Which sessions a comparison leaves out by default, and the ones a researcher keeps anyway.

    Parameters
    ----------
    exclude_aborted : bool, default True
        Leave out sessions whose status is ``aborted``.
    min_face_present : float, default 0.7
        Leave out sessions with a face in fewer than this share of their analysed frames (or none analysed).
    min_share_seen : float, default 0.0
        Leave out sessions that showed less than this share of their stimulus (``quality_table``'s
        ``share_seen``); a session without a stimulus (NaN) is never left out by it. 0: off.
    keep : frozenset of int
        Session ids kept whatever the rules say.
    """

    exclude_aborted: bool = True
    min_face_present: float = 0.7
    keep: frozenset[int] = field(default_factory=frozenset)
    min_share_seen: float = 0.0

    def __post_init__(self):
        if not 0 <= self.min_face_present <= 1:
            raise ValueError(f"min_face_present has to be in [0, 1]; got {self.min_face_present!r}")
        if not 0 <= self.min_share_seen <= 1:
            raise ValueError(f"min_share_seen has to be in [0, 1]; got {self.min_share_seen!r}")
        object.__setattr__(self, "keep", frozenset(int(i) for i in self.keep))


@dataclass(frozen=True)
class Exclusions:
    """The outcome of :func:`apply_exclusions`."""

    #: Session ids kept, in the order of the quality table.
    kept: tuple[int, ...]
    #: Columns ``session_id, participant_code, status, face_present_rate, reason`` (why, in words).
    excluded: pd.DataFrame


def exclusion_reason(row, rules: ExclusionRules) -> str:
    """Why ``rules`` leave out the session of a :func:`quality_table` row, or an empty string."""
    reasons = []
    if rules.exclude_aborted and row.status == "aborted":
        reasons.append("aborted")
    rate = float(row.face_present_rate)
    if math.isnan(rate) or row.analysed_frames == 0:
        reasons.append("no analysed frames")
    elif rate < rules.min_face_present:
        reasons.append(f"face present in {rate:.1%} of frames (under {rules.min_face_present:.0%})")
    seen = float(getattr(row, "share_seen", math.nan))
    if rules.min_share_seen > 0 and not math.isnan(seen) and seen < rules.min_share_seen:
        reasons.append(f"saw {seen:.1%} of the stimulus (under {rules.min_share_seen:.0%})")
    return "; ".join(reasons)


def apply_exclusions(quality: pd.DataFrame, rules: ExclusionRules = ExclusionRules()) -> Exclusions:
    """Split the sessions of a quality table into kept and excluded (with the reason), overrides kept.

    Parameters
    ----------
    quality : pandas.DataFrame
        :func:`quality_table`.
    rules : ExclusionRules, default ExclusionRules()
        Aborted and under-70%-face sessions out, none kept by override.

    Returns
    -------
    Exclusions
        ``kept`` ids (overrides included) and the ``excluded`` table (a session kept by override is not in it).

    Raises
    ------
    ValueError
        Missing columns.
    """
    _need(quality, ("session_id", "participant_code", "status", "face_present_rate", "analysed_frames"), "quality")
    reasons = [exclusion_reason(row, rules) for row in quality.itertuples(index=False)]
    ids = quality["session_id"].astype("int64").tolist()
    out = [bool(r) and sid not in rules.keep for sid, r in zip(ids, reasons, strict=True)]
    excluded = quality.loc[out, ["session_id", "participant_code", "status", "face_present_rate"]].copy()
    excluded["reason"] = [r for r, o in zip(reasons, out, strict=True) if o]
    kept = tuple(sid for sid, o in zip(ids, out, strict=True) if not o)
    return Exclusions(kept=kept, excluded=excluded.reset_index(drop=True))


def describe_bands(curves: pd.DataFrame) -> str:
    """One sentence on the band methods and session counts of a :func:`group_curves` (or ``group_means``) table.

    Example: ``"Bands: bootstrap percentile 95% interval over sessions, 2000 resamples; no band (fewer than
    3 sessions) where fewer sessions have a value. Sessions per bin: 2 to 4."``
    """
    _need(curves, ("method", "n_sessions"), "curves")
    methods = list(dict.fromkeys(curves["method"]))
    banded = [m for m in methods if m != NO_BAND]
    text = "Bands: " + ("; ".join(banded) if banded else "none")
    if NO_BAND in methods:
        text += f"; no band where fewer than {MIN_BAND_SESSIONS} sessions have a value"
    counts = curves["n_sessions"]
    low, high = (int(counts.min()), int(counts.max())) if len(counts) else (0, 0)
    return f"{text}. Sessions per value: {low}" + (f" to {high}." if high != low else ".")


def _need(frame: pd.DataFrame, columns: Iterable[str], name: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{name} has to have the columns {list(columns)}; missing {missing}")


def _labels(session_ids: pd.Series, groups: Mapping[int, str] | None) -> dict[int, str]:
    ids = [int(i) for i in pd.unique(session_ids)]
    if groups is None:
        return {i: "all" for i in ids}
    missing = [i for i in ids if i not in groups]
    if missing:
        raise ValueError(f"groups has to give every session; missing {missing}")
    return {i: str(groups[i]) for i in ids}
