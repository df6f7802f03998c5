"""External tasks on the participant link: a game or web page the study names instead of a video to play.

The platform cannot see inside another site, so a task's timing comes from markers: the researcher's marker bar
(Record page) as before, and two buttons here that the participant presses when starting and finishing the task,
each stored as a marker (``"task start: NAME"``, ``"task end: NAME"``) at the server's time of the click in
session seconds. That time is the click's arrival at the server, so a marker lands late by the browser-to-server
delay (milliseconds on a LAN, a network delay remotely), unlike the marker bar, which stamps the browser's clock.
The task opens in a new tab (a link button), so this page and its camera keep running.
"""

from __future__ import annotations

import time

import streamlit as st

from dashboard.resources import get_engine
from dashboard.text import escape_markdown
from sessions.db import session_scope
from sessions.repository import add_marker, get_session
from sessions.stimuli import list_stimuli
from sessions.validation import MARKER_LABEL_MAX

#: Marker labels the participant's buttons store (``.format(name=...)``; cut to the marker label limit).
START_LABEL = "task start: {name}"
END_LABEL = "task end: {name}"

INSTRUCTIONS = ("Press **I am starting** just before you begin, then open the task: it opens in a new tab. Keep "
                "this tab open, so that your camera keeps running, and come back to press **I have finished** "
                "when you are done.")  # fmt: skip


def session_tasks(session_id: int) -> list[tuple[int, str, str]]:
    """The external tasks of the session's study, in the study's order: ``(stimulus id, name, url)``.

    Raises
    ------
    sessions.errors.SessionNotFound
        Unknown session.
    """
    with session_scope(get_engine()) as db:
        stimuli = list_stimuli(db, get_session(db, session_id).study_id)
    tasks = stimuli[stimuli["kind"] == "external"]
    return [(int(t.stimulus_id), str(t.name), str(t.url)) for t in tasks.itertuples()]


def task_marker_label(template: str, name: str) -> str:
    """``template`` (:data:`START_LABEL`, :data:`END_LABEL`) with the task's name, at most the marker label limit
    (``sessions.validation.MARKER_LABEL_MAX`` characters: a long name is cut)."""
    return template.format(name=name)[:MARKER_LABEL_MAX]


def _stamp(session_id: int, label: str) -> None:
    """Store marker ``label`` at the server's time now, in session seconds; a message says what happened."""
    with session_scope(get_engine()) as db:
        started = get_session(db, session_id).started_at
        if started is None:
            st.warning("Turn your camera on first (START above): the task's time is measured from it.")
            return
        time_s = max(0.0, time.time() - started.timestamp())
        add_marker(db, session_id, time_s, label)
    st.success(f"Noted: {escape_markdown(label)}.")


def external_tasks(session_id: int, prefix: str) -> None:
    """Each external task of the session's study: its name, the instructions, a button opening it in a new tab
    and the start and finish buttons (markers). Nothing when the study has none.

    Parameters
    ----------
    session_id : int
    prefix : str
        The page's key prefix (``"part"``).
    """
    tasks = session_tasks(session_id)
    if not tasks:
        return
    st.subheader("Your task" if len(tasks) == 1 else "Your tasks")
    st.markdown(INSTRUCTIONS)
    for stimulus_id, name, url in tasks:
        with st.container(border=True):
            st.markdown(f"**{escape_markdown(name)}**")
            start, link, end = st.columns(3)
            if start.button("I am starting", key=f"{prefix}_task_start_{session_id}_{stimulus_id}"):
                _stamp(session_id, task_marker_label(START_LABEL, name))
            link.link_button("Open the task (new tab)", url)
            if end.button("I have finished", key=f"{prefix}_task_end_{session_id}_{stimulus_id}"):
                _stamp(session_id, task_marker_label(END_LABEL, name))
