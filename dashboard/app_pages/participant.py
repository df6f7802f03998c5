"""Participant link (``?join=TOKEN``): the consent text and the camera for one session, nothing else."""

from __future__ import annotations

import streamlit as st

from dashboard.camera import consent_and_camera
from dashboard.resources import get_engine
from sessions.db import session_scope
from sessions.errors import SessionNotFound
from sessions.repository import session_for_token

st.title("Welcome")
token = st.query_params.get("join", "")
try:
    with session_scope(get_engine()) as db:
        session = session_for_token(db, token)
        session_id, status = session.id, session.status
except SessionNotFound:
    st.error("This link is not valid (it is unknown or was replaced). Please ask the researcher for a new one.")
    st.stop()

if status != "recording":
    st.info("This session has ended. Thank you for taking part!")
    st.stop()
consent_and_camera(session_id, "part")
