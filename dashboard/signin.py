"""Who may use the researcher pages: sign in, check a token, sign out (no Streamlit here).

:class:`SignIn` ties the account file (:mod:`dashboard.accounts`), the throttle (:mod:`dashboard.throttle`)
and the signed tokens (:mod:`dashboard.tokens`) together; the dashboard keeps one per process and
:mod:`dashboard.auth` puts it on the page.
"""

from __future__ import annotations

import ipaddress
import logging
from pathlib import Path

from dashboard.accounts import AccountStore, check_name
from dashboard.throttle import SignInThrottle
from dashboard.tokens import RevokedTokens, TokenSigner

_LOG = logging.getLogger(__name__)


def _shown(name: object) -> str:
    """An account name as it may appear in a log line (quoted, control characters escaped, bounded)."""
    return repr(name[:64] if isinstance(name, str) else name)


class SignIn:
    """Sign-in checks of one dashboard process.

    Parameters
    ----------
    store : AccountStore
        The account file.
    max_age_s : float
        Lifetime of a sign-in token (seconds).
    throttle : SignInThrottle, optional
        Failed-attempt counts (default: a fresh one with the default policy).
    revoked : RevokedTokens, optional
        Tokens signed out before they expired (default: a fresh, empty set).

    Raises
    ------
    dashboard.accounts.AccountError
        If the account file is unreadable in its layout.
    OSError
        If the account file cannot be read or its secret cannot be written.
    """

    def __init__(self, store: AccountStore, *, max_age_s: float, throttle: SignInThrottle | None = None,
                 revoked: RevokedTokens | None = None):  # fmt: skip
        self.store = store
        self.signer = TokenSigner(store.cookie_secret(), max_age_s=max_age_s)
        self.throttle = throttle or SignInThrottle()
        self.revoked = revoked or RevokedTokens()

    @classmethod
    def from_file(cls, path: str | Path, *, max_age_s: float, first_password: str | None = None) -> tuple[SignIn, str | None]:
        """Open the account file, creating the first account when it has none.

        Parameters
        ----------
        path : str or Path
            The account file (setting ``auth_file``).
        max_age_s : float
            Lifetime of a sign-in token (seconds).
        first_password : str, optional
            Password of the first account (setting ``researcher_password``); default a random one.

        Returns
        -------
        (SignIn, str or None)
            The checks, and the first account's password when it was created now (to be shown once).
        """
        store = AccountStore(path)
        created = store.create_first_account(first_password)
        return cls(store, max_age_s=max_age_s), created

    def sign_in(self, name: str, password: str, *, client: str | None) -> tuple[str | None, int]:
        """Check a name and password, throttled; log a failure (name and client, never the password).

        Parameters
        ----------
        name, password : str
            As typed in the form.
        client : str or None
            The browser's address (``st.context.ip_address``; None on localhost).

        Returns
        -------
        (str or None, int)
            A new token when the password is right (else None), and the failures now counted for this
            name or client (0 after a success).
        """
        name = name.strip() if isinstance(name, str) else ""
        try:
            name = check_name(name)
        except ValueError:
            pass  # still checked (and throttled) like any wrong password
        name_key, client_key = f"name:{name}", f"client:{client or 'local'}"
        ok, failures = self.throttle.attempt([name_key, client_key], lambda: self.store.verify(name, password),
                                             clear_on_success=[name_key])  # fmt: skip
        if not ok:
            _LOG.warning("sign-in failed for account %s from %s (%d recent failures)", _shown(name), client or "localhost", failures)
            return None, failures
        _LOG.info("account %s signed in from %s", _shown(name), client or "localhost")
        return self.signer.issue(name, self.store.fingerprint(name) or ""), 0

    def researcher(self, token: object) -> str | None:
        """The account a token signs in, or None when it is invalid, expired, signed out, or its account
        was removed or given a new password since."""
        claims = self.signer.read(token)
        if claims is None or token in self.revoked:
            return None
        fingerprint = self.store.fingerprint(claims.name)
        if fingerprint is None or fingerprint != claims.fingerprint:
            return None
        return claims.name

    def sign_out(self, token: object) -> None:
        """Refuse ``token`` from now on in this process (a no-op for an invalid token)."""
        claims = self.signer.read(token)
        if claims is not None:
            self.revoked.revoke(token, claims.expires_at)
            _LOG.info("account %s signed out", _shown(claims.name))


def is_loopback(address: str | None) -> bool:
    """Whether a ``server.address`` value listens on this machine only (``127.x.x.x``, ``::1``, ``localhost``).

    None or ``""`` (Streamlit's default) means every interface, so it is not loopback.
    """
    if not address:
        return False
    if address.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(address.strip().strip("[]")).is_loopback
    except ValueError:
        return False


def check_no_auth_allowed(address: str | None) -> None:
    """Refuse ``FER_AUTH=none`` unless the server listens on the loopback interface only.

    Raises
    ------
    ValueError
        If ``address`` (Streamlit's ``server.address``) is unset or not a loopback address.
    """
    if not is_loopback(address):
        where = "every interface (server.address is unset)" if not address else f"server.address {address!r}"
        raise ValueError(f"FER_AUTH=none turns sign-in off, which is only allowed when the server listens on "
                         f"127.0.0.1 only; it listens on {where}. Start it with --server.address 127.0.0.1, "
                         "or remove FER_AUTH to require sign-in")  # fmt: skip
