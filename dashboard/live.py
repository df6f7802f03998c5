"""Glue between the browser's camera (streamlit-webrtc) and the session's :class:`sessions.live.LiveSession`.

Each camera widget gets a :class:`LiveStream`: its frame callback runs in streamlit-webrtc's worker thread, so
it makes no ``st.*`` call: newest frame to array and capture time, hand it to the live session (analysis,
recording, numbers), draw the preview, return. Everything about the session's life (claiming it, resuming,
finishing) is in ``sessions``; this module only turns WebRTC frames into ``(image, capture time)``.

streamlit-webrtc gives the callback every frame that arrived since the previous call. The live session says how
many of them are due at the stream's analysis rate (``analysis_fps``: the browser is asked for that rate, and the
server keeps to it whatever the camera sends); the newest is analysed when any is due, the other due frames are
skipped (the analyzer could not keep up with them) and counted, so "dropped frames" is exact. Frames above the rate
are not converted, analysed or counted, and the video sent back keeps its last frame.

A participant's camera is send-only: the server sends no video back (no VP8 encode on the server, no decode in
the browser) and the page shows the participant's own camera locally (:mod:`dashboard.self_view`; no box, label or
probability: seeing one's own classification invites reactivity). Its frames reach a :class:`FrameSink` (a
streamlit-webrtc sink track) whose worker thread runs the same :meth:`LiveStream.analyse` as the researcher's
camera. The researcher's Record page camera sends back the annotated preview at ``preview_width``, one frame per
analysed frame.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import time
import weakref
from collections.abc import Callable
from typing import NamedTuple

import av
import cv2
import numpy as np
from aiortc.mediastreams import MediaStreamError
from streamlit_webrtc import WebRtcMode, webrtc_streamer

from fer_core.drawing import draw_results
from sessions.live import CaptureClock, LiveSession, LiveSnapshot

logger = logging.getLogger(__name__)

__all__ = ["FrameSink", "LiveRegistry", "LiveSnapshot", "LiveStream", "fit_width", "open_camera", "shorten_gil_slices"]

#: Seconds without a frame after which a started stream counts as gone (tab closed, network lost) and releases
#: its session for a resume (the session itself ends only when the resume window runs out).
STALL_S = 10.0
#: Python's thread switch interval (seconds) while live streams run; CPython's default is 0.005.
SWITCH_INTERVAL_S = 0.001
#: Width (CSS pixels) of the participant's own camera image in the page (:mod:`dashboard.self_view`).
PARTICIPANT_DISPLAY_PX = 240


def shorten_gil_slices(interval_s: float = SWITCH_INTERVAL_S) -> None:
    """Let threads waiting for the GIL get it sooner (``sys.setswitchinterval``), process-wide.

    A frame's analysis releases and re-takes the GIL at every OpenCV, NumPy and LiteRT call. While a
    Streamlit script run (pure Python) holds the GIL, each re-take waits up to one switch interval,
    so with CPython's 5 ms default one frame could wait tens of milliseconds ("convoy effect"); 1 ms
    cut the dropped frames of two streams in ``benchmarks/bench_live.py``.
    """
    if not interval_s > 0:
        raise ValueError(f"interval_s has to be > 0 seconds; got {interval_s!r}")
    if sys.getswitchinterval() > interval_s:
        sys.setswitchinterval(interval_s)


def fit_width(image: np.ndarray, width: int) -> np.ndarray:
    """Scale ``image`` (H, W, 3) uint8 down to at most ``width`` pixels wide, keeping its aspect ratio."""
    if image.shape[1] <= width:
        return image
    height = max(1, round(image.shape[0] * width / image.shape[1]))
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


class FrameTime(NamedTuple):
    """A camera frame the sink no longer holds the image of: only its stream timestamp (``av.VideoFrame.time``,
    seconds, or None) is kept for the analysis-rate count."""

    time: float | None


class _Mailbox:
    """What one track's reader hands its worker: the queued frames (one image at most) and the newest arrival."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.pending: list = []
        self.arrival = 0.0
        self.open = True

    def put(self, frame, arrival: float) -> None:
        with self.cond:
            if self.pending:  # let the waiting image go; its timestamp stays for the count
                self.pending[-1] = FrameTime(self.pending[-1].time)
            self.pending.append(frame)
            self.arrival = arrival
            self.cond.notify()

    def close(self) -> None:
        with self.cond:
            self.open = False
            self.cond.notify()

    def take(self) -> tuple[list, float, bool]:
        """Wait for frames or the end; return (frames, newest arrival, ended and nothing left)."""
        with self.cond:
            while self.open and not self.pending:
                self.cond.wait()
            frames, self.pending = self.pending, []
            return frames, self.arrival, not self.open and not frames


