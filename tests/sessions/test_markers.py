"""Markers on SQLite and PostgreSQL: listed with their ids, renamed, moved, deleted; bad edits change nothing."""

from __future__ import annotations

import pytest

from sessions import repository as repo
from sessions.db import session_scope
from sessions.errors import MarkerNotFound


def _session_with_markers(engine) -> int:
    with session_scope(engine) as db:
        sid = repo.create_session(db, study_id=repo.get_or_create_study(db, "Ads").id, participant_code="P-1").id
        repo.add_marker(db, sid, 12.5, "stimulus end", "logo shown")
        repo.add_marker(db, sid, 2.0, "stimulus start")
        repo.add_marker(db, sid, 2.0, "ad break")  # same time: kept in the order added
    return sid


def test_load_markers_gives_each_marker_its_id(engine):
    sid = _session_with_markers(engine)
    with session_scope(engine) as db:
        markers = repo.load_markers(db, sid)
        ids = [m.id for m in repo.get_session(db, sid).markers]
    assert list(markers.columns) == ["marker_id", "time_s", "label", "note"] == list(repo.MARKER_COLUMNS)
    assert markers["marker_id"].dtype == "int64" and sorted(markers["marker_id"]) == sorted(ids)
    assert markers["label"].tolist() == ["stimulus start", "ad break", "stimulus end"]
    assert markers["marker_id"].is_unique


def test_update_marker_changes_only_what_is_given(engine):
    sid = _session_with_markers(engine)
    with session_scope(engine) as db:
        end = repo.load_markers(db, sid).set_index("label").loc["stimulus end", "marker_id"]
        changed = repo.update_marker(db, int(end), label="  credits  ")
        assert (changed.label, changed.time_s, changed.note) == ("credits", 12.5, "logo shown")
        repo.update_marker(db, int(end), time_s=1.0, note="")
    with session_scope(engine) as db:
        markers = repo.load_markers(db, sid)
    assert markers.iloc[0][["label", "time_s", "note"]].tolist() == ["credits", 1.0, ""]


def test_bad_marker_edits_are_refused_and_change_nothing(engine):
    sid = _session_with_markers(engine)
    with session_scope(engine) as db:
        before = repo.load_markers(db, sid)
    first = int(before["marker_id"][0])
    for kwargs, message in (({"label": "  "}, "non-empty"), ({"time_s": -1.0}, "time_s"),
                            ({"time_s": float("nan")}, "time_s"), ({"label": "x" * 201}, "at most 200"),
                            ({"label": "ok", "note": "a\x00b"}, "marker note must not contain"),
                            ({"label": "ok", "time_s": float("inf")}, "time_s")):  # fmt: skip
        with pytest.raises(ValueError, match=message):
            with session_scope(engine) as db:
                repo.update_marker(db, first, **kwargs)
    with session_scope(engine) as db:
        assert repo.load_markers(db, sid).equals(before)


def test_delete_marker_removes_one_marker(engine):
    sid = _session_with_markers(engine)
    with session_scope(engine) as db:
        start = int(repo.load_markers(db, sid).set_index("label").loc["stimulus start", "marker_id"])
        repo.delete_marker(db, start)
    with session_scope(engine) as db:
        assert repo.load_markers(db, sid)["label"].tolist() == ["ad break", "stimulus end"]
        assert repo.marker_offsets(db, [sid], "stimulus start") == {}
        with pytest.raises(MarkerNotFound, match=f"no marker has id {start}"):
            repo.delete_marker(db, start)
        with pytest.raises(MarkerNotFound, match="no marker has id 999"):
            repo.update_marker(db, 999, label="x")
