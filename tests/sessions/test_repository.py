"""Repository functions on SQLite and PostgreSQL: studies, sessions, markers, consent, tokens, deletion."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, insert, select

from fer_core.emotions import ATTENTION_COLUMNS, OBSERVATION_COLUMNS
from sessions import lifecycle
from sessions import repository as repo
from sessions.db import session_scope
from sessions.errors import SessionNotFound
from sessions.models import Marker, Observation, StudySession
from sessions.recorder import observation_records
from tests.sessions.conftest import face


def _session(engine, **kwargs) -> int:
    with session_scope(engine) as db:
        study = repo.get_or_create_study(db, kwargs.pop("study", "Ad test"))
        return repo.create_session(db, study_id=study.id, participant_code=kwargs.pop("code", "P-001"), **kwargs).id


def _observe(engine, session_id: int, frames) -> None:
    rows = []
    for index, (time_s, results) in enumerate(frames):
        rows += observation_records(session_id, index, time_s, results)
    with session_scope(engine) as db:
        db.execute(insert(Observation), rows)


def test_study_names_are_unique_and_get_or_create_reuses(engine):
    with session_scope(engine) as db:
        first = repo.create_study(db, "Product test", "cola A vs B")
        assert repo.get_or_create_study(db, "Product test").id == first.id
        with pytest.raises(ValueError, match="unique"):
            repo.create_study(db, "Product test")
        with pytest.raises(ValueError, match="non-empty"):
            repo.create_study(db, "  ")
        repo.create_study(db, "Another")
        assert [s.name for s in repo.list_studies(db)] == ["Another", "Product test"]


def test_session_fields_round_trip_with_utc_times(engine):
    consent = datetime(2026, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    sid = _session(engine, tags={"variant": "A", "age": "18-24"}, stimulus_name="spot.mp4",
                   stimulus_url="https://example.org/spot.mp4", consent_at=consent)
    with session_scope(engine) as db:
        session = repo.get_session(db, sid)
        assert session.tags == {"variant": "A", "age": "18-24"}
        assert session.status == "pending" and session.source == "live"  # it starts with its first camera frame
        assert session.consent_at == consent and session.consent_at.tzinfo == UTC
        assert session.consent_at.hour == 10
        assert session.started_at is None and session.created_at.tzinfo == UTC
        assert abs(session.created_at - datetime.now(UTC)) < timedelta(minutes=1)


def test_create_session_rejects_bad_input(engine):
    with session_scope(engine) as db:
        study = repo.create_study(db, "S")
        with pytest.raises(ValueError, match="existing study"):
            repo.create_session(db, study_id=study.id + 100, participant_code="P")
        with pytest.raises(ValueError, match="source"):
            repo.create_session(db, study_id=study.id, participant_code="P", source="tv")
        with pytest.raises(ValueError, match="timezone-aware"):
            repo.create_session(db, study_id=study.id, participant_code="P", consent_at=datetime(2026, 1, 1))
        with pytest.raises(ValueError, match="tags"):
            repo.create_session(db, study_id=study.id, participant_code="P", tags={"age": 30})


def test_unknown_session_id_raises_everywhere(engine):
    with session_scope(engine) as db:
        for call in (lambda: repo.get_session(db, 999), lambda: repo.load_observations(db, 999),
                     lambda: repo.load_markers(db, 999), lambda: repo.add_marker(db, 999, 1.0, "x"),
                     lambda: repo.delete_session(db, 999), lambda: lifecycle.end_session(db, 999, "complete"),
                     lambda: repo.set_consent(db, 999, datetime.now(UTC))):  # fmt: skip
            with pytest.raises(SessionNotFound, match="999"):
                call()


def test_markers_consent_finish_and_tokens(engine):
    sid = _session(engine)
    with session_scope(engine) as db:
        repo.add_marker(db, sid, 12.5, "stimulus end", "logo shown")
        repo.add_marker(db, sid, 2.0, "stimulus start")
        with pytest.raises(ValueError, match="time_s"):
            repo.add_marker(db, sid, -1, "before")
        repo.set_consent(db, sid, datetime(2026, 1, 1, 9, tzinfo=UTC))
        lifecycle.end_session(db, sid, "complete")
        with pytest.raises(ValueError, match="status"):
            lifecycle.end_session(db, sid, "done")
        token = repo.create_join_token(db, sid)
    assert len(token) >= 32
    with session_scope(engine) as db:
        markers = repo.load_markers(db, sid)
        assert markers["label"].tolist() == ["stimulus start", "stimulus end"]
        assert markers["time_s"].tolist() == [2.0, 12.5]
        assert markers["note"].tolist() == ["", "logo shown"]
        assert repo.marker_offsets(db, [sid, sid + 1], "stimulus start") == {sid: 2.0}
        session = repo.session_for_token(db, token)
        assert session.id == sid and session.status == "complete" and session.ended_at is not None
        new_token = repo.create_join_token(db, sid)
        assert new_token != token
        with pytest.raises(SessionNotFound):
            repo.session_for_token(db, token)
        with pytest.raises(SessionNotFound):
            repo.session_for_token(db, "")


def test_observations_round_trip_and_list_sessions_statistics(engine):
    sid = _session(engine, tags={"variant": "B"})
    other = _session(engine, study="Other study", code="P-002")
    frames = [(0.0, []), (0.04, [face(happy=0.8)]), (0.08, [face(happy=0.7), face(2, box=(0, 0, 5, 5), sad=0.9)]),
              (0.12, [face(neutral=0.6)])]  # fmt: skip
    _observe(engine, sid, frames)
    with session_scope(engine) as db:
        obs = repo.load_observations(db, sid)
        assert list(obs.columns) == [*OBSERVATION_COLUMNS, *ATTENTION_COLUMNS]
        assert len(obs) == 5
        assert obs["face_id"].tolist() == [-1, 1, 1, 2, 1]
        assert obs.loc[0, ["x", "happy"]].isna().all() and obs.loc[0, "dominant"] == "none"
        assert obs.loc[1, "happy"] == pytest.approx(0.8, abs=1e-6)
        assert obs["dominant"].tolist()[1:] == ["happy", "happy", "sad", "neutral"]
        assert obs["time_s"].dtype == np.float64 and obs["frame"].dtype == np.int64
        table = repo.list_sessions(db)
        assert table["session_id"].tolist() == [other, sid]
        row = table.set_index("session_id").loc[sid]
        assert row["study"] == "Ad test" and row["tags"] == {"variant": "B"}
        assert row["face_present_rate"] == pytest.approx(3 / 4)
        assert row["dominant_emotion"] == "happy"
        assert row["duration_s"] == pytest.approx(0.12)
        empty = table.set_index("session_id").loc[other]
        assert np.isnan(empty["face_present_rate"]) and empty["dominant_emotion"] is None
        only_study = repo.list_sessions(db, study_id=repo.get_session(db, other).study_id)
        assert only_study["session_id"].tolist() == [other]
        assert repo.list_sessions(db, session_ids=[sid])["session_id"].tolist() == [sid]
        none = repo.list_sessions(db, session_ids=[])
        assert none.empty and list(none.columns) == list(table.columns)
        assert (none.dtypes[["session_id", "duration_s", "dropped_frames"]] == table.dtypes[
            ["session_id", "duration_s", "dropped_frames"]]).all()  # same dtypes as a filled table
        live = repo.list_sessions(db, session_ids=[sid, other])
        lifecycle.end_session(db, sid, "complete")
        lifecycle.end_session(db, other, "aborted")
        session = repo.get_session(db, sid)
        assert (session.n_frames, session.n_face_frames, session.dominant_emotion) == (4, 3, "happy")
        cached = repo.list_sessions(db, session_ids=[sid, other]).set_index("session_id")
        columns = ["duration_s", "face_present_rate", "dominant_emotion"]
        pd.testing.assert_series_equal(cached.loc[sid, columns], live.set_index("session_id").loc[sid, columns])
        assert np.isnan(cached.loc[other, "duration_s"])  # never started: no duration
        assert cached.loc[other, "end_reason"] is None and cached.loc[other, "status"] == "aborted"


def test_delete_session_removes_its_observations_and_markers_only(engine):
    gone, kept = _session(engine), _session(engine, code="P-002")
    for sid in (gone, kept):
        _observe(engine, sid, [(i / 30, [face(happy=0.5)]) for i in range(30)])
        with session_scope(engine) as db:
            repo.add_marker(db, sid, 0.5, "stimulus start")
    with session_scope(engine) as db:
        repo.delete_session(db, gone)
    with session_scope(engine) as db:
        count = lambda model, sid: db.scalar(select(func.count()).select_from(model).where(model.session_id == sid))  # noqa: E731
        assert count(Observation, gone) == 0 and count(Marker, gone) == 0
        assert db.get(StudySession, gone) is None
        assert count(Observation, kept) == 30 and count(Marker, kept) == 1


def test_database_cascade_deletes_children_without_the_orm(engine):
    """ON DELETE CASCADE is in the schema itself (a plain SQL delete of the session removes its rows)."""
    from sqlalchemy import delete

    sid = _session(engine)
    _observe(engine, sid, [(0.0, [face(happy=0.5)])])
    with session_scope(engine) as db:
        repo.add_marker(db, sid, 0.0, "start")
    with engine.begin() as conn:
        conn.execute(delete(StudySession).where(StudySession.id == sid))
        assert conn.execute(select(func.count()).select_from(Observation)).scalar_one() == 0
        assert conn.execute(select(func.count()).select_from(Marker)).scalar_one() == 0


def test_observation_model_columns_are_the_shared_observation_columns():
    columns = [c.name for c in Observation.__table__.columns if c.name not in ("id", "session_id")]
    assert columns == [*OBSERVATION_COLUMNS, *ATTENTION_COLUMNS]


def test_ids_are_never_handed_out_twice_after_a_delete(engine):
    """SQLite reuses the largest rowid after a delete unless the table is AUTOINCREMENT; PostgreSQL never does."""
    first = _session(engine)
    with session_scope(engine) as db:
        study_id = repo.get_session(db, first).study_id
        marker_id = repo.add_marker(db, first, 1.0, "x").id
        repo.delete_session(db, first)
        study = repo.create_study(db, "gone soon")
        gone_study = study.id
        db.delete(study)
    with session_scope(engine) as db:
        again = repo.create_session(db, study_id=study_id, participant_code="P-new")
        assert again.id > first
        assert repo.add_marker(db, again.id, 1.0, "y").id > marker_id
        assert repo.create_study(db, "new study").id > gone_study


def test_a_session_cannot_be_deleted_while_it_records(engine):
    from sessions.errors import SessionBusy
    from sessions.models import utc_now

    sid = _session(engine)
    with session_scope(engine) as db:
        lifecycle.claim_stream(db, sid, stream_id="s", owner_id="o", role="participant", capture_at=utc_now())
    with session_scope(engine) as db, pytest.raises(SessionBusy, match="recording"):
        repo.delete_session(db, sid)
    with session_scope(engine) as db:
        assert lifecycle.end_session(db, sid, "complete", reason="stopped")
        assert not lifecycle.end_session(db, sid, "aborted")  # an ended session never changes status again
        repo.delete_session(db, sid)


def test_stored_live_numbers_read_the_newest_rows(engine):
    sid = _session(engine)
    with session_scope(engine) as db:
        assert repo.stored_live_numbers(db, sid) == (0.0, 0, 0.0, 0)
    _observe(engine, sid, [(i / 10, [face(happy=0.5)] if i % 2 else []) for i in range(100)])  # 10 fps for 9.9 s
    with session_scope(engine) as db:
        numbers = repo.stored_live_numbers(db, sid, window_s=5.0)
        assert numbers.frames == 100 and numbers.time_s == pytest.approx(9.9)
        assert numbers.fps == pytest.approx(10.0, abs=0.3)
        with pytest.raises(ValueError, match="window_s"):
            repo.stored_live_numbers(db, sid, window_s=0)


def test_studies_are_renamed_and_deleted_with_their_sessions_never_while_one_records(engine):
    from sessions.errors import SessionBusy
    from sessions.models import Study, utc_now

    sid = _session(engine)
    _observe(engine, sid, [(i / 10, [face(happy=0.5)]) for i in range(5)])
    with session_scope(engine) as db:
        study_id = repo.get_session(db, sid).study_id
        repo.create_study(db, "Taken")
        with pytest.raises(ValueError, match="unique"):
            repo.rename_study(db, study_id, " Taken ")
        with pytest.raises(ValueError, match="non-empty"):
            repo.rename_study(db, study_id, "  ")
        assert repo.rename_study(db, study_id, " Renamed ").name == "Renamed"
        live = repo.create_session(db, study_id=study_id, participant_code="P-live").id
        lifecycle.claim_stream(db, live, stream_id="s", owner_id="o", role="participant", capture_at=utc_now())
    with session_scope(engine) as db, pytest.raises(SessionBusy, match="recording"):
        repo.delete_study(db, study_id)
    with session_scope(engine) as db:
        lifecycle.end_session(db, live, "complete")
    with session_scope(engine) as db:
        assert repo.delete_study(db, study_id) == 2
    with session_scope(engine) as db:
        assert db.get(Study, study_id) is None and repo.list_sessions(db).empty
        assert db.scalar(select(func.count()).select_from(Observation)) == 0
        with pytest.raises(LookupError):
            repo.delete_study(db, study_id)
