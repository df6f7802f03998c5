"""Compare: sessions, a whole study or groups by tag; mean curves with 95% bands, share expressing, means."""

from __future__ import annotations

import streamlit as st

from dashboard import charts
from dashboard.downloads import export_bytes
from dashboard.store import page_session
from dashboard.tables import session_label
from dashboard.text import escape_markdown
from fer_core.emotions import EMOTIONS
from sessions.aggregate import COMPARE_METRICS, compare
from sessions.exports import export_comparison
from sessions.repository import list_sessions, list_studies, load_markers, load_observations, marker_offsets

st.title("Compare")
with page_session() as db:
    studies = {s.id: s.name for s in list_studies(db)}
    sessions = list_sessions(db)
if sessions.empty:
    st.info("No session recorded yet.")
    st.stop()

mode = st.radio("Compare", ["Sessions", "A whole study", "Groups by tag"], horizontal=True, key="compare_mode")
labels = {int(r.session_id): session_label(r) for r in sessions.itertuples()}
if mode == "Sessions":
    ids = st.multiselect("Sessions", list(labels), default=list(labels)[:2], format_func=labels.get, key="compare_ids")
    groups = {i: labels[i] for i in ids}
else:
    study = st.selectbox("Study", list(studies), format_func=studies.get, key="compare_study")
    chosen = sessions[sessions["study"] == studies[study]]
    ids = [int(i) for i in chosen["session_id"]]
    groups = {i: "all" for i in ids}
    if mode == "Groups by tag":
        keys = sorted({key for tags in chosen["tags"] for key in tags})
        if not keys:
            st.warning("The sessions of this study have no tags to group by.")
            st.stop()
        key = st.selectbox("Tag", keys, key="compare_tag")
        groups = {int(r.session_id): f"{key}={r.tags.get(key, '(none)')}" for r in chosen.itertuples()}
if not ids:
    st.info("Pick at least one session.")
    st.stop()

with page_session() as db:
    observations = {i: load_observations(db, i) for i in ids}
    marker_labels = sorted({label for i in ids for label in load_markers(db, i)["label"]})
    align_on = st.selectbox("Align on", ["session start", *marker_labels], key="compare_align")
    align = None if align_on == "session start" else marker_offsets(db, ids, align_on)
observations = {i: obs for i, obs in observations.items() if not obs.empty}
if align is not None:
    missing = [i for i in observations if i not in align]
    if missing:
        st.warning(f"Left out (no '{escape_markdown(align_on)}' marker): sessions {', '.join(f'#{i}' for i in missing)}.")
    observations = {i: obs for i, obs in observations.items() if i in align}
if not observations:
    st.info("None of these sessions has observations to compare.")
    st.stop()
table = compare(observations, groups={i: groups[i] for i in observations}, align={i: align[i] for i in observations} if align else None)
st.caption(f"{len(observations)} sessions, {table['group'].nunique()} groups. Use a chart's camera icon to download it as PNG.")

metric = st.selectbox("Metric", list(COMPARE_METRICS), index=list(COMPARE_METRICS).index("happy"), key="compare_metric")
st.plotly_chart(charts.compare_curves(table, metric), key="compare_curves")
emotion = metric if metric in EMOTIONS else "happy"
st.plotly_chart(charts.share_expressing(table, emotion), key="compare_share")
st.plotly_chart(charts.emotion_means(table), key="compare_means")
st.download_button("Comparison CSV", export_bytes(export_comparison, table, ".csv"), "comparison.csv", "text/csv", key="compare_dl")
