"""The Studies page's fieldwork section: the study's consent text (versioned), its completion URL, and
participant links in bulk with a CSV of code and link for a panel provider (:mod:`sessions.fieldwork`)."""

from __future__ import annotations

import streamlit as st
from sqlalchemy.exc import IntegrityError

from dashboard.consent import participant_base_url
from dashboard.downloads import table_bytes
from dashboard.resources import get_engine
from dashboard.store import database_errors_shown, page_session
from dashboard.tags import parse_tags
from dashboard.text import escape_markdown
from sessions.db import session_scope
from sessions.fieldwork import (
    MAX_LINKS,
    ConsentFields,
    connected_sessions,
    consent_versions,
    create_participant_links,
    current_consent,
    get_completion_url,
    links_table,
    set_completion_url,
    set_consent_text,
    study_links,
)

#: What each part of the consent text asks for (the text areas' placeholders).
CONSENT_HINTS = {
    "purpose": "What this session is for and what is measured (facial expressions from the webcam; no video kept).",
    "controller": "Who holds the data: the organisation responsible, and where the data are stored.",
    "retention": "How long the data are kept, and when they are deleted.",
    "contact": "Whom to ask: a name and an e-mail address.",
    "withdrawal": "How to withdraw consent and have the data deleted (quote the participant code).",
}
#: What a researcher reads when another save of the study's consent text took the same version number first.
CONSENT_RACE_TEXT = ("Someone else saved this study's consent text at the same moment, so yours was not saved. "
                     "Reload the page to see their version, then make your change again.")  # fmt: skip
#: What the page says when it does not know its own address (the links in the CSV are then relative).
RELATIVE_LINKS_TEXT = ("This page does not know its own web address, so the links in the CSV are relative "
                       "(/?join=...): put the dashboard's address (e.g. https://fer.example.org) in front of each "
                       "before handing them to a panel.")  # fmt: skip
#: ``st.session_state`` key prefix of the links made last on this page, per study.
LINKS_KEY = "fw_links_"


def fieldwork_section(study_id: int) -> None:
    """Render the section for ``study_id``: consent text, completion URL, participant links."""
    with st.expander("Fieldwork: consent text, completion URL, participant links"):
        _consent_form(study_id)
        _completion_form(study_id)
        _links_form(study_id)


def _consent_form(study_id: int) -> None:
    with page_session() as db:
        consent = current_consent(db, study_id)
        versions = len(consent_versions(db, study_id))
    st.markdown("**Consent text** (shown to every participant of this study before the camera starts)")
    if consent.version is None:
        st.caption("No consent text yet: participants see the platform's generic text. Fill in every part.")
    else:
        st.caption(f"Version {consent.version} of {versions}, saved {consent.created_at:%Y-%m-%d %H:%M} UTC. Saving a "
                   "change makes a new version; each consent stores the version it was given to.")  # fmt: skip
    if st.session_state.pop(f"fw_consent_saved_{study_id}", None) == consent.version and consent.version:
        st.success(f"Consent text version {consent.version} saved.")
    current = consent.text
    with st.form(f"fw_consent_{study_id}"):
        values = {}
        for name, heading in ConsentFields.HEADINGS.items():
            values[name] = st.text_area(heading, value=getattr(current, name) if current else "",
                                        placeholder=CONSENT_HINTS[name], key=f"fw_consent_{study_id}_{consent.version}_{name}")  # fmt: skip
        saved = st.form_submit_button("Save consent text")
    if saved:
        try:
            with database_errors_shown():
                try:
                    with session_scope(get_engine()) as db:
                        after = set_consent_text(db, study_id, ConsentFields(**values))
                except IntegrityError:  # the (study, version) constraint: another save took this version first
                    st.error(CONSENT_RACE_TEXT)
                    return
        except ValueError as exc:
            st.error(escape_markdown(exc))
            return
        if after.version == consent.version:
            st.info("The consent text is unchanged; no new version was made.")
        else:  # the form is drawn again with the new version's keys and values; the message survives the rerun
            st.session_state[f"fw_consent_saved_{study_id}"] = after.version
            st.rerun()


