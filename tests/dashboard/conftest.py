"""Fixtures of the dashboard tests: a fresh SQLite store, a stubbed camera and a stand-in analyzer."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace
from typing import NamedTuple

import numpy as np
import pytest
import streamlit as st
from streamlit import config as st_config
from streamlit.testing.v1 import AppTest

from fer_core.emotions import EMOTIONS

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"


class StubResult(NamedTuple):
    """Shape of ``fer_core.analyzer.FaceResult`` (the recorder and the page read these fields)."""

    face_id: int
    box: tuple[int, int, int, int]
    probs: np.ndarray
    smoothed: np.ndarray
    dominant: str


def happy_result(face_id: int = 0) -> StubResult:
    """One face, 80% happy."""
    probs = np.full(len(EMOTIONS), 0.2 / 6, dtype=np.float32)
    probs[EMOTIONS.index("happy")] = 0.8
    return StubResult(face_id, (10, 10, 50, 50), probs, probs, "happy")


class StubAnalyzer:
    """Stands in for ``FrameAnalyzer``: one happy face per frame, no model needed."""

    def __init__(self):
        self.calls: list[tuple[tuple[int, ...], float]] = []

    def analyze(self, frame_bgr: np.ndarray, time_s: float) -> list[StubResult]:
        self.calls.append((frame_bgr.shape, time_s))
        return [happy_result()]


@pytest.fixture
def db_url(tmp_path, monkeypatch) -> str:
    """A fresh SQLite store for this test, seen by the dashboard through ``FER_DB_URL``.

    Sign-in is off (``FER_AUTH=none`` with ``server.address`` 127.0.0.1, as for a single-user machine);
    the :func:`signed_out` fixture turns it on. The account file is in ``tmp_path`` either way.
    """
    url = f"sqlite:///{tmp_path / 'sessions.db'}"
    monkeypatch.setenv("FER_DB_URL", url)
    for name in ("FER_RESEARCHER_PASSWORD", "FER_MODEL_PATH", "FER_ICE_SERVERS", "FER_CONFIG", "FER_AUTH_COOKIE_HOURS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("FER_AUTH", "none")
    monkeypatch.setenv("FER_AUTH_FILE", str(tmp_path / "accounts.json"))
    monkeypatch.chdir(tmp_path)  # no fer-dashboard.toml from the working copy
    address = st_config.get_option("server.address")
    st_config.set_option("server.address", "127.0.0.1")
    st.cache_resource.clear()
    yield url
    st.cache_resource.clear()
    st_config.set_option("server.address", address)


@pytest.fixture
def signed_out(db_url, monkeypatch) -> Path:
    """Sign-in on (the default ``FER_AUTH``); return the test's account file (no account yet)."""
    monkeypatch.delenv("FER_AUTH")
    return Path(os.environ["FER_AUTH_FILE"])


@pytest.fixture
def engine(db_url):
    """The engine of the test store (migrated)."""
    from sessions.db import get_engine

    engine = get_engine(db_url)
    yield engine
    engine.dispose()


@pytest.fixture
def camera(monkeypatch):
    """Replace the webrtc component: records its arguments; ``camera.playing`` is what it reports."""
    stub = SimpleNamespace(calls=[], playing=False)

    def webrtc_streamer(**kwargs):
        stub.calls.append(kwargs)
        return SimpleNamespace(state=SimpleNamespace(playing=stub.playing))

    monkeypatch.setattr("dashboard.live.webrtc_streamer", webrtc_streamer)
    monkeypatch.setattr("dashboard.resources.new_analyzer", StubAnalyzer)
    return stub


@pytest.fixture
def app():
    """Factory: an ``AppTest`` of the router, switched to a page (``"record"``) unless None."""

    def make(page: str | None = None, query: dict | None = None) -> AppTest:
        at = AppTest.from_file(str(APP), default_timeout=60)
        for key, value in (query or {}).items():
            at.query_params[key] = value
        at.run()
        if page is not None:
            at.switch_page(f"app_pages/{page}.py").run()
        return at

    return make


@pytest.fixture(scope="session")
def browser_tools():
    """Skip (with the reason) unless Debian chromium, ffmpeg and playwright are installed."""
    from tests.dashboard import browser

    reason = browser.missing_tools()
    if reason:
        pytest.skip(reason)


@pytest.fixture(scope="session")
def face_clip(browser_tools, video_dir, tmp_path_factory) -> Path:
    """``single_face.mp4`` as the fake camera's 640x480, 15 fps ``.y4m``: 2 s of it, the last frame held 4 s."""
    from tests.dashboard import browser

    return browser.make_y4m(video_dir / "single_face.mp4", tmp_path_factory.mktemp("clip") / "face.y4m", end_s=2.0,
                            hold_last_s=4.0)  # fmt: skip
