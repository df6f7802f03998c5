"""Tables as the pages show them (renamed, formatted columns); no database access here."""

from __future__ import annotations

import pandas as pd

from dashboard.tags import format_tags
from sessions.report import difference_rows, group_mean_rows
from sessions.report import plural as plural_noun


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
    """``"1 session"``, ``"2 sessions"``, ``"0 groups"`` (``plural`` defaults to ``singular + "s"``;
    ``sessions.report.plural``, which the study report uses too)."""
    return plural_noun(n, singular, plural)


def percent(value: float) -> str:
    """A share as a percentage with one decimal (``0.1234`` -> ``"12.3%"``); empty for NaN/None."""
    return f"{value:.1%}" if value is not None and pd.notna(value) else ""


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


def group_means_table(means: pd.DataFrame, *, corrected: bool = False) -> pd.DataFrame:
    """``sessions.stats.group_means`` as shown: ``group, metric, mean, 95% band, sessions`` (percentages, 1 decimal;
    percentage points when ``corrected``); the study report prints the same (``sessions.report.group_mean_rows``)."""
    return group_mean_rows(means, corrected=corrected)


def difference_table(differences: pd.DataFrame, *, corrected: bool = False) -> pd.DataFrame:
    """``sessions.stats.group_differences`` as shown: groups, n, means, difference, Welch p, permutation p, g, note
    (``sessions.report.difference_rows``, which the study report prints too)."""
    return difference_rows(differences, corrected=corrected)


#: ``st.session_state`` key of the study this browser session used last (Record and Upload default to it).
LAST_STUDY_KEY = "last_study"


def default_study_index(names: list[str], last: str | None) -> int:
    """Index of the study a Study box starts on: the one used last in this browser session, else the first."""
    return names.index(last) if last in names else 0
