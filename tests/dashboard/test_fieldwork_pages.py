"""AppTests of fieldwork: the Studies page's consent text, completion URL and links CSV; the consent a participant
link shows and records; the upload's consent confirmation; who is connected on the Record page."""

from __future__ import annotations

import io
from types import SimpleNamespace

import pandas as pd

from sessions.db import session_scope
from sessions.fieldwork import ConsentFields, consent_of, set_completion_url, set_consent_text, study_links
from sessions.repository import create_join_token, create_session, create_study, get_session, list_sessions
from tests.dashboard.test_pages import _texts as _escaped_texts

PARTS = {
    "purpose": "We measure **facial expressions** while you watch [a trailer](http://evil.example) <b>now</b>.",
    "controller": "Acme Research Ltd",
    "retention": "12 months",
    "contact": "privacy@acme.example",
    "withdrawal": "Write to us with your code.\nWe delete your data within 30 days.",
}


def _texts(at) -> str:
    """The page's texts as a reader sees them (Markdown escapes removed)."""
    return _escaped_texts(at).replace("\\", "")


def _study(engine, name="Panel study") -> int:
    with session_scope(engine) as db:
        return create_study(db, name).id


def _fill_consent(at, study_id: int, version, parts: dict) -> None:
    for name, value in parts.items():
        at.text_area(key=f"fw_consent_{study_id}_{version}_{name}").input(value)
    at.button(key=f"FormSubmitter:fw_consent_{study_id}-Save consent text").click().run()


def test_studies_fieldwork_saves_consent_versions_and_the_completion_url(app, engine):
    study_id = _study(engine)
    at = app("studies")
    assert not at.exception
    _fill_consent(at, study_id, None, {**PARTS, "retention": " "})
    assert "consent how long it is kept is empty" in _texts(at)
    _fill_consent(at, study_id, None, PARTS)
    assert not at.exception and "Consent text version 1 saved." in _texts(at)
    _fill_consent(at, study_id, 1, {**PARTS, "retention": "6 months"})
    assert "Consent text version 2 saved." in _texts(at)
    with session_scope(engine) as db:
        from sessions.fieldwork import consent_versions

        assert consent_versions(db, study_id)["retention"].tolist() == ["6 months", "12 months"]
    at.text_input(key=f"fw_completion_{study_id}").input("javascript:alert(1)").run()
    at.button(key=f"fw_completion_save_{study_id}").click().run()
    assert "completion URL has to start with http:// or https://" in _texts(at)
    at.text_input(key=f"fw_completion_{study_id}").input("https://panel.example.org/done?rid={code}").run()
    at.button(key=f"fw_completion_save_{study_id}").click().run()
    assert "Completion URL saved." in _texts(at)
    with session_scope(engine) as db:
        from sessions.fieldwork import get_completion_url

        assert get_completion_url(db, study_id) == "https://panel.example.org/done?rid={code}"


def test_bulk_links_make_sessions_and_a_csv_of_code_and_link(app, engine, monkeypatch):
    import dashboard.fieldwork_section as section

    study_id = _study(engine)
    made: list[bytes] = []
    real = section.table_bytes
    monkeypatch.setattr(section, "table_bytes", lambda frame, suffix: made.append(real(frame, suffix)) or made[-1])
    at = app("studies")
    at.number_input(key=f"fw_links_count_{study_id}").set_value(3)
    at.text_input(key=f"fw_links_tags_{study_id}").input("panel=wave1")
    at.button(key=f"FormSubmitter:fw_links_form_{study_id}-Create links").click().run()
    assert not at.exception and "3 participant links created." in _texts(at)
    csv = pd.read_csv(io.BytesIO(made[0]))
    assert list(csv.columns) == ["participant_code", "link", "session_id"] and len(csv) == 3
    with session_scope(engine) as db:
        stored = study_links(db, study_id)
        sessions = list_sessions(db, study_id=study_id)
    assert sorted(csv["participant_code"]) == sorted(stored["participant_code"])
    for row, token in zip(csv.itertuples(), stored.set_index("session_id").loc[csv["session_id"], "token"], strict=True):
        assert row.link.endswith(f"/?join={token}")
    assert set(sessions["status"]) == {"pending"} and all(t == {"panel": "wave1"} for t in sessions["tags"])
    assert len(made) == 2  # the new links, and all open links of the study


