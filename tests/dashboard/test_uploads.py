"""Upload import: a real clip becomes a session with progress reported; an undecodable file creates nothing."""

from __future__ import annotations

import pytest

from dashboard.uploads import import_upload
from sessions.db import session_scope
from sessions.repository import list_sessions, list_studies, load_observations


@pytest.fixture(scope="module")
def tiny_analyzer(tmp_path_factory):
    from fer_core.analyzer import FrameAnalyzer
    from fer_core.classifier import EmotionClassifier
    from fer_core.detection import create_detector
    from fer_core.model_file import write_metadata
    from tests.core.conftest import build_tiny_model, tiny_metadata

    path = build_tiny_model(tmp_path_factory.mktemp("model") / "tiny.keras")
    write_metadata(path, tiny_metadata())
    return lambda: FrameAnalyzer(EmotionClassifier.load(path), create_detector("ssd"))


def test_undecodable_upload_creates_nothing(engine, tiny_analyzer):
    from fer_core.video import VideoDecodeError

    with pytest.raises(VideoDecodeError):
        import_upload(engine, "holiday.mp4", b"this is not a video" * 100, study="uploads", analyzer=tiny_analyzer())
    with session_scope(engine) as db:
        assert list_sessions(db).empty and list_studies(db) == []
    with pytest.raises(ValueError, match="is empty"):
        import_upload(engine, "empty.mp4", b"", study="uploads")


def test_bad_uploads_are_refused_with_a_clear_message_and_no_server_path(engine, tiny_analyzer):
    from fer_core.video import VideoDecodeError

    with pytest.raises(ValueError, match=r"'empty\.mp4' is empty \(0 bytes\)"):
        import_upload(engine, "empty.mp4", b"", study="uploads")
    long_name = "é" * 130 + ".mp4"  # 134 characters, 264 bytes in UTF-8
    with pytest.raises(ValueError, match=r"name has to be at most 255 bytes long; got 264 bytes \(134 characters\)"):
        import_upload(engine, long_name, b"video bytes", study="uploads")
    with pytest.raises(ValueError, match="must not contain control characters"):
        import_upload(engine, "clip\x00.mp4", b"video bytes", study="uploads")
    with pytest.raises(VideoDecodeError) as info:
        import_upload(engine, "holiday.mp4", b"this is not a video" * 100, study="uploads", analyzer=tiny_analyzer())
    assert "holiday.mp4" in str(info.value) and "fer-upload-" not in str(info.value) and "/tmp" not in str(info.value)
    with session_scope(engine) as db:
        assert list_sessions(db).empty


def test_real_clip_becomes_a_session_with_progress(engine, tiny_analyzer, video_dir):
    fractions: list[float] = []
    data = (video_dir / "single_face.mp4").read_bytes()
    result = import_upload(engine, "single_face.mp4", data, study="uploads", participant_code="U1",
                           tags={"variant": "A"}, progress=fractions.append, analyzer=tiny_analyzer())  # fmt: skip
    session_id = result.session_id
    assert result.warning is None
    assert fractions and fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0, abs=0.05)
    with session_scope(engine) as db:
        row = list_sessions(db).set_index("session_id").loc[session_id]
        observations = load_observations(db, session_id)
    assert row["source"] == "upload" and row["status"] == "complete" and row["tags"] == {"variant": "A"}
    assert observations["time_s"].max() == pytest.approx(2.4, abs=0.1)  # the decoder's timestamps
    assert (observations["face_id"] >= 0).mean() > 0.9
