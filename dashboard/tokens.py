"""Signed, expiring sign-in tokens (the value of the dashboard's sign-in cookie) and their revocation.

A token is ``v1.<payload>.<mac>``: the payload (base64url JSON) names the account, the fingerprint of its
password hash (a new password invalidates older tokens), an expiry time and a random nonce; the MAC is
HMAC-SHA256 over the payload with the secret kept in the account file. Nothing in it is secret, but
nothing in it can be changed without the secret.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from typing import NamedTuple

VERSION = "v1"
#: Tokens longer than this are refused before any parsing (characters).
MAX_TOKEN_LENGTH = 2048


class TokenClaims(NamedTuple):
    """What a valid token says: the account, its hash fingerprint and when the token expires (epoch s)."""

    name: str
    fingerprint: str
    expires_at: float


def _b64encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class TokenSigner:
    """Issue and check sign-in tokens.

    Parameters
    ----------
    secret : bytes
        HMAC key, at least 16 bytes (:meth:`dashboard.accounts.AccountStore.cookie_secret`).
    max_age_s : float
        Lifetime of a token in seconds (the ``auth_cookie_hours`` setting times 3600).
    clock : callable, optional
        Returns the current time in seconds since the epoch (default ``time.time``; tests pass a fake).

    Raises
    ------
    ValueError
        If ``secret`` is shorter than 16 bytes or ``max_age_s`` is not positive.
    """

    def __init__(self, secret: bytes, *, max_age_s: float, clock: Callable[[], float] = time.time):
        if len(secret) < 16:
            raise ValueError(f"secret has to be at least 16 bytes; got {len(secret)}")
        if not max_age_s > 0:
            raise ValueError(f"max_age_s has to be positive; got {max_age_s}")
        self._secret = secret
        self.max_age_s = float(max_age_s)
        self._clock = clock

    def _mac(self, payload: str) -> str:
        return _b64encode(hmac.new(self._secret, f"{VERSION}.{payload}".encode("ascii"), hashlib.sha256).digest())

    def issue(self, name: str, fingerprint: str) -> str:
        """A new token for account ``name`` whose hash has ``fingerprint``, valid for ``max_age_s``.

        Returns
        -------
        str
            URL- and cookie-safe ASCII (letters, digits, ``-_.``).
        """
        claims = {"u": name, "f": fingerprint, "exp": int(self._clock() + self.max_age_s), "n": secrets.token_urlsafe(9)}
        payload = _b64encode(json.dumps(claims, separators=(",", ":")).encode("utf-8"))
        return f"{VERSION}.{payload}.{self._mac(payload)}"

    def read(self, token: object) -> TokenClaims | None:
        """The claims of ``token``, or None when it is malformed, tampered with, signed with another secret or expired.

        Parameters
        ----------
        token : str
            A cookie value as the browser sent it (anything else gives None).
        """
        if not isinstance(token, str) or len(token) > MAX_TOKEN_LENGTH:
            return None
        parts = token.split(".")
        if len(parts) != 3 or parts[0] != VERSION:
            return None
        payload, mac = parts[1], parts[2]
        try:
            if not hmac.compare_digest(self._mac(payload), mac):
                return None
            claims = json.loads(_b64decode(payload))
            name, fingerprint, expires = claims["u"], claims["f"], float(claims["exp"])
        except (binascii.Error, UnicodeError, ValueError, KeyError, TypeError):
            return None
        if not (isinstance(name, str) and isinstance(fingerprint, str)) or expires <= self._clock():
            return None
        return TokenClaims(name, fingerprint, expires)


class RevokedTokens:
    """Tokens signed out before they expired (thread-safe, process-wide, pruned as they expire).

    Kept in memory: a restart forgets them, so a copied cookie of a signed-out browser works again until
    it expires (at most ``auth_cookie_hours``) unless the account's password is changed.

    Parameters
    ----------
    clock : callable, optional
        Seconds since the epoch (default ``time.time``).
    """

    def __init__(self, *, clock: Callable[[], float] = time.time):
        self._clock = clock
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def revoke(self, token: str, expires_at: float) -> None:
        """Refuse ``token`` from now on (until ``expires_at``, epoch seconds, after which it is invalid anyway)."""
        with self._lock:
            now = self._clock()
            self._until = {t: until for t, until in self._until.items() if until > now}
            self._until[token] = expires_at

    def __contains__(self, token: object) -> bool:
        with self._lock:
            return token in self._until