def test_participant_sees_the_study_consent_as_text_and_its_version_is_stored(app, engine, camera):
    study_id = _study(engine)
    with session_scope(engine) as db:
        set_consent_text(db, study_id, ConsentFields(**PARTS))
        set_consent_text(db, study_id, ConsentFields(**{**PARTS, "retention": "6 months"}))  # version 2 is shown
        session_id = create_session(db, study_id=study_id, participant_code="P-9").id
        token = create_join_token(db, session_id)
    at = app(query={"join": token})
    assert not at.exception
    (shown,) = [e.proto.body for e in at.get("html") if "fer-consent" in e.proto.body]
    assert "**facial expressions**" in shown and "[a trailer](http://evil.example)" in shown and "<a" not in shown
    assert "&lt;b&gt;now&lt;/b&gt;" in shown and "<b>" not in shown
    assert "6 months" in shown and "Write to us with your code.<br>We delete" in shown
    assert "Consent text version 2" in _texts(at)
    assert camera.calls == []
    at.checkbox(key=f"part_consent_{session_id}").check().run()
    assert len(camera.calls) == 1
    with session_scope(engine) as db:
        record = consent_of(db, session_id)
    assert record["consent_version"] == 2 and record["consent_source"] == "participant"
    assert record["consent_at"] is not None and record["text"].retention == "6 months"


def test_a_finished_participant_gets_the_completion_link(app, engine):
    study_id = _study(engine)
    with session_scope(engine) as db:
        set_completion_url(db, study_id, "https://panel.example.org/done?rid={code}")
        session_id = create_session(db, study_id=study_id, participant_code="P 1&x").id
        token = create_join_token(db, session_id)
        get_session(db, session_id).status = "complete"
    at = app(query={"join": token})
    assert not at.exception and "This session has ended" in _texts(at)
    (button,) = at.get("link_button")
    assert button.proto.url == "https://panel.example.org/done?rid=P%201%26x"


def test_upload_without_the_consent_confirmation_analyses_nothing(app, engine, video_dir):
    at = app("upload")
    at.file_uploader(key="upload_file").set_value(("clip.mp4", (video_dir / "single_face.mp4").read_bytes(), "video/mp4"))
    at.button[0].click().run()
    assert not at.exception and "Tick the box confirming" in _texts(at)
    with session_scope(engine) as db:
        assert list_sessions(db).empty


def test_upload_with_the_confirmation_stores_the_uploader_consent(app, engine, video_dir, monkeypatch):
    from tests.sessions.test_importer import OneFaceAnalyzer

    monkeypatch.setattr("dashboard.resources.new_analyzer", OneFaceAnalyzer)
    study_id = _study(engine, "pilot")
    with session_scope(engine) as db:
        set_consent_text(db, study_id, ConsentFields(**PARTS))
    at = app("upload")
    at.file_uploader(key="upload_file").set_value(("clip.mp4", (video_dir / "single_face.mp4").read_bytes(), "video/mp4"))
    at.checkbox(key="upload_consent").check()
    at.button[0].click().run()
    assert not at.exception, at.exception
    with session_scope(engine) as db:
        (session_id,) = list_sessions(db)["session_id"]
        record = consent_of(db, int(session_id))
    assert record["consent_source"] == "uploader" and record["consent_version"] == 1 and record["consent_at"]


