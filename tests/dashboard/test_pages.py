"""AppTest of every page: no exception, and the page's own logic against a real (temporary) store."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from dashboard.text import WORD_JOINER
from fer_core.emotions import EMOTIONS
from fer_core.model_file import write_metadata
from fer_core.preprocessing import PreprocessSpec
from sessions.db import session_scope
from sessions.repository import create_join_token, get_session, list_sessions
from tests.dashboard.seed import seed_session


def _texts(at) -> str:
    """The page's Markdown texts, joined, without the invisible word joiners that break autolinks
    (:func:`dashboard.text.escape_markdown`); backslash escapes are kept."""
    kinds = ("title", "markdown", "caption", "info", "warning", "error", "success")
    return " ".join(str(e.value) for kind in kinds for e in getattr(at, kind)).replace(WORD_JOINER, "")


def test_router_lists_pages_and_opens_studies(app, db_url):
    at = app()
    assert not at.exception
    assert [t.value for t in at.title] == ["Studies"]
    assert "No study yet" in _texts(at)


def test_studies_creates_lists_and_deletes(app, engine):
    at = app("studies")
    at.text_input(key="studies_new_name").input("ad test")
    at.text_area(key="studies_new_description").input("two trailers")
    at.button[0].click().run()  # the form's submit button
    assert not at.exception
    keep = seed_session(engine, study="ad test", participant="P001", tags={"variant": "A"},
                        timeline=(("neutral", 2.0), ("happy", 3.0)))
    doomed = seed_session(engine, study="ad test", participant="P002")
    at.run()
    table = at.dataframe[0].value
    assert sorted(table["session"]) == sorted([keep, doomed])
    assert table.set_index("session").loc[keep, "tags"] == "variant=A"
    assert table.set_index("session").loc[keep, "dominant emotion"] == "happy"  # 30 happy frames, 20 neutral
    assert "two trailers" in _texts(at)
    at.selectbox(key="studies_delete_id").select(doomed).run()
    assert at.button(key="studies_delete").disabled  # needs the confirmation first
    at.checkbox(key="studies_delete_sure").check().run()
    at.button(key="studies_delete").click().run()
    assert not at.exception
    with session_scope(engine) as db:
        assert list(list_sessions(db)["session_id"]) == [keep]


def test_record_consent_gates_camera_and_stop_completes(app, engine, camera):
    at = app("record")
    at.text_input(key="rec_new_participant").input("P042")
    at.text_input(key="rec_new_tags").input("variant=B, age=18-24")
    at.text_input(key="rec_new_stimulus").input("trailer.mp4")
    at.button[0].click().run()
    assert not at.exception
    with session_scope(engine) as db:
        sessions = list_sessions(db)
    assert list(sessions["participant_code"]) == ["P042"]
    session_id = int(sessions["session_id"][0])
    assert sessions["tags"][0] == {"variant": "B", "age": "18-24"}
    assert camera.calls == []  # no camera before consent
    at.checkbox(key=f"rec_consent_{session_id}").check().run()
    assert not at.exception
    assert len(camera.calls) == 1
    call = camera.calls[0]
    assert call["rtc_configuration"] == {"iceServers": []}
    assert call["media_stream_constraints"] == {  # the analysis' width and rate, asked of the browser
        "video": {"width": {"ideal": 640}, "height": {"ideal": 480}, "frameRate": {"ideal": 10.0}}, "audio": False}
    assert call["video_html_attrs"]["style"]["width"] == "100%"  # the researcher's annotated preview, full width
    with session_scope(engine) as db:
        assert get_session(db, session_id).consent_at is not None
    camera.playing = True
    at.run()
    camera.playing = False  # STOP before the first frame: nothing was recorded, the session is still to come
    at.run()
    assert not at.exception
    with session_scope(engine) as db:
        assert get_session(db, session_id).status == "pending"
    camera.playing = True  # START again; a frame arrives
    at.run()
    import asyncio

    from tests.dashboard.test_live import make_frame

    asyncio.run(camera.calls[-1]["queued_video_frames_callback"]([make_frame(0)]))
    with session_scope(engine) as db:
        assert get_session(db, session_id).status == "recording"
    at.run()
    camera.playing = False  # STOP pressed in the component
    at.run()
    assert not at.exception
    with session_scope(engine) as db:
        assert get_session(db, session_id).status == "complete"
    assert "This session has ended (complete)" in _texts(at)


def test_leaving_the_record_page_while_the_camera_runs_is_no_stop(app, engine, camera):
    """The camera ends when its page is left (or another session is picked); that is not the researcher's STOP."""
    import asyncio

    from tests.dashboard.test_live import make_frame

    at = app("record")
    at.text_input(key="rec_new_participant").input("P-AWAY")
    at.button[0].click().run()
    with session_scope(engine) as db:
        session_id = int(list_sessions(db)["session_id"][0])
    at.checkbox(key=f"rec_consent_{session_id}").check().run()
    camera.playing = True
    at.run()
    asyncio.run(camera.calls[-1]["queued_video_frames_callback"]([make_frame(0)]))
    at.switch_page("app_pages/review.py").run()  # the researcher looks at Review meanwhile
    camera.playing = False  # the widget was unmounted: its track ended
    at.switch_page("app_pages/record.py").run()
    assert not at.exception
    with session_scope(engine) as db:
        assert get_session(db, session_id).status == "recording"  # resumable, not complete


