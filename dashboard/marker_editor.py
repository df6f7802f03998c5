"""The marker editor of the Review page: list a session's markers, add one, rename or delete one.

Works for every session, live or uploaded, finished or still recording; the changes go through the repository
(:func:`sessions.repository.add_marker`, :func:`~sessions.repository.update_marker`,
:func:`~sessions.repository.delete_marker`), and the page is run again so that its charts show them.
"""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import streamlit as st

from dashboard.store import page_session
from dashboard.text import escape_markdown
from sessions.errors import MarkerNotFound, SessionNotFound
from sessions.repository import add_marker, delete_marker, update_marker
from sessions.validation import MARKER_LABEL_MAX


def marker_table(markers: pd.DataFrame) -> pd.DataFrame:
    """The markers of :func:`sessions.repository.load_markers` as shown: ``time (s)``, ``label``, ``note``.

    Parameters
    ----------
    markers : pandas.DataFrame
        Columns ``marker_id``, ``time_s`` (s), ``label``, ``note``.

    Returns
    -------
    pandas.DataFrame
        One row per marker, in the given order; time rounded to 0.01 s.
    """
    return pd.DataFrame({"time (s)": markers["time_s"].astype(float).round(2), "label": markers["label"],
                         "note": markers["note"]})  # fmt: skip


def _apply(change: Callable, done: str, key: str) -> None:
    """Run ``change(db)`` in one transaction; on success remember ``done`` and rerun, else show why."""
    try:
        with page_session() as db:
            change(db)
    except (ValueError, MarkerNotFound, SessionNotFound) as exc:
        st.error(escape_markdown(exc))
        return
    st.session_state[f"{key}_marker_done"] = done
    st.rerun()


def marker_editor(session_id: int, markers: pd.DataFrame, *, key: str = "review") -> None:
    """Draw the marker table and the add, rename and delete controls of one session.

    Parameters
    ----------
    session_id : int
        The session.
    markers : pandas.DataFrame
        Its markers (:func:`sessions.repository.load_markers`).
    key : str, default "review"
        Prefix of the widget keys (``review_marker_time``, ``review_marker_label``, ``review_marker_pick``,
        ``review_marker_new_label``, ``review_marker_rename``, ``review_marker_delete``).
    """
    st.subheader("Markers")
    done = st.session_state.pop(f"{key}_marker_done", None)
    if done:
        st.success(escape_markdown(done))
    if markers.empty:
        st.caption("No marker yet.")
    else:
        st.dataframe(marker_table(markers), hide_index=True, key=f"{key}_markers")
    with st.form(f"{key}_marker_add", clear_on_submit=True):
        cols = st.columns([1, 3])
        time_s = cols[0].number_input("Time (s)", min_value=0.0, value=0.0, step=0.5, format="%.2f", key=f"{key}_marker_time")
        label = cols[1].text_input("Label", max_chars=MARKER_LABEL_MAX, key=f"{key}_marker_label")
        added = st.form_submit_button("Add marker")
    if added:
        _apply(lambda db: add_marker(db, session_id, time_s, label), f"Marker '{label.strip()}' added at {time_s:.2f} s.", key)
    if markers.empty:
        return
    options = {int(r.marker_id): f"{r.time_s:.2f} s · {r.label}" for r in markers.itertuples()}
    chosen = st.selectbox("Marker", list(options), format_func=options.get, key=f"{key}_marker_pick")
    new_label = st.text_input("New label", max_chars=MARKER_LABEL_MAX, key=f"{key}_marker_new_label")
    cols = st.columns(2)
    if cols[0].button("Rename marker", disabled=not new_label.strip(), key=f"{key}_marker_rename"):
        _apply(lambda db: update_marker(db, chosen, label=new_label), f"Marker renamed to '{new_label.strip()}'.", key)
    if cols[1].button("Delete marker", key=f"{key}_marker_delete"):
        _apply(lambda db: delete_marker(db, chosen), "Marker deleted.", key)
