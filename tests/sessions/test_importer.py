"""Offline import of the real clips through the core into sessions; bad input stores nothing."""

from __future__ import annotations

import re

import numpy as np
import pytest
from sqlalchemy import func, select

from fer_core.emotions import EMOTIONS
from fer_core.preprocessing import PreprocessSpec
from sessions import repository as repo
from sessions.db import session_scope
from sessions.errors import NoFaceFound
from sessions.importer import import_video
from sessions.models import Observation, Study, StudySession

HAPPY = np.array([0.05, 0.0, 0.05, 0.6, 0.1, 0.1, 0.1], dtype=np.float32)


class FixedClassifier:
    """Stands in for the trained model (not needed to test storage): every face gets ``HAPPY``."""

    spec_ = PreprocessSpec()

    def predict(self, faces):
        return np.tile(HAPPY, (len(faces), 1))


def _haar_analyzer():
    from fer_core.analyzer import FrameAnalyzer
    from fer_core.detection import create_detector

    return FrameAnalyzer(FixedClassifier(), create_detector("haar"))


class OneFaceAnalyzer:
    """A cheap analyzer: one fixed face in every frame (storage tests that need no detection)."""

    def __init__(self, *args, **kwargs) -> None:  # stands in for dashboard.resources.new_analyzer(live=...) too
        pass

    def reset(self) -> None:
        pass

    def analyze(self, frame_bgr, time_s):
        from fer_core.analyzer import FaceResult

        return [FaceResult(1, (100, 50, 120, 120), HAPPY, HAPPY, "happy")]


class NoFaceAnalyzer:
    def reset(self) -> None:
        pass

    def analyze(self, frame_bgr, time_s):
        return []


def _counts(engine) -> tuple[int, int, int]:
    with session_scope(engine) as db:
        return tuple(db.scalar(select(func.count()).select_from(m)) for m in (Study, StudySession, Observation))


def test_import_real_clip_with_real_detection(sqlite_url, video_dir):
    """Real decoding and real (Haar) detection of single_face.mp4; SQLite only, to keep the run short."""
    from sessions.db import get_engine

    engine = get_engine(sqlite_url)
    fractions: list[float] = []
    sid = import_video(engine, video_dir / "single_face.mp4", study="Imports", participant_code="P-007",
                       tags={"variant": "A"}, progress=fractions.append, analyzer=_haar_analyzer()).session_id  # fmt: skip
    assert fractions[-1] == 1.0 and fractions == sorted(fractions)
    with session_scope(engine) as db:
        session = repo.get_session(db, sid)
        assert (session.status, session.source, session.participant_code) == ("complete", "upload", "P-007")
        assert session.tags == {"variant": "A"} and session.study.name == "Imports"
        obs = repo.load_observations(db, sid)
        listed = repo.list_sessions(db, session_ids=[sid]).iloc[0]
    # 2.4 s at 30 fps: every decoded frame is one or more rows, with decoder time stamps
    assert obs["frame"].nunique() == pytest.approx(72, abs=2)
    assert obs["time_s"].max() == pytest.approx(2.37, abs=0.1)
    faces = obs[obs["face_id"] != -1]
    assert len(faces) / obs["frame"].nunique() > 0.8  # the man is in view throughout
    np.testing.assert_allclose(faces[list(EMOTIONS)].to_numpy(), np.tile(HAPPY, (len(faces), 1)), atol=1e-6)
    assert (faces["w"] > 50).all()
    assert listed["dominant_emotion"] == "happy" and listed["face_present_rate"] > 0.8
    engine.dispose()


def test_import_stores_every_frame_with_a_pseudonym(engine, video_dir):
    result = import_video(engine, video_dir / "single_face.mp4", study="Imports", analyzer=OneFaceAnalyzer())
    assert result.warning is None  # the whole clip was decoded
    sid = result.session_id
    with session_scope(engine) as db:
        code = repo.get_session(db, sid).participant_code
        obs = repo.load_observations(db, sid)
    assert code.startswith("P-") and "single" not in code
    assert len(obs) == obs["frame"].nunique() == pytest.approx(72, abs=2)
    assert obs[["x", "y", "w", "h"]].iloc[0].tolist() == [100, 50, 120, 120]
    assert np.diff(obs["time_s"]).min() > 0


