"""AppTests of what reaches the screen: user text shown literally, bad input and database failures as one short
message (never a traceback, SQL or server path), exports that say whose rows they are, markers on Review."""

from __future__ import annotations

import html
import re

import pytest
from sqlalchemy import insert
from sqlalchemy.exc import OperationalError

from dashboard.text import WORD_JOINER
from sessions import repository as repo
from sessions.db import session_scope
from sessions.models import Observation
from sessions.recorder import observation_records
from tests.sessions.conftest import face

EVIL = "![x](http://evil/t.png) **bold** [link](http://evil)"


def _render(markdown: str) -> str:
    """HTML of ``markdown`` as a CommonMark renderer (like Streamlit's react-markdown) makes it."""
    markdown_it = pytest.importorskip("markdown_it")
    return markdown_it.MarkdownIt("commonmark").enable(["table", "strikethrough"]).render(markdown)


def _assert_literal(markdown: str, literal: str) -> None:
    """``markdown`` renders to plain text that holds ``literal`` character for character (the invisible word joiners
    that break autolinks aside): no image, link, bold."""
    rendered = _render(markdown)
    for tag in ("<img", "<a ", "<strong>", "<em>", "<code>", "<h1>"):
        assert tag not in rendered, f"{tag} in {rendered!r}"
    assert literal in html.unescape(re.sub(r"<[^>]+>", "", rendered)).replace(WORD_JOINER, ""), rendered


def _texts(at) -> list[str]:
    kinds = ("markdown", "caption", "info", "warning", "error", "success", "toast")
    return [str(e.value) for kind in kinds for e in getattr(at, kind)]


def _session(engine, *, study="Ads", code="P-1", tags=None, frames=30, source="live") -> int:
    with session_scope(engine) as db:
        sid = repo.create_session(db, study_id=repo.get_or_create_study(db, study).id, participant_code=code,
                                  tags=tags or {}, source=source).id  # fmt: skip
        rows = []
        for index in range(frames):
            rows += observation_records(sid, index, index / 10, [face(happy=0.6)])
        if rows:
            db.execute(insert(Observation), rows)
    return sid


def test_studies_show_names_and_descriptions_literally(app, engine):
    description = "<b>x</b> ![t](http://evil/d.png) _em_ # heading"
    at = app("studies")
    at.text_input(key="studies_new_name").input(EVIL)
    at.text_area(key="studies_new_description").input(description)
    at.button[0].click().run()
    assert not at.exception
    _assert_literal(at.success[0].value, f"Study '{EVIL}' created.")
    caption = next(c.value for c in at.caption if "Created" in c.value)
    _assert_literal(caption, description)


def test_studies_refuse_overlong_and_control_character_names_with_a_message(app, engine):
    at = app("studies")
    for name, message in (("S" * 201, "study name has to be at most 200 characters long; got 201 characters"),
                          ("bad\x00name", "study name must not contain control characters; got U+0000")):  # fmt: skip
        at.text_input(key="studies_new_name").input(name)
        at.button[0].click().run()
        assert not at.exception
        _assert_literal(at.error[0].value, message)
    with session_scope(engine) as db:
        assert repo.list_studies(db) == []


def test_a_database_failure_is_one_short_message_without_sql(app, engine, monkeypatch):
    def failing(*args, **kwargs):
        raise OperationalError("SELECT studies.name FROM studies WHERE token = ?", ("s3cret-token",),
                               Exception("disk I/O error"))  # fmt: skip

    monkeypatch.setattr("sessions.repository.list_studies", failing)
    at = app("studies")
    assert not at.exception
    shown = " ".join(_texts(at))
    assert "The session database could not complete this request" in shown
    assert "SELECT" not in shown and "s3cret" not in shown and "disk I/O" not in shown


