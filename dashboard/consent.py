"""The study's consent text on the page (as text: escaped), and the link a finished participant follows.

Used by :func:`dashboard.camera.consent_and_camera` (participant link and Record page) and the participant page;
the texts, versions and records live in :mod:`sessions.fieldwork`.
"""

from __future__ import annotations

import html

import streamlit as st

from dashboard.resources import get_engine
from sessions.db import session_scope
from sessions.fieldwork import StudyConsent, current_consent, session_completion_link
from sessions.repository import get_session


def session_consent(session_id: int) -> StudyConsent:
    """The consent text the session's study shows now (version None: the platform's generic text).

    Raises
    ------
    sessions.errors.SessionNotFound
        Unknown session.
    """
    with session_scope(get_engine()) as db:
        return current_consent(db, get_session(db, session_id).study_id)


def consent_html(consent: StudyConsent) -> str:
    """The study's consent text as HTML that shows it literally: each part under its heading, every character
    HTML-escaped (``html.escape``), line breaks kept as ``<br>``. Plain HTML rather than Markdown, whose
    autolinking would turn a URL or an e-mail address in the text into a link even when escaped. Empty for the
    generic text."""
    if consent.text is None:
        return ""
    parts = [f"<p><strong>{html.escape(heading)}</strong><br>{'<br>'.join(html.escape(line) for line in body.splitlines())}</p>"
             for heading, body in consent.text.sections()]  # fmt: skip
    return f'<div class="fer-consent">{"".join(parts)}</div>'


def show_consent(consent: StudyConsent, generic: str) -> None:
    """Put the study's consent text on the page (:func:`consent_html`: literal text, no link) after ``generic``
    (the platform's own text about what is measured and kept, trusted Markdown), and say which version it is."""
    st.markdown(generic)
    if consent.text is None:
        return
    st.html(consent_html(consent))
    st.caption(f"Consent text version {consent.version}")


def completion_button(session_id: int) -> None:
    """A link button to the study's completion URL with the participant code filled in (nothing without one)."""
    with session_scope(get_engine()) as db:
        link = session_completion_link(db, session_id)
    if link:
        st.link_button("Finish and return to the panel", link, type="primary")


def participant_base_url() -> str:
    """The dashboard's address as this browser reached it (scheme, host, base path), without the page's own path;
    empty when Streamlit does not know it (then links are relative: ``/?join=TOKEN``, and the Studies page's links
    section says so: :data:`dashboard.fieldwork_section.RELATIVE_LINKS_TEXT`)."""
    url = str(st.context.url or "") if st.context.url else ""
    return url.split("?")[0].rsplit("/", 1)[0] if url else ""


#: How each consent source reads on Review.
CONSENT_BY = {"participant": "by the participant (their link)", "researcher": "on the Record page",
              "uploader": "confirmed by the uploader of the video"}  # fmt: skip


def consent_line(consent: dict) -> str:
    """One line saying when and how consent was given and to which text, from :func:`sessions.fieldwork.consent_of`
    (Markdown-safe: no user text)."""
    if consent["consent_at"] is None:
        return "Consent: none recorded."
    version = consent["consent_version"]
    text = "the generic consent text" if version is None else f"the study's consent text version {int(version)}"
    by = CONSENT_BY.get(consent["consent_source"] or "")
    return f"Consent: given {consent['consent_at']:%Y-%m-%d %H:%M:%S} UTC{' ' + by if by else ''}, to {text}."