def test_a_new_session_records_into_itself_whatever_else_is_recording(app, engine, camera):
    """Observed: the "Session" box kept an older recording session and the new one was never recorded into."""
    from sessions.lifecycle import claim_stream, register_owner
    from sessions.models import utc_now
    from sessions.repository import create_session

    first = seed_session(engine, status="complete")
    with session_scope(engine) as db:  # a colleague's session recording, and a spare one never started
        study_id = get_session(db, first).study_id
        busy = create_session(db, study_id=study_id, participant_code="COLLEAGUE").id
        register_owner(db, "other-server")  # another dashboard process, alive
        claim_stream(db, busy, stream_id="elsewhere", owner_id="other-server", role="participant", capture_at=utc_now())
        create_session(db, study_id=study_id, participant_code="SPARE")
    at = app("record")
    at.selectbox(key="rec_session_pick").select(busy).run()  # the researcher looked at the colleague's session
    for code in ("NEW-1", "NEW-2"):
        at.text_input(key="rec_new_participant").input(code)
        at.button(key="FormSubmitter:rec_new-Create session").click().run()
        assert not at.exception
        with session_scope(engine) as db:
            newest = max(list_sessions(db)["session_id"])
            assert get_session(db, newest).participant_code == code
        assert at.selectbox(key="rec_session_pick").value == newest
        assert at.session_state["rec_session_id"] == newest
    at.checkbox(key=f"rec_consent_{newest}").check().run()
    assert len(camera.calls) == 1 and camera.calls[-1]["key"] == f"rec_webrtc_{newest}"
    at.selectbox(key="rec_session_pick").select(busy).run()  # streaming elsewhere: no second camera offered
    assert "is streaming this session" in _texts(at) and len(camera.calls) == 1
    assert "Read from the session store" in _texts(at)  # another server's stream: the store's live numbers
    assert "Frames stored" in [m.label for m in at.metric]
    with session_scope(engine) as db:
        assert get_session(db, busy).participant_code == "COLLEAGUE" and get_session(db, busy).consent_at is None


def test_marker_clicks_are_stamped_on_the_session_clock():
    from dashboard.marker_bar import click_session_time

    assert click_session_time(1_700_000_012_500.0, 1_700_000_000.0) == pytest.approx(12.5)
    assert click_session_time(1_699_999_999_000.0, 1_700_000_000.0) == 0.0  # before the first frame: 0