def test_record_lists_who_is_connected_to_the_study(app, engine):
    from sessions.lifecycle import claim_stream, register_owner
    from sessions.models import utc_now

    study_id = _study(engine)
    with session_scope(engine) as db:
        watched = create_session(db, study_id=study_id, participant_code="WATCHED").id
        busy = create_session(db, study_id=study_id, participant_code="STREAMING").id
        register_owner(db, "other-server")
        claim_stream(db, busy, stream_id="elsewhere", owner_id="other-server", role="participant", capture_at=utc_now())
    at = app("record")
    at.selectbox(key="rec_session_pick").select(watched).run()
    assert not at.exception
    assert "Connected to this study now: 1" in _texts(at)
    (table,) = [d.value for d in at.dataframe if "who" in d.value.columns]
    assert table["participant"].tolist() == ["STREAMING"] and table["who"].tolist() == ["participant"]


def test_the_attention_angle_setting_reaches_the_analyzer(monkeypatch, db_url):
    import dashboard.resources as resources
    from dashboard.settings import load_settings
    from fer_core.attention import DEFAULT_MAX_ANGLE_DEG

    assert load_settings({}).attention_angle_deg == DEFAULT_MAX_ANGLE_DEG
    settings = load_settings({"FER_ATTENTION_ANGLE_DEG": "20"})
    monkeypatch.setattr(resources, "get_settings", lambda: settings)
    monkeypatch.setattr(resources, "get_classifier", lambda **_: SimpleNamespace(spec_=SimpleNamespace(margin=0.1)))
    assert resources.new_analyzer().max_head_angle_deg == 20.0


def _seed_attention(engine, study: str, code: str, attentive_seconds: list[bool], fps: int = 10) -> int:
    """A finished session whose face is turned to the screen (yaw 2 degrees) or away (yaw 45) in each second."""
    import numpy as np

    from fer_core.analyzer import FaceResult
    from fer_core.emotions import EMOTIONS
    from sessions.recorder import LiveRecorder
    from sessions.repository import get_or_create_study

    with session_scope(engine) as db:
        session_id = create_session(db, study_id=get_or_create_study(db, study).id, participant_code=code).id
    probs = np.full(len(EMOTIONS), 1 / len(EMOTIONS), dtype=np.float32)
    recorder = LiveRecorder(engine, batch_interval_s=0.05)
    for second, looking in enumerate(attentive_seconds):
        for k in range(fps):
            result = FaceResult(0, (20, 20, 80, 80), probs, probs, "neutral", 2.0 if looking else 45.0, 0.0, looking)
            recorder.submit(session_id, second * fps + k, second + k / fps, [result])
    recorder.finish(session_id, "complete")
    recorder.close()
    return session_id


def test_compare_shows_the_share_of_participants_attending(app, engine):
    for i, seconds in enumerate([[True, True, False], [True, False, False], [True, True, True]]):
        _seed_attention(engine, "trailer test", f"P{i}", seconds)
    at = app("compare")
    at.radio(key="compare_mode").set_value("A whole study").run()
    at.selectbox(key="compare_metric").select("attention_rate").run()
    assert not at.exception
    assert "Share attending: share of sessions attending" in _texts(at)
    import base64
    import json

    import numpy as np

    spec = json.loads(next(c for c in at.get("plotly_chart") if c.key == "compare_share").proto.spec)
    assert spec["layout"]["title"]["text"].startswith("Share of sessions attending")
    (trace,) = spec["data"]
    y = trace["y"]
    y = np.frombuffer(base64.b64decode(y["bdata"]), dtype=y["dtype"]) if isinstance(y, dict) else np.asarray(y, float)
    np.testing.assert_allclose(y[:3], [1.0, 2 / 3, 1 / 3])  # each participant once, per second


def test_consent_records_the_version_on_screen_when_the_text_changed_meanwhile(app, engine, camera):
    study_id = _study(engine)
    with session_scope(engine) as db:
        set_consent_text(db, study_id, ConsentFields(**PARTS))
        session_id = create_session(db, study_id=study_id, participant_code="P-10").id
        token = create_join_token(db, session_id)
    at = app(query={"join": token})
    assert "Consent text version 1" in _texts(at)
    with session_scope(engine) as db:  # the researcher saves a new text while the participant reads
        set_consent_text(db, study_id, ConsentFields(**{**PARTS, "retention": "6 months"}))
    at.checkbox(key=f"part_consent_{session_id}").check().run()
    with session_scope(engine) as db:
        assert consent_of(db, session_id)["consent_version"] == 1  # what the participant read when ticking


