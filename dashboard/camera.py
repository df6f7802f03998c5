"""Consent and camera of one session, shared by the Record page and the participant link.

The camera is not rendered until consent is stored on the session (once; a participant who reloads or comes
back after a network drop is not asked again). The first camera frame claims the session in the store: a
second camera (another tab, the same link twice, the researcher's page while the participant streams) is
refused and says who holds it. STOP on the page ends the session as ``complete``; a stream that ends without
STOP only releases the session, which waits for a resume (``resume_grace_s``).
"""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from dashboard import live
from dashboard.consent import session_consent, show_consent
from dashboard.resources import get_engine, get_live_registry, get_settings, new_live_stream
from dashboard.self_view import self_view
from dashboard.text import escape_markdown
from fer_core.model_file import ModelFileError
from sessions.db import session_scope
from sessions.fieldwork import give_consent
from sessions.models import ENDED_STATUSES
from sessions.repository import get_session

#: What the participant agrees to before the camera starts.
CONSENT_TEXT = (
    "This session analyses your facial expressions with your webcam while you watch or play. "
    "The video is analysed on the fly and **never stored**: only per-frame expression estimates "
    "(probabilities of seven expressions and the face's position) are kept, under a pseudonymous "
    "participant code. You can stop at any time with the STOP button."
)
#: ``st.session_state`` key of the camera shown by the latest run that showed one: ``(prefix, session id)``.
CAMERA_KEY = "camera_on_screen"
#: ``st.session_state`` key of the page of the latest run.
PAGE_KEY = "camera_page"
#: The consent checkbox's label.
CONSENT_LABEL = "I have read this and I agree to take part."


def read_session(session_id: int) -> dict:
    """The stored facts about a session a page needs, read in one transaction: ``status``, ``consent_at``,
    ``stream_role``, ``stream_id``, ``stream_since``, ``disconnected_at``, ``end_reason``, ``started_at``.

    Raises
    ------
    sessions.errors.SessionNotFound
        Unknown session.
    """
    with session_scope(get_engine()) as db:
        s = get_session(db, session_id)
        return dict(status=s.status, consent_at=s.consent_at, stream_role=s.stream_role, stream_id=s.stream_id,
                           stream_since=s.stream_since, disconnected_at=s.disconnected_at, end_reason=s.end_reason,
                           started_at=s.started_at)  # fmt: skip


def note_page(url_path: str) -> None:
    """Called by the router before each run of a page: leaving a page takes its camera off the screen."""
    if st.session_state.get(PAGE_KEY) != url_path:
        st.session_state[PAGE_KEY] = url_path
        st.session_state[CAMERA_KEY] = None


def no_camera() -> None:
    """Say that this run shows no camera (a page branch without one): a later stop is then no STOP."""
    st.session_state[CAMERA_KEY] = None


def consent_and_camera(session_id: int, prefix: str, role: str) -> live.LiveStream | None:
    """Render consent (if not given yet), then the camera; return this page's live stream once consented.

    Parameters
    ----------
    session_id : int
        Session being recorded.
    prefix : str
        Page key prefix (``"rec"``, ``"part"``) so two pages never share widget state.
    role : {"participant", "researcher"}
        Who streams from this page; a participant's camera is send-only and they see their own camera image
        from their browser (:mod:`dashboard.self_view`), with no result.

    Returns
    -------
    dashboard.live.LiveStream or None
        None while consent is missing, the session has ended, or the model cannot be loaded.
    """
    view = read_session(session_id)
    on_screen_before = st.session_state.get(CAMERA_KEY) == (prefix, session_id)
    if view["status"] in ENDED_STATUSES:
        no_camera()
        return None
    consent_key, welcome_key = f"{prefix}_consent_{session_id}", f"{prefix}_welcome_{session_id}"
    # Everything above the camera sits in one container, so the camera keeps its place in the page whatever is
    # shown above it: a widget that moves is mounted again, which would end its WebRTC connection.
    with st.container():
        if view["consent_at"] is None or consent_key in st.session_state:
            shown = session_consent(session_id)  # the study's text and version, as shown now
            seen_key = f"{prefix}_consent_seen_{session_id}"
            seen = st.session_state.get(seen_key, shown.version)  # the version on screen when the box was ticked
            st.session_state[seen_key] = shown.version
            show_consent(shown, CONSENT_TEXT)
            if not st.checkbox(CONSENT_LABEL, key=consent_key):
                st.info("The camera starts once the consent box is ticked.")
                no_camera()
                return None
            with session_scope(get_engine()) as db:  # stored once, with the version seen: a second tab keeps the first
                give_consent(db, session_id, datetime.now(UTC), source=role, version=seen)
        elif view["started_at"] is not None or st.session_state.get(welcome_key):
            st.session_state[welcome_key] = True
            st.info("Welcome back: your session continues where it stopped. Press START to turn the camera on again.")
    stream_key = f"{prefix}_stream_{session_id}"
    playing_key = f"{prefix}_playing_{session_id}"
    stream: live.LiveStream | None = st.session_state.get(stream_key)
    if stream is None:
        try:  # one per page; each START of its widget gets a fresh live session (LiveStream)
            stream = new_live_stream(session_id, role)
        except ModelFileError as exc:
            if role == "researcher":
                st.error(f"The emotion model cannot be loaded: {escape_markdown(exc)}. Set FER_MODEL_PATH "
                         "(docs/SETTINGS.md) or train one.")  # fmt: skip
            else:  # a participant sees no server path or setting
                st.error("The session cannot start right now (the analysis is not available). Please tell the researcher.")
            no_camera()
            return None
        st.session_state[stream_key] = stream
    get_live_registry().add(stream)  # again after a STOP and a new START of the same widget
    ctx = live.open_camera(f"{prefix}_webrtc_{session_id}", stream, get_settings().rtc_configuration)
    st.session_state[CAMERA_KEY] = (prefix, session_id)
    if ctx.state.playing:
        st.session_state[playing_key] = True
        if stream.sink is not None:  # send-only: the participant sees their own camera, from their browser
            self_view(f"{prefix}_self_view_{session_id}", width_px=stream.display_px or live.PARTICIPANT_DISPLAY_PX,
                      video_constraints=stream.media_constraints()["video"])  # fmt: skip
    elif st.session_state.pop(playing_key, False) and on_screen_before:
        # STOP pressed on this page. A camera that stopped while the page was elsewhere (another page, another
        # session picked) is no STOP: its track's end released the session for a resume.
        if stream.session.state != "refused" and stream.session.status is None:
            try:
                stream.session.finish("complete", reason=f"stopped on the {role}'s page")
            except TimeoutError:
                st.warning("The end of the session could not be stored yet; everything recorded is kept. Press "
                           "STOP again in a moment.")  # fmt: skip
                return stream
            get_live_registry().remove(stream)
            st.rerun()
    return stream