def test_participant_link_shows_only_consent_and_camera(app, engine, camera):
    other = seed_session(engine, participant="OTHER-PERSON")
    with session_scope(engine) as db:
        from sessions.repository import create_session

        session_id = create_session(db, study_id=get_session(db, other).study_id, participant_code="P7").id
        token = create_join_token(db, session_id)
    at = app(query={"join": token})
    assert not at.exception
    assert [t.value for t in at.title] == ["Welcome"]
    assert "OTHER-PERSON" not in _texts(at) and "P7" not in _texts(at)
    assert len(at.dataframe) == 0 and len(at.selectbox) == 0
    assert camera.calls == []
    at.checkbox(key=f"part_consent_{session_id}").check().run()
    assert len(camera.calls) == 1 and camera.calls[0]["key"] == f"part_webrtc_{session_id}"
    with pytest.raises(ValueError, match=r"Known pages: \['[^']*app_pages/participant\.py'\]"):  # the only page
        at.switch_page("app_pages/review.py")


def test_participant_link_with_unknown_token_says_so(app, db_url):
    at = app(query={"join": "not-a-token"})
    assert not at.exception
    assert "not valid" in _texts(at)


def test_review_shows_timeline_summary_and_downloads(app, engine):
    session_id = seed_session(engine, timeline=(("neutral", 3.0), ("happy", 3.0)))
    at = app("review")
    assert not at.exception
    assert at.selectbox(key="review_session").value == session_id
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Duration"] == "5.9 s"
    assert metrics["Frames"] == "60"
    assert metrics["Face present"] == "100%"
    assert metrics["Attention"] == "-"  # the seeded faces carry no head pose
    charts = at.get("plotly_chart")
    assert len(charts) == 4  # timeline, ribbon, valence/engagement, attention
    summary = at.dataframe[0].value.set_index("emotion")
    assert summary.loc["happy", "mean"] == pytest.approx((0.8 + 0.2 / 6) / 2, abs=1e-3)  # half neutral, half happy
    assert summary.loc["happy", "peak"] == pytest.approx(0.8, abs=0.01)
    assert len(at.get("download_button")) == 3


def test_compare_groups_by_tag_and_aligns_on_marker(app, engine):
    for i, variant in enumerate("AABB"):
        happy = 4.0 if variant == "A" else 1.0
        seed_session(engine, study="ads", participant=f"P{i}", tags={"variant": variant},
                     timeline=(("neutral", 2.0), ("happy", happy)), markers=(("stimulus start", 1.0 + i * 0.5),))  # fmt: skip
    at = app("compare")
    at.radio(key="compare_mode").set_value("Groups by tag").run()
    assert not at.exception
    assert at.selectbox(key="compare_tag").value == "variant"
    assert len(at.get("plotly_chart")) == 4  # curves, share expressing, emotion means, segments
    assert "4 sessions, 2 groups" in _texts(at)
    assert _first_x(at) == 0.0  # session start: curves begin at 0 s
    at.selectbox(key="compare_align").select("stimulus start").run()
    assert not at.exception
    assert len(at.get("plotly_chart")) == 4  # curves, share expressing, emotion means, segments
    assert _first_x(at) == pytest.approx(-2.5, abs=1.0)  # time from each session's marker (1.0 to 2.5 s)


def _first_x(at) -> float:
    """Smallest time (s) on the first plotly chart of the page (plotly sends arrays base64-typed)."""
    import base64
    import json

    def values(x):
        if isinstance(x, dict):
            return np.frombuffer(base64.b64decode(x["bdata"]), dtype=x["dtype"])
        return np.asarray(x, dtype=float)

    spec = json.loads(at.get("plotly_chart")[0].proto.spec)
    return float(min(values(trace["x"]).min() for trace in spec["data"] if trace.get("x") is not None))


def test_compare_sessions_mode_needs_a_pick(app, engine):
    seed_session(engine)
    at = app("compare")
    at.multiselect(key="compare_ids").set_value([]).run()
    assert not at.exception
    assert "Pick at least one session" in _texts(at)


def test_upload_without_file_asks_for_one(app, db_url):
    at = app("upload")
    at.button[0].click().run()
    assert not at.exception
    assert "Choose a video file first" in _texts(at)


