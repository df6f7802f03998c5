"""Glue between the browser's camera (streamlit-webrtc) and the core analyzer and live recorder.

One :class:`LiveStream` per camera stream owns that stream's :class:`fer_core.analyzer.FrameAnalyzer`
(which holds tracking state) and hands typed snapshots to the page under a short lock. Its frame
callback runs in streamlit-webrtc's worker thread, so it makes no ``st.*`` call: frame to array,
analyze, submit to the recorder (never blocking), draw, return.

streamlit-webrtc gives the callback every frame that arrived since the previous call; all but the
newest are dropped (the analyzer cannot keep up with them) and counted, so "dropped frames" on the
Record page is exact.
"""

from __future__ import annotations

import logging
import sys
import threading
import time
from collections import deque
from typing import NamedTuple

import av
import cv2
import numpy as np
import pandas as pd
from streamlit_webrtc import WebRtcMode, webrtc_streamer

from fer_core.drawing import draw_results
from fer_core.emotions import EMOTIONS

logger = logging.getLogger(__name__)

#: Seconds of per-frame history kept for the live line chart.
HISTORY_S = 60.0
#: Seconds over which the analysed frame rate is measured.
FPS_WINDOW_S = 5.0
#: Seconds a stream that ended without Stop waits for the page's Stop before it is finished as aborted.
ABORT_GRACE_S = 5.0
#: Seconds without a frame after which a started stream counts as gone (tab closed, network lost) and is aborted.
STALL_S = 15.0
#: Python's thread switch interval (seconds) while live streams run; CPython's default is 0.005.
SWITCH_INTERVAL_S = 0.001


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


class LiveSnapshot(NamedTuple):
    """What the page shows about one live stream, copied out under the stream's lock.

    Attributes
    ----------
    session_id : int
    time_s : float
        Session time of the newest analysed frame, seconds since the stream's first frame.
    frames : int
        Frames analysed so far.
    fps : float
        Frames analysed per second over the last ``FPS_WINDOW_S`` seconds (wall clock).
    dropped : int
        Frames skipped because analysis was busy plus frames the recorder could not queue.
    faces : int
        Faces in the newest frame.
    probs : ndarray of shape (7,) float32 or None
        Smoothed probabilities (``EMOTIONS`` order) of the largest face in the newest frame.
    history : DataFrame
        ``time_s`` and the seven emotions (mean over faces), one row per analysed frame with a face,
        the last ``HISTORY_S`` seconds.
    latency_p50_ms, latency_p90_ms : float
        Capture-to-result latency percentiles (ms) over the last 300 frames; NaN before any frame. Capture
        times are the frames' own timestamps mapped onto the server clock by the least delayed frame, so the
        figures are lower bounds that exclude the network's constant delay.
    status : str or None
        None while recording, else ``"complete"`` or ``"aborted"``.
    """

    session_id: int
    time_s: float
    frames: int
    fps: float
    dropped: int
    faces: int
    probs: np.ndarray | None
    history: pd.DataFrame
    latency_p50_ms: float
    latency_p90_ms: float
    status: str | None


def fit_width(image: np.ndarray, width: int) -> np.ndarray:
    """Scale ``image`` (H, W, 3) uint8 down to at most ``width`` pixels wide, keeping its aspect ratio."""
    if image.shape[1] <= width:
        return image
    height = max(1, round(image.shape[0] * width / image.shape[1]))
    return cv2.resize(image, (width, height), interpolation=cv2.INTER_AREA)


