"""Fieldwork in the store (consent text versions, consent records, links in bulk, completion URL, who is connected)
and attention from a stored row to the per-second share and the share of sessions attending."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest
from sqlalchemy import func, select

from fer_core.analyzer import FaceResult
from fer_core.emotions import EMOTIONS
from sessions import stats
from sessions.aggregate import per_bin, session_summary
from sessions.db import session_scope
from sessions.fieldwork import (
    LINK_COLUMNS,
    ConsentFields,
    check_completion_url,
    completion_link,
    connected_sessions,
    consent_of,
    consent_versions,
    create_participant_links,
    current_consent,
    give_consent,
    links_table,
    session_completion_link,
    set_completion_url,
    set_consent_text,
    study_links,
)
from sessions.models import ConsentText
from sessions.recorder import LiveRecorder, observation_records
from sessions.repository import (
    create_session,
    create_study,
    delete_study,
    get_session,
    load_observations,
    session_for_token,
)

TEXT = ConsentFields(
    purpose="We measure facial expressions while you watch two trailers.",
    controller="Acme Research Ltd, London",
    retention="Kept 12 months, then deleted.",
    contact="privacy@acme.example",
    withdrawal="Write to privacy@acme.example with your participant code;\nyour data are deleted within 30 days.",
)
NOW = datetime(2026, 12, 2, 10, 0, tzinfo=UTC)


def _study(engine, name="Ad test") -> int:
    with session_scope(engine) as db:
        return create_study(db, name).id


def _session(engine, study_id, code="P-001") -> int:
    with session_scope(engine) as db:
        return create_session(db, study_id=study_id, participant_code=code).id


def test_consent_text_versions_and_what_each_consent_stores(engine):
    study_id = _study(engine)
    first, second = _session(engine, study_id), _session(engine, study_id, "P-002")
    with session_scope(engine) as db:
        assert current_consent(db, study_id).version is None  # the generic text
        v1 = set_consent_text(db, study_id, TEXT)
        assert v1.version == 1 and v1.text == TEXT
        assert set_consent_text(db, study_id, ConsentFields(**{**TEXT.__dict__, "purpose": f"  {TEXT.purpose} "})).version == 1
        assert give_consent(db, first, NOW, source="participant", version=1) is True
    with session_scope(engine) as db:
        v2 = set_consent_text(db, study_id, ConsentFields(**{**TEXT.__dict__, "retention": "Kept 6 months."}))
        assert v2.version == 2
        assert give_consent(db, second, NOW + timedelta(minutes=1), source="participant", version=2)
        # a second tab consenting later keeps the first record
        assert give_consent(db, first, NOW + timedelta(hours=1), source="participant", version=2) is False
    with session_scope(engine) as db:
        one, two = consent_of(db, first), consent_of(db, second)
        assert (one["consent_at"], one["consent_version"], one["consent_source"]) == (NOW, 1, "participant")
        assert one["text"] == TEXT and two["text"].retention == "Kept 6 months."
        versions = consent_versions(db, study_id)
        assert versions["version"].tolist() == [2, 1] and versions["retention"].tolist()[1] == TEXT.retention
        assert db.scalar(select(func.count()).select_from(ConsentText)) == 2  # nothing was changed in place


def test_consent_refuses_bad_input_with_a_message(engine):
    study_id = _study(engine)
    other = _study(engine, "Other")
    sid = _session(engine, study_id)
    with session_scope(engine) as db:
        set_consent_text(db, other, TEXT)
        with pytest.raises(ValueError, match="consent how long it is kept is empty"):
            set_consent_text(db, study_id, ConsentFields(**{**TEXT.__dict__, "retention": "   "}))
        with pytest.raises(ValueError, match="consent contact must not contain control characters"):
            set_consent_text(db, study_id, ConsentFields(**{**TEXT.__dict__, "contact": "a\x00b"}))
        with pytest.raises(ValueError, match="not a version of this session's study"):
            give_consent(db, sid, NOW, source="participant", version=1)  # version 1 is the other study's
        with pytest.raises(ValueError, match="consent source has to be one of"):
            give_consent(db, sid, NOW, source="panel", version=None)
        with pytest.raises(ValueError, match="timezone-aware"):
            give_consent(db, sid, NOW.replace(tzinfo=None), source="participant", version=None)
        assert get_session(db, sid).consent_at is None
        with pytest.raises(LookupError, match="study 999 does not exist"):
            current_consent(db, 999)


def test_deleting_a_study_deletes_its_consent_texts(engine):
    study_id = _study(engine)
    with session_scope(engine) as db:
        set_consent_text(db, study_id, TEXT)
    with session_scope(engine) as db:
        delete_study(db, study_id)
    with session_scope(engine) as db:
        assert db.scalar(select(func.count()).select_from(ConsentText)) == 0


def test_participant_links_in_bulk_open_their_own_sessions(engine):
    study_id = _study(engine)
    with session_scope(engine) as db:
        links = create_participant_links(db, study_id, 25, tags={"panel": "wave1"})
    assert len(links) == 25 and links["participant_code"].is_unique and links["token"].is_unique
    assert links["participant_code"].str.fullmatch(r"P-[0-9a-f]{6}").all()
    with session_scope(engine) as db:
        for row in links.itertuples():
            session = session_for_token(db, row.token)
            assert (session.id, session.participant_code, session.status) == (row.session_id, row.participant_code, "pending")
            assert session.tags == {"panel": "wave1"} and session.study_id == study_id
        again = study_links(db, study_id)
    assert again["token"].tolist() == links["token"].tolist()
    table = links_table(links, "https://fer.example.org/")
    assert list(table.columns) == list(LINK_COLUMNS)
    assert table["link"].iloc[0] == f"https://fer.example.org/?join={links['token'].iloc[0]}"
    with session_scope(engine) as db:
        for bad in (0, 1001, 2.5, True):
            with pytest.raises(ValueError, match="number of links has to be a whole number from 1 to 1000"):
                create_participant_links(db, study_id, bad)
        with pytest.raises(ValueError, match="tag"):
            create_participant_links(db, study_id, 2, tags={"": "x"})


def test_completion_url_is_http_only_and_fills_the_encoded_code(engine):
    assert completion_link("https://panel.example.org/done?rid={code}&s=1", "P-1 &x=2") == (
        "https://panel.example.org/done?rid=P-1%20%26x%3D2&s=1"
    )
    assert check_completion_url("  ") is None
    for bad, message in [
        ("javascript:alert(1)//{code}", "has to start with http:// or https://"),
        ("data:text/html,hi", "has to start with http:// or https://"),
        ("https:///path?{code}", "has to name a host"),
        ("https://x.example/{id}", "may hold only the placeholder {code}"),
        ("https://x.example/a b", "must not contain spaces"),
        ("https://x.example/" + "a" * 2001, "at most 2000 characters"),
    ]:
        with pytest.raises(ValueError, match=message.replace("{", r"\{").replace("}", r"\}")):
            check_completion_url(bad)
    study_id = _study(engine)
    sid = _session(engine, study_id, "P-7")
    with session_scope(engine) as db:
        assert session_completion_link(db, sid) is None
        set_completion_url(db, study_id, "https://panel.example.org/c?id={code}")
        with pytest.raises(ValueError):
            set_completion_url(db, study_id, "ftp://panel.example.org/{code}")
    with session_scope(engine) as db:
        assert session_completion_link(db, sid) == "https://panel.example.org/c?id=P-7"


def test_connected_sessions_are_those_whose_stream_is_held(engine):
    study_id = _study(engine)
    other = _study(engine, "Other")
    streaming, idle, elsewhere = _session(engine, study_id), _session(engine, study_id, "P-2"), _session(engine, other)
    with session_scope(engine) as db:
        for sid in (streaming, elsewhere):
            s = get_session(db, sid)
            s.stream_id, s.stream_role, s.stream_since, s.status = f"stream-{sid}", "participant", NOW, "recording"
    with session_scope(engine) as db:
        table = connected_sessions(db, study_id)
        assert table["session_id"].tolist() == [streaming] and idle not in table["session_id"].tolist()
        assert table["stream_role"].tolist() == ["participant"] and table["stream_since"].iloc[0] == NOW
        assert sorted(connected_sessions(db)["session_id"]) == sorted([streaming, elsewhere])


def _looking(yaw: float, pitch: float = 0.0, attentive: bool | None = True, happy: float = 0.5) -> FaceResult:
    probs = np.full(len(EMOTIONS), (1 - happy) / 6, dtype=np.float32)
    probs[EMOTIONS.index("happy")] = happy
    return FaceResult(1, (10, 10, 80, 80), probs, probs, "happy", yaw, pitch, attentive)


def test_attention_is_stored_through_the_recorder_and_read_back(engine):
    sid = _session(engine, _study(engine))
    recorder = LiveRecorder(engine, batch_interval_s=0.05)
    frames = [[_looking(3.5, -2.0)], [_looking(41.0, 5.0, False)], [], [_looking(math.nan, math.nan, None)]]
    for i, results in enumerate(frames):
        recorder.submit(sid, i, i / 10, results)
    recorder.finish(sid, "complete")
    recorder.close()
    with session_scope(engine) as db:
        obs = load_observations(db, sid)
    assert obs["yaw_deg"].tolist()[:2] == [3.5, 41.0] and math.isnan(obs["yaw_deg"].iloc[2])
    assert obs["attentive"].tolist()[:3] == [True, False, False] and obs["attentive"].isna().tolist() == [False] * 3 + [True]
    assert observation_records(sid, 0, 0.0, [])[0]["attentive"] is False  # no face: not attentive


def _session_frames(attentive_per_frame: list, fps: int = 10) -> pd.DataFrame:
    """Observations of one face per frame: True/False attentive, None pose unknown, ``"none"`` no face."""
    rows = []
    for i, state in enumerate(attentive_per_frame):
        results = [] if state == "none" else [_looking(0.0 if state else 50.0, attentive=state)]
        rows += observation_records(1, i, i / fps, results)
    frame = pd.DataFrame(rows)
    frame["attentive"] = frame["attentive"].astype("boolean")
    return frame


def test_per_second_attention_counts_frames_without_a_face_as_not_attending():
    # second 0: 7 of 10 frames attentive; second 1: 5 attentive, 3 turned away, 2 without a face
    frames = _session_frames([True] * 7 + [False] * 3 + [True] * 5 + [False] * 3 + ["none"] * 2)
    bins = per_bin(frames)
    assert bins["attention_rate"].tolist() == pytest.approx([0.7, 0.5])
    assert session_summary(frames)["attention_rate"] == pytest.approx(0.6)
    unknown = _session_frames([None] * 10 + ["none"] * 10)  # a detector without keypoints
    assert math.isnan(per_bin(unknown)["attention_rate"].iloc[0]) and per_bin(unknown)["attention_rate"].iloc[1] == 0.0
    assert session_summary(unknown)["attention_rate"] == 0.0  # only the second without a face is known


def test_share_of_sessions_attending_counts_each_session_once():
    sessions = {
        1: _session_frames([True] * 10 + [True] * 10),  # attends both seconds
        2: _session_frames([True] * 6 + [False] * 4 + [False] * 10),  # 60% then 0%
        3: _session_frames([False] * 10 + [True] * 4 + [False] * 6),  # 0% then 40%
        4: _session_frames([True] * 50 + [True] * 5 + ["none"] * 5, fps=50),  # a longer, faster one: still once
    }
    bins = stats.session_bins(sessions)
    curves = stats.group_curves(bins, express_threshold=0.9)  # the threshold is for probabilities only
    attention = curves[curves["metric"] == "attention_rate"].set_index("time_s")
    assert attention.loc[0.0, "share_expressing"] == pytest.approx(3 / 4)  # sessions 1, 2, 4 above half the frames
    assert attention.loc[1.0, "share_expressing"] == pytest.approx(1 / 4)  # session 1 only (session 4: exactly half)
    assert attention.loc[0.0, "mean"] == pytest.approx((1.0 + 0.6 + 0.0 + 1.0) / 4)
    assert "share of sessions attending" in stats.share_definition("attention_rate")


def test_imported_real_clip_stores_attention_and_the_uploader_consent(engine, video_dir):
    """single_face.mp4 through BlazeFace: a man facing his webcam, every face frame attentive, stored as such."""
    from fer_core.analyzer import FrameAnalyzer
    from fer_core.detection import create_detector
    from sessions.importer import import_video
    from tests.sessions.test_importer import FixedClassifier

    study_id = _study(engine, "Imports")
    with session_scope(engine) as db:
        set_consent_text(db, study_id, TEXT)
    analyzer = FrameAnalyzer(FixedClassifier(), create_detector("blazeface"))
    sid = import_video(engine, video_dir / "single_face.mp4", study="Imports", analyzer=analyzer, consent_at=NOW).session_id
    with session_scope(engine) as db:
        obs = load_observations(db, sid)
        record = consent_of(db, sid)
    faces = obs[obs["face_id"] != -1]
    assert len(faces) > 60 and faces["yaw_deg"].abs().max() < 10 and faces["pitch_deg"].abs().max() < 10
    assert faces["attentive"].all()
    assert per_bin(obs)["attention_rate"].min() == pytest.approx(1.0)
    assert (record["consent_at"], record["consent_version"], record["consent_source"]) == (NOW, 1, "uploader")


def test_cli_import_with_consent_and_show_prints_it(sqlite_url, video_dir, monkeypatch, capsys):
    import json

    from sessions.__main__ import main
    from sessions.db import get_engine
    from tests.sessions.test_importer import OneFaceAnalyzer

    monkeypatch.setattr("fer_core.video._default_analyzer", OneFaceAnalyzer)
    clip = str(video_dir / "single_face.mp4")
    assert main(["import-video", clip, "--study", "S", "--consent-given", "--db", sqlite_url]) == 0
    assert main(["import-video", clip, "--study", "S", "--db", sqlite_url]) == 0
    capsys.readouterr()
    assert main(["show", "1", "--json", "--db", sqlite_url]) == 0
    consent = json.loads(capsys.readouterr().out)["summary"]["consent"]
    assert consent["consent_source"] == "uploader" and consent["consent_version"] is None  # the study has no text
    assert datetime.fromisoformat(consent["consent_at"]).tzinfo is not None
    assert main(["show", "2", "--db", sqlite_url]) == 0
    assert "consent: none (version generic, -)" in capsys.readouterr().out
    engine = get_engine(sqlite_url)
    with session_scope(engine) as db:
        assert get_session(db, 2).consent_at is None
    engine.dispose()


def test_task_urls_and_completion_urls_are_checked_by_one_definition(engine):
    """Issue 13 review: an external task's URL only had to start with http(s)://, so ``https:///path``, ``http://``
    and addresses with spaces were stored while a completion URL refused them. Both now use check_web_url."""
    from sessions.stimuli import StimulusError, add_external_task
    from sessions.validation import check_web_url

    study_id = _study(engine)
    refused = ["https:///level1", "http://", "https://game.example.org/level 1", "ftp://game.example.org/",
               "javascript:alert(1)", "game.example.org/level1", "http://[::1"]  # fmt: skip
    with session_scope(engine) as db:
        for n, url in enumerate(refused):
            with pytest.raises(ValueError) as completion:
                check_completion_url(url)
            with pytest.raises(StimulusError) as task:
                add_external_task(db, study_id, f"Game {n}", url)
            assert str(task.value) == str(completion.value).replace("completion URL", "task URL").replace(
                "https://panel.example.org/complete?id={code}", "https://game.example.org/level1"), url
        with pytest.raises(StimulusError, match="task URL is empty"):
            add_external_task(db, study_id, "Game", "   ")
        task = add_external_task(db, study_id, "Game", "  HTTPS://game.example.org/level1?x=1  ")
        assert task.url == "HTTPS://game.example.org/level1?x=1"
        assert check_completion_url("HTTPS://game.example.org/level1?x=1") == task.url
    assert check_web_url(" https://a.example/{code} ", "link", placeholder="{code}") == "https://a.example/{code}"
