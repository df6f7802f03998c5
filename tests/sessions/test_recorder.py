"""The live recorder: batching, raw probabilities, drops, concurrent sessions, and surviving a kill -9."""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import func, select

from sessions import repository as repo
from sessions.db import session_scope
from sessions.models import LiveOwner, Observation, StudySession, utc_now
from sessions.recorder import LiveRecorder, RecorderStats, recover_interrupted
from tests.sessions.conftest import face

ROOT = Path(__file__).resolve().parents[2]


def _new_session(engine, code: str = "P-1") -> int:
    with session_scope(engine) as db:
        study = repo.get_or_create_study(db, "Live study")
        return repo.create_session(db, study_id=study.id, participant_code=code).id


def _row(engine, sid: int) -> StudySession:
    with session_scope(engine) as db:
        return repo.get_session(db, sid)


def test_finish_writes_every_frame_with_raw_probabilities_and_marks_complete(engine):
    sid = _new_session(engine)
    with LiveRecorder(engine, batch_interval_s=0.1) as recorder:
        for index in range(45):
            results = [] if index % 3 == 0 else [face(7, box=(1, 2, 30, 40), happy=0.6, surprise=0.3)]
            assert recorder.submit(sid, index, index / 30, results)
        stats = recorder.finish(sid, "complete")
    assert stats == RecorderStats(submitted=45, written=45, refused=0)
    session = _row(engine, sid)
    assert session.status == "complete" and session.ended_at is not None and session.dropped_frames == 0
    assert (session.skipped_frames, session.refused_frames) == (0, 0)
    assert (session.n_frames, session.n_face_frames, session.dominant_emotion) == (45, 30, "happy")
    with session_scope(engine) as db:
        obs = repo.load_observations(db, sid)
    assert len(obs) == 45 and obs["frame"].tolist() == list(range(45))
    no_face = obs[obs["face_id"] == -1]
    assert len(no_face) == 15 and no_face["happy"].isna().all()
    faces = obs[obs["face_id"] == 7]
    # stored values are the raw probs (0.6 happy), not the smoothed ones (uniform 1/7)
    assert np.allclose(faces["happy"], 0.6, atol=1e-6) and np.allclose(faces["surprise"], 0.3, atol=1e-6)
    assert (faces["dominant"] == "happy").all()
    assert faces[["x", "y", "w", "h"]].iloc[0].tolist() == [1, 2, 30, 40]


def test_several_sessions_record_at_once_from_their_own_threads(engine):
    ids = [_new_session(engine, f"P-{i}") for i in range(4)]
    with LiveRecorder(engine, batch_interval_s=0.05) as recorder:

        def stream(sid: int) -> None:
            for index in range(60):
                recorder.submit(sid, index, index / 30, [face(sad=0.5)])
                time.sleep(0.002)

        threads = [threading.Thread(target=stream, args=(sid,)) for sid in ids]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        statuses = ["complete", "aborted", "complete", "aborted"]
        for sid, status in zip(ids, statuses, strict=True):
            assert recorder.finish(sid, status).written == 60
    with session_scope(engine) as db:
        counts = dict(db.execute(select(Observation.session_id, func.count()).group_by(Observation.session_id)).all())
        assert counts == dict.fromkeys(ids, 60)
        assert [repo.get_session(db, sid).status for sid in ids] == statuses


def test_full_queue_drops_without_blocking_and_the_count_is_stored(engine):
    sid = _new_session(engine)
    recorder = LiveRecorder(engine, batch_interval_s=0.05, max_queue=3)
    gate, entered = threading.Event(), threading.Event()
    flush = recorder._flush

    def stalled_flush(*args, **kwargs):  # a database that hangs: the writer stops draining the queue
        entered.set()
        gate.wait(10)
        return flush(*args, **kwargs)

    recorder._flush = stalled_flush
    assert entered.wait(5)
    started = time.perf_counter()
    accepted = [recorder.submit(sid, index, index / 30, [face(happy=0.9)]) for index in range(10)]
    assert time.perf_counter() - started < 0.5  # never blocks the video thread
    assert accepted == [True] * 3 + [False] * 7
    gate.set()
    recorder.skip(sid, 4)  # frames the analysis skipped are counted apart from those the queue refused
    assert recorder.finish(sid) == RecorderStats(submitted=10, written=3, refused=7, skipped=4)
    recorder.close()
    row = _row(engine, sid)
    assert (row.refused_frames, row.skipped_frames, row.dropped_frames) == (7, 4, 11)
    with session_scope(engine) as db:
        assert len(repo.load_observations(db, sid)) == 3


