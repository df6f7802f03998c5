"""``python -m sessions``: exports say whose rows they are, the suffix decides the format, database errors are short."""

from __future__ import annotations

import pandas as pd
import pytest
from sqlalchemy import insert
from sqlalchemy.exc import OperationalError

from fer_core.emotions import ATTENTION_COLUMNS, OBSERVATION_COLUMNS
from sessions import repository as repo
from sessions.__main__ import main
from sessions.aggregate import BIN_COLUMNS
from sessions.db import get_engine, session_scope
from sessions.models import Observation
from sessions.playback import STIMULUS_TIME_COLUMNS
from sessions.recorder import observation_records
from tests.sessions.conftest import face


@pytest.fixture
def stored(db_url) -> tuple[str, int]:
    engine = get_engine(db_url)
    with session_scope(engine) as db:
        study = repo.create_study(db, "Ad test")
        sid = repo.create_session(db, study_id=study.id, participant_code="P-042",
                                  tags={"variant": "B", "age": "18-24"}).id  # fmt: skip
        rows = []
        for index in range(60):
            rows += observation_records(sid, index, index / 30, [face(happy=0.7)])
        db.execute(insert(Observation), rows)
    engine.dispose()
    return db_url, sid


@pytest.mark.parametrize("suffix", [".csv", ".parquet", ".json"])
def test_export_format_follows_the_suffix_and_rows_carry_the_session(stored, tmp_path, suffix):
    url, sid = stored
    reader = {".csv": pd.read_csv, ".parquet": pd.read_parquet, ".json": pd.read_json}[suffix]
    lead = ["session_id", "participant_code", "study", "tag_age", "tag_variant"]
    frames = tmp_path / f"frames{suffix}"
    assert main(["export", str(sid), "--out", str(frames), "--db", url]) == 0
    back = reader(frames)
    assert list(back.columns) == [*lead, *OBSERVATION_COLUMNS, *ATTENTION_COLUMNS, *STIMULUS_TIME_COLUMNS] and len(back) == 60
    assert set(back["session_id"]) == {sid} and set(back["participant_code"]) == {"P-042"}
    assert set(back["study"]) == {"Ad test"} and set(back["tag_variant"]) == {"B"}
    bins = tmp_path / f"bins{suffix}"
    assert main(["export", str(sid), "--per-second", "--out", str(bins), "--db", url]) == 0
    back = reader(bins)
    assert list(back.columns) == [*lead, *BIN_COLUMNS, *STIMULUS_TIME_COLUMNS]
    assert back["n_frames"].tolist() == [30, 30] and set(back["tag_age"]) == {"18-24"}


def test_a_format_contradicting_the_suffix_is_refused(stored, tmp_path, capsys):
    url, sid = stored
    target = tmp_path / "x.parquet"
    with pytest.raises(SystemExit) as info:
        main(["export", str(sid), "--format", "csv", "--out", str(target), "--db", url])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "'csv' contradicts the file suffix" in err and "x.parquet" in err and "Traceback" not in err
    assert not target.exists()
    with pytest.raises(SystemExit):
        main(["export", str(sid), "--out", str(tmp_path / "x.xlsx"), "--db", url])
    assert "has to be one of" in capsys.readouterr().err


def test_a_database_error_is_one_line_without_sql_or_parameters(stored, monkeypatch, capsys):
    url, sid = stored

    def failing(*args, **kwargs):
        raise OperationalError("SELECT participant_code FROM study_sessions WHERE join_token = %(token)s",
                               {"token": "s3cret-token"}, Exception("could not read block 7\nDETAIL: P-042"))  # fmt: skip

    monkeypatch.setattr("sessions.repository.list_sessions", failing)
    assert main(["list", "--db", url]) == 1
    err = capsys.readouterr().err
    assert err.strip() == "error: database error (Exception): could not read block 7"
    assert "SELECT" not in err and "s3cret" not in err and "P-042" not in err


def test_import_video_names_too_long_are_refused_before_the_analysis(db_url, tmp_path, capsys, monkeypatch):
    def no_analysis(*args, **kwargs):
        raise AssertionError("the video must not be analysed")

    monkeypatch.setattr("fer_core.video.analyze_video", no_analysis)
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(b"\x00" * 100)
    for argv, message in ((["--study", "S" * 201], "study name has to be at most 200 characters long; got 201"),
                          (["--study", "S", "--participant", "P" * 101], "participant code has to be at most 100"),
                          (["--study", "S", "--tag", f"variant={'v' * 201}"], "value of tag 'variant'")):  # fmt: skip
        assert main(["import-video", str(clip), *argv, "--db", db_url]) == 1
        err = capsys.readouterr().err
        assert err.strip().splitlines()[-1].startswith("error: ") and message in err and "Traceback" not in err