class LiveStream:
    """One camera stream of one session: analysis, recording and the numbers the page shows.

    Parameters
    ----------
    session_id : int
        The session being recorded.
    analyzer : fer_core.analyzer.FrameAnalyzer
        Used by this stream only (it holds tracking state).
    recorder : sessions.recorder.LiveRecorder
        Shared; ``submit`` never blocks.
    frame_width : int
        Frames wider than this (pixels) are scaled down before analysis.
    preview_width : int
        Width (pixels) of the annotated video sent back to the browser. Encoding it (VP8, on the server)
        and decoding it (in every watching browser) costs CPU in proportion to its area; the analysis
        always sees ``frame_width``.
    """

    def __init__(self, session_id: int, *, analyzer, recorder, frame_width: int = 640, preview_width: int = 320):
        self.session_id = session_id
        self.analyzer = analyzer
        self.recorder = recorder
        self.frame_width = frame_width
        self.preview_width = preview_width
        self._lock = threading.Lock()
        self._first: tuple[float, float] | None = None  # (frame.time, wall clock) of the first frame
        # Smallest (arrival wall clock - frame.time) seen: the sender's clock mapped onto ours by the least
        # delayed frame, so latency never reads negative when the first frame arrived late.
        self._clock_offset: float | None = None
        self._capture_wall = 0.0
        self._frames = 0
        self._skipped = 0
        self._time_s = 0.0
        self._latest: list = []
        self._history: deque[tuple[float, np.ndarray]] = deque()
        self._wall: deque[float] = deque()
        self._latency: deque[float] = deque(maxlen=300)
        self._status: str | None = None
        self._last_wall: float | None = None
        self._finishing = False

    # -- worker thread -------------------------------------------------------------------------
    async def on_frames(self, frames: list[av.VideoFrame]) -> list[av.VideoFrame]:
        """streamlit-webrtc ``queued_video_frames_callback``: analyse the newest frame, drop the rest.

        Parameters
        ----------
        frames : list of av.VideoFrame
            The frames queued since the last call (any size and pixel format); only the last is
            analysed (scaled to at most ``frame_width`` pixels wide), the others count as dropped.

        Returns
        -------
        list of one av.VideoFrame
            The analysed frame, BGR, scaled to at most ``preview_width`` pixels wide, with each face's box
            and expression drawn on it. Session time (seconds) comes from the frame's own timestamp.
        """
        frame = frames[-1]
        image = fit_width(frame.to_ndarray(format="bgr24"), self.frame_width)
        time_s = self._session_time(frame)
        results = self.analyzer.analyze(image, time_s)
        if not self._finishing:
            self.recorder.submit(self.session_id, self._frames, time_s, results)
        self._publish(time_s, results, skipped=len(frames) - 1)
        return [av.VideoFrame.from_ndarray(self._preview(image, results), format="bgr24")]

    def _preview(self, image: np.ndarray, results: list) -> np.ndarray:
        """The frame scaled to ``preview_width`` with each face's box and emotion drawn on it."""
        if image.shape[1] <= self.preview_width:
            return draw_results(image, results)
        scale = self.preview_width / image.shape[1]
        small = fit_width(image, self.preview_width)
        scaled = [r._replace(box=tuple(round(v * scale) for v in r.box)) for r in results]
        return draw_results(small, scaled)

    def _session_time(self, frame: av.VideoFrame) -> float:
        """Seconds since the stream's first frame, from the frame's own timestamp (never index / fps)."""
        arrival = time.monotonic()
        stamp = frame.time
        if stamp is None:  # no timestamp: place the frame on the sender's clock by its arrival time
            stamp = arrival if self._first is None else self._first[0] + (arrival - self._first[1])
        if self._first is None:
            self._first = (stamp, arrival)
        offset = arrival - stamp
        if self._clock_offset is None or offset < self._clock_offset:
            self._clock_offset = offset
        self._capture_wall = stamp + self._clock_offset  # this frame's capture time on our clock
        # Never go back in time (a reconnect can restart the sender's clock): the analyzer's smoothing and the
        # recorder's timeline both need non-decreasing times. Only this worker thread writes _time_s.
        return max(self._time_s, stamp - self._first[0])

    def _publish(self, time_s: float, results: list, *, skipped: int) -> None:
        now = time.monotonic()
        latency = now - self._capture_wall
        mean = np.mean([r.smoothed for r in results], axis=0) if results else None
        with self._lock:
            self._last_wall = now
            self._frames += 1
            self._skipped += skipped
            self._time_s = time_s
            self._latest = results
            self._latency.append(latency)
            self._wall.append(now)
            while self._wall and self._wall[0] < now - FPS_WINDOW_S:
                self._wall.popleft()
            if mean is not None:
                self._history.append((time_s, mean))
            while self._history and self._history[0][0] < time_s - HISTORY_S:
                self._history.popleft()

    # -- page / any thread ---------------------------------------------------------------------
    def snapshot(self) -> LiveSnapshot:
        """Copy the current numbers out (cheap; the lock is held only for the copy)."""
        with self._lock:
            wall = list(self._wall)
            history = list(self._history)
            latest = list(self._latest)
            latency = np.asarray(self._latency, dtype=float)
            frames, skipped, time_s, status = self._frames, self._skipped, self._time_s, self._status
        fps = (len(wall) - 1) / (wall[-1] - wall[0]) if len(wall) > 1 and wall[-1] > wall[0] else 0.0
        table = pd.DataFrame([p for _, p in history], columns=list(EMOTIONS))
        table.insert(0, "time_s", [t for t, _ in history])
        largest = max(latest, key=lambda r: r.box[2] * r.box[3]) if latest else None
        p50, p90 = (np.percentile(latency, [50, 90]) * 1000.0) if latency.size else (np.nan, np.nan)
        try:
            dropped = skipped + int(self.recorder.stats(self.session_id).dropped)
        except (KeyError, ValueError):
            dropped = skipped
        return LiveSnapshot(
            session_id=self.session_id,
            time_s=time_s,
            frames=frames,
            fps=fps,
            dropped=dropped,
            faces=len(latest),
            probs=None if largest is None else np.asarray(largest.smoothed, dtype=np.float32),
            history=table,
            latency_p50_ms=float(p50),
            latency_p90_ms=float(p90),
            status=status,
        )

    @property
    def time_s(self) -> float:
        """Session time (seconds) of the newest analysed frame; 0 before the first frame."""
        with self._lock:
            return self._time_s

    def seconds_since_frame(self) -> float | None:
        """Wall-clock seconds since the last analysed frame; None before the first frame."""
        with self._lock:
            return None if self._last_wall is None else time.monotonic() - self._last_wall

    @property
    def status(self) -> str | None:
        """None while recording, else the status the session was finished with."""
        return self._status

    def finish(self, status: str) -> bool:
        """Finish the session once (``"complete"`` or ``"aborted"``); later calls do nothing.

        Returns
        -------
        bool
            True if this call finished the session.

        Raises
        ------
        ValueError
            If ``status`` is not ``"complete"`` or ``"aborted"``.
        TimeoutError
            From :meth:`sessions.recorder.LiveRecorder.finish`, if the writer did not store the end in time
            (the frames already recorded are kept).
        """
        if status not in ("complete", "aborted"):
            raise ValueError(f"status has to be 'complete' or 'aborted'; got {status!r}")
        with self._lock:
            if self._finishing:
                return False
            self._finishing = True  # no more frames go to the recorder
        self.recorder.finish(self.session_id, status=status)
        self._status = status  # set once the recorder has stored it
        return True

    def on_ended(self) -> None:
        """streamlit-webrtc ``on_video_ended``: a stream that ended without Stop ends as aborted.

        The page finishes the session as complete when the participant presses Stop; that happens
        in the script run that follows, so this waits ``ABORT_GRACE_S`` before aborting.
        """
        timer = threading.Timer(ABORT_GRACE_S, self.finish, args=("aborted",))
        timer.daemon = True
        timer.start()


