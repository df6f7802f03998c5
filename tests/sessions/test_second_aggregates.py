"""Stored per-second aggregates equal those computed from the raw observations (SQLite and PostgreSQL)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, insert, select, update

from fer_core.emotions import EMOTIONS, NO_FACE_ID
from sessions import lifecycle
from sessions import repository as repo
from sessions.aggregate import BIN_COLUMNS, per_bin
from sessions.db import session_scope
from sessions.models import Observation, SecondAggregate, StudySession
from sessions.second_aggregates import AGGREGATES_VERSION, aggregate_versions, load_second_aggregates


def _rows(session_id: int, seconds: int, fps: int, seed: int) -> list[dict]:
    """Frames at ``fps`` with a face in most of them, a bystander (smaller box) in some, no face in others."""
    rng = np.random.default_rng(seed)
    rows = []
    for frame in range(seconds * fps):
        time_s = frame / fps + rng.uniform(0, 0.2 / fps)
        kind = rng.random()
        base = dict(session_id=session_id, time_s=time_s, frame=frame)
        if kind < 0.15:
            rows.append({**base, "face_id": NO_FACE_ID, "x": None, "y": None, "w": None, "h": None,
                         **dict.fromkeys(EMOTIONS), "dominant": "none"})  # fmt: skip
            continue
        faces = [(1, 120)] + ([(2, 40)] if kind > 0.85 else [])
        for face_id, size in faces:
            probs = rng.dirichlet(np.ones(len(EMOTIONS)))
            rows.append({**base, "face_id": face_id, "x": 5, "y": 5, "w": size, "h": size,
                         **{e: float(p) for e, p in zip(EMOTIONS, probs, strict=True)},
                         "dominant": EMOTIONS[int(np.argmax(probs))]})  # fmt: skip
    return rows


def _recorded_session(engine, *, seconds=12, fps=10, seed=1, end=True) -> int:
    with session_scope(engine) as db:
        study = repo.get_or_create_study(db, "Aggregates")
        session = repo.create_session(db, study_id=study.id, participant_code=f"P{seed}")
        lifecycle.start_session(db, session.id, session.created_at)
        rows = _rows(session.id, seconds, fps, seed)
        if rows:
            db.execute(insert(Observation), rows)
        if end:
            lifecycle.end_session(db, session.id, "complete")
        return session.id


def _expected(engine, sid: int) -> pd.DataFrame:
    with session_scope(engine) as db:
        return per_bin(repo.load_observations(db, sid), 1.0)


def test_ending_a_session_stores_exactly_the_aggregates_of_its_observations(engine):
    sid = _recorded_session(engine, seconds=12, fps=10, seed=3)
    with session_scope(engine) as db:
        assert db.get(StudySession, sid).aggregates_version == AGGREGATES_VERSION
        assert db.scalar(select(func.count()).select_from(SecondAggregate).where(SecondAggregate.session_id == sid)) == 12
        stored = load_second_aggregates(db, [sid])[sid]
    expected = _expected(engine, sid)
    assert list(stored.columns) == list(BIN_COLUMNS)
    pd.testing.assert_frame_equal(stored, expected, check_exact=False, rtol=1e-12, atol=1e-12)
    assert stored["n_frames"].sum() == 120


def test_sessions_of_an_older_database_get_their_aggregates_on_first_read(engine):
    sid = _recorded_session(engine, seed=4)
    with session_scope(engine) as db:  # as a database from before migration 0006 has it
        db.execute(SecondAggregate.__table__.delete())
        db.execute(update(StudySession).values(aggregates_version=None))
    calls = []
    with session_scope(engine) as db:
        first = load_second_aggregates(db, [sid], progress=lambda done, total: calls.append((done, total)))[sid]
    assert calls == [(1, 1)]
    with session_scope(engine) as db:
        assert db.get(StudySession, sid).aggregates_version == AGGREGATES_VERSION
        assert db.scalar(select(func.count()).select_from(SecondAggregate)) == len(first) == 12
        again = load_second_aggregates(db, [sid], progress=lambda done, total: calls.append((done, total)))[sid]
    assert calls == [(1, 1)]  # stored now: nothing computed, no progress
    pd.testing.assert_frame_equal(first, _expected(engine, sid), check_exact=False, rtol=1e-12, atol=1e-12)
    pd.testing.assert_frame_equal(again, first, check_exact=False, rtol=1e-12, atol=1e-12)


def test_an_open_session_is_aggregated_from_its_observations_and_nothing_is_stored(engine):
    sid = _recorded_session(engine, seed=5, end=False)
    done = _recorded_session(engine, seed=6)
    with session_scope(engine) as db:
        tables = load_second_aggregates(db, [sid, done, 10_000])
        assert list(tables) == [sid, done]  # unknown ids left out, order kept
        assert db.scalar(select(func.count()).select_from(SecondAggregate).where(SecondAggregate.session_id == sid)) == 0
    pd.testing.assert_frame_equal(tables[sid], _expected(engine, sid), check_exact=False, rtol=1e-12, atol=1e-12)


def test_the_cache_key_changes_with_an_end_a_marker_and_new_rows(engine):
    sid = _recorded_session(engine, seed=7, end=False)
    with session_scope(engine) as db:
        before = aggregate_versions(db, [sid])
        assert aggregate_versions(db, [sid]) == before
        db.execute(insert(Observation), [{**r, "frame": r["frame"] + 1000, "time_s": r["time_s"] + 100}
                                         for r in _rows(sid, 1, 10, 8)])  # fmt: skip
    with session_scope(engine) as db:
        more_rows = aggregate_versions(db, [sid])
        marker = repo.add_marker(db, sid, 2.0, "stimulus start")
    with session_scope(engine) as db:
        with_marker = aggregate_versions(db, [sid])
        repo.update_marker(db, marker.id, time_s=3.0)
    with session_scope(engine) as db:
        moved = aggregate_versions(db, [sid])
        lifecycle.end_session(db, sid, "complete")
    with session_scope(engine) as db:
        ended = aggregate_versions(db, [sid])
    assert len({before, more_rows, with_marker, moved, ended}) == 5


def test_deleting_a_session_deletes_its_aggregates(engine):
    sid = _recorded_session(engine, seed=9)
    with session_scope(engine) as db:
        repo.delete_session(db, sid)
    with session_scope(engine) as db:
        assert db.scalar(select(func.count()).select_from(SecondAggregate)) == 0


def test_a_session_without_observations_has_no_rows(engine):
    sid = _recorded_session(engine, seconds=0, seed=10)
    with session_scope(engine) as db:
        table = load_second_aggregates(db, [sid])[sid]
        assert db.get(StudySession, sid).aggregates_version == AGGREGATES_VERSION
    assert table.empty and list(table.columns) == list(BIN_COLUMNS)


def test_an_imported_real_clip_stores_the_aggregates_of_its_observations(engine, video_dir):
    """The shipped model and default detector on a real face video (19.7 s): the import ends the session, which
    stores its per-second rows; they equal per_bin of the stored observations."""
    from fer_core.classifier import default_model_path
    from sessions.importer import import_video

    if not default_model_path().is_file():
        pytest.skip(f"no shipped model at {default_model_path()}")
    sid = import_video(engine, video_dir / "WolfgangLanger_Pexels.mp4", study="Real clip").session_id
    with session_scope(engine) as db:
        stored = load_second_aggregates(db, [sid])[sid]
    expected = _expected(engine, sid)
    assert len(stored) == 20 and stored["n_frames"].sum() == 472
    pd.testing.assert_frame_equal(stored, expected, check_exact=False, rtol=1e-12, atol=1e-12)
    assert stored["face_present_rate"].min() > 0.9 and stored["happy"].notna().all()
