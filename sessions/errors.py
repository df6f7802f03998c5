"""Errors raised by the session store, each naming the input and what was wrong with it."""

from __future__ import annotations


class DatabaseUnavailable(RuntimeError):
    """The database at a URL cannot be reached or opened (the URL's password is masked in the message)."""


class SessionNotFound(LookupError):
    """No session has the given id (or join token)."""


class MarkerNotFound(LookupError):
    """No marker has the given id."""


class NoFaceFound(ValueError):
    """A video was analysed and no face was found in any frame; nothing was stored."""


class ExportError(OSError):
    """An export file cannot be written (missing folder, no permission, ...); no partial file is left."""


class SessionEnded(RuntimeError):
    """The session is ``complete`` or ``aborted`` (or otherwise not in the state the call needs)."""


class StreamRefused(RuntimeError):
    """Another live stream holds the session: a session takes one camera at a time."""


class SessionBusy(ValueError):
    """The session is recording (streaming, or waiting for its participant to come back); it cannot be deleted."""


def describe_database_error(exc: BaseException) -> str:
    """One line saying what went wrong in the database, without the SQL statement or its parameters.

    SQLAlchemy's own message (``str(exc)``) carries the statement and the bound values (which may be a
    participant's text or a join token); this keeps only the first line of the driver's message, which names
    the problem (``value too long for type character varying(200)``, ``database is locked``), and drops the
    ``DETAIL`` lines PostgreSQL adds with the offending values.

    Parameters
    ----------
    exc : BaseException
        A ``sqlalchemy.exc.SQLAlchemyError`` (its driver error is ``exc.orig``), a :class:`DatabaseUnavailable`
        or any other exception.

    Returns
    -------
    str
        ``"database error (OperationalError): database is locked"``; for an error without a driver message,
        ``"database error (ClassName)"``.
    """
    if isinstance(exc, DatabaseUnavailable):
        return str(exc)
    orig = getattr(exc, "orig", None)
    reason = str(orig).strip().splitlines()[0].strip() if orig is not None and str(orig).strip() else ""
    name = type(orig).__name__ if orig is not None else type(exc).__name__
    return f"database error ({name}): {reason}" if reason else f"database error ({name})"