class LiveRegistry:
    """Live streams by session id, shared by all browser sessions (one instance in ``st.cache_resource``).

    It lets the researcher's Record page watch a stream that a participant runs from a join link, and
    its watchdog thread finishes as ``aborted`` every started stream that has sent no frame for
    ``stall_s`` seconds (the browser tab was closed or the network dropped), keeping what was recorded.

    Parameters
    ----------
    stall_s : float
        Seconds without a frame before a started stream is aborted.
    """

    def __init__(self, *, stall_s: float = STALL_S):
        if not stall_s > 0:
            raise ValueError(f"stall_s has to be > 0 seconds; got {stall_s!r}")
        self.stall_s = stall_s
        self._lock = threading.Lock()
        self._streams: dict[int, LiveStream] = {}
        self._watchdog: threading.Thread | None = None

    def add(self, stream: LiveStream) -> None:
        """Register ``stream`` under its session id, forgetting streams that have finished."""
        with self._lock:
            for session_id in [k for k, v in self._streams.items() if v.status is not None]:
                del self._streams[session_id]
            self._streams[stream.session_id] = stream
            if self._watchdog is None:
                self._watchdog = threading.Thread(target=self._watch, name="live-stream-watchdog", daemon=True)
                self._watchdog.start()

    def get(self, session_id: int) -> LiveStream | None:
        """The stream recording ``session_id``, or None."""
        with self._lock:
            return self._streams.get(session_id)

    def remove(self, session_id: int) -> None:
        """Forget the stream of ``session_id`` (no error if absent)."""
        with self._lock:
            self._streams.pop(session_id, None)

    def abort_stalled(self) -> list[int]:
        """Finish as ``aborted`` the started streams silent for ``stall_s``; return their session ids."""
        with self._lock:
            streams = list(self._streams.values())
        stalled = []
        for stream in streams:
            silence = stream.seconds_since_frame()
            if silence is not None and silence > self.stall_s:
                if stream.finish("aborted"):
                    logger.warning("session %s: no frame for %.0f s, finished as aborted", stream.session_id, silence)
                    stalled.append(stream.session_id)
        return stalled

    def _watch(self) -> None:
        while True:
            time.sleep(min(1.0, self.stall_s / 4))
            try:
                self.abort_stalled()
            except Exception:  # keep watching; the recorder logs its own failures
                logger.exception("live-stream watchdog failed")


def open_camera(key: str, stream: LiveStream, rtc_configuration: dict):
    """Render the camera widget for ``stream`` and return streamlit-webrtc's context.

    The returned video carries each face's box and emotion (the stream sends video back: with
    ``sendback_video=False`` streamlit-webrtc would never call the frame callback).
    """
    return webrtc_streamer(
        key=key,
        mode=WebRtcMode.SENDRECV,
        rtc_configuration=rtc_configuration,
        media_stream_constraints={"video": True, "audio": False},
        queued_video_frames_callback=stream.on_frames,
        on_video_ended=stream.on_ended,
        async_processing=True,
    )
