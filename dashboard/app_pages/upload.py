"""Upload: analyse a recorded video into a new session, with a progress bar."""

from __future__ import annotations

from datetime import UTC, datetime

import streamlit as st

from dashboard.resources import get_engine, new_analyzer
from dashboard.store import database_errors_shown, page_session
from dashboard.tables import LAST_STUDY_KEY, default_study_index
from dashboard.tags import parse_tags
from dashboard.text import escape_markdown
from dashboard.uploads import import_upload
from sessions.errors import NoFaceFound
from sessions.repository import list_studies

#: What the uploader confirms before a video is analysed (stored with the session as the uploader's consent record).
CONSENT_CONFIRMATION = ("The person in this video gave informed consent to this analysis (the study's consent "
                        "text: purpose, who holds the data, how long it is kept, how to withdraw).")  # fmt: skip
#: File types offered by the uploader (what PyAV decodes in practice).
VIDEO_TYPES: tuple[str, ...] = ("mp4", "mov", "m4v", "avi", "mkv", "webm")

st.title("Upload a video")
with page_session() as db:
    study_names = [s.name for s in list_studies(db)] or ["pilot"]

with st.form("upload_form"):
    upload = st.file_uploader("Video", type=list(VIDEO_TYPES), key="upload_file")
    study = st.selectbox("Study", study_names, key="upload_study",
                         index=default_study_index(study_names, st.session_state.get(LAST_STUDY_KEY)))
    new_study = st.text_input("Or a new study", placeholder="name of a study to create", key="upload_study_name")
    participant = st.text_input("Participant code (empty: a random pseudonym)", key="upload_participant")
    tags_text = st.text_input("Tags", placeholder="variant=A", key="upload_tags")
    consented = st.checkbox(CONSENT_CONFIRMATION, key="upload_consent")
    submitted = st.form_submit_button("Analyse", type="primary")

if submitted:
    study = new_study.strip() or study
    if upload is None:
        st.warning("Choose a video file first.")
        st.stop()
    if not consented:
        st.warning("Tick the box confirming that the person in the video consented; nothing was analysed.")
        st.stop()
    try:
        tags = parse_tags(tags_text)
    except ValueError as exc:
        st.error(escape_markdown(exc))
        st.stop()
    from fer_core.video import VideoDecodeError

    shown = escape_markdown(upload.name)
    bar = st.progress(0.0, text=f"Analysing {shown}...")
    try:
        with database_errors_shown():
            result = import_upload(
                get_engine(),
                upload.name,
                upload.getvalue(),
                study=(study or "pilot").strip(),
                participant_code=participant.strip() or None,
                tags=tags,
                progress=lambda fraction: bar.progress(min(max(float(fraction), 0.0), 1.0), text=f"Analysing {shown}: {fraction:.0%}"),
                analyzer=new_analyzer(live=False),
                consent_at=datetime.now(UTC),  # stored with the session, with the study's consent text version
            )
    except VideoDecodeError as exc:
        bar.empty()
        st.error(f"{shown} could not be decoded as a video, so nothing was created. ({escape_markdown(exc)})")
        st.stop()
    except NoFaceFound:
        bar.empty()
        st.warning(f"No face was found anywhere in {shown}, so nothing was created.")
        st.stop()
    except ValueError as exc:
        bar.empty()
        st.error(escape_markdown(exc))
        st.stop()
    bar.progress(1.0, text="Done")
    st.session_state["rec_session_id"] = result.session_id
    st.session_state[LAST_STUDY_KEY] = (study or "pilot").strip()
    if result.warning:
        st.warning(f"Session #{result.session_id} was stored with what could be decoded, but the video looks "
                   f"truncated or damaged: {escape_markdown(result.warning)}.")  # fmt: skip
    st.success(f"Session #{result.session_id} created. Open it on the Review page.")
