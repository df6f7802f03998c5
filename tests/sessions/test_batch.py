"""Batch import (sessions/batch.py) on the real clips: Ray and local give the same rows, split or not; corrupt
files are reported without stopping the rest; re-runs skip, --force re-analyses, a crashed import is redone;
re-analysis with another model keeps the old sessions."""

from __future__ import annotations

import logging
import os
import re
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from fer_core.emotions import EMOTIONS, NO_FACE_ID
from sessions import repository as repo
from sessions.batch import BatchSettings, VideoSource, file_sha256, import_videos, reanalyse
from sessions.db import get_engine, session_scope
from sessions.models import LiveOwner, Observation, StudySession, VideoImport
from tests.conftest import ROOT

#: The clip split into ranges (19.7 s, key frames every 3 s: ranges start at 0, 6, 12 and 18 s with split_s=5).
LONG_CLIP = "WolfgangLanger_Pexels.mp4"
CLIPS = (LONG_CLIP, "face_noface.mov", "single_face.mp4")
SPLIT_S = 5.0


def _shipped_model():
    from fer_core.classifier import default_model_path

    # Skip only when the model is absent: a shipped model that fails to load has to fail the test.
    if not default_model_path().is_file():
        pytest.skip(f"the shipped model is not available: {default_model_path()} is missing")
    return default_model_path()


