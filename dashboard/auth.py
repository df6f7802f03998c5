"""The sign-in gate on the page: who is signed in, the sign-in form, the sign-out button, the cookie.

Every page except a participant link needs a signed-in account (:mod:`dashboard.signin`). A sign-in lasts
``auth_cookie_hours`` through reloads and restarts: the signed token is kept in ``st.session_state`` for
this browser session and in a cookie (``SameSite=Strict; Path=/``, ``Secure`` over https) that a reload
sends back in ``st.context.cookies``. Streamlit cannot set a cookie from the server, so a tiny script
written with ``st.html`` sets or clears it in the browser.
"""

from __future__ import annotations

import json

import streamlit as st
from streamlit import config

from dashboard.accounts import NAME_MAX, PASSWORD_MAX
from dashboard.settings import Settings
from dashboard.signin import SignIn, check_no_auth_allowed
from dashboard.text import escape_markdown

#: Name of the sign-in cookie.
COOKIE_NAME = "fer_sign_in"
#: ``st.session_state`` keys (prefix ``auth_``).
TOKEN_KEY = "auth_token"
SIGNED_OUT_KEY = "auth_signed_out"
COOKIE_ACTION_KEY = "auth_cookie_action"
FAILURES_KEY = "auth_failures"


def required(settings: Settings) -> bool:
    """Whether the researcher pages need a signed-in account (``auth`` is not ``"none"``).

    Raises
    ------
    ValueError
        If ``auth`` is ``"none"`` but the server does not listen on 127.0.0.1 only (``server.address``).
    """
    if settings.auth != "none":
        return True
    check_no_auth_allowed(config.get_option("server.address"))
    return False


def signed_in(sign_in: SignIn) -> str | None:
    """The account signed in in this browser session (from its state, else from its cookie).

    Parameters
    ----------
    sign_in : SignIn
        This process's sign-in checks (:func:`dashboard.resources.get_sign_in`).

    Returns
    -------
    str or None
        The account name; None when signed out, or when the token expired, was signed out, or its account
        was removed or given a new password (the stale token is then forgotten).
    """
    token = st.session_state.get(TOKEN_KEY)
    if token is None and not st.session_state.get(SIGNED_OUT_KEY):
        token = cookie_token()
    name = sign_in.researcher(token) if token else None
    if name is None:
        st.session_state.pop(TOKEN_KEY, None)
    else:
        st.session_state[TOKEN_KEY] = token
    return name


def cookie_token() -> str | None:
    """The sign-in cookie the browser sent when this session connected (None without one)."""
    return st.context.cookies.get(COOKIE_NAME)


def sign_in_page(sign_in: SignIn) -> None:
    """The sign-in form; it stands in for every researcher page, so after signing in the visitor is on
    the page their link named."""
    st.title("FER dashboard")
    st.subheader("Sign in")
    with st.form("auth_form"):
        name = st.text_input("Username", key="auth_username", max_chars=NAME_MAX, autocomplete="username")
        password = st.text_input("Password", type="password", key="auth_password", max_chars=PASSWORD_MAX,
                                 autocomplete="current-password")  # fmt: skip
        submitted = st.form_submit_button("Sign in")
    st.caption("Accounts are managed on the server with `python -m dashboard users` (docs/SETTINGS.md). On first "
               "start the password of the account `researcher` is printed in the terminal running the dashboard.")  # fmt: skip
    if not submitted:
        return
    client = st.context.ip_address
    with st.spinner("Checking..."):
        token, _ = sign_in.sign_in(name, password, client=client if isinstance(client, str) else None)
    if token is None:
        attempts = st.session_state[FAILURES_KEY] = st.session_state.get(FAILURES_KEY, 0) + 1
        st.error(f"Wrong username or password (attempt {attempts}). Repeated failures make every attempt wait longer.")
        return
    st.session_state[TOKEN_KEY] = token
    st.session_state.pop(SIGNED_OUT_KEY, None)
    st.session_state.pop(FAILURES_KEY, None)
    st.session_state[COOKIE_ACTION_KEY] = ("set", token, int(sign_in.signer.max_age_s))
    st.rerun()


def sign_out_button(sign_in: SignIn, name: str) -> None:
    """Sidebar line with the signed-in account and a Sign out button (which also clears the cookie)."""
    with st.sidebar:
        st.caption(f"Signed in as **{escape_markdown(name)}**")
        if st.button("Sign out", key="auth_sign_out", icon=":material/logout:"):
            sign_in.sign_out(st.session_state.pop(TOKEN_KEY, None))
            st.session_state[SIGNED_OUT_KEY] = True  # this session's st.context.cookies still holds the old cookie
            st.session_state[COOKIE_ACTION_KEY] = ("clear", "", 0)
            st.rerun()


def apply_cookie_action() -> None:
    """Set or clear the sign-in cookie in the browser when a sign-in or sign-out asked for it (once)."""
    action = st.session_state.pop(COOKIE_ACTION_KEY, None)
    if action is None:
        return
    st.html(cookie_script(*action), unsafe_allow_javascript=True)


def cookie_script(kind: str, token: str, max_age_s: int) -> str:
    """The ``<script>`` that sets (``kind="set"``) or clears (``"clear"``) the sign-in cookie.

    Parameters
    ----------
    kind : {"set", "clear"}
    token : str
        The signed token (cookie-safe ASCII, :meth:`dashboard.tokens.TokenSigner.issue`); ignored to clear.
    max_age_s : int
        Cookie lifetime in seconds; ignored to clear.

    Raises
    ------
    ValueError
        If ``kind`` is neither, or ``token`` holds a character a cookie value cannot.
    """
    if kind == "clear":
        cookie = f"{COOKIE_NAME}=; Path=/; Max-Age=0; SameSite=Strict"
    elif kind == "set":
        if not token or not all((c.isascii() and c.isalnum()) or c in "-_." for c in token):
            raise ValueError("token has to be cookie-safe ASCII (letters, digits, '-', '_', '.')")
        cookie = f"{COOKIE_NAME}={token}; Path=/; Max-Age={int(max_age_s)}; SameSite=Strict"
    else:
        raise ValueError(f"kind has to be 'set' or 'clear'; got {kind!r}")
    return f"<script>document.cookie = {json.dumps(cookie)} + (location.protocol === 'https:' ? '; Secure' : '');</script>"
