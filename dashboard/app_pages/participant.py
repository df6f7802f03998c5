"""Participant link (``?join=TOKEN``): the consent text and the camera for one session, nothing else.

The participant never sees a result: their preview is their plain camera image. A participant whose page
reloads or whose network drops comes back to the same session from the same link, without consenting again,
within the resume window; after the session has ended the link only says so.
"""

from __future__ import annotations

import streamlit as st

from dashboard.camera import consent_and_camera, read_session
from dashboard.consent import completion_button
from dashboard.external_tasks import external_tasks
from dashboard.resources import get_engine
from dashboard.stimulus_player import has_sequence, stimulus_player
from sessions.db import session_scope
from sessions.errors import SessionNotFound
from sessions.models import ENDED_STATUSES
from sessions.repository import session_for_token

st.title("Welcome")
token = st.query_params.get("join", "")
try:
    with session_scope(get_engine()) as db:
        session_id = session_for_token(db, token).id
except SessionNotFound:
    st.error("This link is not valid (it is unknown or was replaced). Please ask the researcher for a new one.")
    st.stop()

if read_session(session_id)["status"] in ENDED_STATUSES:
    st.info("This session has ended. Thank you for taking part!")
    completion_button(session_id)  # the study's completion URL with this participant's code, if it has one
    st.stop()


@st.fragment(run_every=2.0)
def status_line(session_id: int) -> None:
    """What the participant needs to know about their camera, refreshed every 2 s (never a result)."""
    stream = st.session_state.get(f"part_stream_{session_id}")
    if read_session(session_id)["status"] in ENDED_STATUSES:
        st.success("Session finished. Thank you!")
        completion_button(session_id)
    elif stream is None:
        return
    elif stream.session.state == "refused":
        st.warning("This session is already open in another window or tab; close it there to continue here.")
    elif stream.session.state == "streaming":
        st.caption("Your camera is on. Thank you! Press STOP when you have finished "
                   "(or when the researcher tells you to).")


if consent_and_camera(session_id, "part", "participant") is not None:
    status_line(session_id)
    if has_sequence(session_id):  # the study's videos: face check, Start, then the sequence
        stimulus_player(session_id, "part")
    external_tasks(session_id, "part")  # a game or web page: its link, and start/finish buttons stored as markers
