"""Database URL resolution, the engine factory (which migrates to the newest schema) and transactions.

SQLite (a file under the user's data directory, WAL mode) is the default; PostgreSQL
(``postgresql+psycopg://user:password@host/db``) serves teams that run several dashboard servers
against one database. The URL comes from the caller (``--db``), else ``FER_DB_URL``, else the default file.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import platformdirs
from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, NoSuchModuleError
from sqlalchemy.orm import Session
from sqlalchemy.pool import StaticPool

from sessions.errors import DatabaseUnavailable

#: Environment variable holding the database URL.
DB_URL_ENV = "FER_DB_URL"
#: Application name used for the user's data directory.
APP_NAME = "fer-platform"
MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_MIGRATION_LOCK = threading.Lock()  # a lock, not state: serialises Alembic's process-global context
#: PostgreSQL advisory-lock key held while migrating (any constant shared by all servers).
MIGRATION_LOCK_KEY = 0x5E551045


def default_db_path() -> Path:
    """Return the default SQLite file, ``sessions.db`` in ``platformdirs.user_data_dir("fer-platform")``."""
    return Path(platformdirs.user_data_dir(APP_NAME)) / "sessions.db"


def resolve_db_url(url: str | None = None) -> str:
    """Return the database URL to use: ``url`` if given, else ``$FER_DB_URL``, else the default SQLite file.

    Parameters
    ----------
    url : str or None
        SQLAlchemy URL (``sqlite:///path.db``, ``postgresql+psycopg://...``).

    Returns
    -------
    str
        The URL. For the default, the parent folder of the SQLite file is created.
    """
    if url:
        return url
    if os.environ.get(DB_URL_ENV):
        return os.environ[DB_URL_ENV]
    path = default_db_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def mask_url(url: str) -> str:
    """Return ``url`` with its password replaced by ``***`` (for messages and logs)."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable URL>"


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")  # ON DELETE CASCADE needs it, per connection
    cursor.execute("PRAGMA journal_mode=WAL")  # readers do not block the recorder's writer and vice versa
    cursor.execute("PRAGMA synchronous=NORMAL")  # durable at each WAL checkpoint; safe against process kills
    cursor.close()


def _alembic_config(connection) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.attributes["connection"] = connection
    return config


def get_engine(url: str | None = None) -> Engine:
    """Create an engine for ``url`` (see :func:`resolve_db_url`) and migrate its schema to the newest version.

    Parameters
    ----------
    url : str or None
        SQLAlchemy URL; ``None`` resolves it from ``$FER_DB_URL`` or the default SQLite file.

    Returns
    -------
    sqlalchemy.Engine
        Engine with SQLite in WAL mode and foreign keys on. Running it again on a migrated database
        changes nothing.

    Raises
    ------
    DatabaseUnavailable
        If the URL is malformed, its driver is missing, or the database cannot be reached or opened.
        The message carries the URL with its password masked.
    """
    url = resolve_db_url(url)
    shown = mask_url(url)
    try:
        parsed = make_url(url)
        kwargs: dict = {}
        if parsed.get_backend_name() == "sqlite":
            kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
            if parsed.database in (None, "", ":memory:"):
                kwargs["poolclass"] = StaticPool  # one shared in-memory database for all threads
        else:
            kwargs["pool_pre_ping"] = True
        engine = create_engine(url, **kwargs)
    except (ArgumentError, NoSuchModuleError, ImportError) as exc:
        raise DatabaseUnavailable(f"database URL {shown} cannot be used: {exc}") from None
    if engine.dialect.name == "sqlite":
        event.listen(engine, "connect", _sqlite_pragmas)
    try:
        # Alembic's migration context is process-global: one migration at a time in this process,
        # and across processes on PostgreSQL through an advisory lock.
        with _MIGRATION_LOCK, engine.connect() as connection:
            if engine.dialect.name == "sqlite":
                # Rebuilding a parent table (batch migrations) must not fire ON DELETE CASCADE on its children;
                # the pragma only takes effect outside a transaction, so it is set before BEGIN.
                connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
                connection.commit()  # ends SQLAlchemy's autobegun (empty) transaction
            with connection.begin():
                if engine.dialect.name == "postgresql":  # servers starting together migrate one after the other
                    connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
                command.upgrade(_alembic_config(connection), "head")
            if engine.dialect.name == "sqlite":
                connection.exec_driver_sql("PRAGMA foreign_keys=ON")
                connection.commit()
    except DBAPIError as exc:
        engine.dispose()
        reason = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        raise DatabaseUnavailable(f"database {shown} is unreachable or cannot be opened: {reason}") from None
    return engine


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """Yield an ORM session that commits when the block succeeds and rolls back when it raises.

    Objects stay readable after the commit (``expire_on_commit=False``). Use one per thread.
    """
    with Session(engine, expire_on_commit=False) as db:
        try:
            yield db
            db.commit()
        except BaseException:
            db.rollback()
            raise
