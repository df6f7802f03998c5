"""Engine factory: URL resolution, migrations to head, idempotent re-open, WAL, unreachable databases."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect, text

from sessions import db as dbmod
from sessions.db import get_engine, resolve_db_url, session_scope
from sessions.errors import DatabaseUnavailable
from sessions.models import Base, Study


def _head() -> str:
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(dbmod.MIGRATIONS_DIR))
    return ScriptDirectory.from_config(config).get_current_head()


def test_fresh_database_is_migrated_to_head_with_every_table(db_url):
    engine = get_engine(db_url)
    try:
        tables = set(inspect(engine).get_table_names())
        assert set(Base.metadata.tables) <= tables
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == _head()
        index_names = {ix["name"] for ix in inspect(engine).get_indexes("observations")}
        assert "ix_observations_session_id_time_s" in index_names
    finally:
        engine.dispose()


def test_second_get_engine_on_the_same_database_changes_nothing(db_url):
    first = get_engine(db_url)
    with session_scope(first) as db:
        db.add(Study(name="kept", description="d"))
    first.dispose()
    second = get_engine(db_url)
    try:
        with second.connect() as conn:
            assert conn.execute(text("SELECT count(*) FROM alembic_version")).scalar_one() == 1
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == _head()
            assert conn.execute(text("SELECT name FROM studies")).scalars().all() == ["kept"]
    finally:
        second.dispose()


def test_migrated_schema_matches_the_models(db_url):
    """Autogenerate finds nothing to do: the migrations and the models describe the same schema."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = get_engine(db_url)
    try:
        with engine.connect() as conn:
            diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
        assert diff == []
    finally:
        engine.dispose()


def test_sqlite_runs_in_wal_mode_with_foreign_keys(sqlite_url):
    engine = get_engine(sqlite_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("PRAGMA journal_mode")).scalar_one() == "wal"
            assert conn.execute(text("PRAGMA foreign_keys")).scalar_one() == 1
    finally:
        engine.dispose()


def test_unreachable_postgres_raises_with_the_password_masked():
    with pytest.raises(DatabaseUnavailable) as info:
        get_engine("postgresql+psycopg://user:s3cret@127.0.0.1:1/nothing")
    assert "s3cret" not in str(info.value)
    assert "127.0.0.1:1" in str(info.value)


def test_unopenable_sqlite_file_raises(tmp_path):
    with pytest.raises(DatabaseUnavailable, match="cannot be opened"):
        get_engine(f"sqlite:///{tmp_path / 'missing-folder' / 'x.db'}")


def test_malformed_url_raises():
    with pytest.raises(DatabaseUnavailable, match="cannot be used"):
        get_engine("nosuchdialect://x")


def test_resolve_db_url_prefers_argument_then_environment_then_user_data_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("FER_DB_URL", "sqlite:///from-env.db")
    assert resolve_db_url("sqlite:///arg.db") == "sqlite:///arg.db"
    assert resolve_db_url() == "sqlite:///from-env.db"
    monkeypatch.delenv("FER_DB_URL")
    monkeypatch.setattr(dbmod.platformdirs, "user_data_dir", lambda app: str(tmp_path / app))
    assert resolve_db_url() == f"sqlite:///{tmp_path / 'fer-platform' / 'sessions.db'}"
    assert (tmp_path / "fer-platform").is_dir()


def test_session_scope_rolls_back_on_error(sqlite_url):
    engine = get_engine(sqlite_url)
    try:
        with pytest.raises(RuntimeError), session_scope(engine) as db:
            db.add(Study(name="never"))
            db.flush()
            raise RuntimeError("boom")
        with session_scope(engine) as db:
            assert db.query(Study).count() == 0
    finally:
        engine.dispose()


def test_sessions_imports_neither_streamlit_nor_tensorflow():
    """Dependencies point one way (dashboard -> sessions -> fer_core); no model stack loads at import."""
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys, sessions.db, sessions.repository, sessions.recorder, sessions.aggregate, "
            "sessions.exports, sessions.importer, sessions.__main__; "
            "print(sorted(m for m in ('streamlit', 'tensorflow', 'keras', 'dashboard') if m in sys.modules))")  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2], capture_output=True,
                          text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[]"


def test_database_made_by_the_first_schema_version_opens_in_the_current_one(db_url):
    """A store created at revision 0001, with a finished session in it, is upgraded in place by get_engine."""
    from alembic import command
    from sqlalchemy import create_engine

    from sessions import repository as repo

    old = create_engine(db_url)
    with old.begin() as conn:
        command.upgrade(dbmod._alembic_config(conn), "0001")
        conn.execute(text("INSERT INTO studies (id, name, description, created_at) "
                          "VALUES (1, 'old study', '', '2025-01-01 10:00:00')"))  # fmt: skip
        conn.execute(text("INSERT INTO study_sessions (id, study_id, participant_code, tags, source, started_at, "
                          "ended_at, status, dropped_frames) VALUES (1, 1, 'P-old', '{}', 'live', "
                          "'2025-01-01 10:00:00', '2025-01-01 10:01:00', 'complete', 0)"))  # fmt: skip
        for frame, (face_id, happy, dominant) in enumerate([(-1, None, "none"), (1, 0.9, "happy"), (1, 0.8, "happy")]):
            conn.execute(text("INSERT INTO observations (session_id, time_s, frame, face_id, happy, dominant) "
                              "VALUES (1, :t, :f, :face, :happy, :dominant)"),
                         {"t": frame / 10, "f": frame, "face": face_id, "happy": happy, "dominant": dominant})  # fmt: skip
    old.dispose()
    engine = get_engine(db_url)
    try:
        with engine.connect() as conn:
            assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == _head()
        with session_scope(engine) as db:
            assert repo.get_session(db, 1).n_frames is None  # not cached by the old version
            row = repo.list_sessions(db).iloc[0]
            assert row["participant_code"] == "P-old" and row["status"] == "complete"
            assert row["face_present_rate"] == pytest.approx(2 / 3) and row["dominant_emotion"] == "happy"
            assert repo.load_observations(db, 1)["happy"].tolist()[1:] == [0.9, 0.8]
    finally:
        engine.dispose()


def test_servers_starting_together_migrate_once(postgres_url):
    """Several server processes opening a fresh PostgreSQL store at once all succeed (advisory lock)."""
    import subprocess
    import sys
    from pathlib import Path

    code = "import sys; from sessions.db import get_engine; get_engine(sys.argv[1]).dispose()"
    root = Path(__file__).resolve().parents[2]
    children = [subprocess.Popen([sys.executable, "-c", code, postgres_url], cwd=root, stderr=subprocess.PIPE,
                                 text=True) for _ in range(3)]  # fmt: skip
    errors = [child.communicate(timeout=120)[1] for child in children]
    assert [child.returncode for child in children] == [0, 0, 0], errors
    engine = get_engine(postgres_url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalars().all() == [_head()]
    engine.dispose()
