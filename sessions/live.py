"""One live session in this server process: the one path from a camera frame to a stored row.

A :class:`LiveSession` takes frames (an image and its capture time), analyses them with its own
:class:`fer_core.analyzer.FrameAnalyzer`, hands the results to the process's :class:`~sessions.recorder.LiveRecorder`
and keeps the numbers the pages show. It owns "finished": once :meth:`LiveSession.finish` has run, no frame
of it reaches the recorder, and the store refuses rows of an ended session anyway. It knows nothing of
WebRTC or Streamlit: ``dashboard/live.py`` turns browser frames into ``(image, capture time)`` and calls it.

Its first frame claims the session in the store (:func:`sessions.lifecycle.claim_stream`): a ``pending``
session starts (session time 0 is that frame's capture time), a ``recording`` session whose stream dropped is
resumed on the session's own clock (frame indices continue, the gap is stored), and a session another stream
delivers to refuses this one (:attr:`LiveSession.refusal` says why).

Time: capture times are UTC seconds since the epoch (``time.time()`` scale). :class:`CaptureClock` maps a
sender's frame timestamps (``frame.time``) onto that scale by the least delayed frame.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections import deque
from datetime import UTC, datetime
from typing import NamedTuple

import numpy as np
import pandas as pd

from fer_core.emotions import EMOTIONS
from sessions.analysis_rate import AnalysisRate
from sessions.errors import SessionEnded, SessionNotFound, StreamRefused

logger = logging.getLogger(__name__)

#: Seconds of per-frame history kept for the live line chart.
HISTORY_S = 60.0
#: Seconds over which the analysed frame rate is measured.
FPS_WINDOW_S = 5.0
#: Capture-to-result latencies kept for the percentiles (frames).
LATENCY_WINDOW = 300


class CaptureClock:
    """Maps a sender's frame timestamps (``frame.time``, seconds on the sender's clock) onto this server's clock.

    Capture time (UTC epoch seconds) is the first frame's arrival plus the sender-clock time elapsed since it:
    within a stream, time comes from the frames' own timestamps, never from arrival jitter or ``index / fps``.
    Latency uses the least delayed frame instead (the smallest ``arrival - stamp`` seen), so it never reads
    negative when the first frame was the late one; the network's constant delay is not included. A frame
    without a timestamp is placed at its arrival on the sender's clock.
    """

    def __init__(self) -> None:
        self._offset: float | None = None  # smallest arrival - stamp
        self._first: tuple[float, float] | None = None  # (stamp, arrival) of the first frame

    def stamp(self, stamp_s: float | None, arrival_s: float | None = None) -> tuple[float, float]:
        """Return ``(capture_time, delay_s)`` of a frame stamped ``stamp_s`` (sender seconds, or None).

        ``capture_time`` is in UTC epoch seconds; ``delay_s`` (>= 0) is how much later than the least delayed
        frame this one arrived (the part of its capture-to-result latency spent before analysis).
        """
        arrival = time.time() if arrival_s is None else float(arrival_s)
        if stamp_s is None:
            stamp_s = arrival if self._first is None else self._first[0] + (arrival - self._first[1])
        stamp_s = float(stamp_s)
        if self._first is None:
            self._first = (stamp_s, arrival)
        offset = arrival - stamp_s
        if self._offset is None or offset < self._offset:
            self._offset = offset
        return self._first[1] + (stamp_s - self._first[0]), offset - self._offset


class LiveSnapshot(NamedTuple):
    """What a page shows about one live session, copied out under the session's lock.

    Attributes
    ----------
    session_id : int
    state : str
        ``"waiting"`` (no frame yet), ``"streaming"``, ``"refused"`` (another stream holds the session or it has
        ended), ``"finished"``.
    role : str
        ``"participant"`` or ``"researcher"``.
    time_s : float
        Session time of the newest analysed frame, seconds since the session's first frame.
    frames : int
        Frames analysed by this stream.
    fps : float
        Frames analysed per second over the last ``FPS_WINDOW_S`` seconds (wall clock).
    skipped, refused : int
        The session's camera frames not analysed (analysis busy) and analysed frames the recorder refused,
        stored counts before this stream plus this stream's; ``dropped`` is their sum, as the store will have it.
    faces : int
        Faces in the newest frame.
    probs : ndarray of shape (7,) float32 or None
        Smoothed probabilities (``EMOTIONS`` order) of the largest face in the newest frame.
    history : DataFrame
        ``time_s`` and the seven emotions (mean over faces), one row per analysed frame with a face, the last
        ``HISTORY_S`` seconds.
    latency_p50_ms, latency_p90_ms : float
        Capture-to-result latency percentiles (ms) over the last 300 frames; NaN before any frame.
    status : str or None
        None while recording, else ``"complete"`` or ``"aborted"``.
    message : str or None
        Why this stream is not recording (refused, lost its session), for the page.
    """

    session_id: int
    state: str
    role: str
    time_s: float
    frames: int
    fps: float
    skipped: int
    refused: int
    faces: int
    probs: np.ndarray | None
    history: pd.DataFrame
    latency_p50_ms: float
    latency_p90_ms: float
    status: str | None
    message: str | None

    @property
    def dropped(self) -> int:
        """Skipped plus refused frames: the "dropped frames" of the live panel and of the stored session."""
        return self.skipped + self.refused


class LiveSession:
    """One camera stream of one session in this process.

    Parameters
    ----------
    session_id : int
        The session to record into.
    analyzer : fer_core.analyzer.FrameAnalyzer, optional
        Used by this stream only (it holds tracking state).
    new_analyzer : callable, optional
        Instead of ``analyzer``: builds it (no argument) with the first frame, so a page that never starts its
        camera holds no detector.
    recorder : sessions.recorder.LiveRecorder
        The process's recorder (shared; ``submit`` never blocks).
    role : {"participant", "researcher"}
        Who streams: the participant link or the researcher's Record page.
    analysis_fps : float or None
        Largest number of frames analysed per second (:class:`sessions.analysis_rate.AnalysisRate`); None or 0:
        every frame. The caller asks :meth:`due_frames` which frames to analyse; frames above the rate are
        neither analysed nor counted as skipped.

    Raises
    ------
    ValueError
        Unknown ``role``, a bad ``analysis_fps``, or not exactly one of ``analyzer`` and ``new_analyzer``.
    """

    #: Seconds the first frame waits for the claim: well under streamlit-webrtc's 10 s limit per callback.
    CLAIM_TIMEOUT_S = 3.0

    def __init__(self, session_id: int, *, recorder, role: str, analyzer=None, new_analyzer=None,
                 analysis_fps: float | None = None) -> None:  # fmt: skip
        if role not in ("participant", "researcher"):
            raise ValueError(f"role has to be 'participant' or 'researcher'; got {role!r}")
        if (analyzer is None) == (new_analyzer is None):
            raise ValueError("give exactly one of analyzer and new_analyzer")
        self.session_id = int(session_id)
        self.analyzer = analyzer
        self.new_analyzer = new_analyzer
        self.recorder = recorder
        self.role = role
        self.rate = AnalysisRate(analysis_fps)
        self.stream_id = uuid.uuid4().hex
        self._lock = threading.Lock()
        self._state = "waiting"
        self._message: str | None = None
        self._started_at: float | None = None  # UTC epoch seconds of session time 0
        self._next_frame = 0
        self._time_s = 0.0
        self._base_skipped = self._base_refused = 0  # the store's counts at the claim
        self._recorder_base = (0, 0)  # the recorder's counts of the session at the claim (skipped, refused)
        self._claimed = False
        self._frames = 0
        self._latest: list = []
        self._history: deque[tuple[float, np.ndarray]] = deque()
        self._wall: deque[float] = deque()
        self._latency: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._last_wall: float | None = None
        self._status: str | None = None

    # -- video thread ----------------------------------------------------------------------------
    def due_frames(self, capture_times) -> int:
        """How many of the camera frames captured at ``capture_times`` (UTC epoch seconds, oldest first) are due for
        analysis at this stream's rate (:class:`sessions.analysis_rate.AnalysisRate`; each due frame takes its slot).

        The caller analyses the newest frame when any is due and passes the other due frames as ``skipped`` to
        :meth:`on_frame`; frames that are not due are not analysed and not counted.
        """
        return self.rate.count_due(capture_times)

    def on_frame(self, image: np.ndarray, capture_time: float, *, skipped: int = 0,
                 latency_from: float | None = None) -> list | None:  # fmt: skip
        """Analyse and record one camera frame; the first frame claims the session.

        Parameters
        ----------
        image : ndarray of shape (H, W, 3) uint8
            The frame, BGR, at the resolution analysis should see.
        capture_time : float
            Capture time of the frame, UTC seconds since the epoch (:class:`CaptureClock`).
        skipped : int
            Camera frames due for analysis (:meth:`due_frames`) that arrived since the previous call and were not
            analysed (analysis busy); stored as the session's ``skipped_frames``.
        latency_from : float, optional
            UTC epoch seconds the frame's capture-to-result latency is measured from (its arrival minus
            :meth:`CaptureClock.stamp`'s delay); default ``capture_time``.

        Returns
        -------
        list of fer_core.analyzer.FaceResult or None
            The frame's faces; None when this stream does not record (refused, finished, or its session lost).
        """
        if self._state == "waiting" and not self._claim(capture_time):
            return None
        if self._state != "streaming":
            return None
        if not self.recorder.holds(self.stream_id):
            with self._lock:
                if self._state == "streaming":
                    self._state = "refused"
                    self._message = "This camera no longer records: the session ended or continues on another page."
            return None
        time_s = max(self._time_s, capture_time - self._started_at)
        if self.analyzer is None:  # built with the first frame
            self.analyzer = self.new_analyzer()
        results = self.analyzer.analyze(image, time_s)
        with self._lock:  # the finishing flag and the submit under one lock: no frame after finish()
            if self._state != "streaming":
                return None
            if skipped:
                self.recorder.skip(self.session_id, skipped)
            self.recorder.submit(self.session_id, self._next_frame, time_s, results, stream_id=self.stream_id)
            self._next_frame += 1
            self._publish(time_s, results, capture_time if latency_from is None else latency_from)
        return results

    def _claim(self, capture_time: float) -> bool:
        if self.analyzer is None:  # built with the first frame, before the claim: the session records its model
            self.analyzer = self.new_analyzer()
        classifier = getattr(self.analyzer, "classifier", None)
        try:
            claim = self.recorder.claim(self.session_id, stream_id=self.stream_id, role=self.role,
                                        capture_at=datetime.fromtimestamp(capture_time, UTC),
                                        model=getattr(classifier, "model_id", None),
                                        timeout_s=self.CLAIM_TIMEOUT_S)  # fmt: skip
        except (StreamRefused, SessionEnded, SessionNotFound) as exc:
            with self._lock:
                self._state, self._message = "refused", str(exc)
            logger.warning("session %s: stream refused: %s", self.session_id, exc)
            return False
        except Exception as exc:  # writer busy or database failure: try again with a later frame
            logger.warning("session %s: claim failed (%s); retrying with the next frame", self.session_id, exc)
            return False
        counts = self.recorder.stats(self.session_id)
        with self._lock:
            self._claimed = True
            self._recorder_base = (counts.skipped, counts.refused)
            # a new session starts at this very frame (exactly 0 s); a resumed one keeps its stored start
            self._started_at = capture_time if claim.started else claim.started_at.timestamp()
            self._next_frame = claim.next_frame
            self._time_s = claim.first_time_s
            self._base_skipped, self._base_refused = claim.skipped_frames, claim.refused_frames
            self._state = "streaming"
        if claim.resumed:
            logger.info("session %s resumed after a gap %.1f-%.1f s", self.session_id, *claim.gap)
        return True

    def _publish(self, time_s: float, results: list, latency_from: float) -> None:  # caller holds the lock
        now = time.time()
        self._last_wall = time.monotonic()
        self._frames += 1
        self._time_s = time_s
        self._latest = results
        self._latency.append(max(0.0, now - latency_from))
        self._wall.append(self._last_wall)
        while self._wall and self._wall[0] < self._last_wall - FPS_WINDOW_S:
            self._wall.popleft()
        if results:
            self._history.append((time_s, np.mean([r.smoothed for r in results], axis=0)))
        while self._history and self._history[0][0] < time_s - HISTORY_S:
            self._history.popleft()

    # -- any thread --------------------------------------------------------------------------------
    @property
    def state(self) -> str:
        """``"waiting"``, ``"streaming"``, ``"refused"`` or ``"finished"``."""
        return self._state

    @property
    def status(self) -> str | None:
        """None while recording, else the status the session was finished with by this stream."""
        return self._status

    @property
    def time_s(self) -> float:
        """Session time (seconds) of the newest analysed frame; 0 before the first frame."""
        with self._lock:
            return self._time_s

    def session_time(self, at: float | None = None) -> float | None:
        """Session time (seconds) of the UTC epoch time ``at`` (default now); None before the session started."""
        with self._lock:
            started = self._started_at
        return None if started is None else max(0.0, (time.time() if at is None else at) - started)

    def seconds_since_frame(self) -> float | None:
        """Wall-clock seconds since the last analysed frame; None before the first frame."""
        with self._lock:
            return None if self._last_wall is None else time.monotonic() - self._last_wall

    def snapshot(self) -> LiveSnapshot:
        """Copy the current numbers out (cheap; the lock is held only for the copy)."""
        with self._lock:
            wall, history, latest = list(self._wall), list(self._history), list(self._latest)
            latency = np.asarray(self._latency, dtype=float)
            frames, time_s, state, status, message = self._frames, self._time_s, self._state, self._status, self._message
            base_skipped, base_refused = self._base_skipped, self._base_refused
            recorder_skipped, recorder_refused = self._recorder_base
        counts = self.recorder.stats(self.session_id)
        fps = (len(wall) - 1) / (wall[-1] - wall[0]) if len(wall) > 1 and wall[-1] > wall[0] else 0.0
        table = pd.DataFrame([p for _, p in history], columns=list(EMOTIONS))
        table.insert(0, "time_s", [t for t, _ in history])
        largest = max(latest, key=lambda r: r.box[2] * r.box[3]) if latest else None
        p50, p90 = (np.percentile(latency, [50, 90]) * 1000.0) if latency.size else (np.nan, np.nan)
        return LiveSnapshot(
            session_id=self.session_id, state=state, role=self.role, time_s=time_s, frames=frames, fps=fps,
            skipped=base_skipped + counts.skipped - recorder_skipped,
            refused=base_refused + counts.refused - recorder_refused, faces=len(latest),
            probs=None if largest is None else np.asarray(largest.smoothed, dtype=np.float32), history=table,
            latency_p50_ms=float(p50), latency_p90_ms=float(p90), status=status, message=message,
        )  # fmt: skip

    def disconnect(self) -> None:
        """The stream dropped without Stop (reload, closed tab, network): the session waits for a resume.

        The session stays ``recording`` for the recorder's resume window; later frames of this object are not
        recorded. Does nothing unless this stream is streaming.
        """
        with self._lock:
            if self._state != "streaming":
                return
            self._state = "finished"
            self._message = "The camera disconnected; the session continues when the participant comes back."
        self.recorder.release(self.session_id, self.stream_id, latency_ms=self._latency_ms())

    def finish(self, status: str, *, reason: str | None = None) -> bool:
        """End the session (``"complete"`` or ``"aborted"``) once; later calls do nothing.

        Works after :meth:`disconnect` too (a STOP ends the WebRTC stream, whose end may be seen before the page
        sees the STOP), unless another stream has taken the session over since. A stream that never held the
        session (refused, or stopped before its first frame) never ends it: returns False.

        Returns
        -------
        bool
            True if this call ended the session.

        Raises
        ------
        ValueError
            If ``status`` is not ``"complete"`` or ``"aborted"``.
        TimeoutError
            From :meth:`sessions.recorder.LiveRecorder.finish`, if the writer did not store the end in time (the
            frames already recorded are kept).
        """
        if status not in ("complete", "aborted"):
            raise ValueError(f"status has to be 'complete' or 'aborted'; got {status!r}")
        with self._lock:
            if self._status is not None or not self._claimed or self._state == "refused":
                if self._state == "waiting":
                    self._state = "finished"  # stopped before its first frame: it will not claim any more
                return False
            self._state = "finished"  # no more frames go to the recorder
            self._status = status
        self.recorder.finish(self.session_id, status=status, reason=reason, stream_id=self.stream_id,
                             latency_ms=self._latency_ms())  # fmt: skip
        return True

    def _latency_ms(self) -> tuple[float, float] | None:
        """(p50, p90) capture-to-result latency in milliseconds over the last frames; None before any frame."""
        with self._lock:
            latency = np.asarray(self._latency, dtype=float)
        return tuple(float(v) for v in np.percentile(latency, [50, 90]) * 1000.0) if latency.size else None
