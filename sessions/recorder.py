"""The live recorder: takes observations from video threads without blocking them and writes them in batches.

One :class:`LiveRecorder` serves every stream of a server process. Video threads call
:meth:`LiveRecorder.submit`, which only puts the frame's results on a bounded ``queue.Queue``
(``put_nowait``; when the queue is full the frame is dropped and counted). One writer thread drains the
queue and bulk-inserts the rows every ``batch_interval_s`` seconds in one transaction, updating each active
session's heartbeat and dropped-frame count in the same transaction. If the process is killed, at most the
rows of the last interval (plus the time of one commit) are lost; :func:`recover_interrupted`, run at the next
start, marks sessions left ``recording`` with a stale heartbeat as ``aborted``.

The stored probabilities are the raw per-frame ones (``FaceResult.probs``), see :mod:`sessions.models`.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, NamedTuple

from sqlalchemy import Engine, insert, or_, select, update
from sqlalchemy.orm import Session

from fer_core.analyzer import observation_rows
from fer_core.emotions import BOX_COLUMNS, EMOTIONS
from sessions.models import Observation, StudySession, utc_now
from sessions.repository import refresh_session_stats

logger = logging.getLogger(__name__)


class RecorderStats(NamedTuple):
    """Frame counts of one session in a recorder: submitted, written to the database, dropped (queue full)."""

    submitted: int
    written: int
    dropped: int


class _Finish(NamedTuple):
    session_id: int
    status: str
    done: threading.Event


_STOP = object()


def observation_records(session_id: int, frame_index: int, time_s: float, results: Sequence[Any]) -> list[dict]:
    """Turn one frame's face results into rows of the ``observations`` table.

    Uses the core's :func:`fer_core.analyzer.observation_rows` (raw probabilities, ``dominant`` their
    arg-max; one no-face row with ``dominant = "none"`` when ``results`` is empty) and maps NaN to NULL.

    Parameters
    ----------
    session_id : int
        Session the frame belongs to.
    frame_index : int
        Index of the frame in the stream.
    time_s : float
        Seconds since the session started (from the frame's timestamp).
    results : sequence of fer_core.analyzer.FaceResult
        Faces found in the frame (``face_id``, ``box`` (x, y, w, h) pixels, ``probs`` (7,) float32 raw
        probabilities, ...).

    Returns
    -------
    list of dict
        One dict per face (or one no-face dict), keyed by ``Observation`` column names.

    Raises
    ------
    ValueError
        If a result's ``probs`` does not hold seven probabilities.
    """
    rows = observation_rows(int(frame_index), float(time_s), list(results))
    for row in rows:
        row["session_id"] = session_id
        row["face_id"] = int(row["face_id"])
        for key in BOX_COLUMNS:
            row[key] = None if _missing(row[key]) else int(row[key])
        for key in EMOTIONS:
            row[key] = None if _missing(row[key]) else float(row[key])
    return rows


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


class LiveRecorder:
    """Record observations of several live sessions at once from one writer thread.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        Engine from :func:`sessions.db.get_engine`.
    batch_interval_s : float, default 0.5
        Seconds between flushes (each flush is one transaction; also the heartbeat period).
    max_queue : int, default 20000
        Frames the queue holds before :meth:`submit` drops (at 30 fps: about 11 minutes of one stream).
    recover_stale_s : float or None, default 10
        When the writer starts, sessions left ``recording`` with a heartbeat older than this are marked
        ``aborted`` (:func:`recover_interrupted`): a new recorder is a server (re)start. None: skip.

    Raises
    ------
    ValueError
        If ``batch_interval_s`` is not positive, ``max_queue`` is under 1 or ``recover_stale_s`` is negative.

    Notes
    -----
    The writer thread starts in the constructor and runs until :meth:`close`. Sessions must exist (status
    ``recording``, see :func:`sessions.repository.create_session`) before frames are submitted.
    """

    def __init__(self, engine: Engine, *, batch_interval_s: float = 0.5, max_queue: int = 20000,
                 recover_stale_s: float | None = 10.0) -> None:  # fmt: skip
        if not batch_interval_s > 0:
            raise ValueError(f"batch_interval_s has to be > 0 seconds; got {batch_interval_s!r}")
        if int(max_queue) < 1:
            raise ValueError(f"max_queue has to be >= 1; got {max_queue!r}")
        self.engine = engine
        self.batch_interval_s = float(batch_interval_s)
        self.max_queue = int(max_queue)
        if recover_stale_s is not None and not recover_stale_s >= 0:
            raise ValueError(f"recover_stale_s has to be >= 0 seconds or None; got {recover_stale_s!r}")
        self.recover_stale_s = recover_stale_s
        self._queue: queue.Queue = queue.Queue(maxsize=self.max_queue)
        self._lock = threading.Lock()
        self._counts: dict[int, list[int]] = {}  # session id -> [submitted, written, dropped]
        self._active: set[int] = set()  # sessions whose heartbeat the writer keeps fresh
        self._closed = False
        self._thread = threading.Thread(target=self._run, name="session-recorder", daemon=True)
        self._thread.start()

    # -- called from video threads -------------------------------------------------------------------
    def submit(self, session_id: int, frame_index: int, time_s: float, results: Sequence[Any]) -> bool:
        """Queue one analysed frame of a session; never blocks.

        Parameters
        ----------
        session_id : int
            Session being recorded.
        frame_index : int
            Index of the frame in the stream.
        time_s : float
            Seconds since the session started (from the frame's timestamp, not ``frame_index / fps``).
        results : list of fer_core.analyzer.FaceResult
            The frame's faces; an empty list records a frame without a face.

        Returns
        -------
        bool
            True if queued; False if the queue was full (or the recorder closed) and the frame was dropped
            and counted.
        """
        with self._lock:
            counts = self._counts.setdefault(session_id, [0, 0, 0])
            counts[0] += 1
            self._active.add(session_id)
            if self._closed:
                counts[2] += 1
                return False
        try:
            self._queue.put_nowait((session_id, frame_index, time_s, list(results)))
            return True
        except queue.Full:
            with self._lock:
                counts[2] += 1
            logger.warning("recorder queue full (%d frames): dropped frame %s of session %s",
                           self.max_queue, frame_index, session_id)  # fmt: skip
            return False

    # -- called from page / control threads ----------------------------------------------------------
    def register(self, session_id: int) -> None:
        """Keep a session's heartbeat fresh before its first frame arrives (e.g. while the camera starts)."""
        with self._lock:
            self._counts.setdefault(session_id, [0, 0, 0])
            self._active.add(session_id)

    def finish(self, session_id: int, status: str = "complete", *, timeout_s: float = 30.0) -> RecorderStats:
        """Flush a session's queued frames, then set its end time, status and dropped-frame count.

        Parameters
        ----------
        session_id : int
            Session to finish.
        status : {"complete", "aborted"}
            ``"aborted"`` when the browser disconnected or the stream failed.
        timeout_s : float
            Seconds to wait for the writer.

        Returns
        -------
        RecorderStats
            The session's final counts.

        Raises
        ------
        ValueError
            Unknown ``status``.
        TimeoutError
            If the queue stayed full or the writer did not finish the session within ``timeout_s``.
        """
        if status not in ("complete", "aborted"):
            raise ValueError(f"status has to be 'complete' or 'aborted'; got {status!r}")
        done = threading.Event()
        try:
            self._queue.put(_Finish(session_id, status, done), timeout=timeout_s)
        except queue.Full:
            raise TimeoutError(
                f"the recorder queue stayed full for {timeout_s} s; session {session_id} was not finished"
            ) from None
        if not done.wait(timeout_s):
            raise TimeoutError(f"the recorder did not finish session {session_id} within {timeout_s} s")
        return self.stats(session_id)

    def stats(self, session_id: int) -> RecorderStats:
        """Return the session's frame counts in this recorder (zeros for a session it has not seen)."""
        with self._lock:
            return RecorderStats(*self._counts.get(session_id, (0, 0, 0)))

    def close(self, *, timeout_s: float = 30.0) -> None:
        """Flush everything, mark sessions still recording as ``aborted``, and stop the writer thread.

        Waits at most ``timeout_s`` seconds for the writer; if it has not finished by then, ``close``
        returns anyway (the writer is a daemon thread and keeps flushing until the process exits).
        Later calls do nothing.
        """
        with self._lock:
            if self._closed:
                return
            self._closed = True
        self._queue.put(_STOP)
        self._thread.join(timeout_s)

    def __enter__(self) -> LiveRecorder:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    # -- writer thread -------------------------------------------------------------------------------
    def _run(self) -> None:
        if self.recover_stale_s is not None:
            try:
                recovered = recover_interrupted(self.engine, stale_after_s=self.recover_stale_s)
                if recovered:
                    logger.warning("marked interrupted sessions %s as aborted", recovered)
            except Exception:
                logger.exception("could not mark interrupted sessions as aborted")
        rows: list[dict] = []
        frames: dict[int, int] = {}
        deadline = time.monotonic() + self.batch_interval_s
        stopping = False
        while not stopping:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                item = None
            if item is _STOP:
                stopping = True
            elif isinstance(item, _Finish):
                self._flush(rows, frames, finish=item)
                rows, frames = [], {}
                deadline = time.monotonic() + self.batch_interval_s
                continue
            elif item is not None:
                session_id, frame_index, time_s, results = item
                try:
                    rows.extend(observation_records(session_id, frame_index, time_s, results))
                    frames[session_id] = frames.get(session_id, 0) + 1
                except (ValueError, TypeError, AttributeError, IndexError):
                    logger.exception("bad results for frame %s of session %s: dropped", frame_index, session_id)
                    with self._lock:
                        self._counts[session_id][2] += 1
            if stopping or time.monotonic() >= deadline:
                self._flush(rows, frames, abort_active=stopping)
                rows, frames = [], {}
                deadline = time.monotonic() + self.batch_interval_s

    def _flush(self, rows: list[dict], frames: dict[int, int], *, finish: _Finish | None = None,
               abort_active: bool = False) -> None:  # fmt: skip
        """Write a batch in one transaction; if that fails, session by session, so one bad session
        (e.g. deleted while recording) cannot lose the others' rows."""
        with self._lock:
            active = set(self._active)
            dropped = {sid: self._counts[sid][2] for sid in active | set(frames)}
        if not rows and not active and finish is None:
            return
        closing = set(active) if abort_active else ({finish.session_id} if finish is not None else set())
        status = "aborted" if abort_active else (finish.status if finish is not None else "")
        try:
            try:
                self._write(rows, active, dropped, closing, status)
                failed: set[int] = set()
            except Exception:
                logger.warning("recorder batch failed; retrying session by session", exc_info=True)
                failed = set()
                for sid in active | set(frames) | closing:
                    try:
                        self._write([r for r in rows if r["session_id"] == sid], {sid} & active, dropped,
                                    {sid} & closing, status)  # fmt: skip
                    except Exception:
                        logger.exception("recorder could not write session %s; its %d frames are lost",
                                         sid, frames.get(sid, 0))  # fmt: skip
                        failed.add(sid)
            with self._lock:
                for sid, n in frames.items():
                    self._counts[sid][1 if sid not in failed else 2] += n
                self._active -= closing | failed
        finally:
            if finish is not None:
                finish.done.set()

    def _write(self, rows: list[dict], active: set[int], dropped: dict[int, int], closing: set[int],
               status: str) -> None:  # fmt: skip
        now = utc_now()
        with Session(self.engine) as db, db.begin():
            if rows:
                db.execute(insert(Observation), rows)
            for sid in active | closing:
                values: dict[str, Any] = {"heartbeat_at": now}
                if sid in dropped:
                    values["dropped_frames"] = dropped[sid]
                if sid in closing:
                    values.update(status=status, ended_at=now)
                db.execute(update(StudySession).where(StudySession.id == sid).values(**values))
            for sid in closing:
                if db.get(StudySession, sid) is not None:
                    refresh_session_stats(db, sid)


def recover_interrupted(engine: Engine, *, stale_after_s: float = 10) -> list[int]:
    """Mark sessions left ``recording`` whose heartbeat is older than ``stale_after_s`` as ``aborted``.

    Run at server start: a session whose recorder was killed keeps the observations written before the kill,
    reads as ``aborted``, and gets its last heartbeat as end time. A live session whose participant has not
    given consent yet and that has no observation (e.g. a join link not opened yet) has not started: it is left
    ``recording`` so that its link still works after the restart.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The store.
    stale_after_s : float, default 10
        Seconds without heartbeat after which a recording session counts as interrupted (>= 0).

    Returns
    -------
    list of int
        Ids of the sessions marked aborted.

    Raises
    ------
    ValueError
        If ``stale_after_s`` is negative or NaN.
    """
    if not stale_after_s >= 0:
        raise ValueError(f"stale_after_s has to be >= 0 seconds; got {stale_after_s!r}")
    cutoff = utc_now() - timedelta(seconds=stale_after_s)
    with Session(engine) as db, db.begin():
        stale = list(db.execute(
            select(StudySession.id, StudySession.heartbeat_at, StudySession.started_at).where(
                StudySession.status == "recording",
                ~((StudySession.source == "live") & StudySession.consent_at.is_(None)  # not started yet
                  & ~select(Observation.id).where(Observation.session_id == StudySession.id).exists()),
                or_(StudySession.heartbeat_at < cutoff,
                    StudySession.heartbeat_at.is_(None) & (StudySession.started_at < cutoff)),
            )
        ).all())  # fmt: skip
        for sid, heartbeat, started in stale:
            db.execute(update(StudySession).where(StudySession.id == sid, StudySession.status == "recording")
                       .values(status="aborted", ended_at=heartbeat or started))  # fmt: skip
            refresh_session_stats(db, sid)
    return [sid for sid, _, _ in stale]
