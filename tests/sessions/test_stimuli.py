"""Stimuli: PyAV probe and thumbnails of generated clips, refusal of files browsers cannot play, the media
folder, a study's sequence and each session's drawn order, deletion with the study."""

from __future__ import annotations

import hashlib
import random

import pytest

from sessions.db import session_scope
from sessions.stimuli import (
    StimulusError,
    add_external_task,
    add_video_stimulus,
    delete_stimulus,
    get_sequence,
    list_stimuli,
    probe_video,
    prune_media,
    session_sequence,
    set_sequence,
    stimulus_file,
    thumbnail_files,
)
from tests.sessions.clips import make_stimulus, make_vfr_clip


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    return make_stimulus(tmp_path_factory.mktemp("clip") / "ad.mp4", seconds=3.0, fps=25)


@pytest.fixture
def media(tmp_path):
    return tmp_path / "media"


def test_probe_reads_duration_rate_size_and_writes_one_thumbnail_a_second(clip, tmp_path):
    probe = probe_video(clip, thumbnails_dir=tmp_path / "thumbs")
    assert probe.duration_s == pytest.approx(3.0, abs=1e-6)
    assert probe.fps == pytest.approx(25.0)
    assert (probe.width, probe.height, probe.n_frames) == (320, 180, 75)
    assert (probe.video_codec, probe.audio_codec) == ("h264", "aac")
    assert sorted(p.name for p in (tmp_path / "thumbs").iterdir()) == ["0000.jpg", "0001.jpg", "0002.jpg"]
    import cv2

    thumb = cv2.imread(str(tmp_path / "thumbs" / "0001.jpg"))
    assert thumb.shape == (90, 160, 3)


def test_thumbnail_k_is_second_k_when_frames_are_more_than_a_second_apart(tmp_path):
    """Issue 13 review: a second without a frame of its own got no JPEG, so Review's ``files[second]`` showed a
    later second's picture. Every second gets the first frame at or after it."""
    import cv2
    import numpy as np

    clip = make_vfr_clip(tmp_path / "vfr.mp4", [0.0, 0.4, 0.8, 3.2, 3.6, 4.5, 4.9])
    probe = probe_video(clip, thumbnails_dir=tmp_path / "thumbs")
    names = sorted(p.name for p in (tmp_path / "thumbs").iterdir())
    assert names == ["0000.jpg", "0001.jpg", "0002.jpg", "0003.jpg", "0004.jpg"] and probe.n_thumbnails == 5
    images = [cv2.imread(str(tmp_path / "thumbs" / n)).astype(float) for n in names]

    def mean_gap(a: int, b: int) -> float:
        return float(np.abs(images[a] - images[b]).mean())

    assert mean_gap(1, 3) < 3 and mean_gap(2, 3) < 3  # seconds 1 and 2 show the frame at 3.2 s
    assert mean_gap(0, 3) > 20 and mean_gap(3, 4) > 20  # and are not the frame at 0 s or the one at 4.5 s


def test_webm_vp9_is_accepted(tmp_path):
    probe = probe_video(make_stimulus(tmp_path / "ad.webm", seconds=1.0, codec="libvpx-vp9"))
    assert (probe.video_codec, probe.audio_codec) == ("vp9", "opus")
    assert probe.duration_s == pytest.approx(1.0, abs=1e-6)


def test_corrupt_and_unplayable_files_are_refused_with_their_name(clip, tmp_path):
    garbage = tmp_path / "broken.mp4"
    garbage.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 20)
    with pytest.raises(StimulusError, match="'broken.mp4' cannot be"):
        probe_video(garbage)
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(clip.read_bytes()[:2000])
    with pytest.raises(StimulusError, match="truncated.mp4"):
        probe_video(truncated)
    mpeg4 = make_stimulus(tmp_path / "old.mp4", seconds=0.5, codec="mpeg4")
    with pytest.raises(StimulusError, match="video codec 'mpeg4', which browsers do not play"):
        probe_video(mpeg4)
    assert str(tmp_path) not in str(pytest.raises(StimulusError, probe_video, garbage).value)