def test_heartbeat_advances_while_frames_arrive_and_close_aborts_unfinished_sessions(engine):
    sid = _new_session(engine)
    recorder = LiveRecorder(engine, batch_interval_s=0.05)
    claim = recorder.claim(sid, stream_id="s1", role="researcher", capture_at=utc_now())
    assert (claim.next_frame, claim.resumed) == (0, False)
    row = _row(engine, sid)
    assert row.status == "recording" and row.owner_id == recorder.owner_id and row.stream_role == "researcher"
    first = row.heartbeat_at
    for index in range(5):
        recorder.submit(sid, index, index / 10, [face(happy=0.5)], stream_id="s1")
        time.sleep(0.1)
    assert _row(engine, sid).heartbeat_at > first
    with session_scope(engine) as db:
        owner = db.get(LiveOwner, recorder.owner_id)
        assert owner is not None and owner.heartbeat_at > first
    recorder.close()
    row = _row(engine, sid)
    assert row.status == "aborted" and row.end_reason and "server stopped" in row.end_reason
    assert recorder.submit(sid, 0, 0.0, []) is False
    assert recorder.stats(sid).refused == 1


def test_session_deleted_while_recording_does_not_lose_the_other_sessions_rows(engine, caplog):
    deleted, kept = _new_session(engine, "P-withdrawn"), _new_session(engine, "P-stays")
    with LiveRecorder(engine, batch_interval_s=0.2) as recorder:
        with session_scope(engine) as db:  # the participant withdraws mid-session
            repo.delete_session(db, deleted)
        for index in range(10):
            recorder.submit(deleted, index, index / 30, [face(happy=0.5)])
            recorder.submit(kept, index, index / 30, [face(happy=0.5)])
        assert recorder.finish(kept) == RecorderStats(submitted=10, written=10, refused=0)
        assert recorder.stats(deleted).written == 0
    with session_scope(engine) as db:
        assert len(repo.load_observations(db, kept)) == 10
        assert db.scalar(select(func.count()).select_from(Observation).where(Observation.session_id == deleted)) == 0


def test_a_new_recorder_aborts_only_sessions_whose_writer_is_gone(engine):
    from datetime import timedelta

    from sqlalchemy import update

    gone, alive, legacy = _new_session(engine, "P-gone"), _new_session(engine, "P-alive"), _new_session(engine, "P-old")
    unopened = _new_session(engine, "P-link")  # created for a join link that nobody has opened yet
    with session_scope(engine) as db:
        db.add(LiveOwner(id="remote-crashed", host="another-machine", pid=1, started_at=utc_now() - timedelta(hours=1),
                         heartbeat_at=utc_now() - timedelta(seconds=60)))  # fmt: skip
        db.add(LiveOwner(id="remote-alive", host="another-machine", pid=1, started_at=utc_now(), heartbeat_at=utc_now()))
        db.flush()
        for sid, owner in ((gone, "remote-crashed"), (alive, "remote-alive")):
            db.execute(update(StudySession).where(StudySession.id == sid).values(
                status="recording", started_at=utc_now(), owner_id=owner, heartbeat_at=utc_now()))  # fmt: skip
        db.execute(update(StudySession).where(StudySession.id == legacy).values(  # a session of the old schema
            status="recording", started_at=utc_now(), heartbeat_at=utc_now() - timedelta(seconds=60)))  # fmt: skip
    with LiveRecorder(engine, batch_interval_s=0.05) as recorder:
        recorder.finish(_new_session(engine, "P-x"), "complete")  # the writer has started (and recovered)
    assert _row(engine, gone).status == "aborted" and "server process" in _row(engine, gone).end_reason
    assert _row(engine, legacy).status == "aborted"
    assert _row(engine, alive).status == "recording"  # another server that is alive: never touched
    assert _row(engine, unopened).status == "pending"  # not started: its link still works after a restart


