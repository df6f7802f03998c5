"""AppTest of the Studies page's stimulus section: the list with duration, frame rate and size, external tasks
(a bad URL refused with a message), the sequence form, deleting a stimulus (its file too), and a study's deletion
taking its stimuli and their files with it."""

from __future__ import annotations

import pytest

from sessions.db import session_scope
from tests.sessions.clips import make_stimulus


@pytest.fixture
def media(tmp_path, monkeypatch):
    folder = tmp_path / "media"
    monkeypatch.setenv("FER_MEDIA_DIR", str(folder))
    return folder


@pytest.fixture
def study(engine, media, tmp_path):
    from sessions.repository import create_study
    from sessions.stimuli import add_video_stimulus

    with session_scope(engine) as db:
        study_id = create_study(db, "Ad test").id
        a = add_video_stimulus(db, study_id, "Trailer A", make_stimulus(tmp_path / "a.mp4", seconds=2.0), media_dir=media).id
        b = add_video_stimulus(db, study_id, "Trailer B", make_stimulus(tmp_path / "b.webm", seconds=1.0, codec="libvpx-vp9"),
                               media_dir=media).id  # fmt: skip
    return study_id, a, b


def test_stimulus_section_lists_adds_tasks_sets_the_sequence_and_deletes(app, engine, study, media):
    from sessions.stimuli import get_sequence, list_stimuli

    study_id, a, b = study
    at = app("studies")
    assert not at.exception
    table = next(d.value for d in at.dataframe if "size (px)" in d.value.columns)
    assert list(table["name"]) == ["Trailer A", "Trailer B"]
    assert list(table["duration (s)"]) == [2.0, 1.0] and list(table["size (px)"]) == ["320x180", "320x180"]
    assert list(table["fps"]) == [25.0, 25.0]

    at.text_input(key=f"studies_task_name_{study_id}").input("Level 1")
    at.text_input(key=f"studies_task_url_{study_id}").input("javascript:alert(1)")
    at.button(key=f"studies_task_add_{study_id}").click().run()
    assert any("task URL has to start with http" in e.value for e in at.error)  # escaped Markdown
    at.text_input(key=f"studies_task_url_{study_id}").input("https://game.example.org/1")
    at.button(key=f"studies_task_add_{study_id}").click().run()
    assert not at.exception

    at.multiselect(key=f"studies_seq_ids_{study_id}").set_value([b, a])
    at.radio(key=f"studies_seq_order_{study_id}").set_value("random")
    at.number_input(key=f"studies_seq_buffer_{study_id}").set_value(2.5)
    at.button(key=f"studies_seq_save_{study_id}").click().run()
    assert not at.exception and any("Sequence saved" in s.value for s in at.success)
    with session_scope(engine) as db:
        order, buffer_s, stimuli = get_sequence(db, study_id)
        assert (order, buffer_s, [s.name for s in stimuli]) == ("random", 2.5, ["Trailer B", "Trailer A"])
        assert list(list_stimuli(db, study_id)["name"]) == ["Trailer B", "Trailer A", "Level 1"]

    files_before = {p.name for p in media.iterdir() if not p.name.startswith(".")}
    at.selectbox(key=f"studies_stim_delete_id_{study_id}").select(a).run()
    assert at.button(key=f"studies_stim_delete_{study_id}").disabled
    at.checkbox(key=f"studies_stim_delete_sure_{study_id}").check().run()
    at.button(key=f"studies_stim_delete_{study_id}").click().run()
    assert not at.exception
    with session_scope(engine) as db:
        assert list(list_stimuli(db, study_id)["name"]) == ["Trailer B", "Level 1"]
    files_after = {p.name for p in media.iterdir() if not p.name.startswith(".")}
    assert len(files_before - files_after) == 2  # Trailer A's file and its thumbnails

    at.checkbox(key=f"studies_delete_study_sure_{study_id}").check().run()
    at.button(key="studies_delete_study").click().run()
    assert not at.exception
    assert not [p for p in media.iterdir() if not p.name.startswith(".")]