@pytest.fixture(scope="module")
def ray_local():
    """A local Ray with 2 CPUs for this module (no dashboard), shut down after it."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -r requirements-scale.txt)")
    ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def reference(tmp_path_factory, video_dir):
    """The clips imported by ``--engine local`` without ranges: the rows every other run must reproduce."""
    _shipped_model()
    url = f"sqlite:///{tmp_path_factory.mktemp('reference') / 'sessions.db'}"
    engine = get_engine(url)
    report = import_videos(engine, [video_dir / c for c in CLIPS], study="Local", show_progress=False)
    assert [o.status for o in report.outcomes] == ["imported"] * len(CLIPS), report.outcomes
    with session_scope(engine) as db:
        rows = {clip: repo.load_observations(db, o.session_id) for clip, o in zip(CLIPS, report.outcomes, strict=True)}
    engine.dispose()
    return rows


def _observations(engine, session_id: int) -> pd.DataFrame:
    with session_scope(engine) as db:
        return repo.load_observations(db, session_id)


def _assert_same_rows(got: pd.DataFrame, want: pd.DataFrame) -> None:
    """Row for row: frames, times, face ids and boxes exactly, probabilities within float tolerance."""
    assert len(got) == len(want)
    for column in ("frame", "face_id", "time_s", "x", "y", "w", "h", "dominant"):
        pd.testing.assert_series_equal(got[column].reset_index(drop=True), want[column].reset_index(drop=True),
                                       check_exact=True, check_names=False)  # fmt: skip
    np.testing.assert_allclose(got[list(EMOTIONS)].to_numpy(), want[list(EMOTIONS)].to_numpy(), atol=1e-6, rtol=0)


def test_ray_import_matches_local_row_for_row_with_ranges_a_copy_and_a_corrupt_file(
    ray_local, reference, video_dir, tmp_path, sqlite_url
):
    from fer_core.video_ranges import plan_ranges

    assert len(plan_ranges(video_dir / LONG_CLIP, SPLIT_S)) == 4  # the long clip really is split
    copy = tmp_path / "copy_of_single_face.mp4"
    shutil.copyfile(video_dir / "single_face.mp4", copy)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + os.urandom(20_000))  # an MP4 header, then noise
    paths = [video_dir / CLIPS[0], corrupt, video_dir / CLIPS[1], video_dir / CLIPS[2], copy]
    engine = get_engine(sqlite_url)

    report = import_videos(engine, paths, study="Ray", tags={"wave": "1"}, engine_name="ray", workers=2,
                           split_s=SPLIT_S, show_progress=False)  # fmt: skip

    statuses = [o.status for o in report.outcomes]
    assert statuses == ["imported", "failed", "imported", "imported", "skipped"], report.outcomes
    assert "corrupt.mp4" in report.outcomes[1].reason and not report.ok
    assert report.outcomes[4].reason == f"same content as {video_dir / 'single_face.mp4'}"
    imported = [o for o in report.outcomes if o.status == "imported"]
    for clip, outcome in zip(CLIPS, imported, strict=True):
        _assert_same_rows(_observations(engine, outcome.session_id), reference[clip])
        assert outcome.frames == reference[clip]["frame"].nunique()
    with session_scope(engine) as db:
        sessions = {s.id: s for s in db.scalars(select(StudySession))}
        imports = db.scalars(select(VideoImport).order_by(VideoImport.id)).all()
    assert {(s.status, s.source, s.owner_id is not None) for s in sessions.values()} == {("complete", "upload", True)}
    assert all(s.tags == {"wave": "1"} and s.model.startswith("fer2013_cnn.keras sha256:") for s in sessions.values())
    failed = [i for i in imports if i.status == "failed"]
    assert len(failed) == 1 and failed[0].source_path == str(corrupt) and failed[0].session_id is None
    assert {i.session_id for i in imports if i.status == "complete"} == set(sessions)

    again = import_videos(engine, paths, study="Ray", engine_name="ray", workers=2, split_s=SPLIT_S,
                          show_progress=False)  # fmt: skip
    assert [o.status for o in again.outcomes] == ["skipped", "failed", "skipped", "skipped", "skipped"]
    assert [o.session_id for o in again.outcomes if o.status == "skipped"][:2] == [imported[0].session_id,
                                                                                    imported[1].session_id]
    with session_scope(engine) as db:
        assert db.scalar(select(func.count()).select_from(StudySession)) == len(CLIPS)  # nothing new
    engine.dispose()


def test_local_engine_stores_what_import_video_stores(reference, sqlite_url, video_dir):
    from sessions.importer import import_video

    engine = get_engine(sqlite_url)
    single = import_video(engine, video_dir / "single_face.mp4", study="One").session_id
    _assert_same_rows(_observations(engine, single), reference["single_face.mp4"])
    engine.dispose()


def test_second_run_skips_and_force_makes_a_new_session(engine, video_dir):
    _shipped_model()
    clip = video_dir / "single_face.mp4"
    first = import_videos(engine, [clip], study="Again", show_progress=False).outcomes[0]
    second = import_videos(engine, [clip], study="Again", show_progress=False).outcomes[0]
    assert first.status == "imported" and second.status == "skipped" and second.session_id == first.session_id
    assert "already imported" in second.reason
    with session_scope(engine) as db:
        assert db.scalar(select(func.count()).select_from(LiveOwner)) == 0  # each run retired its owner row
    other_detector = import_videos(engine, [clip], study="Again", settings=BatchSettings(detector="blazeface_full"),
                                   show_progress=False).outcomes[0]  # fmt: skip
    assert other_detector.status == "imported"  # other analysis settings: analysed again
    forced = import_videos(engine, [clip], study="Again", force=True, show_progress=False).outcomes[0]
    assert forced.status == "imported" and forced.session_id not in (first.session_id, other_detector.session_id)
    _assert_same_rows(_observations(engine, forced.session_id), _observations(engine, first.session_id))
    with session_scope(engine) as db:
        assert db.scalar(select(func.count()).select_from(StudySession)) == 3  # the old sessions stay
    other_study = import_videos(engine, [clip], study="Other", show_progress=False).outcomes[0]
    assert other_study.status == "imported"  # idempotency is per study
    with session_scope(engine) as db:
        repo.delete_session(db, other_study.session_id)
    with session_scope(engine) as db:  # the import row went with its session: nothing keeps the path
        assert db.scalar(select(func.count()).where(VideoImport.session_id == other_study.session_id)) == 0
    assert import_videos(engine, [clip], study="Other", show_progress=False).outcomes[0].status == "imported"


CRASHING_RUN = """
import os, sys
from sessions import batch
real = batch._Batch.store_range
def store_then_die(self, job, result):
    stored = real(self, job, result)
    if job.number == 1 and job.next_range == 1:  # the second video's first range is committed: power cut
        os._exit(3)
    return stored