def test_one_stream_per_session_takeover_after_silence_and_no_row_after_the_end(engine):
    from sessions.errors import SessionEnded, StreamRefused

    sid = _new_session(engine)
    with LiveRecorder(engine, batch_interval_s=0.05) as recorder:
        recorder.claim(sid, stream_id="tab-1", role="participant", capture_at=utc_now())
        for index in range(3):
            recorder.submit(sid, index, index / 10, [face(happy=0.5)], stream_id="tab-1")
        time.sleep(0.2)
        with pytest.raises(StreamRefused, match="participant"):  # the same link in a second tab, or the researcher
            recorder.claim(sid, stream_id="tab-2", role="researcher", capture_at=utc_now())
        recorder.submit(sid, 0, 0.5, [face(sad=0.5)], stream_id="tab-2")  # a refused stream's rows are never stored
        recorder.submit(sid, 3, 0.3, [face(happy=0.5)], stream_id="tab-1")
        time.sleep(0.2)
        assert not recorder.holds("tab-2") and recorder.holds("tab-1")
        assert recorder.finish(sid, "complete").written == 4
        recorder.submit(sid, 4, 0.4, [face(happy=0.5)], stream_id="tab-1")  # a late frame after STOP
        recorder.finish(sid, "aborted")  # a late abort (tab closed after STOP) changes nothing
        time.sleep(0.2)
        with pytest.raises(SessionEnded):
            recorder.claim(sid, stream_id="tab-3", role="participant", capture_at=utc_now())
    row = _row(engine, sid)
    assert row.status == "complete" and row.stream_id is None
    with session_scope(engine) as db:
        frames = repo.load_observations(db, sid)["frame"].tolist()
    assert frames == [0, 1, 2, 3]  # unique, and nothing after the end


def test_a_released_session_resumes_on_its_own_clock_with_its_gap_stored(engine):
    from datetime import timedelta

    sid = _new_session(engine)
    start = utc_now()
    with LiveRecorder(engine, batch_interval_s=0.05) as recorder:
        first = recorder.claim(sid, stream_id="before", role="participant", capture_at=start)
        assert first.first_time_s == 0.0 and first.started_at == start
        for index in range(5):
            recorder.submit(sid, index, index * 0.1, [face(happy=0.5)], stream_id="before")
        recorder.skip(sid, 2)
        recorder.release(sid, "before")  # reload: the stream ended without STOP
        time.sleep(0.2)
        row = _row(engine, sid)
        assert row.status == "recording" and row.stream_id is None and row.disconnected_at is not None
        again = recorder.claim(sid, stream_id="after", role="participant", capture_at=start + timedelta(seconds=3))
        assert again.resumed and again.next_frame == 5 and again.first_time_s == pytest.approx(3.0)
        assert again.gap == pytest.approx((0.4, 3.0)) and again.skipped_frames == 2
        recorder.submit(sid, 5, 3.0, [face(sad=0.5)], stream_id="after")
        recorder.finish(sid, "complete")
    with session_scope(engine) as db:
        obs = repo.load_observations(db, sid)
        gaps = [(g.start_s, g.end_s) for g in repo.get_session(db, sid).gaps]
    assert obs["frame"].tolist() == list(range(6)) and obs["time_s"].is_monotonic_increasing
    assert gaps == [pytest.approx((0.4, 3.0))]
    with session_scope(engine) as db:
        assert repo.load_gaps(db, sid).to_numpy().tolist() == [pytest.approx([0.4, 3.0])]
    assert _row(engine, sid).status == "complete"


def test_a_session_nobody_comes_back_to_ends_aborted_after_the_grace_window(engine):
    sid = _new_session(engine)
    with LiveRecorder(engine, batch_interval_s=0.05, resume_grace_s=0.3, maintenance_interval_s=0.1) as recorder:
        recorder.claim(sid, stream_id="s", role="participant", capture_at=utc_now())
        recorder.submit(sid, 0, 0.0, [face(happy=0.5)], stream_id="s")
        recorder.release(sid, "s")
        deadline = time.monotonic() + 5
        while _row(engine, sid).status == "recording" and time.monotonic() < deadline:
            time.sleep(0.05)
    row = _row(engine, sid)
    assert row.status == "aborted" and "did not come back" in row.end_reason
    with session_scope(engine) as db:
        assert len(repo.load_observations(db, sid)) == 1  # everything recorded is kept


def test_invalid_arguments_raise_value_error(engine):
    with pytest.raises(ValueError, match="batch_interval_s"):
        LiveRecorder(engine, batch_interval_s=0)
    with pytest.raises(ValueError, match="max_queue"):
        LiveRecorder(engine, max_queue=0)
    with LiveRecorder(engine) as recorder, pytest.raises(ValueError, match="status"):
        recorder.finish(1, "done")
    with pytest.raises(ValueError, match="stale_after_s"):
        recover_interrupted(engine, stale_after_s=-1)