class FrameSink:
    """A streamlit-webrtc sink track for a send-only camera: frames in, nothing sent back.

    streamlit-webrtc's ``MediaSink`` protocol (``addTrack``, ``hasTrack``, ``start``, ``stop``): its reader task
    runs on aiortc's event loop and only queues each decoded frame with its arrival time; one worker thread per
    track hands what arrived since its previous call to ``on_frames`` (the newest frame's image and every frame's
    timestamp, as streamlit-webrtc's queued-frames callback would), so a slow analysis never stalls the
    connection and no more than one decoded image waits. When the track ends (STOP, a closed tab, a dropped
    connection) the worker analyses what is left, calls ``on_ended`` once and exits: nothing of the track outlives
    it. The same sink takes the next START's track; that track's worker starts handing frames over only after
    the previous one has called ``on_ended``.

    Parameters
    ----------
    on_frames : callable (frames, arrival) -> object
        Called in the worker thread with a list of ``av.VideoFrame`` (the newest) preceded by :class:`FrameTime`
        stand-ins for the older ones, oldest first, and the newest frame's arrival time (UTC epoch seconds).
    on_ended : callable () -> None
        Called in the worker thread once the track has ended and its last frames were handed over.
    """

    kind = "video"

    def __init__(self, on_frames: Callable[[list, float], object], on_ended: Callable[[], None]) -> None:
        self._on_frames = on_frames
        self._on_ended = on_ended
        self._track = None
        self._task: asyncio.Task | None = None
        self._box: _Mailbox | None = None
        self._worker: threading.Thread | None = None

    def addTrack(self, track) -> None:  # noqa: N802 (streamlit-webrtc's protocol)
        """Take the incoming camera track (again for a later START once the previous one ended)."""
        self._track = track

    def hasTrack(self) -> bool:  # noqa: N802
        """Whether a track is attached."""
        return self._track is not None

    def start(self) -> None:
        """Start reading the attached track (on the running event loop) and its worker thread.

        Raises
        ------
        RuntimeError
            If no track is attached.
        """
        if self._track is None:
            raise RuntimeError("FrameSink.start: no track attached")
        self._box = box = _Mailbox()
        self._worker = threading.Thread(target=self._work, args=(box, self._worker), name="fer-frame-sink",
                                        daemon=True)  # fmt: skip
        self._worker.start()
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = asyncio.get_event_loop_policy().get_event_loop()
        self._task = loop.create_task(self._read(self._track, box))

    def stop(self) -> None:
        """Stop reading (the worker finishes what arrived, then calls ``on_ended``); the track is let go.

        Safe from any thread and more than once (streamlit-webrtc calls it when the track ends and again when its
        worker stops)."""
        task, self._task = self._task, None
        if task is not None:
            try:  # the reader runs on aiortc's loop: cancel it there
                task.get_loop().call_soon_threadsafe(task.cancel)
            except RuntimeError:  # that loop is closed: the reader is gone already
                pass
        if self._box is not None:
            self._box.close()
        self._track = None

    def put(self, frame, arrival: float) -> None:
        """Queue one decoded frame of the current track that arrived at ``arrival`` (UTC epoch seconds)."""
        if self._box is not None:
            self._box.put(frame, arrival)

    @staticmethod
    async def _read(track, box: _Mailbox) -> None:
        try:
            while True:
                try:
                    frame = await track.recv()
                except MediaStreamError:
                    return
                box.put(frame, time.time())
        finally:
            box.close()

    def _work(self, box: _Mailbox, previous: threading.Thread | None) -> None:
        if previous is not None:
            previous.join()  # the previous track's end is handled before this track's first frame
        while True:
            frames, arrival, ended = box.take()
            if ended:
                break
            try:
                self._on_frames(frames, arrival)
            except Exception:  # keep the worker: one bad frame must not end the recording
                logger.exception("frame sink: analysing a frame failed")
        try:
            self._on_ended()
        except Exception:
            logger.exception("frame sink: the end of the track could not be handled")


