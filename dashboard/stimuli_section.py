"""The Studies page's stimulus section: upload video stimuli, name external tasks, list and delete them, and set
the study's sequence (order fixed or randomised per participant, blank buffer between stimuli)."""

from __future__ import annotations

import tempfile
from pathlib import Path

import streamlit as st

from dashboard.resources import get_settings
from dashboard.store import page_session
from dashboard.text import escape_markdown
from sessions.stimuli import (
    DEFAULT_BUFFER_S,
    MAX_BUFFER_S,
    StimulusError,
    add_external_task,
    add_video_stimulus,
    delete_stimulus,
    get_sequence,
    list_stimuli,
    prune_media,
    set_sequence,
)

#: Suffixes the uploader accepts (browsers play MP4/H.264 and WebM).
UPLOAD_TYPES = ["mp4", "m4v", "webm"]


def stimulus_table(stimuli):
    """The stimuli as the page lists them: name, kind, duration (s), frame rate, size (pixels), file size (MB),
    whether sessions play it, and the task URL."""
    return {
        "name": list(stimuli["name"]),
        "kind": list(stimuli["kind"]),
        "duration (s)": [None if d != d or d is None else round(float(d), 2) for d in stimuli["duration_s"]],
        "fps": [None if f != f or f is None else round(float(f), 2) for f in stimuli["fps"]],
        "size (px)": ["" if w != w or w is None else f"{int(w)}x{int(h)}" for w, h in zip(stimuli["width"], stimuli["height"], strict=True)],
        "file (MB)": [None if b != b or b is None else round(float(b) / 1e6, 2) for b in stimuli["size_bytes"]],
        "in sequence": list(stimuli["in_sequence"]),
        "URL": ["" if u is None else u for u in stimuli["url"]],
    }  # fmt: skip


def stimulus_section(study_id: int) -> None:
    """Render the study's stimuli, their upload and deletion, and the sequence form."""
    media_dir = get_settings().media_dir
    with page_session() as db:
        stimuli = list_stimuli(db, study_id)
        order, buffer_s, in_sequence = get_sequence(db, study_id)
        sequence_ids = [s.id for s in in_sequence]
    st.subheader(f"Stimuli ({len(stimuli)})")
    if len(stimuli):
        st.dataframe(stimulus_table(stimuli), hide_index=True, width="stretch", key=f"studies_stimuli_{study_id}")
    else:
        st.caption("No stimulus yet. Upload the videos participants watch in the page (their expressions are then "
                   "shown on each video's own timeline), or name an external task whose timing comes from markers.")  # fmt: skip
    with st.expander("Add a video stimulus"):
        upload = st.file_uploader("Video (MP4 with H.264, or WebM; with sound)", type=UPLOAD_TYPES,
                                  key=f"studies_stim_file_{study_id}")  # fmt: skip
        name = st.text_input("Name", key=f"studies_stim_name_{study_id}",
                             placeholder="e.g. Trailer v2 (default: the file name)")  # fmt: skip
        if st.button("Add video", key=f"studies_stim_add_{study_id}", disabled=upload is None):
            _add_video(study_id, upload, name.strip() or Path(upload.name).stem, media_dir)
    with st.expander("Add an external task (a game or web page; timing from markers)"):
        task = st.text_input("Name", key=f"studies_task_name_{study_id}")
        url = st.text_input("URL", key=f"studies_task_url_{study_id}", placeholder="https://...")
        if st.button("Add task", key=f"studies_task_add_{study_id}"):
            try:
                with page_session() as db:
                    add_external_task(db, study_id, task, url)
                st.rerun()
            except StimulusError as exc:
                st.error(escape_markdown(exc))
    if not len(stimuli):
        return
    names = dict(zip(stimuli["stimulus_id"].astype(int), stimuli["name"], strict=True))
    videos = [int(i) for i, kind in zip(stimuli["stimulus_id"], stimuli["kind"], strict=True) if kind == "video"]
    with st.expander("Sequence: what each session plays"):
        chosen = st.multiselect("Videos, in playing order", videos, default=[i for i in sequence_ids if i in videos],
                                format_func=names.get, key=f"studies_seq_ids_{study_id}")  # fmt: skip
        random_order = st.radio("Order", ["fixed", "random"], index=0 if order == "fixed" else 1, horizontal=True,
                                key=f"studies_seq_order_{study_id}",
                                help="random: each participant gets an order drawn once and stored")  # fmt: skip
        buffer = st.number_input("Blank between videos (s)", min_value=0.0, max_value=MAX_BUFFER_S,
                                 value=float(buffer_s if buffer_s is not None else DEFAULT_BUFFER_S), step=0.5,
                                 key=f"studies_seq_buffer_{study_id}")  # fmt: skip
        st.caption("Sessions whose order was already drawn keep it.")
        if st.button("Save sequence", key=f"studies_seq_save_{study_id}"):
            try:
                with page_session() as db:
                    set_sequence(db, study_id, chosen, order=random_order, buffer_s=buffer)
                st.success("Sequence saved.")
            except StimulusError as exc:
                st.error(escape_markdown(exc))
    with st.expander("Delete a stimulus"):
        doomed = st.selectbox("Stimulus", list(names), format_func=names.get, key=f"studies_stim_delete_id_{study_id}")
        sure = st.checkbox("I understand that this deletes the stimulus file; sessions keep its name and their rows.",
                           key=f"studies_stim_delete_sure_{study_id}")  # fmt: skip
        if st.button("Delete stimulus", disabled=not sure, type="primary", key=f"studies_stim_delete_{study_id}"):
            try:
                with page_session() as db:
                    delete_stimulus(db, doomed)
                with page_session() as db:  # after the commit: the file goes only once no row names it
                    prune_media(db, media_dir)
            except StimulusError as exc:
                st.error(escape_markdown(exc))
                return
            st.session_state.pop(f"studies_stim_delete_sure_{study_id}", None)
            st.rerun()


def _add_video(study_id: int, upload, name: str, media_dir: str | None) -> None:
    """Probe and store an uploaded video with a progress bar; a refused file says why."""
    bar = st.progress(0.0, text="Reading the video...")
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / f"upload{Path(upload.name).suffix.lower()}"
        path.write_bytes(upload.getbuffer())
        try:
            with page_session() as db:
                stimulus = add_video_stimulus(db, study_id, name, path, media_dir=media_dir,
                                              progress=lambda f: bar.progress(f, text=f"Reading the video: {f:.0%}"))  # fmt: skip
                summary = f"{stimulus.duration_s:.1f} s, {stimulus.fps:.2f} fps, {stimulus.width}x{stimulus.height}"
        except StimulusError as exc:
            bar.empty()
            st.error(escape_markdown(str(exc).replace(path.name, upload.name)))
            return
    bar.empty()
    st.toast(f"Added {escape_markdown(name)} ({summary}).")
    st.rerun()
