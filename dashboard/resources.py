"""Shared resources of the dashboard, each built once per process with ``st.cache_resource``.

Everything here is either read-only (settings, classifier) or thread-safe by design (the engine,
the live recorder with its writer thread, the live-stream registry). Nothing is built at import.
"""

from __future__ import annotations

import streamlit as st

from dashboard.live import (
    PARTICIPANT_DISPLAY_PX,
    LiveRegistry,
    LiveStream,
    shorten_gil_slices,
)
from dashboard.settings import Settings, load_settings


@st.cache_resource(show_spinner=False)
def get_settings() -> Settings:
    """The dashboard's settings, read from the environment and config file on first use."""
    return load_settings()


@st.cache_resource(show_spinner="Opening the session database...")
def _engine(url: str | None):
    from sessions.db import get_engine

    return get_engine(url)


def get_engine():
    """The SQLAlchemy engine of the configured session store (migrated to the current schema).

    Raises
    ------
    sessions.errors.DatabaseUnavailable
        If the database cannot be reached or migrated (:func:`sessions.db.get_engine`).
    """
    return _engine(get_settings().db_url)


@st.cache_resource(show_spinner="Loading the emotion model...")
def _classifier(path: str):
    from fer_core.classifier import EmotionClassifier

    return EmotionClassifier.load(path)


def get_classifier(*, live: bool = False):
    """The emotion classifier of offline analysis, or with ``live`` of camera streams (thread-safe, never mutated).

    Both are the ``model_path`` setting's model unless ``live_model_path`` names another; each file is loaded once
    per process and shared by every stream or upload that uses it.

    Raises
    ------
    fer_core.model_file.ModelFileError
        If the configured model file is missing, unreadable or its metadata does not match this code.
    """
    settings = get_settings()
    return _classifier(str(settings.resolved_live_model_path if live else settings.resolved_model_path))


@st.cache_resource(show_spinner=False)
def _recorder(url: str | None, resume_grace_s: float):
    from sessions.recorder import LiveRecorder

    return LiveRecorder(_engine(url), resume_grace_s=resume_grace_s)


def get_recorder():
    """The one live recorder (bounded queue, one writer thread) shared by every stream: this process's live owner.

    Creating it registers the process as a live owner and runs crash recovery at once (then every 2 s).
    """
    settings = get_settings()
    return _recorder(settings.db_url, settings.resume_grace_s)


@st.cache_resource(show_spinner=False)
def _sign_in(path: str, max_age_s: float, first_password: str | None):
    from dashboard.signin import SignIn

    sign_in, created = SignIn.from_file(path, max_age_s=max_age_s, first_password=first_password)
    if created is not None:
        _announce_first_account(path, created if first_password is None else None)
    return sign_in


def get_sign_in():
    """The sign-in checks of this process (:class:`dashboard.signin.SignIn`: account file, throttle, tokens).

    On first start (an account file without accounts) this creates the account ``researcher`` and prints
    its password once in the server's terminal, as Jupyter prints its token.

    Raises
    ------
    dashboard.accounts.AccountError
        If the account file is not in its layout (the message names the file).
    OSError
        If the account file cannot be read or written.
    """
    settings = get_settings()
    return _sign_in(str(settings.resolved_auth_file), settings.auth_cookie_hours * 3600.0, settings.researcher_password)


def _announce_first_account(path: str, password: str | None) -> None:
    """Print the first account's sign-in line on the server's stdout (the only place the password appears)."""
    from streamlit import config

    host = config.get_option("server.address") or "localhost"
    url = f"http://{host}:{config.get_option('server.port')}/"
    secret = f"password {password}" if password else "the password from FER_RESEARCHER_PASSWORD"
    print(f"\n  FER dashboard: first start, created the account 'researcher' (stored in {path}).\n"
          f"  Sign in at {url} as researcher with {secret}\n"
          "  (shown once; change it with: python -m dashboard users passwd researcher)\n", flush=True)  # fmt: skip


@st.cache_resource(show_spinner=False)
def get_live_registry() -> LiveRegistry:
    """Live streams by session id, shared so the researcher can watch a participant's stream.

    Creating it also shortens the interpreter's GIL slices for the camera threads (:func:`shorten_gil_slices`).
    """
    shorten_gil_slices()
    return LiveRegistry()


def new_analyzer(*, live: bool = True):
    """A fresh ``FrameAnalyzer`` (own detector and tracking state) over the shared classifier.

    ``live``: for a camera stream, which uses the live model (``live_model_path``) and detects faces on every
    ``detect_every``-th analysed frame (the setting); False for an uploaded video, analysed with the offline model
    (``model_path``) and detected on every frame (``detect_every`` 1, as batch imports do).
    """
    from fer_core.analyzer import FrameAnalyzer
    from fer_core.detection import create_detector

    settings = get_settings()
    return FrameAnalyzer(get_classifier(live=live), create_detector(settings.detector),
                         detect_every=settings.detect_every if live else 1,
                         max_head_angle_deg=settings.attention_angle_deg)  # fmt: skip


def new_live_stream(session_id: int, role: str) -> LiveStream:
    """A :class:`LiveStream` for ``session_id`` (a fresh live session and analyzer per START), registered for watching.

    Parameters
    ----------
    session_id : int
        The session.
    role : {"participant", "researcher"}
        Who streams; the researcher's camera sends back the annotated preview. A participant's
        camera is send-only (no video back; the page shows their own camera ``PARTICIPANT_DISPLAY_PX`` wide).

    The analyzer comes from this module's ``new_analyzer`` (looked up at call time, so tests can stub it).

    Raises
    ------
    fer_core.model_file.ModelFileError
        If the configured model cannot be loaded (checked now, on the page, not with the first frame).
    """
    from sessions.live import LiveSession

    settings = get_settings()
    recorder = get_recorder()
    analyzer = globals()["new_analyzer"]  # looked up now, on the page's thread (tests stub it)
    get_classifier(live=True)  # the shared model loads (or its error shows) on the page, before any camera starts

    def new_session() -> LiveSession:  # one per START; its analyzer is built with its first frame
        return LiveSession(session_id, new_analyzer=analyzer, recorder=recorder, role=role,
                           analysis_fps=settings.analysis_fps)  # fmt: skip

    if role == "researcher":  # the annotated preview, full width
        stream = LiveStream(new_session, frame_width=settings.frame_width, preview_width=settings.preview_width,
                            annotate=True)  # fmt: skip
    else:  # the participant sees no result, in a small video that leaves the stimulus in view
        stream = LiveStream(new_session, frame_width=settings.frame_width, annotate=False, send_back=False,
                            display_px=PARTICIPANT_DISPLAY_PX)  # fmt: skip
    get_live_registry().add(stream)
    return stream