class LiveStream:
    """One camera widget's stream: WebRTC frames in, the live session's results, a preview out (or none).

    The widget lives as long as its page; each START of it (a new WebRTC track) gets a fresh
    :class:`sessions.live.LiveSession` from ``new_session`` once the previous track has ended, so a page can
    stop, reload or come back and resume without any state of the old track.

    Parameters
    ----------
    new_session : callable returning sessions.live.LiveSession
        Builds the live session a new track's frames go to (it claims the store's session with the first frame).
    frame_width : int
        Frames wider than this (pixels) are scaled down before analysis.
    preview_width : int
        Width (pixels) of the video sent back to the browser when ``send_back``. Encoding it (VP8, on the server)
        and decoding it (in every watching browser) costs CPU in proportion to its area.
    annotate : bool
        Draw boxes and expressions on the preview (the researcher's page).
    display_px : int or None
        Width (CSS pixels) of the video in the page; None: the page's full width.
    send_back : bool
        True: the camera widget sends the (annotated) preview back (streamlit-webrtc SENDRECV with
        :meth:`on_frames`). False: send-only, frames go to :attr:`sink` (a participant, who sees their own camera
        locally).
    """

    def __init__(self, new_session, *, frame_width: int = 640, preview_width: int = 320,
                 annotate: bool = False, display_px: int | None = None, send_back: bool = True) -> None:  # fmt: skip
        self._new_session = new_session
        self.session: LiveSession = new_session()
        self.frame_width = frame_width
        self.preview_width = preview_width
        self.annotate = annotate
        self.display_px = display_px
        self._clock = CaptureClock()
        self._track_ended = False
        #: The sink a send-only widget feeds (None when the stream sends video back).
        self.sink: FrameSink | None = None if send_back else FrameSink(self._on_sink_frames, self.on_ended)

    @property
    def session_id(self) -> int:
        return self.session.session_id

    @property
    def send_back(self) -> bool:
        """Whether the widget sends video back (SENDRECV); False when its frames go to :attr:`sink`."""
        return self.sink is None

    # -- worker thread -------------------------------------------------------------------------
    async def on_frames(self, frames: list[av.VideoFrame]) -> list[av.VideoFrame]:
        """streamlit-webrtc ``queued_video_frames_callback`` (a camera that sends video back): :meth:`analyse`.

        Returns
        -------
        list of av.VideoFrame
            The analysed frame, BGR, scaled to at most ``preview_width`` pixels wide, with each face's box and
            expression drawn when ``annotate``; empty when no frame was due (the video sent back repeats its last
            frame).
        """
        analysed = self.analyse(frames, time.time())
        return [] if analysed is None else [self._preview(*analysed)]

    def _on_sink_frames(self, frames: list, arrival: float) -> None:
        self.analyse(frames, arrival)

    def analyse(self, frames: list, arrival: float) -> tuple[np.ndarray, list] | None:
        """Analyse the newest of ``frames`` when any is due at the analysis rate; the one path of both widgets.

        Parameters
        ----------
        frames : list of av.VideoFrame (or :class:`FrameTime` for all but the last)
            The frames that arrived since the previous call, oldest first (any size and pixel format). When any is
            due (:meth:`sessions.live.LiveSession.due_frames`), the last is analysed (scaled to at most
            ``frame_width`` pixels wide) and the other due ones count as skipped; frames that are not due are left
            alone. Capture time comes from the frame's own timestamp.
        arrival : float
            When the newest frame reached the server, UTC epoch seconds (the start of its measured latency).

        Returns
        -------
        (image, results) or None
            The analysed BGR image (H, W, 3) uint8 and its faces (``fer_core.analyzer.FaceResult``; empty when the
            session does not record); None when no frame was due.
        """
        # A new START after the previous track ended, or frames again after the stall watchdog released the
        # session (a network freeze, not an end): a fresh live session and clock, which resumes the session.
        if self._track_ended or (self.session.state == "finished" and self.session.status is None):
            self._track_ended = False
            self.session, self._clock = self._new_session(), CaptureClock()
        frame = frames[-1]
        capture, delay = self._clock.stamp(frame.time, arrival)
        due = self.session.due_frames([capture if f.time is None or frame.time is None else capture - (frame.time - f.time)
                                       for f in frames])  # fmt: skip
        if not due:
            return None
        image = self._analysis_image(frame)
        results = self.session.on_frame(image, capture, skipped=due - 1, latency_from=arrival - delay)
        return image, results or []

    def _analysis_image(self, frame: av.VideoFrame) -> np.ndarray:
        """The frame as BGR (H, W, 3) uint8, at most ``frame_width`` wide (a function of its own: profiles see it)."""
        return fit_width(frame.to_ndarray(format="bgr24"), self.frame_width)

    def media_constraints(self) -> dict:
        """What the browser is asked for (``getUserMedia`` constraints): video only, ``frame_width`` pixels wide at
        4:3 and the analysis rate (ideal values: a camera that cannot gives the nearest it has, the server keeps to
        the rate and scales down to ``frame_width`` anyway)."""
        video: dict = {"width": {"ideal": self.frame_width}, "height": {"ideal": round(self.frame_width * 3 / 4)}}
        if self.session.rate.fps is not None:
            video["frameRate"] = {"ideal": self.session.rate.fps}
        return {"video": video, "audio": False}

    def video_html_attrs(self) -> dict:
        """Attributes of the page's ``<video>``: ``display_px`` wide (at most the page's width), or the full width."""
        width = "100%" if self.display_px is None else f"{int(self.display_px)}px"
        return {"autoPlay": True, "controls": self.display_px is None, "muted": True, "playsInline": True,
                "style": {"width": width, "maxWidth": "100%"}}  # fmt: skip

    def _preview(self, image: np.ndarray, results: list) -> av.VideoFrame:
        """The video frame sent back: ``image`` scaled to ``preview_width``, annotated when ``annotate``."""
        small = fit_width(image, self.preview_width)
        if self.annotate and results:
            scale = small.shape[1] / image.shape[1]
            small = draw_results(small, [r._replace(box=tuple(round(v * scale) for v in r.box)) for r in results])
        return av.VideoFrame.from_ndarray(small, format="bgr24")

    def snapshot(self) -> LiveSnapshot:
        """The live session's numbers (:meth:`sessions.live.LiveSession.snapshot`)."""
        return self.session.snapshot()

    def on_ended(self) -> None:
        """streamlit-webrtc ``on_video_ended``: the stream ended without Stop (or before the page saw the Stop).

        The session is released for a resume, not ended: a reload or a network drop must not end it. A Stop
        pressed on the page ends it as ``complete`` in the script run that follows.
        """
        self._track_ended = True
        self.session.disconnect()


