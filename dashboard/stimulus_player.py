"""The stimulus player of the participant link and the Record page: a face check, a Start button, then the
session's sequence of videos with blanks between, its playback events stored through :mod:`sessions.playback`.

One two-way component (``st.components.v2``, inline HTML/JS; no polling of the page): the browser plays the
videos itself (full width, sound on, no controls, so nothing can be skipped) and reports each media event with
its own clock; Python stores them. The Start button lives in the component, so the click that starts the first
video is the user gesture browsers ask for before playing sound (later videos start after a blank, on the same
page; a browser that still refuses says so and offers a Play button). Every render carries the server's clock
(``server_ms``), from which the page keeps its clock offset (see :mod:`sessions.playback` for how events get
session time and the error of that).

Media. The video file is served by Streamlit's own media endpoint (what ``st.video`` uses:
``/media/<hash>.<ext>``, with HTTP range requests), registered for this browser session only while the page
shows the player. The address is a hash of the file's content, so it cannot be guessed, and it works for a
participant link without a sign-in; nothing of the media folder is exposed.
"""

from __future__ import annotations

import logging
import time

import streamlit as st

from dashboard.resources import get_engine, get_settings
from sessions.db import session_scope
from sessions.playback import load_events, record_events
from sessions.stimuli import StimulusError, get_stimulus, session_sequence, stimulus_file

logger = logging.getLogger(__name__)

#: Seconds without a face before the face check shows its hint.
NO_FACE_HINT_S = 3.0
#: Seconds between the player's refreshes (face check, server clock for the offset).
REFRESH_S = 1.0
#: What the page says once the sequence is over, by page (key prefix): a participant link's participant ends the
#: session themselves (the completion link, where the study has one, appears once it has ended); in the lab the
#: researcher does.
FINAL_TEXTS = {
    "part": ("The video is over. Thank you! Press STOP above to finish the session; if you came from a panel, "
             "the link back to it appears on this page once the session has ended."),
    "rec": "The video is over. Thank you! Please wait for the researcher's instructions.",
}  # fmt: skip

_HTML = '<div class="fer-player"></div>'

_CSS = """
.fer-player { font-family: var(--st-font, sans-serif); color: var(--st-text-color, #222); }
.fer-stage { position: relative; width: 100%; background: #000; display: none; }
.fer-stage video { width: 100%; max-height: 85vh; display: block; background: #000; }
.fer-overlay { position: absolute; inset: 0; display: none; align-items: center; justify-content: center;
               flex-direction: column; gap: 0.75rem;
               color: #fff; background: rgba(0,0,0,0.6); font-size: 1.2rem; text-align: center; padding: 1rem; }
.fer-blank { width: 100%; aspect-ratio: 16 / 9; background: #000; display: none; }
.fer-check { margin: 0.5rem 0; }
.fer-check.ok { color: #1a7f37; } .fer-check.hint { color: #b35900; }
button { padding: 0.5rem 1.2rem; border-radius: 0.5rem; border: 1px solid var(--st-border-color, #ccc);
         background: var(--st-primary-color, #f63366); color: #fff; font-size: 1rem; cursor: pointer; }
button:disabled { opacity: 0.45; cursor: not-allowed; }
.fer-message { margin: 0.5rem 0; }
"""

