"""Researcher accounts: one JSON file holding names, Argon2id password hashes and the cookie-signing secret.

The file (setting ``auth_file``, default ``accounts.json`` in the user data folder that also holds
``sessions.db``) is written atomically with permissions 0600 and never holds a password, only its hash
(``argon2-cffi``, RFC 9106 parameters). Layout::

    {"format": 1, "secret": "<64 hex digits>", "accounts": {"researcher": {"hash": "$argon2id$...",
     "created_at": "2026-01-01T12:00:00Z"}}}

The dashboard reads it on every sign-in check (parsed once per file change), so accounts added, removed or
given a new password with ``python -m dashboard users ...`` apply to a running server at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import secrets
import tempfile
import threading
import unicodedata
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import platformdirs
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

try:  # POSIX: serialise writers (the dashboard and the CLI) with an advisory lock
    import fcntl
except ImportError:  # pragma: no cover - Windows
    fcntl = None

_LOG = logging.getLogger(__name__)

#: Application name of the user data folder (the same as ``sessions.db.APP_NAME``).
APP_NAME = "fer-platform"
#: Name of the account created on first start.
FIRST_ACCOUNT = "researcher"
#: Accepted lengths of account names and passwords (characters).
NAME_MAX = 64
PASSWORD_MIN = 8
PASSWORD_MAX = 1024
FILE_FORMAT = 1


class AccountError(ValueError):
    """An account operation that cannot be done (bad name or password, unknown or duplicate account, bad file)."""


def default_auth_file() -> Path:
    """Return the default account file, ``accounts.json`` in ``platformdirs.user_data_dir("fer-platform")``."""
    return Path(platformdirs.user_data_dir(APP_NAME)) / "accounts.json"


def check_name(name: object) -> str:
    """Return ``name`` if it can name an account.

    Parameters
    ----------
    name : str
        1 to :data:`NAME_MAX` printable characters (no control characters, no NUL), not starting or ending
        with whitespace.

    Returns
    -------
    str
        The name in Unicode NFC form (so that one spelling signs in however it was typed).

    Raises
    ------
    AccountError
        If the name is not a string, is empty, too long, or holds a control character or edge whitespace.
    """
    if not isinstance(name, str):
        raise AccountError(f"account name has to be a string; got {type(name).__name__}")
    name = unicodedata.normalize("NFC", name)
    if not name:
        raise AccountError("account name is empty")
    if len(name) > NAME_MAX:
        raise AccountError(f"account name has to be at most {NAME_MAX} characters; got {len(name)}")
    if not name.isprintable():
        raise AccountError("account name holds a control character (tab, newline, NUL...); use printable characters")
    if name != name.strip():
        raise AccountError("account name starts or ends with whitespace")
    return name


def check_password(password: object, *, what: str = "password") -> str:
    """Return ``password`` if it is acceptable; the message names ``what``, never the password.

    Parameters
    ----------
    password : str
        At least :data:`PASSWORD_MIN` and at most :data:`PASSWORD_MAX` characters, not only whitespace.
    what : str
        How the caller calls it in error messages (e.g. ``"FER_RESEARCHER_PASSWORD"``).

    Raises
    ------
    AccountError
        If the password is not a string, is blank or whitespace only, too short, too long or holds NUL.
    """
    if not isinstance(password, str):
        raise AccountError(f"{what} has to be a string; got {type(password).__name__}")
    if not password.strip():
        raise AccountError(f"{what} is blank (empty or only whitespace); choose a real password")
    if len(password) < PASSWORD_MIN:
        raise AccountError(f"{what} has to be at least {PASSWORD_MIN} characters; got {len(password)}")
    if len(password) > PASSWORD_MAX:
        raise AccountError(f"{what} has to be at most {PASSWORD_MAX} characters; got {len(password)}")
    if "\x00" in password:
        raise AccountError(f"{what} holds a NUL character")
    return password


def hash_fingerprint(password_hash: str) -> str:
    """Short digest of a stored hash: a sign-in token carries it, so a new password invalidates old tokens."""
    return hashlib.sha256(password_hash.encode("utf-8")).hexdigest()[:16]


class AccountStore:
    """The researcher accounts in one JSON file (see the module docstring).

    Parameters
    ----------
    path : str or Path
        The account file; its folder is created (0700) on the first write.
    hasher : argon2.PasswordHasher, optional
        Password hasher (default: argon2-cffi's RFC 9106 low-memory profile, about 0.1 s per hash).

    Raises
    ------
    AccountError
        From the methods when the file is not valid JSON or not in this layout (naming the file).
    OSError
        From the methods when the file or its folder cannot be read or written.
    """

    def __init__(self, path: str | Path, *, hasher: PasswordHasher | None = None):
        self.path = Path(path)
        self.hasher = hasher or PasswordHasher()
        self._cache: tuple[tuple, dict] | None = None  # (file identity, parsed content)
        self._dummy_hash: str | None = None
        self._lock = threading.Lock()

    # -- reading -----------------------------------------------------------------------------------------

    def _read(self) -> dict:
        """The file's content (an empty layout when the file does not exist), parsed once per change."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return {"format": FILE_FORMAT, "accounts": {}}
        identity = (stat.st_ino, stat.st_mtime_ns, stat.st_size)
        with self._lock:
            if self._cache is not None and self._cache[0] == identity:
                return self._cache[1]
        if stat.st_mode & 0o077:
            _LOG.warning("account file %s can be read by other users; run chmod 600 on it", self.path)
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise AccountError(f"account file {self.path} is not valid JSON ({exc.__class__.__name__}); "
                               "restore it or remove it to start over") from None
        if not isinstance(data, dict) or not isinstance(data.get("accounts"), dict):
            raise AccountError(f"account file {self.path} has no 'accounts' object; restore it or remove it to start over")
        if data.get("format") != FILE_FORMAT:
            raise AccountError(f"account file {self.path} has format {data.get('format')!r}; this code reads format {FILE_FORMAT}")
        with self._lock:
            self._cache = (identity, data)
        return data

    def names(self) -> list[str]:
        """Names of the accounts, sorted."""
        return sorted(self._read()["accounts"])

    def exists(self, name: str) -> bool:
        """Whether an account called ``name`` exists."""
        return name in self._read()["accounts"]

    def fingerprint(self, name: str) -> str | None:
        """:func:`hash_fingerprint` of the account's stored hash; None when there is no such account."""
        record = self._read()["accounts"].get(name)
        return hash_fingerprint(record["hash"]) if record else None

    def verify(self, name: str, password: str) -> bool:
        """Whether ``password`` is the password of account ``name``.

        An unknown name costs the same hash computation as a known one (no timing hint), and a hash made
        with older parameters is replaced by one with the current parameters.

        Parameters
        ----------
        name, password : str
            As typed; anything that is not a valid name or a string gives False.

        Returns
        -------
        bool
        """
        try:
            name = check_name(name)
        except AccountError:
            name = None
        if not isinstance(password, str) or len(password) > PASSWORD_MAX:
            return False
        record = self._read()["accounts"].get(name) if name else None
        stored = record["hash"] if record else self._dummy()
        try:
            self.hasher.verify(stored, password)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            return False
        if record is None:
            return False
        if self.hasher.check_needs_rehash(stored):
            self._update(name, lambda r: {**r, "hash": self.hasher.hash(password)})
        return True

    def _dummy(self) -> str:
        if self._dummy_hash is None:
            self._dummy_hash = self.hasher.hash(secrets.token_urlsafe(16))
        return self._dummy_hash

    # -- writing -----------------------------------------------------------------------------------------

    def add(self, name: str, password: str) -> None:
        """Create account ``name`` with ``password`` (only its hash is stored).

        Raises
        ------
        AccountError
            If the name or password is not acceptable (:func:`check_name`, :func:`check_password`) or the
            account exists.
        """
        name, password = check_name(name), check_password(password)
        password_hash = self.hasher.hash(password)
        with self._writing() as data:
            if name in data["accounts"]:
                raise AccountError(f"account {name!r} exists already; use 'users passwd {name}' to change its password")
            data["accounts"][name] = {"hash": password_hash, "created_at": _now()}

    def set_password(self, name: str, password: str) -> None:
        """Give account ``name`` a new password; sign-in cookies issued before stop working.

        Raises
        ------
        AccountError
            If there is no such account or the password is not acceptable.
        """
        password = check_password(password)
        password_hash = self.hasher.hash(password)
        self._update(name, lambda record: {**record, "hash": password_hash, "changed_at": _now()})

    def remove(self, name: str) -> None:
        """Delete account ``name``; its sign-in cookies stop working.

        Raises
        ------
        AccountError
            If there is no such account.
        """
        with self._writing() as data:
            if name not in data["accounts"]:
                raise AccountError(f"no account called {name!r}; existing: {sorted(data['accounts']) or 'none'}")
            del data["accounts"][name]

    def create_first_account(self, password: str | None = None) -> str | None:
        """Create the account :data:`FIRST_ACCOUNT` when the file has no account at all.

        Parameters
        ----------
        password : str, optional
            Its password; default a random one (``secrets.token_urlsafe``, 128 bits).

        Returns
        -------
        str or None
            The password when the account was created now (the caller shows it once), else None.

        Raises
        ------
        AccountError
            If ``password`` is given and not acceptable.
        """
        if self._read()["accounts"]:
            return None
        password = check_password(password, what="the first account's password") if password else secrets.token_urlsafe(16)
        password_hash = self.hasher.hash(password)
        with self._writing() as data:
            if data["accounts"]:  # another process was quicker
                return None
            data["accounts"][FIRST_ACCOUNT] = {"hash": password_hash, "created_at": _now()}
        return password

    def cookie_secret(self) -> bytes:
        """The secret that signs sign-in cookies (32 random bytes, created and stored on first use)."""
        secret = self._read().get("secret")
        if not secret:
            with self._writing() as data:
                data.setdefault("secret", secrets.token_hex(32))
                secret = data["secret"]
        return bytes.fromhex(secret)

    def _update(self, name: str, change) -> None:
        with self._writing() as data:
            if name not in data["accounts"]:
                raise AccountError(f"no account called {name!r}; existing: {sorted(data['accounts']) or 'none'}")
            data["accounts"][name] = change(data["accounts"][name])

    @contextlib.contextmanager
    def _writing(self) -> Iterator[dict]:
        """Read-modify-write under an advisory lock; the new file replaces the old one atomically (0600)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        lock_path = self.path.with_name(self.path.name + ".lock")
        with open(lock_path, "a", encoding="utf-8") as lock:
            if fcntl is not None:
                fcntl.flock(lock, fcntl.LOCK_EX)
            data = json.loads(json.dumps(self._read()))  # a private copy
            yield data
            fd, tmp = tempfile.mkstemp(prefix=".accounts-", dir=self.path.parent)  # mkstemp creates it 0600
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as out:
                    json.dump(data, out, indent=1, sort_keys=True)
                    out.flush()
                    os.fsync(out.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(tmp)
                raise


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
