"""Studies: list, create, describe, rename and delete studies; list a study's sessions; delete a session."""

from __future__ import annotations

import streamlit as st

from dashboard.downloads import table_bytes
from dashboard.fieldwork_section import fieldwork_section
from dashboard.resources import get_settings
from dashboard.stimuli_section import stimulus_section
from dashboard.store import page_session
from dashboard.tables import LAST_STUDY_KEY, session_table
from dashboard.text import escape_markdown
from sessions.repository import create_study, delete_session, delete_study, list_sessions, list_studies, rename_study
from sessions.stimuli import prune_media
from sessions.study_export import study_table

st.title("Studies")

with st.expander("New study", expanded=False):
    with st.form("studies_new", clear_on_submit=True):
        name = st.text_input("Name", key="studies_new_name")
        description = st.text_area("Description", key="studies_new_description")
        if st.form_submit_button("Create study"):
            try:
                with page_session() as db:
                    create_study(db, name.strip(), description.strip())
                st.success(f"Study '{escape_markdown(name.strip())}' created.")
            except ValueError as exc:
                st.error(escape_markdown(exc))

with page_session() as db:
    studies = [(s.id, s.name, s.description, s.created_at) for s in list_studies(db)]
if not studies:
    st.info("No study yet: create one above, or start recording on the Record page.")
    st.stop()

names = {study_id: name for study_id, name, _, _ in studies}
study_id = st.selectbox("Study", list(names), format_func=names.get, key="studies_study")
_, _, description, created_at = next(s for s in studies if s[0] == study_id)
st.caption(f"Created {created_at:%Y-%m-%d %H:%M} UTC. {escape_markdown(description)}")

with st.expander("Rename or delete this study"):
    new_name = st.text_input("New name", value=names[study_id], key=f"studies_rename_{study_id}")
    if st.button("Rename study", key="studies_rename", disabled=new_name.strip() == names[study_id]):
        try:
            with page_session() as db:
                rename_study(db, study_id, new_name)
            st.session_state[LAST_STUDY_KEY] = new_name.strip()
            st.rerun()
        except (ValueError, LookupError) as exc:
            st.error(escape_markdown(exc))
    sure = st.checkbox("I understand that this deletes the study, all its sessions and their observations.",
                       key=f"studies_delete_study_sure_{study_id}")  # fmt: skip
    if st.button("Delete study", disabled=not sure, type="primary", key="studies_delete_study"):
        try:
            with page_session() as db:
                n = delete_study(db, study_id)
            with page_session() as db:  # the study's stimulus files, once no row names them (after the commit)
                prune_media(db, get_settings().media_dir)
        except (ValueError, LookupError) as exc:  # a session still recording (SessionBusy), or gone meanwhile
            st.error(escape_markdown(exc))
            st.stop()
        st.session_state.pop("studies_study", None)
        st.success(f"Study deleted with {n} session{'s' if n != 1 else ''}.")
        st.rerun()

stimulus_section(study_id)
fieldwork_section(study_id)

with st.expander("Export the whole study"):
    st.caption("One file with every session's rows, each led by session, participant, study, status, consent time "
               "and tags; per frame or per second (with the analysed frames per bin).")  # fmt: skip
    per_second = st.toggle("Per second instead of per frame", value=True, key="studies_export_bins")
    if st.button("Prepare the export", key="studies_export"):
        bar = st.progress(0.0, text="Reading the sessions...")
        with page_session() as db:
            table = study_table(db, study_id, per_second=per_second,
                                progress=lambda f: bar.progress(f, text=f"Reading the sessions: {f:.0%}"))  # fmt: skip
        bar.empty()
        kind = "seconds" if per_second else "frames"
        cols = st.columns(2)
        cols[0].download_button("CSV", table_bytes(table, ".csv"), f"study_{study_id}_{kind}.csv", "text/csv",
                                key="studies_export_csv")  # fmt: skip
        cols[1].download_button("Parquet", table_bytes(table, ".parquet"), f"study_{study_id}_{kind}.parquet",
                                "application/octet-stream", key="studies_export_parquet")  # fmt: skip

with page_session() as db:
    sessions = list_sessions(db, study_id=study_id)
st.subheader(f"Sessions ({len(sessions)})")
if sessions.empty:
    st.info("This study has no session yet.")
    st.stop()
st.dataframe(session_table(sessions), hide_index=True, width="stretch", key="studies_sessions")

with st.expander("Delete a session"):
    labels = {int(r.session_id): f"#{r.session_id} {r.participant_code} ({r.status})" for r in sessions.itertuples()}
    doomed = st.selectbox("Session", list(labels), format_func=labels.get, key="studies_delete_id")
    sure = st.checkbox("I understand that this deletes the session and all its observations.", key="studies_delete_sure")
    if st.button("Delete session", disabled=not sure, type="primary", key="studies_delete"):
        try:
            with page_session() as db:
                delete_session(db, doomed)
        except (ValueError, LookupError) as exc:  # still recording (SessionBusy), or deleted meanwhile
            st.error(escape_markdown(exc))
            st.stop()
        st.session_state.pop("studies_delete_sure", None)
        st.success(f"Session #{doomed} deleted.")
        st.rerun()