def test_model_page_without_model_shows_notice(app, db_url, monkeypatch, tmp_path):
    monkeypatch.setenv("FER_MODEL_PATH", str(tmp_path / "missing.keras"))
    at = app("model")
    assert not at.exception
    assert "No usable model file yet" in _texts(at)


def test_model_page_shows_metrics_from_metadata(app, db_url, monkeypatch, tmp_path):
    path = tmp_path / "m.keras"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("config.json", "{}")
    per_class = {e: {"precision": 0.5, "recall": 0.6, "f1": 0.55, "support": 100} for e in EMOTIONS}
    confusion = [[10 if i == j else 1 for j in range(7)] for i in range(7)]
    write_metadata(path, {"classes": list(EMOTIONS), "preprocessing": PreprocessSpec().to_dict(),
                          "metrics": {"PublicTest_accuracy": 0.655, "per_class": per_class, "confusion_matrix": confusion}})  # fmt: skip
    monkeypatch.setenv("FER_MODEL_PATH", str(path))
    at = app("model")
    assert not at.exception
    assert {m.label: m.value for m in at.metric} == {"PublicTest accuracy": "65.5%"}
    assert len(at.get("plotly_chart")) == 2


def test_record_without_model_says_how_to_get_one(app, engine, monkeypatch, tmp_path):
    monkeypatch.setenv("FER_MODEL_PATH", str(tmp_path / "absent.keras"))
    seed_session(engine, status="complete")
    with session_scope(engine) as db:
        from sessions.repository import create_session

        live_id = create_session(db, study_id=1, participant_code="P1").id
    at = app("record")
    at.selectbox(key="rec_session_pick").select(live_id).run()
    at.checkbox(key=f"rec_consent_{live_id}").check().run()
    assert not at.exception
    assert "The emotion model cannot be loaded" in _texts(at) and "FER_MODEL_PATH" in _texts(at)


def test_study_choice_is_picking_and_a_new_study_is_explicit_then_renamed_and_deleted(app, engine, camera):
    """Observed: typing in the Study box and pressing Enter created a new study; studies could not be renamed."""
    from sessions.repository import list_studies

    seed_session(engine, study="Ad test", status="complete")
    at = app("record")
    assert at.selectbox(key="rec_new_study").value == "Ad test"
    at.text_input(key="rec_new_study_name").input("Trailer test")
    at.text_input(key="rec_new_participant").input("P-NEW")
    at.button(key="FormSubmitter:rec_new-Create session").click().run()
    assert not at.exception
    with session_scope(engine) as db:
        assert sorted(s.name for s in list_studies(db)) == ["Ad test", "Trailer test"]
    at.switch_page("app_pages/upload.py").run()
    assert at.selectbox(key="upload_study").value == "Trailer test"  # the study used last
    at.switch_page("app_pages/studies.py").run()
    study_id = at.selectbox(key="studies_study").value
    at.text_input(key=f"studies_rename_{study_id}").input("Ad test (wave 1)").run()
    at.button(key="studies_rename").click().run()
    assert not at.exception
    with session_scope(engine) as db:
        assert sorted(s.name for s in list_studies(db)) == ["Ad test (wave 1)", "Trailer test"]
    at.selectbox(key="studies_study").select(study_id).run()
    at.checkbox(key=f"studies_delete_study_sure_{study_id}").check().run()
    at.button(key="studies_delete_study").click().run()
    assert not at.exception
    with session_scope(engine) as db:
        assert [s.name for s in list_studies(db)] == ["Trailer test"]
        assert list(list_sessions(db)["participant_code"]) == ["P-NEW"]  # the deleted study's sessions are gone


def test_studies_page_exports_the_whole_study(app, engine):
    seed_session(engine, study="Ad test", participant="P1", tags={"variant": "A"})
    seed_session(engine, study="Ad test", participant="P2", tags={"variant": "B"})
    at = app("studies")
    at.button(key="studies_export").click().run()
    assert not at.exception
    assert len(at.get("download_button")) >= 2
