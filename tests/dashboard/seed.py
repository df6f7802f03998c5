"""Sessions with known observations and markers, written through the session store's own API."""

from __future__ import annotations

import numpy as np

from fer_core.emotions import EMOTIONS
from sessions.db import session_scope
from sessions.recorder import LiveRecorder
from sessions.repository import add_marker, create_session, get_or_create_study
from tests.dashboard.conftest import StubResult


def face(emotion: str, strength: float = 0.8) -> StubResult:
    """One face whose probabilities put ``strength`` on ``emotion``."""
    probs = np.full(len(EMOTIONS), (1 - strength) / 6, dtype=np.float32)
    probs[EMOTIONS.index(emotion)] = strength
    return StubResult(0, (20, 20, 80, 80), probs, probs, emotion)


def seed_session(engine, *, study="pilot", participant="P001", tags=None, timeline=(("neutral", 3.0), ("happy", 3.0)),
                 fps=10.0, markers=(("stimulus start", 1.0),), status="complete") -> int:  # fmt: skip
    """Store a finished session whose face shows each ``(emotion, seconds)`` of ``timeline`` in turn.

    Returns the new session's id.
    """
    with session_scope(engine) as db:
        study_id = get_or_create_study(db, study).id
        session_id = create_session(db, study_id=study_id, participant_code=participant, tags=tags or {}).id
        for time_s, label in ((t, label) for label, t in markers):
            add_marker(db, session_id, time_s, label)
    recorder = LiveRecorder(engine, batch_interval_s=0.05)
    frame, time_s = 0, 0.0
    for emotion, seconds in timeline:
        for _ in range(int(round(seconds * fps))):
            recorder.submit(session_id, frame, time_s, [face(emotion)])
            frame += 1
            time_s += 1.0 / fps
    recorder.finish(session_id, status)
    recorder.close()
    return session_id
