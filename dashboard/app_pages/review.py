"""Review: one session's per-second timeline, dominant emotion, valence and engagement, summary, markers, downloads."""

from __future__ import annotations

import streamlit as st

from dashboard import charts
from dashboard.consent import consent_line
from dashboard.downloads import export_bytes
from dashboard.marker_editor import marker_editor
from dashboard.stimulus_review import stimulus_review
from dashboard.store import page_session
from dashboard.tables import session_label
from dashboard.text import escape_markdown
from fer_core.emotions import EMOTIONS
from sessions.aggregate import per_bin, session_summary
from sessions.exports import SessionIdentity, export_bins, export_observations, export_summary
from sessions.fieldwork import consent_json, consent_of
from sessions.playback import add_stimulus_columns, session_playback
from sessions.repository import list_sessions, load_gaps, load_markers, load_observations

#: Width of the review bins in seconds ("per-second bins").
BIN_S = 1.0

st.title("Review")
with page_session() as db:
    sessions = list_sessions(db)
if sessions.empty:
    st.info("No session recorded yet: record one on the Record page or upload a video.")
    st.stop()
listing = {int(r.session_id): r for r in sessions.itertuples()}
labels = {i: session_label(r) for i, r in listing.items()}
default = st.session_state.get("rec_session_id")
ids = list(labels)
session_id = st.selectbox("Session", ids, index=ids.index(default) if default in ids else 0, format_func=labels.get, key="review_session")
end_reason = getattr(listing[session_id], "end_reason", None)
if end_reason:  # e.g. an upload decoded only in part says how much
    st.caption(f"Ended: {escape_markdown(end_reason)}")
with page_session() as db:
    consent = consent_of(db, session_id)
st.caption(consent_line(consent))

with page_session() as db:
    observations = load_observations(db, session_id)
    markers = load_markers(db, session_id)
    gaps = load_gaps(db, session_id)
if observations.empty:
    st.info("This session has no observation yet; markers can be placed already.")
    marker_editor(session_id, markers)
    st.stop()
bins = per_bin(observations, BIN_S)
summary = session_summary(observations, markers, bin_s=BIN_S)
with page_session() as db:  # the session on its stimuli's timelines (none: no stimulus columns filled)
    playback = session_playback(db, session_id, observations)
summary["playback"] = playback.quality.to_dict("records")
summary["consent"] = consent_json(consent)  # time, consent text version and source, in the summary JSON


def _share(value) -> str:
    return "-" if value is None else f"{value:.0%}"


cols = st.columns(6)
cols[0].metric("Duration", f"{summary['duration_s']:.1f} s")
cols[1].metric("Frames", summary["n_frames"])
cols[2].metric("Face present", _share(summary["face_present_rate"]))
cols[3].metric("Valence", "-" if summary["valence"] is None else f"{summary['valence']:+.2f}")
cols[4].metric("Engagement", _share(summary["engagement"]))
cols[5].metric("Attention", _share(summary["attention_rate"]), help="Share of analysed frames with the face turned "
               "to the screen (head yaw and pitch within the set angle); - when the detector gives no head pose.")  # fmt: skip

if len(gaps):
    stretches = ", ".join(f"{a:.1f}-{b:.1f} s" for a, b in zip(gaps["start_s"], gaps["end_s"], strict=True))
    st.caption(f"The camera was away {len(gaps)} time{'s' if len(gaps) > 1 else ''} and came back (reload or network "
               f"drop): {stretches}. Those stretches have no observation and are shaded below.")  # fmt: skip
st.plotly_chart(charts.emotion_lines(bins, markers, title="Emotions per second", gaps=gaps), key="review_timeline")
st.plotly_chart(charts.dominant_ribbon(bins), key="review_ribbon")
st.plotly_chart(charts.valence_engagement(bins, markers), key="review_valence")
st.plotly_chart(charts.attention_line(bins, markers), key="review_attention")

st.subheader("Summary")
st.dataframe(
    {
        "emotion": list(EMOTIONS),
        "mean": [summary["emotions"][e]["mean"] for e in EMOTIONS],
        "peak": [summary["emotions"][e]["peak"] for e in EMOTIONS],
        "peak at (s)": [summary["emotions"][e]["peak_time_s"] for e in EMOTIONS],
        "dominant share": [summary["dominant_distribution"][e] for e in EMOTIONS],
    },
    hide_index=True,
    key="review_summary",
    column_config={  # shares and probabilities as percentages with one decimal, times in seconds
        "mean": st.column_config.NumberColumn("mean", format="percent"),
        "peak": st.column_config.NumberColumn("peak", format="percent"),
        "peak at (s)": st.column_config.NumberColumn("peak at (s)", format="%.1f"),
        "dominant share": st.column_config.NumberColumn("dominant share", format="percent"),
    },
)
stimulus_review(session_id, playback, BIN_S)
marker_editor(session_id, markers)

identity = SessionIdentity.from_listing(listing[session_id])
cols = st.columns(3)
cols[0].download_button("Per-frame CSV", export_bytes(export_observations, playback.observations, ".csv", identity=identity), f"session_{session_id}_frames.csv", "text/csv", key="review_dl_frames")
cols[1].download_button("Per-second CSV", export_bytes(export_bins, add_stimulus_columns(bins, playback.spans, bin_s=BIN_S), ".csv", identity=identity), f"session_{session_id}_seconds.csv", "text/csv", key="review_dl_bins")
cols[2].download_button("Summary JSON", export_bytes(export_summary, summary, ".json"), f"session_{session_id}_summary.json", "application/json", key="review_dl_json")