# The player's state lives on its root element, so a re-render (new data every second) never restarts a video.
_JS = """
export default function(component) {
  const { data, setStateValue, parentElement } = component;
  // one clock for everything: the page's monotonic clock on the epoch (the one event.timeStamp is on); Date.now()
  // may be stepped (NTP, a user's clock change) after the page loaded
  const now = () => performance.timeOrigin + performance.now();
  const arrival = now();
  const root = parentElement.querySelector(".fer-player");
  let p = root.__fer;
  if (!p) {
    p = root.__fer = { events: [], seq: 0, offset: undefined, started: false, index: -1, finished: false,
                       pageId: Math.random().toString(36).slice(2, 12) + Date.now().toString(36) };
    root.innerHTML = '<div class="fer-check"></div><button type="button" class="fer-start">Start</button>' +
      '<div class="fer-blank"></div><div class="fer-stage"><video playsinline preload="auto" ' +
      'disablepictureinpicture controlslist="nodownload noplaybackrate noremoteplayback"></video>' +
      '<div class="fer-overlay"></div></div><div class="fer-message"></div>';
    p.video = root.querySelector("video");
    p.video.oncontextmenu = (e) => e.preventDefault();
    const send = (kind, event) => {
      const item = p.items[p.index];
      const client = event && event.timeStamp ? performance.timeOrigin + event.timeStamp : now();
      p.events.push({ kind: kind, position: item ? item.position : null, media_time_s: p.video.currentTime || 0,
                      client_ms: client, perf_ms: performance.now(), offset_ms: p.offset === undefined ? null : p.offset,
                      page_id: p.pageId, seq: p.seq++ });
      setStateValue("events", p.events.slice());
    };
    p.send = send;
    const overlay = root.querySelector(".fer-overlay");
    const message = (text) => { root.querySelector(".fer-message").textContent = text || ""; };
    const showOverlay = (text, button) => {
      overlay.replaceChildren();
      if (!text) { overlay.style.display = "none"; return; }
      const span = document.createElement("div");
      span.textContent = text;
      overlay.appendChild(span);
      if (button) { overlay.appendChild(button); }  // under the text (a column)
      overlay.style.display = "flex";
    };
    let stallTimer = null;
    const play = () => {
      p.video.play().catch((error) => {
        if (error && error.name === "NotAllowedError") {
          send("blocked");
          const button = document.createElement("button");
          button.type = "button";
          button.textContent = "Play the video";
          button.onclick = () => { showOverlay(null); play(); };
          showOverlay("Your browser did not start the video by itself. Click to play it (with sound).", button);
        }
      });
    };
    const next = () => {
      p.index += 1;
      const stage = root.querySelector(".fer-stage"), blank = root.querySelector(".fer-blank");
      showOverlay(null);
      while (p.index < p.items.length && p.done.includes(p.items[p.index].position)) { p.index += 1; }
      if (p.index >= p.items.length) {
        p.finished = true; stage.style.display = "none"; blank.style.display = "none";
        message(p.finalText);
        return;
      }
      const item = p.items[p.index];
      if (item.missing || !item.src) {
        send("missing");
        message("One video of this session is no longer available; the session continues with the next one.");
        setTimeout(next, 3000);
        return;
      }
      const go = () => {
        message("");
        blank.style.display = "none"; stage.style.display = "block";
        p.video.src = item.src; p.video.load(); play();
      };
      if (item.buffer_s > 0 && p.playedOne) {
        stage.style.display = "none"; blank.style.display = "block";
        send("blank");
        setTimeout(go, item.buffer_s * 1000);
      } else { go(); }
      p.playedOne = true;
    };
    p.video.addEventListener("timeupdate", (event) => {  // an anchor of the map at most once a second
      if (!p.video.paused && performance.now() - (p.lastAnchor || 0) >= 1000) { p.lastAnchor = performance.now(); send("timeupdate", event); }
    });
    for (const kind of ["play", "playing", "pause", "waiting", "stalled", "seeking", "seeked", "ended", "error"]) {
      p.video.addEventListener(kind, (event) => {
        if (kind === "playing") { p.lastAnchor = performance.now(); }
        send(kind, event);
        if (kind === "seeked" && !p.video.paused) { send("playing", event); }
        if (kind === "waiting") {
          clearTimeout(stallTimer);
          stallTimer = setTimeout(() => showOverlay("The video is loading; it continues in a moment."), 1000);
        }
        if (kind === "playing") {
          clearTimeout(stallTimer); showOverlay(null);
          if (p.scrolledFor !== p.index) {  // the camera preview sits above: the video takes the screen
            p.scrolledFor = p.index;
            root.querySelector(".fer-stage").scrollIntoView({ block: "start" });
          }
        }
        if (kind === "ended") { next(); }
        if (kind === "error") {
          message("This video cannot be played in this browser; the session continues with the next one.");
          setTimeout(next, 3000);
        }
      });
    }
    root.querySelector(".fer-start").onclick = (event) => {
      if (p.started || !p.ready) { return; }
      p.started = true;
      root.querySelector(".fer-start").style.display = "none";
      root.querySelector(".fer-check").style.display = "none";
      send("start", event);
      next();
    };
  }
  const offset = arrival - data.server_ms;
  if (p.offset === undefined || offset < p.offset) { p.offset = offset; }
  if (!p.started) {  // the sequence is fixed at the Start click
    p.items = data.items; p.done = data.done; p.finalText = data.final_text;
  }
  if (!p.readySent) { p.readySent = true; p.send("ready"); }  // a new page load: ends any run of an earlier one
  p.ready = !!data.ready;
  const check = root.querySelector(".fer-check"), start = root.querySelector(".fer-start");
  if (!p.started) {
    check.textContent = data.check;
    check.className = "fer-check " + (data.ready ? "ok" : "hint");
    start.disabled = !data.ready;
    start.textContent = data.start_label;
  }
}
"""


@st.cache_resource(show_spinner=False)
def _component():
    return st.components.v2.component("fer_stimulus_player", html=_HTML, css=_CSS, js=_JS)


