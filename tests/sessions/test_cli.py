"""``python -m sessions``: every command, and clear errors with a non-zero status and no traceback."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import insert

from sessions import lifecycle
from sessions import repository as repo
from sessions.__main__ import main
from sessions.db import get_engine, session_scope
from sessions.models import Observation
from sessions.recorder import observation_records
from tests.sessions.conftest import face
from tests.sessions.test_importer import OneFaceAnalyzer

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def stored(sqlite_url) -> tuple[str, int]:
    engine = get_engine(sqlite_url)
    with session_scope(engine) as db:
        study = repo.create_study(db, "Ad test")
        sid = repo.create_session(db, study_id=study.id, participant_code="P-042", tags={"variant": "B"}).id
        rows = []
        for index in range(60):
            rows += observation_records(sid, index, index / 30, [] if index < 6 else [face(happy=0.7)])
        db.execute(insert(Observation), rows)
        repo.add_marker(db, sid, 0.5, "stimulus start")
        lifecycle.end_session(db, sid, "complete")
    engine.dispose()
    return sqlite_url, sid


def test_list_and_show(stored, capsys):
    url, sid = stored
    assert main(["list", "--db", url]) == 0
    out = capsys.readouterr().out
    assert "P-042" in out and "variant=B" in out and "complete" in out and "happy" in out
    assert main(["--db", url, "show", str(sid)]) == 0
    out = capsys.readouterr().out
    assert "stimulus start" in out and "90.0%" in out
    assert main(["show", str(sid), "--json", "--db", url]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["summary"]["face_present_rate"] == pytest.approx(0.9)
    assert shown["session"]["participant_code"] == "P-042"


@pytest.mark.parametrize("fmt", ["csv", "parquet", "json"])
def test_export_frames_and_per_second(stored, tmp_path, fmt):
    url, sid = stored
    out = tmp_path / f"frames.{fmt}"
    assert main(["export", str(sid), "--format", fmt, "--out", str(out), "--db", url]) == 0
    reader = {"csv": pd.read_csv, "parquet": pd.read_parquet, "json": pd.read_json}[fmt]
    assert len(reader(out)) == 60
    bins = tmp_path / f"bins.{fmt}"
    summary = tmp_path / "summary.json"
    assert main(["export", str(sid), "--format", fmt, "--per-second", "--out", str(bins), "--summary",
                 str(summary), "--db", url]) == 0  # fmt: skip
    assert reader(bins)["time_s"].tolist() == [0.0, 1.0]
    assert json.loads(summary.read_text())["markers"][0]["label"] == "stimulus start"


def test_delete_then_unknown_session(stored, capsys):
    url, sid = stored
    assert main(["delete", str(sid), "--db", url]) == 0
    capsys.readouterr()
    for argv in (["show", str(sid)], ["delete", str(sid)], ["export", str(sid), "--format", "csv", "--out", "x.csv"]):
        assert main([*argv, "--db", url]) == 1
        err = capsys.readouterr().err
        assert f"error: no session has id {sid}" in err and "Traceback" not in err


def test_unwritable_export_path_and_unreachable_database(stored, tmp_path, capsys):
    url, sid = stored
    target = tmp_path / "no-such-folder" / "x.csv"
    assert main(["export", str(sid), "--format", "csv", "--out", str(target), "--db", url]) == 1
    assert "does not exist" in capsys.readouterr().err and not target.exists()
    assert main(["list", "--db", "postgresql+psycopg://u:pw@127.0.0.1:1/none"]) == 1
    err = capsys.readouterr().err
    assert "unreachable" in err and "pw@" not in err


def test_import_video_command(sqlite_url, video_dir, tmp_path, monkeypatch, capsys):
    garbage = tmp_path / "broken.mp4"
    garbage.write_bytes(b"\x00" * 1000)
    assert main(["import-video", str(garbage), "--study", "S", "--db", sqlite_url]) == 1
    assert "error:" in capsys.readouterr().err
    monkeypatch.setattr("fer_core.video._default_analyzer", OneFaceAnalyzer)  # the shipped model may be absent
    argv = ["import-video", str(video_dir / "single_face.mp4"), "--study", "S", "--participant", "P-9", "--tag",
            "variant=A", "--tag", "age=18-24", "--db", sqlite_url]  # fmt: skip
    assert main(argv) == 0
    assert "imported session 1" in capsys.readouterr().out
    engine = get_engine(sqlite_url)
    with session_scope(engine) as db:
        session = repo.get_session(db, 1)
        assert session.tags == {"variant": "A", "age": "18-24"} and session.participant_code == "P-9"
    engine.dispose()
    with pytest.raises(SystemExit) as info:
        main(["import-video", "x.mp4", "--study", "S", "--tag", "novalue"])
    assert info.value.code == 2


def test_module_entry_point_prints_a_clear_error_without_traceback(sqlite_url):
    done = subprocess.run([sys.executable, "-m", "sessions", "show", "404", "--db", sqlite_url], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.strip() == "error: no session has id 404"