def test_review_markers_are_listed_added_renamed_and_deleted_on_an_uploaded_session(app, engine, video_dir):
    from sessions.importer import import_video
    from tests.sessions.test_importer import OneFaceAnalyzer

    sid = import_video(engine, video_dir / "single_face.mp4", study="Uploads", analyzer=OneFaceAnalyzer()).session_id
    at = app("review")
    assert at.selectbox(key="review_session").value == sid
    assert "No marker yet." in _texts(at)
    at.number_input(key="review_marker_time").set_value(1.5)
    at.text_input(key="review_marker_label").input("stimulus start")
    _button(at, "Add marker").click().run()
    assert not at.exception
    with session_scope(engine) as db:
        markers = repo.load_markers(db, sid)
    assert markers[["time_s", "label"]].values.tolist() == [[1.5, "stimulus start"]]
    table = at.dataframe[1].value  # after the summary
    assert table.to_dict("records") == [{"time (s)": 1.5, "label": "stimulus start", "note": ""}]

    at.selectbox(key="review_marker_pick").select(int(markers["marker_id"][0]))
    at.text_input(key="review_marker_new_label").input('<a href="http://evil">logo</a>').run()
    at.button(key="review_marker_rename").click().run()
    assert not at.exception
    with session_scope(engine) as db:
        assert repo.load_markers(db, sid)["label"].tolist() == ['<a href="http://evil">logo</a>']
    annotations = [a["text"] for a in _annotations(at)]
    assert annotations == ['&lt;a href="http://evil"&gt;logo&lt;/a&gt;']  # plotly draws it as text, not a link

    at.button(key="review_marker_delete").click().run()
    assert not at.exception
    with session_scope(engine) as db:
        assert repo.load_markers(db, sid).empty


def _button(at, label: str):
    return next(b for b in at.button if b.label == label)


def _annotations(at) -> list[dict]:
    import json

    return json.loads(at.get("plotly_chart")[0].proto.spec)["layout"].get("annotations", [])


def test_review_markers_on_a_session_still_recording_without_frames(app, engine):
    sid = _session(engine, frames=0)
    at = app("review")
    assert not at.exception
    at.number_input(key="review_marker_time").set_value(0.0)
    at.text_input(key="review_marker_label").input("  ")
    _button(at, "Add marker").click().run()
    assert not at.exception
    _assert_literal(at.error[0].value, "marker label has to be a non-empty string")
    at.text_input(key="review_marker_label").input("warm-up")
    _button(at, "Add marker").click().run()
    assert not at.exception
    with session_scope(engine) as db:
        assert repo.load_markers(db, sid)["label"].tolist() == ["warm-up"]


def test_review_downloads_say_whose_rows_and_cannot_run_formulas(app, engine, monkeypatch):
    import dashboard.downloads

    sid = _session(engine, code="=cmd|' /C calc'!A0", tags={"variant": "@SUM(1+1)"})
    made: dict[str, bytes] = {}
    real = dashboard.downloads.export_bytes

    def spy(export, data, suffix, **options):
        made[export.__name__] = real(export, data, suffix, **options)
        return made[export.__name__]

    monkeypatch.setattr(dashboard.downloads, "export_bytes", spy)
    at = app("review")
    assert not at.exception
    frames = made["export_observations"].decode().splitlines()
    assert frames[0].startswith("session_id,participant_code,study,tag_variant,time_s,frame,")
    assert frames[1].startswith(f"{sid},'=cmd|' /C calc'!A0,Ads,'@SUM(1+1),0.0,0,")
    seconds = made["export_bins"].decode().splitlines()
    assert seconds[0].startswith("session_id,participant_code,study,tag_variant,time_s,") and "n_frames" in seconds[0]
    header, first = seconds[0].split(","), seconds[1].split(",")
    assert seconds[1].startswith(f"{sid},'=cmd") and first[header.index("n_frames")] == "10"  # 10 frames in second 0