batch._Batch.store_range = store_then_die
from sessions.__main__ import main
sys.exit(main(sys.argv[1:]))
"""


def test_import_is_resumed_after_a_crash(reference, video_dir, db_url, tmp_path):
    """A run killed while writing the second video: the next run keeps the first, redoes the second (SQLite and
    PostgreSQL)."""
    script = tmp_path / "crash.py"
    script.write_text(textwrap.dedent(CRASHING_RUN))
    clips = [video_dir / "single_face.mp4", video_dir / "face_noface.mov"]  # face_noface.mov: 3 ranges of >= 2 s
    done = subprocess.run([sys.executable, str(script), "--db", db_url, "import-videos", *map(str, clips),
                           "--study", "Crash", "--split-s", "2"], cwd=ROOT, capture_output=True, text=True,
                          timeout=300, env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    assert done.returncode == 3, done.stderr[-2000:]
    engine = get_engine(db_url)
    with session_scope(engine) as db:
        left = {s.id: (s.status, s.owner_id) for s in db.scalars(select(StudySession))}
        partial = db.scalars(select(VideoImport).where(VideoImport.status == "running")).one()
        partial_rows = db.scalar(select(func.count()).where(Observation.session_id == partial.session_id))
    assert left[partial.session_id][0] == "recording" and 0 < partial_rows < len(reference["face_noface.mov"])

    report = import_videos(engine, clips, study="Crash", split_s=2.0, show_progress=False)

    assert [o.status for o in report.outcomes] == ["skipped", "imported"], report.outcomes
    redone = report.outcomes[1].session_id
    _assert_same_rows(_observations(engine, redone), reference["face_noface.mov"])
    with session_scope(engine) as db:
        remaining = set(db.scalars(select(StudySession.id)))
        assert db.scalar(select(func.count()).where(Observation.session_id == partial.session_id)) == 0
        assert db.scalars(select(VideoImport.status).order_by(VideoImport.id)).all() == ["complete", "complete"]
    assert partial.session_id not in remaining and remaining == {report.outcomes[0].session_id, redone}
    engine.dispose()


def test_reanalyse_with_another_model_keeps_the_old_sessions(engine, video_dir, tmp_path):
    model = _shipped_model()
    clip = tmp_path / "participant.mp4"
    shutil.copyfile(video_dir / "single_face.mp4", clip)
    first = import_videos(engine, [clip], study="Ads", tags={"variant": "B"}, show_progress=False).outcomes[0]
    newer = tmp_path / "fer2013_cnn_v2.keras"
    shutil.copyfile(model, newer)

    report = reanalyse(engine, study="Ads", model_path=newer, show_progress=False)

    assert [o.status for o in report.outcomes] == ["imported"]
    with session_scope(engine) as db:
        old, new = repo.get_session(db, first.session_id), repo.get_session(db, report.outcomes[0].session_id)
        assert (new.participant_code, new.tags) == (old.participant_code, {"variant": "B"})
        assert old.model.startswith("fer2013_cnn.keras ") and new.model.startswith("fer2013_cnn_v2.keras ")
    assert reanalyse(engine, study="Ads", model_path=newer, show_progress=False).outcomes[0].status == "skipped"
    clip.write_bytes(clip.read_bytes()[:-1000])  # the file changed since it was imported
    changed = reanalyse(engine, study="Ads", model_path=newer, force=True, show_progress=False).outcomes[0]
    assert changed.status == "failed" and "changed since it was imported" in changed.reason
    with pytest.raises(LookupError, match="no study"):
        reanalyse(engine, study="Nope", model_path=newer)


def _blank_video(path, *, seconds: float = 2.0, fps: int = 10) -> None:
    """A grey H.264 clip without a face, a key frame every second (so it splits into 1 s ranges)."""
    import av

    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 160, 120, "yuv420p"
        stream.codec_context.gop_size = fps
        for _ in range(int(seconds * fps)):
            frame = av.VideoFrame.from_ndarray(np.full((120, 160, 3), 128, np.uint8), format="rgb24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def test_video_without_a_face_fails_and_leaves_no_partial_session(engine, tmp_path, video_dir):
    from fer_core.video_ranges import plan_ranges

    _shipped_model()
    blank = tmp_path / "blank.mp4"
    _blank_video(blank)
    assert len(plan_ranges(blank, 1.0)) == 2  # its first range is stored before the last shows there is no face
    report = import_videos(engine, [blank, video_dir / "single_face.mp4"], study="Blank", split_s=1.0,
                           show_progress=False)  # fmt: skip
    assert [o.status for o in report.outcomes] == ["failed", "imported"]
    assert report.outcomes[0].reason == "no face in any of its 20 analysed frames"
    with session_scope(engine) as db:
        assert db.scalars(select(StudySession.id)).all() == [report.outcomes[1].session_id]
        statuses = db.execute(select(VideoImport.session_id, VideoImport.status)).all()
        assert sorted(statuses, key=lambda r: r[1]) == [(report.outcomes[1].session_id, "complete"), (None, "failed")]


def test_cli_reports_each_failed_video_and_exits_1(sqlite_url, video_dir, tmp_path, capsys):
    from sessions.__main__ import main

    _shipped_model()
    broken = tmp_path / "broken.mov"
    broken.write_bytes(b"not a video at all" * 100)
    status = main(["--db", sqlite_url, "import-videos", str(broken), str(video_dir / "single_face.mp4"),
                   str(tmp_path / "missing.mp4"), "--study", "CLI", "--tag", "variant=A"])  # fmt: skip
    out = capsys.readouterr().out
    assert status == 1
    assert f"failed {broken}: " in out and "not a readable video file" in out
    assert f"failed {tmp_path / 'missing.mp4'}: " in out and "not found" in out
    assert re.search(rf"imported {re.escape(str(video_dir / 'single_face.mp4'))}: session \d+ \(72 frames\)", out)
    assert "1 imported, 0 skipped, 2 failed; 72 frames" in out
    assert main(["--db", sqlite_url, "import-videos", str(video_dir / "single_face.mp4"), "--study", "CLI"]) == 0
    assert "0 imported, 1 skipped, 0 failed" in capsys.readouterr().out
    for option, value, message in (("--workers", "0", "has to be a positive integer; got '0'"),
                                   ("--split-s", "-1", "has to be a positive number of seconds; got '-1'"),
                                   ("--attention-angle", "95", "has to be a number of degrees in (0, 90]")):
        with pytest.raises(SystemExit) as usage:  # argparse: the option named, exit status 2, no traceback
            main(["--db", sqlite_url, "import-videos", str(video_dir), "--study", "CLI", option, value])
        assert usage.value.code == 2 and f"argument {option}: {message}" in capsys.readouterr().err
    assert main(["--db", sqlite_url, "import-videos", str(video_dir), "--study", "CLI", "--address", "auto"]) == 1
    assert "only engine 'ray' uses" in capsys.readouterr().err


def test_cli_interrupted_says_how_to_resume(sqlite_url, video_dir, monkeypatch, capsys):
    from sessions import batch
    from sessions.__main__ import main

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(batch, "import_videos", interrupted)
    assert main(["--db", sqlite_url, "import-videos", str(video_dir / "single_face.mp4"), "--study", "CLI"]) == 130
    assert "run the same command again to import the rest" in capsys.readouterr().err


def test_ray_missing_says_how_to_install_it(monkeypatch):
    from fer_core.video_ranges import VideoRange
    from sessions.batch_engines import EngineUnavailable, range_task, run_ray

    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    with pytest.raises(EngineUnavailable, match="pip install -r requirements-scale.txt"):
        list(run_ray([range_task(0, "x.mp4", VideoRange(0, 0.0, None, 0))], model_path=None, detector="blazeface",
                     workers=1))  # fmt: skip


def test_plan_ranges_start_at_key_frames_and_cover_every_frame(video_dir):
    from fer_core.video_ranges import plan_ranges

    ranges = plan_ranges(video_dir / LONG_CLIP, SPLIT_S)
    assert [round(r.start_s, 3) for r in ranges] == [0.0, 6.006, 12.012, 18.018]  # its key frames are 3.003 s apart
    assert [r.first_frame for r in ranges] == [0, 144, 288, 432] and sum(r.n_frames for r in ranges) == 472
    assert all(r.end_s is not None and ranges[k + 1].start_s - 0.05 < r.end_s < ranges[k + 1].start_s
               for k, r in enumerate(ranges[:-1])) and ranges[-1].end_s is None  # fmt: skip
    assert plan_ranges(video_dir / LONG_CLIP, None) == [(0, 0.0, None, 0, 0)]  # not even read
    assert len(plan_ranges(video_dir / LONG_CLIP, 60.0)) == 1
    with pytest.raises(ValueError, match="split_s has to be a positive number of seconds; got 0"):
        plan_ranges(video_dir / LONG_CLIP, 0)


def _range_table(rows: list[tuple]) -> pd.DataFrame:
    """(frame, time_s, face_id, x) rows -> an observation table (w = h = 100 px; no-face rows with face_id -1)."""
    from fer_core.video import observations_frame

    out = []
    for frame, time_s, face_id, x in rows:
        row = {"time_s": time_s, "frame": frame, "face_id": face_id, "x": x, "y": 0, "w": 100, "h": 100,
               "dominant": "happy" if face_id != NO_FACE_ID else "none"}  # fmt: skip
        row.update(dict.fromkeys(EMOTIONS, 1 / 7))
        out.append(row)
    return observations_frame(out)


def test_stitcher_continues_tracks_across_a_boundary_and_never_reuses_ids():
    from fer_core.video_ranges import RangeStitcher

    stitcher = RangeStitcher()
    first = stitcher.add(_range_table([(0, 0.0, 0, 10), (0, 0.0, 1, 500), (1, 0.1, 0, 12), (2, 0.2, NO_FACE_ID, 0)]))
    # next range: local 0 is a new face far away, local 1 continues the face at x=12 (IoU > 0.3), local 2 later
    second = stitcher.add(_range_table([(3, 0.3, 0, 900), (3, 0.3, 1, 14), (4, 0.4, 2, 300)]))
    third = stitcher.add(_range_table([(5, 2.0, 0, 14)]))  # 1.6 s later: every track has ended
    assert first["face_id"].tolist() == [0, 1, 0, NO_FACE_ID]
    assert second["face_id"].tolist() == [2, 0, 3]
    assert third["face_id"].tolist() == [4]
    # a range opening on frames without a face: its first frame with one still continues a live track
    stitcher = RangeStitcher()
    stitcher.add(_range_table([(0, 0.0, 0, 10)]))
    later = stitcher.add(_range_table([(1, 0.1, NO_FACE_ID, 0), (2, 0.2, 0, 11), (3, 1.5, 1, 11)]))
    assert later["face_id"].tolist() == [NO_FACE_ID, 0, 1]  # the track ended (1.3 s unseen) before frame 3


def test_attention_angle_is_an_analysis_setting_and_stored_as_the_upload_stores_it(engine, video_dir, sqlite_url,
                                                                                   monkeypatch, capsys):  # fmt: skip
    from fer_core.analyzer import FrameAnalyzer
    from fer_core.classifier import EmotionClassifier
    from fer_core.detection import create_detector
    from sessions.__main__ import main
    from sessions.importer import import_video

    _shipped_model()
    clip = video_dir / "single_face.mp4"
    default = import_videos(engine, [clip], study="Angle", show_progress=False).outcomes[0]
    narrow = import_videos(engine, [clip], study="Angle", settings=BatchSettings(attention_angle_deg=3.0),
                           show_progress=False).outcomes[0]  # fmt: skip
    assert default.status == narrow.status == "imported"  # another angle: analysed again, not skipped
    upload = import_video(engine, clip, study="Upload", analyzer=FrameAnalyzer(
        EmotionClassifier.load(), create_detector("blazeface"), max_head_angle_deg=3.0)).session_id  # as Upload does
    got, want = _observations(engine, narrow.session_id), _observations(engine, upload)
    assert got["attentive"].tolist() == want["attentive"].tolist()
    wide = _observations(engine, default.session_id)["attentive"]
    assert wide.sum() > got["attentive"].sum()  # 3 degrees counts fewer faces attentive than 30: the angle was used
    with session_scope(engine) as db:
        stored = db.scalar(select(VideoImport.settings).where(VideoImport.session_id == narrow.session_id))
    assert (stored["attention_angle_deg"], stored["version"]) == (3.0, 2)
    monkeypatch.setenv("FER_ATTENTION_ANGLE_DEG", "abc")
    assert main(["--db", sqlite_url, "import-videos", str(clip), "--study", "Env"]) == 1
    assert "FER_ATTENTION_ANGLE_DEG has to be a number of degrees in (0, 90]; got 'abc'" in capsys.readouterr().err


def test_two_runs_planning_at_once_import_a_video_once(engine, video_dir):
    from sessions.batch import _Batch

    _shipped_model()
    clip = video_dir / "single_face.mp4"

    def planner():
        return _Batch(engine, study="Twice", tags={}, model_id="m", settings=BatchSettings(), force=False,
                      show_progress=False)  # fmt: skip

    with planner() as first, planner() as second:
        claimed = first.plan([VideoSource(clip)], None)
        assert list(claimed) == [0] and claimed[0].session_id is not None  # claimed while planning
        assert second.plan([VideoSource(clip)], None) == {}  # the first run's claim is seen
        assert second.outcomes(1)[0][1:3] == ("skipped", claimed[0].session_id)
        assert "being imported by another process" in second.outcomes(1)[0].reason
        # both checked before either claimed (a race): the unique index on running imports refuses the second
        racing = planner()
        with racing:
            racing._previous_import = lambda sha256: None
            assert racing.plan([VideoSource(clip)], None) == {}
            assert racing.outcomes(1)[0].status == "skipped"
        with session_scope(engine) as db:
            running = db.scalars(select(VideoImport.session_id).where(VideoImport.status == "running")).all()
            assert running == [claimed[0].session_id]
            assert db.scalar(select(func.count()).select_from(StudySession)) == 1  # no session left by the losers
        first.write(claimed, iter([]))  # the engine returned nothing: the claimed session is removed, not left
    with session_scope(engine) as db:
        assert db.scalar(select(func.count()).select_from(StudySession)) == 0
    assert import_videos(engine, [clip], study="Twice", show_progress=False).outcomes[0].status == "imported"


def test_file_sha256_and_settings_key_are_stable(tmp_path):
    path = tmp_path / "v.bin"
    path.write_bytes(b"abc")
    assert file_sha256(path) == ("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", 3)
    assert BatchSettings().key == BatchSettings().key != BatchSettings(detector="haar").key
    with pytest.raises(ValueError, match="detector has to be one of"):
        BatchSettings(detector="yolo")
    assert BatchSettings(attention_angle_deg=20).key != BatchSettings().key == BatchSettings(attention_angle_deg=30).key
    assert BatchSettings().as_json()["attention_angle_deg"] == 30.0
    with pytest.raises(ValueError, match=r"attention_angle_deg has to be a number of degrees in \(0, 90\]; got 0"):
        BatchSettings(attention_angle_deg=0)
    assert VideoSource("a.mp4").tags == {}