def test_undecodable_or_missing_file_raises_and_stores_nothing(engine, tmp_path):
    from fer_core.video import VideoDecodeError

    garbage = tmp_path / "broken.mp4"
    garbage.write_bytes(b"not a video at all" * 100)
    for path in (garbage, tmp_path / "missing.mp4"):
        with pytest.raises(VideoDecodeError):
            import_video(engine, path, study="Imports", analyzer=NoFaceAnalyzer())
    assert _counts(engine) == (0, 0, 0)


def test_video_without_any_face_raises_and_stores_nothing(engine, video_dir):
    with pytest.raises(NoFaceFound, match="no face"):
        import_video(engine, video_dir / "single_face.mp4", study="Imports", analyzer=NoFaceAnalyzer())
    assert _counts(engine) == (0, 0, 0)


@pytest.mark.slow
def test_import_with_the_shipped_model(sqlite_url, video_dir):
    from fer_core.classifier import default_model_path
    from sessions.db import get_engine

    # Skip only when the model is absent: a shipped model that fails to load has to fail the test.
    if not default_model_path().is_file():
        pytest.skip(f"the shipped model is not available: {default_model_path()} is missing")
    engine = get_engine(sqlite_url)
    sid = import_video(engine, video_dir / "single_face.mp4", study="Imports").session_id
    with session_scope(engine) as db:
        obs = repo.load_observations(db, sid)
        model = repo.get_session(db, sid).model
    faces = obs[obs["face_id"] != -1]
    assert len(faces) > 50
    assert model is not None and model.startswith("fer2013_cnn.keras sha256:")  # the session records its model
    np.testing.assert_allclose(faces[list(EMOTIONS)].sum(axis=1), 1.0, atol=1e-4)
    engine.dispose()


def test_truncated_upload_is_stored_with_a_warning_saying_how_much_was_decoded(engine, video_dir, tmp_path):
    source = video_dir / "WolfgangLanger_Pexels.mp4"  # 19.7 s; its index is at the start, so a cut keeps frames
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(source.read_bytes()[: int(source.stat().st_size * 0.3)])
    with pytest.warns(RuntimeWarning, match="decoding stopped"):
        result = import_video(engine, cut, study="Imports", participant_code="P-cut", analyzer=OneFaceAnalyzer())
    with session_scope(engine) as db:
        obs = repo.load_observations(db, result.session_id)
        session = repo.get_session(db, result.session_id)
    decoded = obs["time_s"].max()
    assert 2.0 < decoded < 15.0 and session.status == "complete"  # everything decoded is kept
    match = re.fullmatch(r"decoded (\d+\.\d) s of the container's 19\.7 s \((\d+)%\); decoding stopped early "
                         r"\(truncated or corrupt file\)", result.warning)  # fmt: skip
    assert match, result.warning
    assert float(match[1]) == pytest.approx(decoded, abs=0.1)
    assert int(match[2]) == pytest.approx(100 * float(match[1]) / 19.69, abs=1)
    assert str(tmp_path) not in result.warning  # numbers only: safe to show to anyone
    assert result.warning in (session.end_reason or "")


def test_coverage_warning_rule():
    from sessions.importer import coverage_warning

    assert coverage_warning({"decoded_s": 19.5, "duration_s": 20.0}) is None  # 97.5%: the whole clip
    assert coverage_warning({"decoded_s": 6.1, "duration_s": 20.3}) == "decoded 6.1 s of the container's 20.3 s (30%)"
    assert coverage_warning({"decoded_s": 19.9, "duration_s": 20.0, "decode_error": "x"}).endswith("stopped early "
                                                                                                  "(truncated or corrupt file)")  # fmt: skip
    assert coverage_warning({"decoded_s": 3.0, "duration_s": None}) is None  # nothing to compare with