def test_compare_shows_marker_labels_literally_and_neutralises_the_csv(app, engine):
    from dashboard.downloads import export_bytes
    from sessions.analysis import analyse, load_inputs
    from sessions.exports import export_comparison
    from sessions.report import comparison_table, group_labels

    with_marker = _session(engine, code="P-1", tags={"@SUM(1+1)": "A"})
    other = _session(engine, code="P-2", tags={"@SUM(1+1)": "B"})
    with session_scope(engine) as db:
        repo.add_marker(db, with_marker, 0.5, EVIL)
    at = app("compare")
    at.selectbox(key="compare_align").select(EVIL).run()
    assert not at.exception
    _assert_literal(at.warning[0].value, f"Left out (no '{EVIL}' marker)")
    at.selectbox(key="compare_align").select("session start")
    at.radio(key="compare_mode").set_value("Groups by tag").run()
    assert not at.exception
    # the page's "Comparison CSV" is made on click (AppTest cannot click it): the same functions
    with session_scope(engine) as db:
        inputs = load_inputs(db, [with_marker, other])
    analysis = analyse(inputs.sessions, inputs.per_second, groups=group_labels(inputs.sessions, "@SUM(1+1)"))
    csv = export_bytes(export_comparison, comparison_table(analysis), ".csv")
    groups = {line.split(",")[0] for line in csv.decode().splitlines()[1:]}
    assert groups == {"'@SUM(1+1)=A", "'@SUM(1+1)=B"}


def _upload(app, name: str, data: bytes):
    at = app("upload")
    at.file_uploader(key="upload_file").set_value((name, data, "video/mp4"))
    at.checkbox(key="upload_consent").check()  # the uploader confirms the filmed person's consent
    at.button[0].click().run()
    return at


def test_upload_refuses_an_empty_file_and_an_overlong_name_with_a_message(app, engine):
    at = _upload(app, "**bold** [a](b).mp4", b"")
    assert not at.exception
    _assert_literal(at.error[0].value, "the uploaded file '**bold** [a](b).mp4' is empty (0 bytes)")
    at = _upload(app, "n" * 300 + ".mp4", b"not empty")
    assert not at.exception
    _assert_literal(at.error[0].value, "name has to be at most 255 bytes long; got 304 bytes")
    with session_scope(engine) as db:
        assert repo.list_sessions(db).empty


def test_upload_of_a_truncated_clip_is_stored_with_a_visible_warning(app, engine, video_dir, monkeypatch):
    from tests.sessions.test_importer import OneFaceAnalyzer

    monkeypatch.setattr("dashboard.resources.new_analyzer", OneFaceAnalyzer)
    source = video_dir / "WolfgangLanger_Pexels.mp4"
    at = _upload(app, "cut.mp4", source.read_bytes()[: int(source.stat().st_size * 0.3)])
    assert not at.exception
    warning = at.warning[0].value
    _assert_literal(warning, "decoded 5.7 s of the container's 19.7 s (29%)")
    assert "/tmp" not in warning and "fer-upload" not in warning
    assert any("created" in s.value for s in at.success)
    with session_scope(engine) as db:
        assert len(repo.list_sessions(db)) == 1
    at.switch_page("app_pages/review.py").run()  # the session keeps saying so
    assert not at.exception
    ended = next(c.value for c in at.caption if c.value.startswith("Ended"))
    _assert_literal(ended, "Ended: video imported; decoded 5.7 s of the container's 19.7 s (29%)")


@pytest.fixture
def postgres_db_url(db_url, postgres_url, monkeypatch):
    """The dashboard on a fresh PostgreSQL schema (``postgres_url``; skipped with the reason when unreachable)."""
    monkeypatch.setenv("FER_DB_URL", postgres_url)
    yield postgres_url
    import streamlit as st

    from dashboard.resources import get_engine, get_recorder

    get_recorder().close(timeout_s=10)  # its writer thread must be gone before the schema goes
    get_engine().dispose()
    st.cache_resource.clear()


@pytest.mark.postgres
@pytest.mark.parametrize("token", ["\x00", "a\x00b"])
def test_participant_link_with_a_nul_token_says_not_valid_on_postgres(app, postgres_db_url, token):
    at = app(query={"join": token})
    assert not at.exception
    shown = " ".join(_texts(at))
    assert "not valid" in shown and "SELECT" not in shown