def _completion_form(study_id: int) -> None:
    with page_session() as db:
        stored = get_completion_url(db, study_id) or ""
    st.markdown("**Completion URL** (where a participant who finishes is sent; `{code}` becomes their code)")
    url = st.text_input("Completion URL", value=stored, key=f"fw_completion_{study_id}",
                        placeholder="https://panel.example.org/complete?rid={code}")  # fmt: skip
    if st.button("Save completion URL", key=f"fw_completion_save_{study_id}", disabled=url.strip() == stored):
        try:
            with page_session() as db:
                after = set_completion_url(db, study_id, url)
        except ValueError as exc:
            st.error(escape_markdown(exc))
            return
        st.success("Completion URL saved." if after else "Completion URL removed: finished participants stay on the page.")


def _links_form(study_id: int) -> None:
    st.markdown("**Participant links** (one new session per link, with a random participant code)")
    with st.form(f"fw_links_form_{study_id}"):
        count = st.number_input("Number of links", min_value=1, max_value=MAX_LINKS, value=10, step=1,
                                key=f"fw_links_count_{study_id}")  # fmt: skip
        tags_text = st.text_input("Tags for these sessions", placeholder="panel=wave1", key=f"fw_links_tags_{study_id}")
        made = st.form_submit_button("Create links")
    if made:
        try:
            with page_session() as db:
                links = create_participant_links(db, study_id, int(count), tags=parse_tags(tags_text))
        except ValueError as exc:
            st.error(escape_markdown(exc))
            return
        st.session_state[f"{LINKS_KEY}{study_id}"] = links
        st.success(f"{len(links)} participant link{'s' if len(links) != 1 else ''} created.")
    base = participant_base_url()
    links = st.session_state.get(f"{LINKS_KEY}{study_id}")
    with page_session() as db:
        open_links = study_links(db, study_id)
    if not base and ((links is not None and len(links)) or len(open_links)):
        st.warning(RELATIVE_LINKS_TEXT)
    if links is not None and len(links):
        st.download_button("Download the new links (CSV)", table_bytes(links_table(links, base), ".csv"),
                           f"study_{study_id}_links.csv", "text/csv", key=f"fw_links_csv_{study_id}")  # fmt: skip
    if len(open_links):
        st.download_button(f"Download all {len(open_links)} open participant links (CSV)",
                           table_bytes(links_table(open_links, base), ".csv"), f"study_{study_id}_open_links.csv",
                           "text/csv", key=f"fw_links_all_csv_{study_id}")  # fmt: skip


#: Seconds between refreshes of the Record page's list of who is connected to the study.
CONNECTED_REFRESH_S = 2.0


@st.fragment(run_every=CONNECTED_REFRESH_S)
def connected_panel(study_id: int, current_session_id: int | None = None) -> None:
    """Who is connected to the study's sessions right now, from the store (every server's streams), refreshed
    every :data:`CONNECTED_REFRESH_S` seconds: participant code, who streams, since when (UTC)."""
    with page_session() as db:
        connected = connected_sessions(db, study_id)
    st.markdown(f"**Connected to this study now: {len(connected)}**")
    if connected.empty:
        st.caption("Nobody is streaming into this study's sessions.")
        return
    st.dataframe({
        "session": [f"#{i}" + (" (this one)" if i == current_session_id else "") for i in connected["session_id"]],
        "participant": list(connected["participant_code"]),
        "who": list(connected["stream_role"]),
        "since (UTC)": [t.strftime("%H:%M:%S") if t is not None else "-" for t in connected["stream_since"]],
    }, hide_index=True, key=f"rec_connected_{study_id}")  # fmt: skip
