"""Input checks of the store: the same limits and refusals on SQLite and PostgreSQL, before any query."""

from __future__ import annotations

import pytest
from sqlalchemy import event, func, select

from sessions import repository as repo
from sessions import validation
from sessions.db import session_scope
from sessions.errors import SessionNotFound
from sessions.models import Study, StudySession


def _study(engine, name: str = "Ad test") -> int:
    with session_scope(engine) as db:
        return repo.get_or_create_study(db, name).id


def _count(engine, model) -> int:
    with session_scope(engine) as db:
        return db.scalar(select(func.count()).select_from(model))


@pytest.mark.parametrize("call", ["create_study", "get_or_create_study"])
def test_study_name_over_200_characters_is_refused_on_both_backends(engine, call):
    with session_scope(engine) as db:
        stored = getattr(repo, call)(db, "S" * 200)  # the limit itself is fine
        assert stored.name == "S" * 200
    with pytest.raises(ValueError, match=r"study name has to be at most 200 characters long; got 201 characters"):
        with session_scope(engine) as db:
            getattr(repo, call)(db, "é" * 201)  # characters, not bytes
    assert _count(engine, Study) == 1


def test_participant_code_stimulus_and_tags_over_their_limits_are_refused(engine):
    study_id = _study(engine)
    cases = [
        ({"participant_code": "P" * 101}, r"participant code has to be at most 100 characters long; got 101"),
        ({"participant_code": "P", "stimulus_name": "s" * 301}, r"stimulus name has to be at most 300 .* got 301"),
        ({"participant_code": "P", "stimulus_url": "u" * 2001}, r"stimulus URL has to be at most 2000 .* got 2001"),
        ({"participant_code": "P", "tags": {"k" * 51: "A"}}, r"tag key has to be at most 50 .* got 51"),
        ({"participant_code": "P", "tags": {"variant": "v" * 201}}, r"value of tag 'variant' has to be at most 200"),
        ({"participant_code": "P", "tags": {f"k{i}": "v" for i in range(21)}}, r"at most 20 per session; got 21"),
    ]
    for kwargs, message in cases:
        with pytest.raises(ValueError, match=message):
            with session_scope(engine) as db:
                repo.create_session(db, study_id=study_id, **kwargs)
    with session_scope(engine) as db:  # every limit itself is stored as given, on both backends
        sid = repo.create_session(db, study_id=study_id, participant_code="P" * 100, stimulus_name="s" * 300,
                                  tags={"k" * 50: "v" * 200}).id  # fmt: skip
    with session_scope(engine) as db:
        session = repo.get_session(db, sid)
        assert (session.participant_code, session.stimulus_name) == ("P" * 100, "s" * 300)
        assert session.tags == {"k" * 50: "v" * 200}
    assert _count(engine, StudySession) == 1


@pytest.mark.parametrize("bad", ["\x00", "\x07", "\x1b[31m", "\x7f", "\u0085", "\n", "\u2028", "\udcff"])
def test_control_characters_are_refused_in_every_name_on_both_backends(engine, bad):
    study_id = _study(engine)
    text = f"A{bad}B"
    with session_scope(engine) as db:
        sid = repo.create_session(db, study_id=study_id, participant_code="P1").id
    calls = {
        "study name": lambda db: repo.create_study(db, text),
        "participant code": lambda db: repo.create_session(db, study_id=study_id, participant_code=text),
        "stimulus name": lambda db: repo.create_session(db, study_id=study_id, participant_code="P",
                                                        stimulus_name=text),  # fmt: skip
        "value of tag": lambda db: repo.create_session(db, study_id=study_id, participant_code="P", tags={"v": text}),
        "marker label": lambda db: repo.add_marker(db, sid, 1.0, text),
    }
    for field, call in calls.items():
        with pytest.raises(ValueError, match=rf"{field}.* must not contain control characters.*got U\+[0-9A-F]{{4}} "
                                             rf"at position 1 of {len(text)} characters"):  # fmt: skip
            with session_scope(engine) as db:
                call(db)
    assert _count(engine, Study) == 1 and _count(engine, StudySession) == 1


def test_multiline_fields_take_line_breaks_but_not_nul(engine):
    with session_scope(engine) as db:
        study = repo.create_study(db, "Diary", "line one\nline two\ttabbed\r\n")
        sid = repo.create_session(db, study_id=study.id, participant_code="P1").id
        repo.add_marker(db, sid, 1.0, "logo", "seen\nclearly")
    for call, field in ((lambda db: repo.create_study(db, "Other", "a\x00b"), "study description"),
                        (lambda db: repo.add_marker(db, sid, 2.0, "x", "a\x00b"), "marker note")):  # fmt: skip
        with pytest.raises(ValueError, match=rf"{field} must not contain control characters \(line breaks and tabs"):
            with session_scope(engine) as db:
                call(db)
    with pytest.raises(ValueError, match=r"study description has to be at most 5000 characters long; got 5001"):
        with session_scope(engine) as db:
            repo.create_study(db, "Long", "d" * 5001)
    with pytest.raises(ValueError, match=r"marker label has to be at most 200 .* got 201"):
        with session_scope(engine) as db:
            repo.add_marker(db, sid, 2.0, "m" * 201)
    with session_scope(engine) as db:
        assert repo.load_markers(db, sid)["note"].tolist() == ["seen\nclearly"]


def test_messages_give_the_length_not_the_text(engine):
    with pytest.raises(ValueError) as info:
        with session_scope(engine) as db:
            repo.create_study(db, "secret-looking text " * 500)
    assert "secret-looking" not in str(info.value) and len(str(info.value)) < 120


@pytest.mark.parametrize("token", ["\x00", "%00", "a\x00b", "t" * 65, "x" * 10_000, "tok\nen"])
def test_implausible_join_tokens_are_unknown_without_a_query(engine, token):
    with session_scope(engine) as db:
        sid = repo.create_session(db, study_id=repo.create_study(db, "S").id, participant_code="P").id
        real = repo.create_join_token(db, sid)
    queries: list[str] = []
    event.listen(engine, "before_cursor_execute", lambda *args: queries.append(args[2]))
    with session_scope(engine) as db:
        with pytest.raises(SessionNotFound, match="no session has this join token"):
            repo.session_for_token(db, token.replace("%00", "\x00"))
    assert queries == []
    with session_scope(engine) as db:
        assert repo.session_for_token(db, real).id == sid  # a real token is still found


def test_check_text_refuses_non_strings_and_accepts_plain_unicode():
    assert validation.check_text("Étude 東京 🎬", "study name", max_length=200) == "Étude 東京 🎬"
    with pytest.raises(ValueError, match="study name has to be a str; got int"):
        validation.check_text(5, "study name", max_length=200)
    assert not validation.is_plausible_token(None) and not validation.is_plausible_token("")
    assert validation.is_plausible_token("A" * 64)