def test_upload_stores_file_by_sha256_with_thumbnails_and_refuses_bad_input(engine, clip, media, tmp_path):
    from sessions.repository import create_study

    with session_scope(engine) as db:
        study_id = create_study(db, "Ad test").id
        stimulus = add_video_stimulus(db, study_id, " Trailer A ", clip, media_dir=media)
        sha = hashlib.sha256(clip.read_bytes()).hexdigest()
        assert (stimulus.name, stimulus.kind, stimulus.sha256, stimulus.mime_type) == ("Trailer A", "video", sha, "video/mp4")
        assert stimulus.duration_s == pytest.approx(3.0) and stimulus.fps == pytest.approx(25.0)
        assert (stimulus.width, stimulus.height, stimulus.size_bytes) == (320, 180, clip.stat().st_size)
        assert stimulus.has_audio and stimulus.n_thumbnails == 3
        assert stimulus_file(stimulus, media) == media / f"{sha}.mp4"
        assert [p.name for p in thumbnail_files(stimulus, media)] == ["0000.jpg", "0001.jpg", "0002.jpg"]
        with pytest.raises(StimulusError, match="unique"):
            add_video_stimulus(db, study_id, "Trailer A", clip, media_dir=media)
        broken = tmp_path / "broken.webm"
        broken.write_bytes(b"not a video")
        with pytest.raises(StimulusError, match="broken.webm"):
            add_video_stimulus(db, study_id, "Broken", broken, media_dir=media)
        with pytest.raises(StimulusError, match="MP4 .H.264. or WebM"):
            add_video_stimulus(db, study_id, "Mov", clip.with_suffix(".mov"), media_dir=media)
        with pytest.raises(StimulusError, match="http"):
            add_external_task(db, study_id, "Game", "javascript:alert(1)")
        task = add_external_task(db, study_id, "Game level 1", "https://game.example.org/level1")
        listing = list_stimuli(db, study_id)
        assert list(listing["name"]) == ["Trailer A", "Game level 1"]
        assert list(listing["in_sequence"]) == [True, False] and task.kind == "external"
    assert sorted(p.name for p in media.iterdir() if not p.name.startswith(".")) == [f"{sha}.mp4", f"{sha}_thumbs"]


def test_deleting_a_study_deletes_its_stimuli_and_prune_removes_their_files(engine, clip, media):
    from sessions.repository import create_session, create_study, delete_study

    with session_scope(engine) as db:
        keep = create_study(db, "Keep").id
        doomed = create_study(db, "Doomed").id
        add_video_stimulus(db, keep, "Shared ad", clip, media_dir=media)
        add_video_stimulus(db, doomed, "Shared ad", clip, media_dir=media)
        only = make_stimulus(media.parent / "only.mp4", seconds=1.0)
        add_video_stimulus(db, doomed, "Only here", only, media_dir=media)
        session_id = create_session(db, study_id=doomed, participant_code="P1").id
        assert len(session_sequence(db, session_id)) == 2
    with session_scope(engine) as db:
        delete_study(db, doomed)
    with session_scope(engine) as db:
        removed = prune_media(db, media)
        assert len(list_stimuli(db, doomed)) == 0 and list(list_stimuli(db, keep)["name"]) == ["Shared ad"]
    only_sha = hashlib.sha256(only.read_bytes()).hexdigest()
    assert sorted(p.name for p in removed) == [f"{only_sha}.mp4", f"{only_sha}_thumbs"]
    assert (media / f"{hashlib.sha256(clip.read_bytes()).hexdigest()}.mp4").is_file()  # still used by "Keep"


def test_random_order_is_drawn_once_per_session_and_stored(engine, clip, media, tmp_path):
    from sessions.repository import create_session, create_study

    other = make_stimulus(tmp_path / "b.mp4", seconds=2.0)
    with session_scope(engine) as db:
        study_id = create_study(db, "Two ads").id
        a = add_video_stimulus(db, study_id, "A", clip, media_dir=media).id
        b = add_video_stimulus(db, study_id, "B", other, media_dir=media).id
        with pytest.raises(StimulusError, match="0 to 120 seconds"):
            set_sequence(db, study_id, [a, b], order="random", buffer_s=-1)
        set_sequence(db, study_id, [a, b], order="random", buffer_s=3.0)
        assert get_sequence(db, study_id)[:2] == ("random", 3.0)
        orders = set()
        for i in range(12):
            sid = create_session(db, study_id=study_id, participant_code=f"P{i}").id
            drawn = session_sequence(db, sid, rng=random.Random(i))
            assert [x.buffer_s for x in drawn] == [0.0, 3.0]
            assert session_sequence(db, sid, rng=random.Random(i + 100)) == drawn  # stored: never drawn again
            orders.add(tuple(x.name for x in drawn))
        assert orders == {("A", "B"), ("B", "A")}
        delete_stimulus(db, a)
        kept = session_sequence(db, sid)
        assert [x.name for x in kept] == [x.name for x in drawn]  # the order survives the stimulus
        gone = next(x for x in kept if x.name == "A")
        assert gone.stimulus_id is None and gone.duration_s == pytest.approx(3.0)
