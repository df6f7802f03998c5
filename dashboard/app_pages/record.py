"""Record: create a session, take consent, stream the webcam, stamp markers, watch live numbers."""

from __future__ import annotations

import math

import streamlit as st

from dashboard import charts
from dashboard.camera import consent_and_camera
from dashboard.resources import get_engine, get_live_registry
from dashboard.tags import format_tags, parse_tags
from sessions.db import session_scope
from sessions.repository import (
    add_marker,
    create_join_token,
    create_session,
    get_or_create_study,
    get_session,
    list_sessions,
    list_studies,
)

#: Marker buttons offered on the page (free text is offered beside them).
PRESET_MARKERS: tuple[str, ...] = ("stimulus start", "ad break", "boss fight", "stimulus end")
#: Seconds between refreshes of the live numbers.
REFRESH_S = 1.0
#: Seconds between redraws of the live 60 s line chart: a plotly figure redrawn every second in every
#: watching browser cost the camera streams frames (benchmarks/bench_live.py); numbers and bars stay at 1 s.
CHART_REFRESH_S = 3.0

st.title("Record")
engine = get_engine()
registry = get_live_registry()

with st.expander("New session", expanded="rec_session_id" not in st.session_state):
    with session_scope(engine) as db:
        study_names = [s.name for s in list_studies(db)]
    with st.form("rec_new"):
        study = st.selectbox("Study", study_names or ["pilot"], accept_new_options=True, key="rec_new_study")
        participant = st.text_input("Participant code (a pseudonym)", key="rec_new_participant")
        tags_text = st.text_input("Tags", placeholder="variant=A, age=18-24", key="rec_new_tags")
        stimulus_name = st.text_input("Stimulus", placeholder="trailer_v2.mp4", key="rec_new_stimulus")
        stimulus_url = st.text_input("Stimulus URL (optional)", key="rec_new_stimulus_url")
        created = st.form_submit_button("Create session", type="primary")
    if created:
        try:
            with session_scope(engine) as db:
                study_id = get_or_create_study(db, (study or "pilot").strip()).id
                session = create_session(
                    db,
                    study_id=study_id,
                    participant_code=participant,
                    tags=parse_tags(tags_text),
                    stimulus_name=stimulus_name.strip() or None,
                    stimulus_url=stimulus_url.strip() or None,
                )
                st.session_state["rec_session_id"] = session.id
        except ValueError as exc:
            st.error(str(exc))

with session_scope(engine) as db:
    recording = list_sessions(db)
recording = recording[recording["status"] == "recording"]
if "rec_session_id" not in st.session_state and recording.empty:
    st.info("Create a session to start recording.")
    st.stop()
choices = list(dict.fromkeys([*([st.session_state["rec_session_id"]] if "rec_session_id" in st.session_state else []), *recording["session_id"].astype(int)]))
labels = {int(r.session_id): f"#{r.session_id} {r.participant_code} ({r.study})" for r in recording.itertuples()}
session_id = st.selectbox("Session", choices, format_func=lambda i: labels.get(i, f"#{i}"), key="rec_session_pick")
st.session_state["rec_session_id"] = session_id

with session_scope(engine) as db:
    session = get_session(db, session_id)
    info = dict(participant=session.participant_code, tags=format_tags(session.tags), stimulus=session.stimulus_name, status=session.status, token=session.join_token)
st.caption(f"Participant **{info['participant']}** · tags {info['tags'] or '-'} · stimulus {info['stimulus'] or '-'} · status **{info['status']}**")

with st.expander("Participant link"):
    st.write("Send this link to a remote participant: it opens only the consent text and the camera for this session.")
    if st.button("Create participant link", key="rec_link"):
        with session_scope(engine) as db:
            info["token"] = create_join_token(db, session_id)
    if info["token"]:
        base = str(st.context.url or "").split("?")[0].rsplit("/", 1)[0] if st.context.url else ""
        st.code(f"{base}/?join={info['token']}", language=None)


@st.fragment(run_every=REFRESH_S)
def live_panel(session_id: int) -> None:
    """Live numbers of the session's stream (this page's or a participant's), refreshed every second."""
    stream = get_live_registry().get(session_id)
    if stream is None:
        st.caption("Not streaming.")
        return
    snap = stream.snapshot()
    cols = st.columns(3)
    cols[0].metric("Session time", f"{snap.time_s:.1f} s")
    cols[1].metric("Faces", snap.faces)
    cols[2].metric("Analysed fps", f"{snap.fps:.1f}")
    cols = st.columns(3)
    cols[0].metric("Frames analysed", snap.frames)
    cols[1].metric("Dropped frames", snap.dropped)
    p50, p90 = snap.latency_p50_ms, snap.latency_p90_ms
    cols[2].metric("Latency p50/p90 (ms)", "-" if math.isnan(p50) else f"{p50:.0f}/{p90:.0f}")
    st.html(charts.emotion_bars_html(snap.probs))


@st.fragment(run_every=CHART_REFRESH_S)
def live_chart(session_id: int) -> None:
    """The last 60 s of the stream's expressions (half-second means), redrawn every ``CHART_REFRESH_S``."""
    stream = get_live_registry().get(session_id)
    if stream is None:
        return
    history = charts.bin_means(stream.snapshot().history, width_s=0.5)
    st.plotly_chart(charts.emotion_lines(history, title="Last 60 s"), key="rec_live_lines")


camera_col, live_col = st.columns([3, 2])
with camera_col:
    if info["status"] == "recording":
        consent_and_camera(session_id, "rec")
    else:
        st.info(f"This session has ended ({info['status']}). Open it on the Review page.")
    st.subheader("Markers")
    free_text = st.text_input("Free-text marker", key="rec_marker_text")
    buttons = st.columns(len(PRESET_MARKERS) + 1)
    pressed = [label for column, label in zip(buttons, PRESET_MARKERS, strict=False) if column.button(label, key=f"rec_marker_{label}")]
    if buttons[-1].button("Add marker", key="rec_marker_add", disabled=not free_text.strip()):
        pressed.append(free_text.strip())
    for label in pressed:
        stream = registry.get(session_id)
        if stream is None or stream.status is not None:
            st.warning("Markers stamp the stream's time: start the camera first.")
            break
        with session_scope(engine) as db:
            add_marker(db, session_id, stream.time_s, label)
        st.toast(f"Marker {label!r} at {stream.time_s:.1f} s")
with live_col:
    live_panel(session_id)
    live_chart(session_id)
