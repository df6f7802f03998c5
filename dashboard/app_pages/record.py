"""Record: create a session, take consent, stream the webcam, stamp markers, watch live numbers.

The session this page records into is the one it created or the one picked in the "Session" box, and the
program sets that box's state itself whenever it picks (a widget with a key keeps its old value otherwise: a new
session once recorded into another participant's). Who is connected to the session (the participant's link or
this page) comes from the store, so a second camera is never offered while one streams.
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime

import streamlit as st

from dashboard import charts
from dashboard.camera import consent_and_camera, no_camera, read_session
from dashboard.consent import participant_base_url
from dashboard.fieldwork_section import connected_panel
from dashboard.marker_bar import marker_bar
from dashboard.resources import get_engine, get_live_registry, get_settings
from dashboard.stimulus_player import has_sequence, stimulus_player
from dashboard.tables import LAST_STUDY_KEY, default_study_index
from dashboard.tags import format_tags, parse_tags
from dashboard.text import escape_markdown
from sessions.db import session_scope
from sessions.fieldwork import join_link
from sessions.models import ENDED_STATUSES
from sessions.repository import (
    create_join_token,
    create_session,
    get_or_create_study,
    get_session,
    list_sessions,
    list_studies,
    load_markers,
    stored_live_numbers,
)

#: Seconds between refreshes of the live numbers.
REFRESH_S = 1.0
#: Seconds between redraws of the live 60 s line chart: a plotly figure redrawn every second in every
#: watching browser cost the camera streams frames (benchmarks/bench_live.py); numbers and bars stay at 1 s.
CHART_REFRESH_S = 3.0
#: Seconds within which the same "New session" form submitted again is one session (a double-click).
DOUBLE_SUBMIT_S = 5.0
#: Key of the session this browser session records into.
SESSION_KEY = "rec_session_id"
#: Key of the "Session" select box.
PICK_KEY = "rec_session_pick"


def _pick(session_id: int) -> None:
    """Make ``session_id`` this page's session: the program sets the select box's state too."""
    st.session_state[SESSION_KEY] = session_id
    st.session_state[PICK_KEY] = session_id


def _clock(when: datetime | None) -> str:
    return "-" if when is None else when.astimezone(UTC).strftime("%H:%M:%S UTC")


st.title("Record")
engine = get_engine()

with st.expander("New session", expanded=SESSION_KEY not in st.session_state):
    with session_scope(engine) as db:
        study_names = [s.name for s in list_studies(db)] or ["pilot"]
    with st.form("rec_new"):
        # picking a study is picking; creating one is its own field (Enter in the box no longer creates one)
        study = st.selectbox("Study", study_names, key="rec_new_study",
                             index=default_study_index(study_names, st.session_state.get(LAST_STUDY_KEY)))
        new_study = st.text_input("Or a new study", placeholder="name of a study to create", key="rec_new_study_name")
        participant = st.text_input("Participant code (a pseudonym)", key="rec_new_participant")
        tags_text = st.text_input("Tags", placeholder="variant=A, age=18-24", key="rec_new_tags")
        stimulus_name = st.text_input("Stimulus", placeholder="trailer_v2.mp4", key="rec_new_stimulus")
        stimulus_url = st.text_input("Stimulus URL (optional)", key="rec_new_stimulus_url")
        created = st.form_submit_button("Create session", type="primary")
    study = new_study.strip() or study
    form = (study, participant, tags_text, stimulus_name, stimulus_url)
    last = st.session_state.get("rec_last_created")
    if created and last and last[0] == form and time.monotonic() - last[1] < DOUBLE_SUBMIT_S:
        _pick(last[2])  # the second click of a double-click: the session it meant exists already
    elif created:
        try:
            with session_scope(engine) as db:
                study_id = get_or_create_study(db, (study or "pilot").strip()).id
                new_id = create_session(
                    db,
                    study_id=study_id,
                    participant_code=participant,
                    tags=parse_tags(tags_text),
                    stimulus_name=stimulus_name.strip() or None,
                    stimulus_url=stimulus_url.strip() or None,
                ).id
            _pick(new_id)
            st.session_state["rec_last_created"] = (form, time.monotonic(), new_id)
            st.session_state[LAST_STUDY_KEY] = (study or "pilot").strip()
        except ValueError as exc:
            st.error(escape_markdown(exc))

with session_scope(engine) as db:
    sessions = list_sessions(db)
open_sessions = sessions[~sessions["status"].isin(ENDED_STATUSES)]
current = st.session_state.get(SESSION_KEY)
if current is None and open_sessions.empty:
    st.info("Create a session to start recording.")
    st.stop()
choices = list(dict.fromkeys([*([current] if current is not None else []), *open_sessions["session_id"].astype(int)]))
labels = {int(r.session_id): f"#{r.session_id} {r.participant_code} ({r.study}, {r.status})" for r in sessions.itertuples()}
if st.session_state.get(PICK_KEY) not in choices:  # nothing is picked for the researcher: create or pick one
    st.session_state[PICK_KEY] = current
session_id = st.selectbox("Session", choices, format_func=lambda i: labels.get(i, f"#{i}"), key=PICK_KEY,
                          index=None, placeholder="Create a session above, or pick one to watch or record")
if session_id is None:
    no_camera()
    st.stop()
st.session_state[SESSION_KEY] = session_id

with session_scope(engine) as db:
    session = get_session(db, session_id)
    info = dict(participant=session.participant_code, tags=format_tags(session.tags), stimulus=session.stimulus_name,
                token=session.join_token, study_id=session.study_id)  # fmt: skip
view = read_session(session_id)
st.caption(f"Participant **{escape_markdown(info['participant'])}** · tags {escape_markdown(info['tags'] or '-')} · "
           f"stimulus {escape_markdown(info['stimulus'] or '-')} · status **{view['status']}**")  # fmt: skip

with st.expander("Participant link"):
    st.write("Send this link to a remote participant: it opens only the consent text and the camera for this session.")
    if st.button("Create participant link", key="rec_link", disabled=view["status"] in ENDED_STATUSES):
        with session_scope(engine) as db:
            info["token"] = create_join_token(db, session_id)
    if info["token"]:
        st.code(join_link(participant_base_url(), info["token"]), language=None)
    st.caption("Many links at once, with a CSV for a panel provider: Studies page, Fieldwork.")


def connection_line(session_id: int, view: dict) -> str:
    """Who is connected to the session, from the store's ``view`` (:func:`dashboard.camera.read_session`); plain text."""
    if view["status"] in ENDED_STATUSES:
        reason = f": {view['end_reason']}" if view["end_reason"] else ""
        return f"Session ended ({view['status']}{reason})."
    if view["stream_role"]:
        stream = get_live_registry().get(session_id)
        fps = f", {stream.snapshot().fps:.1f} fps" if stream is not None and stream.session.state == "streaming" else ""
        return f"Connected: the {view['stream_role']}, since {_clock(view['stream_since'])}{fps}."
    if view["disconnected_at"] is not None:
        grace = get_settings().resume_grace_s
        left = grace - (datetime.now(UTC) - view["disconnected_at"]).total_seconds()
        return (f"Disconnected at {_clock(view['disconnected_at'])}: the session continues if the camera comes back "
                f"from the same link within {max(0, left):.0f} s.")  # fmt: skip
    if view["status"] == "pending":
        return "Nobody connected yet." + (" The participant gave consent." if view["consent_at"] else "")
    return "Nobody connected."


