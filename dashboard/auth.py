"""Researcher password gate (every page except the participant link when a password is set)."""

from __future__ import annotations

import hmac

import streamlit as st

#: ``st.session_state`` key remembering that this browser session gave the right password.
AUTH_KEY = "auth_researcher_ok"


def password_matches(given: str, expected: str) -> bool:
    """Compare a typed password with the configured one in constant time."""
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))


def is_researcher(password: str | None) -> bool:
    """True when no password is configured or this browser session has entered it."""
    return not password or bool(st.session_state.get(AUTH_KEY, False))


def login_page(password: str) -> None:
    """Render the password form; on success remember it for this browser session and rerun."""
    st.title("FER dashboard")
    with st.form("auth_form"):
        given = st.text_input("Researcher password", type="password", key="auth_password")
        submitted = st.form_submit_button("Sign in")
    if submitted:
        if password_matches(given, password):
            st.session_state[AUTH_KEY] = True
            st.rerun()
        st.error("Wrong password.")
