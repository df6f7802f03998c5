"""The participant's own camera image, shown by their browser alone: nothing of it comes from the server.

A participant's camera is send-only (:func:`dashboard.live.open_camera`): the server analyses the frames and
sends no video back, which saves it a VP8 encode per frame (and the browser a decode). So that participants can
still see that their face is in view, this two-way component (``st.components.v2``, inline HTML/JS in the page)
opens the same camera a second time with ``getUserMedia`` (browsers share one device between the two requests;
the permission was given for the page already) and plays it muted and mirrored, like a video call's self-view. It
shows no box, label or probability. The local stream stops when the component leaves the page (STOP, another page,
the session's end).
"""

from __future__ import annotations

import streamlit as st

_HTML = '<div class="fer-self-view"><video autoplay muted playsinline></video></div>'

_CSS = """
.fer-self-view video { display: block; transform: scaleX(-1); border-radius: 0.5rem; background: #000; max-width: 100%; }
"""

# The stream lives on the root element: a re-render (new data) keeps it; leaving the page stops its tracks.
_JS = """
export default function(component) {
  const { data, parentElement } = component;
  const root = parentElement.querySelector(".fer-self-view");
  const video = root.querySelector("video");
  video.style.width = data.width_px + "px";
  if (!root.__ferStream && !root.__ferOpening && navigator.mediaDevices) {
    root.__ferOpening = true;
    navigator.mediaDevices.getUserMedia({ video: data.video, audio: false }).then((stream) => {
      root.__ferOpening = false;
      if (!root.isConnected) { stream.getTracks().forEach((t) => t.stop()); return; }
      root.__ferStream = stream;
      video.srcObject = stream;
    }).catch(() => { root.__ferOpening = false; });
  }
  return () => {
    setTimeout(() => {
      if (!root.isConnected && root.__ferStream) {
        root.__ferStream.getTracks().forEach((t) => t.stop());
        root.__ferStream = undefined;
      }
    }, 0);
  };
}
"""


@st.cache_resource(show_spinner=False)
def _component():
    return st.components.v2.component("fer_self_view", html=_HTML, css=_CSS, js=_JS)


def self_view(key: str, *, width_px: int, video_constraints: dict) -> None:
    """Show the participant's own camera, from their browser, ``width_px`` CSS pixels wide.

    Parameters
    ----------
    key : str
        Widget key (one per camera).
    width_px : int
        Width of the image in the page, CSS pixels.
    video_constraints : dict
        ``getUserMedia`` video constraints (those of the camera widget, so the browser can share the device).
    """
    _component()(key=key, data={"width_px": int(width_px), "video": video_constraints})