@st.fragment(run_every=REFRESH_S)
def live_panel(session_id: int) -> None:
    """Who is connected and the live numbers of the session's stream in this process, refreshed every second."""
    view = read_session(session_id)  # one read a second per watching page
    st.text(connection_line(session_id, view))
    stream = get_live_registry().get(session_id)
    if stream is None or stream.session.state != "streaming":
        if view["stream_role"]:  # streamed by another server process: the store's numbers
            with session_scope(get_engine()) as db:
                stored = stored_live_numbers(db, session_id)
            cols = st.columns(4)
            cols[0].metric("Session time", f"{stored.time_s:.1f} s")
            cols[1].metric("Frames stored", stored.frames)
            cols[2].metric("Stored fps", f"{stored.fps:.1f}")
            cols[3].metric("Dropped frames", stored.dropped)
            st.caption("Read from the session store: the camera streams into another dashboard server.")
        return
    snap = stream.snapshot()
    cols = st.columns(3)
    cols[0].metric("Session time", f"{snap.time_s:.1f} s")
    cols[1].metric("Faces", snap.faces)
    cols[2].metric("Analysed fps", f"{snap.fps:.1f}")
    cols = st.columns(3)
    cols[0].metric("Frames analysed", snap.frames)
    cols[1].metric("Dropped frames", snap.dropped, help=f"{snap.skipped} skipped (analysis busy), "
                   f"{snap.refused} refused (recorder queue full)")  # fmt: skip
    p50, p90 = snap.latency_p50_ms, snap.latency_p90_ms
    cols[2].metric("Latency p50/p90 (ms)", "-" if math.isnan(p50) else f"{p50:.0f}/{p90:.0f}")
    st.html(charts.emotion_bars_html(snap.probs))


@st.fragment(run_every=CHART_REFRESH_S)
def live_chart(session_id: int) -> None:
    """The last 60 s of the stream's expressions (half-second means), redrawn every ``CHART_REFRESH_S``."""
    stream = get_live_registry().get(session_id)
    if stream is None or stream.session.state != "streaming":
        return
    history = charts.bin_means(stream.snapshot().history, width_s=0.5)
    with session_scope(get_engine()) as db:
        markers = load_markers(db, session_id)
    if len(history):  # the markers of the last 60 s, on the same session clock
        markers = markers[markers["time_s"] >= history["time_s"].min()]
    st.plotly_chart(charts.emotion_lines(history, markers, title="Last 60 s"), key="rec_live_lines")


camera_col, live_col = st.columns([3, 2])
with camera_col:
    mine = st.session_state.get(f"rec_stream_{session_id}")
    # this page's camera holds the session (its claim may be stored a moment before the live session knows it)
    streaming_here = mine is not None and (mine.session.state == "streaming" or view["stream_id"] == mine.session.stream_id)
    if view["status"] in ENDED_STATUSES:
        no_camera()
        st.info(f"This session has ended ({view['status']}). Open it on the Review page.")
    elif view["stream_role"] and not streaming_here:
        no_camera()
        st.info(f"The {view['stream_role']} is streaming this session (since {_clock(view['stream_since'])}); "
                "a session takes one camera at a time. Watch the live numbers here.")  # fmt: skip
    else:
        consent_and_camera(session_id, "rec", "researcher")
        stream = st.session_state.get(f"rec_stream_{session_id}")
        if stream is not None and stream.session.state == "refused" and stream.session.snapshot().message:
            st.warning(escape_markdown(stream.session.snapshot().message))
        if stream is not None and has_sequence(session_id):  # an in-lab session plays the study's videos here
            stimulus_player(session_id, "rec")
    marker_bar(session_id)
with live_col:
    live_panel(session_id)
    live_chart(session_id)
    connected_panel(info["study_id"], session_id)