def test_review_shows_the_consent_record_and_puts_it_in_the_summary_json(app, engine, monkeypatch):
    import json
    from datetime import UTC, datetime

    import dashboard.downloads
    from sessions.fieldwork import give_consent
    from tests.dashboard.seed import seed_session

    session_id = seed_session(engine, study="consented")
    with session_scope(engine) as db:
        study_id = get_session(db, session_id).study_id
        set_consent_text(db, study_id, ConsentFields(**PARTS))
        give_consent(db, session_id, datetime(2026, 12, 2, 9, 30, tzinfo=UTC), source="participant", version=1)
    made: dict[str, bytes] = {}
    real = dashboard.downloads.export_bytes
    monkeypatch.setattr(dashboard.downloads, "export_bytes",
                        lambda export, data, suffix, **kw: made.setdefault(export.__name__, real(export, data, suffix, **kw)))  # fmt: skip
    at = app("review")
    assert not at.exception
    assert ("Consent: given 2026-12-02 09:30:00 UTC by the participant (their link), to the study's consent text "
            "version 1.") in _texts(at)  # fmt: skip
    summary = json.loads(made["export_summary"])
    assert summary["consent"] == {"consent_at": "2026-12-02T09:30:00+00:00", "consent_version": 1,
                                  "consent_source": "participant"}  # fmt: skip


def test_a_consent_text_saved_at_the_same_moment_elsewhere_gets_a_clear_message(app, engine, monkeypatch):
    """Issue 13 review: two researchers saving a study's consent text at once both take version N + 1; the
    (study, version) constraint refuses the second, which read as a generic database failure."""
    import sessions.fieldwork as fieldwork
    from dashboard.fieldwork_section import CONSENT_RACE_TEXT
    from sessions.fieldwork import consent_versions

    study_id = _study(engine)
    at = app("studies")
    real, raced = fieldwork.current_consent, []

    def racing(db, sid):  # another server saves its version between this save's read and its write
        stale = real(db, sid)
        if not raced:
            raced.append(True)
            with session_scope(engine) as other:
                set_consent_text(other, sid, ConsentFields(**{**PARTS, "contact": "dpo@acme.example"}))
        return stale

    monkeypatch.setattr(fieldwork, "current_consent", racing)
    _fill_consent(at, study_id, None, PARTS)
    assert not at.exception and raced
    from dashboard.store import DATABASE_ERROR_TEXT

    assert CONSENT_RACE_TEXT in [e.value for e in at.error] and DATABASE_ERROR_TEXT not in [e.value for e in at.error]
    with session_scope(engine) as db:
        assert consent_versions(db, study_id)["contact"].tolist() == ["dpo@acme.example"]  # theirs, kept


def test_bulk_links_warn_when_the_page_does_not_know_its_address(app, engine, monkeypatch):
    """Issue 13 review: without st.context.url the CSV held relative links (/?join=...) and nothing said so."""
    import dashboard.fieldwork_section as section

    study_id = _study(engine)
    monkeypatch.setattr(section, "participant_base_url", lambda: "")
    at = app("studies")
    assert section.RELATIVE_LINKS_TEXT not in [w.value for w in at.warning]  # no links yet: nothing to warn about
    at.button(key=f"FormSubmitter:fw_links_form_{study_id}-Create links").click().run()
    assert not at.exception and section.RELATIVE_LINKS_TEXT in [w.value for w in at.warning]
    monkeypatch.setattr(section, "participant_base_url", lambda: "https://fer.example.org")
    at.run()
    assert section.RELATIVE_LINKS_TEXT not in [w.value for w in at.warning]