def _observed_session(engine, study_id: int, code: str, events: list[dict] | None = None) -> int:
    from datetime import UTC, datetime

    from sessions.models import Observation
    from sessions.playback import record_events
    from sessions.recorder import observation_records
    from sessions.repository import create_session, get_session
    from sessions.stimuli import session_sequence
    from tests.sessions.conftest import face

    t0 = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
    with session_scope(engine) as db:
        sid = create_session(db, study_id=study_id, participant_code=code).id
        session = get_session(db, sid)
        session.started_at, session.status = t0, "complete"
        session_sequence(db, sid)
        for i in range(40):
            for row in observation_records(sid, i, i * 0.25, [face(happy=0.2 + 0.02 * i)]):
                db.add(Observation(**row))
        if events:
            ms = t0.timestamp() * 1000
            record_events(db, sid, [{**e, "client_ms": ms + e.pop("at_s") * 1000, "offset_ms": 0.0, "page_id": "p", "seq": i}
                                    for i, e in enumerate(events)])  # fmt: skip
    return sid


def test_review_shows_the_stimulus_timeline_and_says_when_a_stimulus_never_played(app, engine, study):
    study_id, a, b = study
    played = _observed_session(engine, study_id, "P1", [{"kind": "start", "at_s": 0.9, "position": None},
                                                         {"kind": "playing", "at_s": 1.0, "position": 0, "media_time_s": 0.0},
                                                         {"kind": "ended", "at_s": 3.0, "position": 0, "media_time_s": 2.0}])  # fmt: skip
    never = _observed_session(engine, study_id, "P2")
    at = app("review")
    at.selectbox(key="review_session").select(played).run()
    assert not at.exception
    quality = next(d.value for d in at.dataframe if "share_seen" in d.value.columns)
    assert list(quality["played"]) == [True, False]  # Trailer A played; Trailer B was never reached
    assert any("stimulus time (s)" in str(c.proto.spec) for c in at.get("plotly_chart"))
    at.selectbox(key=f"review_stimulus_{played}").select(1).run()
    assert any("Trailer B never played in this session: the session ended before this stimulus played" in i.value
               for i in at.info)  # fmt: skip
    at.selectbox(key="review_session").select(never).run()
    assert not at.exception
    assert any("never pressed Start" in i.value for i in at.info)


def test_compare_aligns_sessions_on_the_stimulus_by_default(app, engine, study):
    from tests.dashboard.test_pages import _texts

    study_id, a, b = study
    _observed_session(engine, study_id, "P1", [{"kind": "playing", "at_s": 1.0, "position": 0, "media_time_s": 0.0},
                                                        {"kind": "ended", "at_s": 3.0, "position": 0, "media_time_s": 2.0}])  # fmt: skip
    _observed_session(engine, study_id, "P2", [{"kind": "playing", "at_s": 6.0, "position": 0, "media_time_s": 0.0},
                                                       {"kind": "ended", "at_s": 8.0, "position": 0, "media_time_s": 2.0}])  # fmt: skip
    never = _observed_session(engine, study_id, "P3")
    at = app("compare")
    at.radio(key="compare_mode").set_value("A whole study").run()
    assert not at.exception
    assert at.selectbox(key="compare_align").value == "stimulus time: Trailer A"
    assert f"Left out (the stimulus never played): sessions #{never}" in " ".join(w.value for w in at.warning)
    assert "2 sessions, 1 group;" in _texts(at)
    import base64
    import json

    import numpy as np

    def values(array):  # plotly writes numeric arrays as {"dtype", "bdata" (base64)}
        if isinstance(array, dict):
            return np.frombuffer(base64.b64decode(array["bdata"]), dtype=array["dtype"]).tolist()
        return list(array or [])

    spec = json.loads(next(c for c in at.get("plotly_chart") if c.key == "compare_curves").proto.spec)
    xs = sorted({float(x) for trace in spec["data"] for x in values(trace.get("x")) if x is not None})
    assert xs == [0.0, 1.0]  # stimulus seconds 0 and 1 for both sessions (session seconds 1-3 and 6-8)
    assert "compare_stimulus_chart" in [c.key for c in at.get("plotly_chart")]
    assert any("Share of the 2 kept sessions whose mean probability" in c.value for c in at.caption)


