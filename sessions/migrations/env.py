"""Alembic environment: runs on the connection handed over by ``sessions.db.get_engine`` (or on a URL).

Programmatic use (no alembic.ini)::

    config = Config(); config.set_main_option("script_location", ".../sessions/migrations")
    config.attributes["connection"] = connection; command.upgrade(config, "head")

``render_as_batch=True`` lets migrations alter tables on SQLite (copy-and-move).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import create_engine

from sessions.models import Base

config = context.config
target_metadata = Base.metadata


def _run(connection) -> None:
    context.configure(connection=connection, target_metadata=target_metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


def run_migrations_online() -> None:
    connection = config.attributes.get("connection")
    if connection is not None:
        _run(connection)
        return
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise ValueError("Alembic needs a connection in config.attributes['connection'] or sqlalchemy.url")
    engine = create_engine(url)
    with engine.begin() as conn:
        _run(conn)
    engine.dispose()


if context.is_offline_mode():
    context.configure(
        url=config.get_main_option("sqlalchemy.url"),
        target_metadata=target_metadata,
        render_as_batch=True,
        literal_binds=True,
    )
    with context.begin_transaction():
        context.run_migrations()
else:
    run_migrations_online()