def face_check(streaming: bool, faces: int, no_face_s: float | None) -> tuple[bool, str]:
    """Whether the Start button is offered, and what the participant reads above it.

    Parameters
    ----------
    streaming : bool
        The camera's frames are being analysed.
    faces : int
        Faces in the newest analysed frame.
    no_face_s : float or None
        Seconds since a face was last found (since streaming began when none was found yet).

    Returns
    -------
    tuple of (bool, str)
        ``(ready, text)``: ready once a face is seen in the newest frame; the text says what to do.
    """
    if not streaming:
        return False, "Turn your camera on (START above): we first check that we can see your face."
    if faces > 0:
        return True, "We can see your face. Press Start when you are ready: the video plays with sound."
    if no_face_s is not None and no_face_s >= NO_FACE_HINT_S:
        return False, ("We cannot see your face. Sit facing the screen with light on your face, and keep your whole "
                       "face inside the camera image.")  # fmt: skip
    return False, "Checking that we can see your face..."


def final_text(prefix: str) -> str:
    """The text shown when the sequence is over on the page ``prefix`` (``"part"``: a participant link, told to
    press STOP; any other: the Record page's in-lab text)."""
    return FINAL_TEXTS.get(prefix, FINAL_TEXTS["rec"])


def media_url(path, mime_type: str, key: str) -> str | None:
    """Serve ``path`` to this browser session through Streamlit's media endpoint; None where there is no runtime.

    Registering reads and hashes the whole file, so it is done in full script runs only (they drop the files a
    run did not register); the player's own once-a-second fragment reruns, which keep them, reuse the address.
    """
    from streamlit import runtime
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    if not runtime.exists():
        return None
    ctx = get_script_run_ctx()
    known = st.session_state.setdefault("stimulus_player_media", {})
    if ctx is not None and ctx.fragment_ids_this_run and (key, str(path)) in known:
        return known[(key, str(path))]
    try:
        url = runtime.get_instance().media_file_mgr.add(str(path), mime_type, key)
    except Exception:  # the file vanished or cannot be read: the player says the video is not available
        logger.exception("stimulus file %s cannot be served", path)
        return None
    known[(key, str(path))] = url
    return url


def _items(session_id: int) -> tuple[list[dict], list[int]]:
    """The session's order as the player's items, and the positions already played to their end."""
    media_dir = get_settings().media_dir
    with session_scope(get_engine()) as db:
        sequence = session_sequence(db, session_id)
        events = load_events(db, session_id)
        items = []
        for item in sequence:
            src = None
            if item.stimulus_id is not None:
                try:
                    stimulus = get_stimulus(db, item.stimulus_id)
                    path = stimulus_file(stimulus, media_dir)
                    if path is not None:
                        src = media_url(path, stimulus.mime_type or "video/mp4", f"fer_stimulus.{stimulus.id}")
                except StimulusError:
                    src = None
            items.append({"position": item.position, "buffer_s": item.buffer_s, "src": src, "missing": src is None})
    done = sorted({int(p) for p in events.loc[events["kind"] == "ended", "position"].dropna()}) if len(events) else []
    return items, done


def has_sequence(session_id: int) -> bool:
    """Whether the session's study has video stimuli to play (drawing the session's order if needed)."""
    with session_scope(get_engine()) as db:
        return bool(session_sequence(db, session_id))


@st.fragment(run_every=REFRESH_S)
def stimulus_player(session_id: int, prefix: str) -> None:
    """The face check, the Start button and the player of ``session_id`` (refreshed every second as a fragment).

    Parameters
    ----------
    session_id : int
    prefix : str
        The page's key prefix (``"part"``, ``"rec"``); the page's live stream is ``st.session_state[prefix +
        "_stream_<id>"]``.
    """
    stream = st.session_state.get(f"{prefix}_stream_{session_id}")
    streaming = stream is not None and stream.session.state == "streaming"
    snap = stream.snapshot() if streaming else None
    now = time.monotonic()
    seen_key = f"{prefix}_player_face_{session_id}"
    if snap is not None and (snap.faces > 0 or seen_key not in st.session_state):
        st.session_state[seen_key] = now
    if not streaming:
        st.session_state.pop(seen_key, None)
    ready, check = face_check(streaming, snap.faces if snap else 0, now - st.session_state[seen_key] if streaming else None)
    items, done = _items(session_id)
    if not items:
        return
    data = {"server_ms": time.time() * 1000.0, "ready": ready, "check": check, "items": items, "done": done,
            "start_label": "Continue" if done else "Start",
            "final_text": final_text(prefix)}  # fmt: skip
    result = _component()(key=f"{prefix}_player_{session_id}", data=data, on_events_change=lambda: None)
    events = getattr(result, "events", None) or []
    stored_key = f"{prefix}_player_stored_{session_id}"
    if events and st.session_state.get(stored_key) != len(events):
        try:
            with session_scope(get_engine()) as db:
                record_events(db, session_id, list(events))
            st.session_state[stored_key] = len(events)  # on failure the next refresh stores them
        except Exception:
            logger.exception("session %s: playback events not stored yet", session_id)