WRITER = textwrap.dedent(
    """
    import sys, time
    from sessions import repository as repo
    from sessions.db import get_engine, session_scope
    from sessions.models import utc_now
    from sessions.recorder import LiveRecorder
    from tests.sessions.conftest import face

    engine = get_engine(sys.argv[1])
    with session_scope(engine) as db:
        study = repo.get_or_create_study(db, "kill test")
        sid = repo.create_session(db, study_id=study.id, participant_code="P-kill").id
    recorder = LiveRecorder(engine, batch_interval_s=0.5)
    recorder.claim(sid, stream_id="camera", role="participant", capture_at=utc_now())
    print(sid, flush=True)
    start, index = time.monotonic(), 0
    while True:
        time_s = time.monotonic() - start
        recorder.submit(sid, index, time_s, [face(happy=0.7)], stream_id="camera")
        print(index, time_s, flush=True)
        index += 1
        time.sleep(1 / 30)
    """
)


def test_killed_writer_keeps_earlier_observations_and_reads_as_aborted(engine, db_url):
    """kill -9 a recording process: at most about the last second is lost; the next start marks it aborted."""
    child = subprocess.Popen([sys.executable, "-c", WRITER, db_url], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        sid = int(child.stdout.readline())
        last_time = 0.0
        while last_time < 3.0:
            line = child.stdout.readline()
            assert line, "the writer process died by itself"
            last_time = float(line.split()[1])
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        for line in child.stdout:  # frames submitted between our last read and the kill
            last_time = float(line.split()[1])
    finally:
        if child.poll() is None:
            child.kill()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL

    with session_scope(engine) as db:
        obs = repo.load_observations(db, sid)
        assert repo.get_session(db, sid).status == "recording"
    print(f"kill -9 after {last_time:.2f} s: {len(obs)} frames kept, last at {obs['time_s'].max():.2f} s")
    assert len(obs) >= 30  # the first seconds survived
    assert obs["frame"].tolist() == list(range(len(obs)))  # a prefix of the stream, nothing torn
    lost_s = last_time - obs["time_s"].max()
    assert lost_s <= 1.5, f"lost the last {lost_s:.2f} s of observations"

    with session_scope(engine) as db:  # a join link nobody has opened yet: not started, nothing to recover
        waiting = repo.create_session(db, study_id=repo.get_or_create_study(db, "kill test").id, participant_code="P-link").id
    started = time.monotonic()
    # A restart a second later: the killed process is gone from this machine, so its session is aborted at once,
    # without waiting for its heartbeat to go stale.
    assert recover_interrupted(engine, stale_after_s=3600) == [sid]
    assert recover_interrupted(engine, stale_after_s=3600) == []
    assert time.monotonic() - started < 5
    with session_scope(engine) as db:
        killed = repo.get_session(db, sid)
        assert killed.status == "aborted" and killed.ended_at is not None and "server process" in killed.end_reason
        assert killed.n_frames == len(obs)  # statistics cached at recovery
        assert repo.get_session(db, waiting).status == "pending"
        assert len(repo.load_observations(db, sid)) == len(obs)


def test_a_held_session_whose_stream_went_silent_ends_after_the_window_even_without_its_release(engine):
    """A release lost (queue full, worker died): the holder stored nothing for the window, so the session ends."""
    sid = _new_session(engine)
    with LiveRecorder(engine, batch_interval_s=0.05, resume_grace_s=0.3, maintenance_interval_s=0.1) as recorder:
        recorder.claim(sid, stream_id="gone", role="participant", capture_at=utc_now())
        recorder.submit(sid, 0, 0.0, [face(happy=0.5)], stream_id="gone")
        deadline = time.monotonic() + 5
        while _row(engine, sid).status == "recording" and time.monotonic() < deadline:
            time.sleep(0.05)
    row = _row(engine, sid)
    assert row.status == "aborted" and "no camera frame" in row.end_reason


def test_recovery_judges_a_session_of_an_owner_it_has_not_seen_by_the_sessions_heartbeat(engine):
    """An owner that registered after recovery read the owners (or whose row was retired) is not called gone."""
    from sqlalchemy import update

    from sessions import lifecycle

    sid = _new_session(engine)
    with session_scope(engine) as db:  # claimed by an owner with no live_owners row, heartbeat fresh
        db.execute(update(StudySession).where(StudySession.id == sid).values(
            status="recording", started_at=utc_now(), owner_id="not-yet-seen", heartbeat_at=utc_now()))  # fmt: skip
    with session_scope(engine) as db:
        assert lifecycle.abort_orphaned(db, stale_after_s=10) == []
    assert _row(engine, sid).status == "recording"