class LiveRegistry:
    """This process's live streams by session id, shared by all browser sessions (in ``st.cache_resource``).

    It lets the researcher's Record page watch a stream that a participant runs from a join link, and its
    watchdog thread releases every streaming session that has sent no frame for ``stall_s`` seconds (the tab
    was closed or the network dropped), so that its participant can resume it.

    Parameters
    ----------
    stall_s : float
        Seconds without a frame before a streaming session is released.

    Raises
    ------
    ValueError
        If ``stall_s`` is not positive.
    """

    def __init__(self, *, stall_s: float = STALL_S):
        if not stall_s > 0:
            raise ValueError(f"stall_s has to be > 0 seconds; got {stall_s!r}")
        self.stall_s = stall_s
        self._lock = threading.Lock()
        # weak references: a stream lives as long as its page's session state (or its running WebRTC track)
        self._streams: dict[int, list[weakref.ref]] = {}
        self._watchdog: threading.Thread | None = None

    def add(self, stream: LiveStream) -> None:
        """Register ``stream`` under its session id (again after a restart of its widget), forgetting streams that
        no longer record."""
        with self._lock:
            for session_id, refs in list(self._streams.items()):
                refs[:] = [r for r in refs if (s := r()) is not None and s.session.state in ("waiting", "streaming")]
                if not refs:
                    del self._streams[session_id]
            refs = self._streams.setdefault(stream.session_id, [])
            if all(r() is not stream for r in refs):  # pages add their stream at every run: once is enough
                refs.append(weakref.ref(stream))
            if self._watchdog is None:
                self._watchdog = threading.Thread(target=self._watch, name="live-stream-watchdog", daemon=True)
                self._watchdog.start()

    def get(self, session_id: int) -> LiveStream | None:
        """The stream recording ``session_id`` in this process (else the newest one waiting), or None."""
        with self._lock:
            streams = [s for r in self._streams.get(session_id, ()) if (s := r()) is not None]
        for stream in reversed(streams):
            if stream.session.state == "streaming":
                return stream
        waiting = [s for s in streams if s.session.state == "waiting"]
        return waiting[-1] if waiting else None

    def remove(self, stream: LiveStream) -> None:
        """Forget ``stream`` (no error if absent)."""
        with self._lock:
            refs = self._streams.get(stream.session_id, [])
            refs[:] = [r for r in refs if r() is not None and r() is not stream]

    def release_stalled(self) -> list[int]:
        """Release the streaming sessions silent for ``stall_s``; return their session ids."""
        with self._lock:
            streams = [s for refs in self._streams.values() for r in refs if (s := r()) is not None]
        stalled = []
        for stream in streams:
            silence = stream.session.seconds_since_frame()
            if stream.session.state == "streaming" and silence is not None and silence > self.stall_s:
                stream.session.disconnect()
                logger.warning("session %s: no frame for %.0f s, released for a resume", stream.session_id, silence)
                stalled.append(stream.session_id)
        return stalled

    def _watch(self) -> None:
        while True:
            time.sleep(min(1.0, self.stall_s / 4))
            try:
                self.release_stalled()
            except Exception:  # keep watching; the recorder logs its own failures
                logger.exception("live-stream watchdog failed")


def open_camera(key: str, stream: LiveStream, rtc_configuration: dict):
    """Render the camera widget for ``stream`` and return streamlit-webrtc's context.

    A stream that sends video back (the researcher's) is SENDRECV with :meth:`LiveStream.on_frames` (with
    ``sendback_video=False`` streamlit-webrtc would never call the frame callback); a send-only one (a
    participant's) is SENDONLY with its :attr:`LiveStream.sink`, so the server encodes nothing and the widget shows
    no video (the page shows the participant's own camera, :mod:`dashboard.self_view`). The browser is asked for
    :meth:`LiveStream.media_constraints`.
    """
    if stream.sink is not None:
        return webrtc_streamer(
            key=key,
            mode=WebRtcMode.SENDONLY,
            rtc_configuration=rtc_configuration,
            media_stream_constraints=stream.media_constraints(),
            sink_video_track=stream.sink,
        )
    return webrtc_streamer(
        key=key,
        mode=WebRtcMode.SENDRECV,
        rtc_configuration=rtc_configuration,
        media_stream_constraints=stream.media_constraints(),
        video_html_attrs=stream.video_html_attrs(),
        queued_video_frames_callback=stream.on_frames,
        on_video_ended=stream.on_ended,
        async_processing=True,
    )
