"""Errors raised by the session store, each naming the input and what was wrong with it."""

from __future__ import annotations


class DatabaseUnavailable(RuntimeError):
    """The database at a URL cannot be reached or opened (the URL's password is masked in the message)."""


class SessionNotFound(LookupError):
    """No session has the given id (or join token)."""


class NoFaceFound(ValueError):
    """A video was analysed and no face was found in any frame; nothing was stored."""


class ExportError(OSError):
    """An export file cannot be written (missing folder, no permission, ...); no partial file is left."""
