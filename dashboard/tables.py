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
        face present, dominant emotion, dropped frames``.
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
        }
    )


def session_label(row) -> str:
    """One line naming a session in a select box: ``#12 P007 (pilot, complete)``."""
    return f"#{row.session_id} {row.participant_code} ({row.study}, {row.status})"