def test_face_check_offers_start_only_with_a_face_and_hints_after_three_seconds_without():
    from dashboard.stimulus_player import face_check

    ready, text = face_check(False, 0, None)
    assert not ready and "camera on" in text
    assert face_check(True, 1, 0.0) == (True, "We can see your face. Press Start when you are ready: the video plays with sound.")
    assert face_check(True, 0, 1.0) == (False, "Checking that we can see your face...")
    ready, hint = face_check(True, 0, 3.5)
    assert not ready and hint.startswith("We cannot see your face")


def test_participant_link_offers_the_player_after_consent_and_marks_a_deleted_stimulus(app, engine, study, camera, media):
    import json

    from sessions.repository import create_join_token, create_session
    from sessions.stimuli import delete_stimulus

    study_id, a, b = study
    with session_scope(engine) as db:
        session_id = create_session(db, study_id=study_id, participant_code="P9").id
        token = create_join_token(db, session_id)
    at = app(query={"join": token})
    assert not at.exception
    at.checkbox(key=f"part_consent_{session_id}").check().run()
    assert not at.exception

    def player_data():
        found = [e for e in at.get("bidi_component")]
        assert len(found) == 1, [e.type for e in at.main]
        return json.loads(found[0].proto.json)

    data = player_data()
    assert data["ready"] is False and "camera on" in data["check"]  # the camera has not started: no Start yet
    assert [item["missing"] for item in data["items"]] == [False, False] and data["start_label"] == "Start"
    with session_scope(engine) as db:
        delete_stimulus(db, a)
    at.run()
    missing = {item["position"]: item["missing"] for item in player_data()["items"]}
    assert sorted(missing.values()) == [False, True]


def test_record_page_plays_the_study_sequence_for_an_in_lab_session(app, engine, study, camera, media):
    import json

    at = app("record")
    at.selectbox(key="rec_new_study").select("Ad test")
    at.text_input(key="rec_new_participant").input("LAB-1")
    at.button[0].click().run()
    assert not at.exception
    assert len(at.get("bidi_component")) == 1  # the marker bar only: no player before consent
    session_id = at.session_state["rec_session_id"]
    at.checkbox(key=f"rec_consent_{session_id}").check().run()
    assert not at.exception
    players = [json.loads(e.proto.json) for e in at.get("bidi_component") if "items" in json.loads(e.proto.json)]
    assert len(players) == 1 and len(players[0]["items"]) == 2 and players[0]["ready"] is False


def test_the_stimulus_timeline_draws_attention_when_it_is_known():
    import numpy as np
    import pandas as pd

    from dashboard.stimulus_review import stimulus_timeline
    from fer_core.emotions import EMOTIONS

    bins = pd.DataFrame({"time_s": [0.0, 1.0, 2.0], **{e: [1 / 7] * 3 for e in EMOTIONS},
                         "valence": [0.1, 0.2, 0.3], "engagement": [0.5] * 3, "attention_rate": [1.0, 0.5, 0.0]})
    traces = {t.name: t for t in stimulus_timeline(bins, duration_s=3.0).data}
    assert list(traces["attention"].y) == [1.0, 0.5, 0.0]
    unknown = bins.assign(attention_rate=np.nan)  # a detector without keypoints: no attention line
    assert "attention" not in {t.name for t in stimulus_timeline(unknown, duration_s=3.0).data}
