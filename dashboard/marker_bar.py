"""Marker buttons of the Record page, stamped with the session time of the click itself.

A Streamlit button reaches the server only with the next script run, after whatever run is in progress (a
live panel refresh, a chart), and the newest analysed frame's time is later still: markers landed 0.6-2.4 s
late. Here the buttons are one two-way component (``st.components.v2``): the browser stamps each click with
its own clock (the event's creation time, ``performance.timeOrigin + event.timeStamp``), corrected by the offset between the browser's and the server's clocks (the smallest difference
seen between the server time sent with a render and the browser time at which the render arrived), and the
server turns that instant into session time with the session's ``started_at`` (the same UTC clock the camera
frames' capture times are on). The free-text field lives in the component too, so its first click counts.
"""

from __future__ import annotations

import time

import streamlit as st

from dashboard.resources import get_engine
from dashboard.text import escape_markdown
from sessions.db import session_scope
from sessions.repository import add_marker, get_session, load_markers

#: Marker buttons offered on the page (free text is offered beside them).
PRESET_MARKERS: tuple[str, ...] = ("stimulus start", "ad break", "boss fight", "stimulus end")
#: Longest marker label accepted from the component (the store's own limit is checked again there).
MAX_LABEL = 200

_HTML = """
<div class="fer-markers">
  <div class="fer-presets"></div>
  <div class="fer-free"><input type="text" maxlength="200" placeholder="Free-text marker" aria-label="Free-text marker">
  <button type="button" class="fer-add">Add marker</button></div>
</div>
"""

_CSS = """
.fer-markers { font-family: var(--st-font, sans-serif); }
.fer-presets, .fer-free { display: flex; flex-wrap: wrap; gap: 0.4rem; margin-bottom: 0.4rem; }
button { padding: 0.3rem 0.7rem; border-radius: 0.5rem; border: 1px solid var(--st-border-color, #ccc);
         background: var(--st-secondary-background-color, #f0f2f6); color: var(--st-text-color, #222); cursor: pointer; }
button:hover { border-color: var(--st-primary-color, #f63366); }
input { flex: 1; min-width: 10rem; padding: 0.3rem; border-radius: 0.5rem; border: 1px solid var(--st-border-color, #ccc); }
"""

# Clicks carry server-clock milliseconds: Date.now() minus the smallest (arrival - server time) offset seen.
_JS = """
export default function(component) {
  const { data, setTriggerValue, parentElement } = component;
  const arrival = Date.now();
  const key = "__ferClockOffset";
  const offset = arrival - data.server_ms;
  if (window[key] === undefined || offset < window[key]) { window[key] = offset; }
  // The click's own time (when the browser created the event, not when a busy page got round to handling it).
  const stamp = (event) => (event ? performance.timeOrigin + event.timeStamp : Date.now()) - window[key];
  const send = (label, event) => {
    label = (label || "").trim();
    if (!label) { return; }
    setTriggerValue("marker", { label: label, at_ms: stamp(event), nonce: Math.random().toString(36).slice(2) });
  };
  const presets = parentElement.querySelector(".fer-presets");
  presets.replaceChildren();
  for (const label of data.presets) {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = label;  // text, never HTML
    button.onclick = (event) => send(label, event);
    presets.appendChild(button);
  }
  const input = parentElement.querySelector("input");
  const add = parentElement.querySelector(".fer-add");
  add.onclick = (event) => { send(input.value, event); input.value = ""; };
  input.onkeydown = (event) => { if (event.key === "Enter") { add.onclick(event); } };
}
"""


@st.cache_resource(show_spinner=False)
def _component():
    return st.components.v2.component("fer_marker_bar", html=_HTML, css=_CSS, js=_JS)


def click_session_time(at_ms: float, started_at_s: float) -> float:
    """Session time (seconds) of a click at server-clock ``at_ms`` (ms since the epoch), never negative."""
    return max(0.0, float(at_ms) / 1000.0 - started_at_s)


@st.fragment
def marker_bar(session_id: int) -> None:
    """Marker buttons and the session's markers so far (rerun as a fragment: a click does not rerun the page)."""
    st.subheader("Markers")
    result = _component()(key=f"rec_marker_bar_{session_id}", data={"presets": list(PRESET_MARKERS),
                          "server_ms": time.time() * 1000.0}, on_marker_change=lambda: None)  # fmt: skip
    click = getattr(result, "marker", None)
    if click:
        label = str(click.get("label", ""))[:MAX_LABEL]
        seen = st.session_state.setdefault(f"rec_marker_nonces_{session_id}", set())
        if click.get("nonce") not in seen:
            seen.add(click.get("nonce"))
            with session_scope(get_engine()) as db:
                started = get_session(db, session_id).started_at
                if started is None:
                    st.warning("Markers stamp the session's time: start the camera first.")
                else:
                    try:
                        time_s = click_session_time(float(click["at_ms"]), started.timestamp())
                        add_marker(db, session_id, time_s, label)
                        st.toast(f"Marker {escape_markdown(label)} at {time_s:.1f} s")
                    except (ValueError, TypeError, KeyError) as exc:
                        st.warning(f"The marker was not added: {escape_markdown(exc)}")
    with session_scope(get_engine()) as db:
        placed = load_markers(db, session_id)
    if len(placed):
        st.dataframe(placed[["time_s", "label"]].rename(columns={"time_s": "session time (s)"}), hide_index=True,
                     key=f"rec_marker_table_{session_id}")  # fmt: skip
        st.caption("Rename or delete markers on the Review page.")
