"""Tables as the pages show them (renamed, formatted columns); no database access here."""

from __future__ import annotations

import pandas as pd

from dashboard.tags import format_tags


def session_table(sessions: pd.DataFrame) -> pd.DataFrame:
    """The session list of ``sessions.repository.list_sessions`` as shown to the researcher.

    Returns
    -------
    DataFrame
        Columns ``session, participant, tags, source, status, started (UTC), duration (s),
        face present, dominant emotion, dropped frames, model`` (the expression model that analysed it).
    """
    return pd.DataFrame(
        {
            "session": sessions["session_id"].astype(int),
            "participant": sessions["participant_code"],
            "tags": sessions["tags"].map(format_tags),
            "source": sessions["source"],
            "status": sessions["status"],
            "started (UTC)": pd.to_datetime(sessions["started_at"], utc=True).dt.strftime("%Y-%m-%d %H:%M:%S"),
            "duration (s)": sessions["duration_s"].astype(float).round(1),
            "face present": (sessions["face_present_rate"].astype(float) * 100).round(0).map(lambda v: f"{v:.0f}%" if pd.notna(v) else ""),
            "dominant emotion": sessions["dominant_emotion"].fillna(""),
            "dropped frames": sessions["dropped_frames"].fillna(0).astype(int),
            "model": sessions["model"].fillna("") if "model" in sessions else "",
        }
    )


def session_label(row) -> str:
    """One line naming a session in a select box: ``#12 P007 (pilot, complete)``."""
    return f"#{row.session_id} {row.participant_code} ({row.study}, {row.status})"


def count_noun(n: int, singular: str, plural: str | None = None) -> str:
    """``"1 session"``, ``"2 sessions"``, ``"0 groups"`` (``plural`` defaults to ``singular + "s"``)."""
    return f"{n} {singular if n == 1 else plural or singular + 's'}"


def percent(value: float) -> str:
    """A share as a percentage with one decimal (``0.1234`` -> ``"12.3%"``); empty for NaN/None."""
    return f"{value:.1%}" if value is not None and pd.notna(value) else ""


def _number(value: float, digits: int) -> str:
    return f"{value:.{digits}f}" if value is not None and pd.notna(value) else ""


def _p_value(value: float) -> str:
    if value is None or pd.isna(value):
        return ""
    return "< 0.001" if value < 0.001 else f"{value:.3f}"


def _metric_value(metric: str, value: float) -> str:
    """Probabilities and shares as percentages, valence as a signed number with 3 decimals."""
    return f"{value:+.3f}" if metric == "valence" and pd.notna(value) else percent(value)


def excluded_table(excluded: pd.DataFrame) -> pd.DataFrame:
    """``sessions.stats.Exclusions.excluded`` as shown: ``session, participant, status, face present, reason``."""
    return pd.DataFrame(
        {
            "session": excluded["session_id"].astype(int).to_numpy(),
            "participant": excluded["participant_code"],
            "status": excluded["status"],
            "face present": excluded["face_present_rate"].map(percent),
            "reason": excluded["reason"],
        }
    )


def group_means_table(means: pd.DataFrame) -> pd.DataFrame:
    """``sessions.stats.group_means`` as shown: ``group, metric, mean, 95% band, sessions`` (percentages, 1 decimal)."""
    means = means.reset_index(drop=True)
    band = [
        f"{_metric_value(m, lo)} to {_metric_value(m, hi)}" if pd.notna(lo) and pd.notna(hi) else "none (under 3 sessions)"
        for m, lo, hi in zip(means["metric"], means["ci_low"], means["ci_high"], strict=True)
    ]
    return pd.DataFrame(
        {
            "group": means["group"].astype(str),
            "metric": means["metric"],
            "mean": [_metric_value(m, v) for m, v in zip(means["metric"], means["mean"], strict=True)],
            "95% band": band,
            "sessions": means["n_sessions"].astype(int),
        }
    )


def difference_table(differences: pd.DataFrame) -> pd.DataFrame:
    """``sessions.stats.group_differences`` as shown: groups, n, means, difference, Welch p, permutation p, g, note."""
    differences = differences.reset_index(drop=True)
    metric = differences["metric"]
    return pd.DataFrame(
        {
            "group A": differences["group_a"].astype(str),
            "group B": differences["group_b"].astype(str),
            "n A": differences["n_a"].astype(int),
            "n B": differences["n_b"].astype(int),
            "mean A": [_metric_value(m, v) for m, v in zip(metric, differences["mean_a"], strict=True)],
            "mean B": [_metric_value(m, v) for m, v in zip(metric, differences["mean_b"], strict=True)],
            "difference (A - B)": [
                "" if pd.isna(v) else f"{v:+.3f}" if m == "valence" else f"{v * 100:+.1f} points"
                for m, v in zip(metric, differences["difference"], strict=True)
            ],
            "Welch p": differences["welch_p"].map(_p_value),
            "permutation p": differences["permutation_p"].map(_p_value),
            "Hedges' g": differences["hedges_g"].map(lambda v: _number(v, 2)),
            "note": differences["note"],
        }
    )


#: ``st.session_state`` key of the study this browser session used last (Record and Upload default to it).
LAST_STUDY_KEY = "last_study"


def default_study_index(names: list[str], last: str | None) -> int:
    """Index of the study a Study box starts on: the one used last in this browser session, else the first."""
    return names.index(last) if last in names else 0
