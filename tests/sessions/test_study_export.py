"""Whole-study exports: every session's rows in one file, each row saying whose it is."""

from __future__ import annotations

import pandas as pd
import pytest

from sessions import lifecycle
from sessions import repository as repo
from sessions.__main__ import main
from sessions.db import session_scope
from sessions.study_export import export_study, study_table
from tests.sessions.conftest import face
from tests.sessions.test_repository import _observe


def _study(engine) -> int:
    with session_scope(engine) as db:
        study_id = repo.create_study(db, "Ad test").id
        a = repo.create_session(db, study_id=study_id, participant_code="P-A", tags={"variant": "A"}).id
        b = repo.create_session(db, study_id=study_id, participant_code="=HYPERLINK(1)", tags={"age": "18-24"}).id
        other = repo.create_session(db, study_id=repo.create_study(db, "Other").id, participant_code="P-X").id
    _observe(engine, a, [(i / 10, [face(happy=0.8)]) for i in range(30)])  # 3 s
    _observe(engine, b, [(i / 10, [face(sad=0.6)] if i % 2 else []) for i in range(20)])  # 2 s
    _observe(engine, other, [(0.0, [face(happy=0.5)])])
    with session_scope(engine) as db:
        lifecycle.end_session(db, a, "complete")
        lifecycle.end_session(db, b, "aborted")
    return study_id


def test_study_table_holds_every_session_of_the_study_once_with_its_identity(engine):
    study_id = _study(engine)
    with session_scope(engine) as db:
        frames = study_table(db, study_id)
        bins = study_table(db, study_id, per_second=True)
    assert list(frames.columns[:11]) == ["session_id", "participant_code", "study", "status", "source", "consent_at",
                                         "consent_version", "consent_source", "model", "tag_age", "tag_variant"]  # fmt: skip
    assert {"yaw_deg", "pitch_deg", "attentive"} <= set(frames.columns) and "attention_rate" in bins.columns
    assert frames.groupby("participant_code").size().to_dict() == {"=HYPERLINK(1)": 20, "P-A": 30}
    assert set(frames["study"]) == {"Ad test"}  # the other study's session is not in it
    assert frames.loc[frames["participant_code"] == "P-A", "tag_variant"].eq("A").all()
    assert frames.loc[frames["participant_code"] == "P-A", "tag_age"].eq("").all()
    assert dict(zip(frames["participant_code"], frames["status"], strict=False)) == {"P-A": "complete",
                                                                                    "=HYPERLINK(1)": "aborted"}
    assert bins.groupby("participant_code").size().to_dict() == {"=HYPERLINK(1)": 2, "P-A": 3}
    assert bins["n_frames"].sum() == 50  # analysed frames per bin travel with the bins


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_export_study_writes_one_file_and_the_cli_finds_the_study_by_name(engine, db_url, tmp_path, suffix):
    study_id = _study(engine)
    with session_scope(engine) as db:
        path = export_study(db, study_id, tmp_path / f"study{suffix}", per_second=True)
    table = pd.read_csv(path) if suffix == ".csv" else pd.read_parquet(path)
    assert len(table) == 5 and table["session_id"].nunique() == 2
    if suffix == ".csv":  # a participant code a spreadsheet would run as a formula is neutralised
        assert "'=HYPERLINK(1)" in set(table["participant_code"])
    out = tmp_path / f"cli{suffix}"
    assert main(["--db", db_url, "export-study", "Ad test", "--out", str(out)]) == 0 and out.is_file()
    assert main(["--db", db_url, "export-study", "No such study", "--out", str(out)]) == 1
    with pytest.raises(SystemExit):  # a format the suffix does not name is a usage error
        main(["--db", db_url, "export-study", "Ad test", "--out", str(tmp_path / "x.txt")])
