"""AppTest: a participant link whose study names an external task (a game or web page) shows the task's name,
instructions and link instead of a video player, and its start and finish buttons store markers."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from dashboard.external_tasks import END_LABEL, START_LABEL, task_marker_label
from sessions.db import session_scope
from sessions.repository import create_join_token, create_session, create_study, get_session, load_markers
from sessions.stimuli import add_external_task
from tests.dashboard.test_pages import _texts

TASK = "Level 1 **boss** [x](http://evil.example)"
URL = "https://game.example.org/play?level=1"


def _button(at, label: str):
    return next(b for b in at.button if b.label == label)


def test_participant_link_shows_the_external_task_and_its_buttons_store_markers(app, engine, camera):
    with session_scope(engine) as db:
        study_id = create_study(db, "Game test").id
        add_external_task(db, study_id, TASK, URL)
        session_id = create_session(db, study_id=study_id, participant_code="P1").id
        token = create_join_token(db, session_id)
    at = app(query={"join": token})
    assert not at.exception and not at.get("link_button")  # nothing before consent
    at.checkbox(key=f"part_consent_{session_id}").check().run()
    assert not at.exception
    assert not at.get("bidi_component")  # no video player: the study has no video
    (link,) = at.get("link_button")
    assert link.proto.url == URL and link.proto.label == "Open the task (new tab)"
    shown = _texts(at)
    assert "Press **I am starting** just before you begin" in shown
    assert "Level 1 \\*\\*boss\\*\\* \\[x\\]\\(http\\:\\/\\/evil\\.example\\)" in shown  # the name as text

    _button(at, "I am starting").click().run()  # the camera has not started the session yet
    assert not at.exception and any("Turn your camera on first" in w.value for w in at.warning)
    with session_scope(engine) as db:
        assert load_markers(db, session_id).empty
        session = get_session(db, session_id)
        session.started_at, session.status = datetime.now(UTC) - timedelta(seconds=30), "recording"

    _button(at, "I am starting").click().run()
    assert not at.exception and any("Noted: task start" in s.value for s in at.success)
    _button(at, "I have finished").click().run()
    assert not at.exception
    with session_scope(engine) as db:
        markers = load_markers(db, session_id)
    assert markers["label"].tolist() == [START_LABEL.format(name=TASK), END_LABEL.format(name=TASK)]
    start, end = markers["time_s"].tolist()
    assert 30.0 <= start <= end < 3600.0  # session seconds from the camera's start, in click order


def test_task_marker_labels_fit_the_marker_label_limit():
    assert task_marker_label(START_LABEL, "Quiz") == "task start: Quiz"
    assert len(task_marker_label(END_LABEL, "x" * 300)) == 200
