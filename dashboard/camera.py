"""Consent box and camera of one session, shared by the Record page and the participant link.

The camera is not rendered until the consent box is ticked; the consent time is stored once. The
session is finished as ``complete`` when the stream stops from the page (Stop), and as ``aborted``
by the stream itself when it ends without a Stop (tab closed, see :meth:`LiveStream.on_ended`).
"""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from dashboard import live
from dashboard.resources import get_engine, get_live_registry, get_settings, new_live_stream
from fer_core.model_file import ModelFileError

#: What the participant agrees to before the camera starts.
CONSENT_TEXT = (
    "This session analyses your facial expressions with your webcam while you watch or play. "
    "The video is analysed on the fly and **never stored**: only per-frame emotion estimates "
    "(probabilities of seven expressions and the face's position) are kept, under a pseudonymous "
    "participant code. You can stop at any time with the STOP button."
)


def consent_and_camera(session_id: int, prefix: str) -> live.LiveStream | None:
    """Render the consent box, then the camera; return the session's live stream once consented.

    Parameters
    ----------
    session_id : int
        Session being recorded.
    prefix : str
        Page key prefix (``"rec"``, ``"part"``) so two pages never share widget state.
    """
    from sessions.db import session_scope
    from sessions.repository import set_consent

    st.markdown(CONSENT_TEXT)
    consented = st.checkbox("I have read this and I agree to take part.", key=f"{prefix}_consent_{session_id}")
    consent_key = f"{prefix}_consent_at_{session_id}"
    if not consented:
        st.info("The camera starts once the consent box is ticked.")
        return None
    if consent_key not in st.session_state:
        when = datetime.now(UTC)
        with session_scope(get_engine()) as db:
            set_consent(db, session_id, when)
        st.session_state[consent_key] = when
    stream_key = f"{prefix}_stream_{session_id}"
    stream = st.session_state.get(stream_key)
    if stream is None:
        try:
            stream = new_live_stream(session_id)
        except ModelFileError as exc:
            st.error(f"The emotion model cannot be loaded: {exc}. Set FER_MODEL_PATH (docs/SETTINGS.md) or train one.")
            return None
        st.session_state[stream_key] = stream
        stream.recorder.register(session_id)
    ctx = live.open_camera(f"{prefix}_webrtc_{session_id}", stream, get_settings().rtc_configuration)
    playing_key = f"{prefix}_playing_{session_id}"
    if ctx.state.playing:
        st.session_state[playing_key] = True
    elif st.session_state.get(playing_key) and stream.status is None:
        stream.finish("complete")  # Stop pressed: the stream ended from this page
        get_live_registry().remove(session_id)
    if stream.status is not None:
        st.success(f"Session finished ({stream.status}). Thank you!")
    return stream
