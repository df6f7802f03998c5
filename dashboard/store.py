"""The session store as pages open it: one transaction per block, database failures shown in one short line.

A page never shows a database exception: SQLAlchemy's message holds the SQL statement and its parameters
(participant text, join tokens) and the masked URL can hold the server's file paths. The full error goes to the
server log; the visitor reads :data:`DATABASE_ERROR_TEXT`.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager

import streamlit as st
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from dashboard.resources import get_engine
from sessions.db import session_scope
from sessions.errors import DatabaseUnavailable, describe_database_error

LOG = logging.getLogger(__name__)
#: What a visitor is told when the session database fails (no SQL, parameter, path or secret).
DATABASE_ERROR_TEXT = ("The session database could not complete this request, so nothing was changed. "
                       "Try again; if it keeps failing, the server log says why.")  # fmt: skip


@contextmanager
def database_errors_shown() -> Iterator[None]:
    """Turn a database error raised in the block into one short ``st.error`` and stop the page run.

    A ``sqlalchemy.exc.SQLAlchemyError``, or a :class:`~sessions.errors.DatabaseUnavailable` when the engine
    cannot be opened, is logged on the server (:func:`sessions.errors.describe_database_error`), the visitor
    reads :data:`DATABASE_ERROR_TEXT` and the run ends (``st.stop``). Other exceptions, ``st.stop`` and
    ``st.rerun`` pass through unchanged. For calls that open their own transactions (the video import).
    """
    try:
        yield
    except (SQLAlchemyError, DatabaseUnavailable) as exc:
        LOG.error("session store failed on a page: %s", describe_database_error(exc))
        st.error(DATABASE_ERROR_TEXT)
        st.stop()


@contextmanager
def page_session() -> Iterator[Session]:
    """Yield an ORM session on the dashboard's store that commits when the block succeeds.

    A database error rolls the block back and is shown as by :func:`database_errors_shown`.

    Yields
    ------
    sqlalchemy.orm.Session
        Open session (:func:`sessions.db.session_scope`).
    """
    with database_errors_shown(), session_scope(get_engine()) as db:
        yield db
