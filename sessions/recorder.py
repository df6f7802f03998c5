"""The live recorder: takes observations from video threads without blocking them and writes them in batches.

One :class:`LiveRecorder` serves every stream of a server process and is that process's **live owner**: its
id is stored on every session it streams, and its heartbeat (refreshed at every flush) tells the other
processes sharing the store that those sessions still have a writer.

Video threads call :meth:`LiveRecorder.submit`, which only puts the frame's results on a bounded
``queue.Queue`` (``put_nowait``; when the queue is full the frame is refused and counted). One writer thread
drains the queue and bulk-inserts the rows every ``batch_interval_s`` seconds in one transaction. Every
change of a session's state (claim, release, end) goes through the same queue, so it is applied after the
rows submitted before it, and through :mod:`sessions.lifecycle`, the only writer of session state. Rows of
a session that has ended, or of a stream that no longer holds its session, are never stored.

If the process is killed, at most the rows of the last interval (plus the time of one commit) are lost; every
recorder, at start and every ``maintenance_interval_s`` seconds, ends as ``aborted`` the sessions whose owner
is gone (:func:`sessions.lifecycle.abort_orphaned`) and those nobody came back to within the resume window
(:func:`sessions.lifecycle.abort_expired_disconnects`).

The stored probabilities are the raw per-frame ones (``FaceResult.probs``), see :mod:`sessions.models`.
"""

from __future__ import annotations

import logging
import math
import queue
import threading
import time
import uuid
from collections.abc import Sequence
from contextlib import contextmanager
from datetime import datetime
from typing import Any, NamedTuple

import pandas as pd
from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.orm import Session

from fer_core.analyzer import observation_rows
from fer_core.emotions import ATTENTION_COLUMNS, BOX_COLUMNS, EMOTIONS, OBSERVATION_COLUMNS
from sessions import lifecycle
from sessions.models import LiveOwner, Observation, StudySession, utc_now

logger = logging.getLogger(__name__)


class RecorderStats(NamedTuple):
    """Frame counts of one session in this recorder (this process), since it first saw the session.

    Attributes
    ----------
    submitted : int
        Analysed frames handed to :meth:`LiveRecorder.submit`.
    written : int
        Frames stored.
    refused : int
        Analysed frames not stored: the queue was full, the recorder closed, or the write failed.
    skipped : int
        Camera frames not analysed because analysis was busy (reported with :meth:`LiveRecorder.skip`).
    discarded : int
        Frames the store refused: the session had ended, or another stream held it.
    """

    submitted: int
    written: int
    refused: int
    skipped: int = 0
    discarded: int = 0

    @property
    def dropped(self) -> int:
        """Camera frames lost to the session: skipped plus refused (the live panel's "dropped frames")."""
        return self.skipped + self.refused


class _Claim(NamedTuple):
    session_id: int
    stream_id: str
    role: str
    capture_at: datetime
    model: str | None
    reply: list
    done: threading.Event


class _Release(NamedTuple):
    session_id: int
    stream_id: str
    at: datetime
    latency_ms: tuple[float, float] | None


class _Finish(NamedTuple):
    session_id: int
    status: str
    reason: str | None
    stream_id: str | None
    latency_ms: tuple[float, float] | None
    done: threading.Event


_STOP = object()


def stored_row(session_id: int, row: dict) -> dict:
    """Turn one ``OBSERVATION_COLUMNS`` row into a row of the ``observations`` table: the one conversion that live
    frames (:func:`observation_records`) and imported videos (:func:`sessions.importer.observation_table_rows`)
    both go through.

    Parameters
    ----------
    session_id : int
        Session the row belongs to.
    row : dict
        ``time_s`` (seconds), ``frame``, ``face_id`` (-1 without a face), ``x, y, w, h`` (pixels), the seven
        probabilities and ``dominant`` (the core's :func:`fer_core.analyzer.observation_rows`; its arg-max is the
        one definition of the dominant expression), and where known the ``ATTENTION_COLUMNS`` ``yaw_deg``,
        ``pitch_deg`` (degrees) and ``attentive``.

    Returns
    -------
    dict
        ``session_id`` added; ``frame`` and ``face_id`` int, ``time_s`` float, the box rounded to int pixels, the
        probabilities float; a missing (NaN/None) box, probability or ``dominant`` as None; ``yaw_deg``,
        ``pitch_deg`` float and ``attentive`` bool, None where missing or absent (a detector without keypoints).

    Raises
    ------
    KeyError
        ``row`` lacks one of the ``OBSERVATION_COLUMNS``.
    TypeError, ValueError
        A ``frame``, ``face_id`` or ``time_s`` value is missing or not a number.
    """
    out = {name: row[name] for name in OBSERVATION_COLUMNS}
    out["session_id"] = session_id
    out["frame"], out["face_id"], out["time_s"] = int(out["frame"]), int(out["face_id"]), float(out["time_s"])
    for key in BOX_COLUMNS:
        out[key] = None if _missing(out[key]) else int(round(float(out[key])))
    for key in EMOTIONS:
        out[key] = None if _missing(out[key]) else float(out[key])
    if _missing(out["dominant"]):
        out["dominant"] = None
    for key in ATTENTION_COLUMNS:
        value = row.get(key)
        unknown = value is None or value is pd.NA or (not isinstance(value, str) and value != value)  # NaN != NaN
        out[key] = None if unknown else bool(value) if key == "attentive" else float(value)
    return out


def observation_records(session_id: int, frame_index: int, time_s: float, results: Sequence[Any]) -> list[dict]:
    """Turn one frame's face results into rows of the ``observations`` table.

    Uses the core's :func:`fer_core.analyzer.observation_rows` (raw probabilities, ``dominant`` their
    arg-max; one no-face row with ``dominant = "none"`` when ``results`` is empty), then :func:`stored_row`.

    Parameters
    ----------
    session_id : int
        Session the frame belongs to.
    frame_index : int
        Index of the frame in the session.
    time_s : float
        Seconds since the session started (from the frame's capture time).
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
    return [stored_row(session_id, row) for row in observation_rows(int(frame_index), float(time_s), list(results))]


def _missing(value) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


class LiveRecorder:
    """Record observations of several live sessions at once from one writer thread; this process's live owner.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        Engine from :func:`sessions.db.get_engine`.
    batch_interval_s : float, default 0.5
        Seconds between flushes (each flush is one transaction; also the owner's heartbeat period).
    max_queue : int, default 20000
        Frames the queue holds before :meth:`submit` refuses (at 30 fps: about 11 minutes of one stream).
    owner_stale_s : float, default 10
        Seconds without heartbeat after which another server process counts as gone and its open sessions are
        ended as ``aborted``. None: this recorder never ends other processes' sessions.
    resume_grace_s : float, default 120
        Seconds a session whose stream dropped waits for its participant to come back.
    maintenance_interval_s : float, default 2
        Seconds between two runs of crash recovery and of the resume-window check (the first runs at start).

    Raises
    ------
    ValueError
        If ``batch_interval_s`` or ``maintenance_interval_s`` is not positive, ``max_queue`` is under 1, or
        ``owner_stale_s`` or ``resume_grace_s`` is negative.

    Notes
    -----
    The writer thread starts in the constructor and runs until :meth:`close`. A stream claims its session
    (:meth:`claim`) with its first frame, then submits frames with its ``stream_id``; frames submitted without
    a ``stream_id`` (imports, benchmarks) are stored while no stream holds the session.
    """

    def __init__(self, engine: Engine, *, batch_interval_s: float = 0.5, max_queue: int = 20000,
                 owner_stale_s: float | None = lifecycle.OWNER_STALE_S,
                 resume_grace_s: float = lifecycle.RESUME_GRACE_S, maintenance_interval_s: float = 2.0) -> None:  # fmt: skip
        if not batch_interval_s > 0:
            raise ValueError(f"batch_interval_s has to be > 0 seconds; got {batch_interval_s!r}")
        if not maintenance_interval_s > 0:
            raise ValueError(f"maintenance_interval_s has to be > 0 seconds; got {maintenance_interval_s!r}")
        if int(max_queue) < 1:
            raise ValueError(f"max_queue has to be >= 1; got {max_queue!r}")
        if owner_stale_s is not None and not owner_stale_s >= 0:
            raise ValueError(f"owner_stale_s has to be >= 0 seconds or None; got {owner_stale_s!r}")
        if not resume_grace_s >= 0:
            raise ValueError(f"resume_grace_s has to be >= 0 seconds; got {resume_grace_s!r}")
        self.engine = engine
        self.batch_interval_s = float(batch_interval_s)
        self.max_queue = int(max_queue)
        self.owner_stale_s = owner_stale_s
        self.resume_grace_s = float(resume_grace_s)
        self.maintenance_interval_s = float(maintenance_interval_s)
        self.owner_id = uuid.uuid4().hex
        self._queue: queue.Queue = queue.Queue(maxsize=self.max_queue)
        self._lock = threading.Lock()
        # session id -> [submitted, written, refused, skipped, discarded]
        self._counts: dict[int, list[int]] = {}
        self._unsaved: dict[int, list[int]] = {}  # session id -> [skipped, refused] not yet added in the store
        self._lost: set[str] = set()  # streams whose rows the store refused (session ended or taken over)
        self._closed = False
        with Session(engine) as db, db.begin():
            lifecycle.register_owner(db, self.owner_id)
        self._thread = threading.Thread(target=self._run, name="session-recorder", daemon=True)
        self._thread.start()

    # -- called from video threads -------------------------------------------------------------------
    def submit(self, session_id: int, frame_index: int, time_s: float, results: Sequence[Any], *,
               stream_id: str | None = None) -> bool:  # fmt: skip
        """Queue one analysed frame of a session; never blocks.

        Parameters
        ----------
        session_id : int
            Session being recorded.
        frame_index : int
            Index of the frame in the session (unique within it).
        time_s : float
            Seconds since the session started (from the frame's capture time, not ``frame_index / fps``).
        results : list of fer_core.analyzer.FaceResult
            The frame's faces; an empty list records a frame without a face.
        stream_id : str, optional
            The stream that claimed the session (:meth:`claim`); its rows are stored only while it holds it.

        Returns
        -------
        bool
            True if queued; False if the queue was full (or the recorder closed): the frame is refused and counted.
        """
        with self._lock:
            counts = self._counts.setdefault(session_id, [0, 0, 0, 0, 0])
            counts[0] += 1
            if self._closed:
                self._refuse(session_id, 1)
                return False
        try:
            self._queue.put_nowait((session_id, frame_index, time_s, list(results), stream_id))
            return True
        except queue.Full:
            with self._lock:
                self._refuse(session_id, 1)
            logger.warning("recorder queue full (%d frames): refused frame %s of session %s",
                           self.max_queue, frame_index, session_id)  # fmt: skip
            return False

    def skip(self, session_id: int, n: int) -> None:
        """Count ``n`` camera frames of a session that were not analysed because analysis was busy."""
        if n > 0:
            with self._lock:
                self._counts.setdefault(session_id, [0, 0, 0, 0, 0])[3] += n
                self._unsaved.setdefault(session_id, [0, 0])[0] += n

    def holds(self, stream_id: str) -> bool:
        """False once the store has refused a row of ``stream_id`` (its session ended or another stream took it)."""
        with self._lock:
            return stream_id not in self._lost

    def _refuse(self, session_id: int, n: int) -> None:  # caller holds the lock
        self._counts.setdefault(session_id, [0, 0, 0, 0, 0])[2] += n
        self._unsaved.setdefault(session_id, [0, 0])[1] += n

    # -- called from page / control threads ----------------------------------------------------------
    def claim(self, session_id: int, *, stream_id: str, role: str, capture_at: datetime, model: str | None = None,
              timeout_s: float = 10.0) -> lifecycle.StreamClaim:  # fmt: skip
        """Make ``stream_id`` the session's one live stream (:func:`sessions.lifecycle.claim_stream`); blocks.

        Applied by the writer after every row submitted before it (a stream that just dropped is released first).

        Raises
        ------
        sessions.errors.StreamRefused
            Another stream delivers frames to the session.
        sessions.errors.SessionEnded
            The session has ended.
        sessions.errors.SessionNotFound
            Unknown session.
        TimeoutError
            The writer did not answer within ``timeout_s``.
        """
        reply: list = []
        done = threading.Event()
        try:
            self._queue.put(_Claim(session_id, stream_id, role, capture_at, model, reply, done), timeout=timeout_s)
        except queue.Full:
            raise TimeoutError(f"the recorder queue stayed full for {timeout_s} s; session {session_id} was not claimed") from None
        if not done.wait(timeout_s):
            raise TimeoutError(f"the recorder did not claim session {session_id} within {timeout_s} s")
        if isinstance(reply[0], BaseException):
            raise reply[0]
        return reply[0]

    def release(self, session_id: int, stream_id: str, *, latency_ms: tuple[float, float] | None = None) -> None:
        """The stream dropped without Stop: the session waits for a resume (:func:`sessions.lifecycle.release_stream`).

        Never blocks; applied after the stream's queued rows are stored. ``latency_ms`` (p50, p90 in
        milliseconds) is stored on the session (:func:`sessions.lifecycle.set_latency`).
        """
        try:
            self._queue.put_nowait(_Release(session_id, stream_id, utc_now(), latency_ms))
        except queue.Full:
            logger.warning("recorder queue full: release of session %s deferred to the stall watchdog", session_id)

    def finish(self, session_id: int, status: str = "complete", *, reason: str | None = None,
               stream_id: str | None = None, latency_ms: tuple[float, float] | None = None,
               timeout_s: float = 30.0) -> RecorderStats:  # fmt: skip
        """Store a session's queued frames, then end it (:func:`sessions.lifecycle.end_session`).

        Parameters
        ----------
        session_id : int
            Session to finish.
        status : {"complete", "aborted"}
            ``"aborted"`` when the stream failed.
        reason : str, optional
            Why it ended, in words (stored on the session).
        stream_id : str, optional
            End it only if this stream holds it or no stream does.
        latency_ms : tuple of float, optional
            The stream's capture-to-result latency (p50, p90 in milliseconds), stored on the session.
        timeout_s : float
            Seconds to wait for the writer.

        Returns
        -------
        RecorderStats
            The session's final counts in this recorder. A session that had already ended keeps its status.

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
            self._queue.put(_Finish(session_id, status, reason, stream_id, latency_ms, done), timeout=timeout_s)
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
            return RecorderStats(*self._counts.get(session_id, (0, 0, 0, 0, 0)))

    def close(self, *, timeout_s: float = 30.0) -> None:
        """Flush everything, end as ``aborted`` the sessions this process streams, stop the writer thread.

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
        self._maintain()
        rows: list[dict] = []
        deadline = time.monotonic() + self.batch_interval_s
        next_maintenance = time.monotonic() + self.maintenance_interval_s
        while True:
            try:
                item = self._queue.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                item = None
            if item is _STOP:
                self._flush(rows)
                self._shutdown()
                return
            if isinstance(item, (_Claim, _Release, _Finish)):
                self._flush(rows)
                rows = []
                self._control(item)
            elif item is not None:
                session_id, frame_index, time_s, results, stream_id = item
                try:
                    for row in observation_records(session_id, frame_index, time_s, results):
                        row["_stream"] = stream_id
                        rows.append(row)
                except (ValueError, TypeError, AttributeError, IndexError):
                    logger.exception("bad results for frame %s of session %s: refused", frame_index, session_id)
                    with self._lock:
                        self._refuse(session_id, 1)
            now = time.monotonic()
            if now >= deadline:
                self._flush(rows)
                rows = []
                deadline = now + self.batch_interval_s
            if now >= next_maintenance:
                self._maintain()
                next_maintenance = now + self.maintenance_interval_s

    def _control(self, item) -> None:
        """Apply one claim, release or finish in its own transaction (after the rows queued before it)."""
        finishing = {item.session_id} if isinstance(item, _Finish) else set()
        try:
            with self._saved_counts(finishing) as unsaved, Session(self.engine) as db, db.begin():
                if isinstance(item, _Claim):
                    claim = lifecycle.claim_stream(db, item.session_id, stream_id=item.stream_id, owner_id=self.owner_id,
                                                   role=item.role, capture_at=item.capture_at, model=item.model)  # fmt: skip
                elif isinstance(item, _Release):
                    if lifecycle.release_stream(db, item.session_id, item.stream_id, at=item.at) and item.latency_ms:
                        lifecycle.set_latency(db, item.session_id, *item.latency_ms)
                else:
                    self._add_counts(db, unsaved)
                    if item.latency_ms:
                        lifecycle.set_latency(db, item.session_id, *item.latency_ms)
                    lifecycle.end_session(db, item.session_id, item.status, reason=item.reason, stream_id=item.stream_id)
            if isinstance(item, _Claim):  # committed: only now is the claim the caller's
                with self._lock:
                    self._lost.discard(item.stream_id)
                item.reply.append(claim)
        except Exception as exc:  # handed to the caller (claim) or logged (release, finish)
            if isinstance(item, _Claim):
                item.reply.append(exc)
            else:
                logger.exception("recorder could not apply %s to session %s", type(item).__name__, item.session_id)
        finally:
            if not isinstance(item, _Release):
                item.done.set()

    @contextmanager
    def _saved_counts(self, session_ids: set[int]):
        """Take the sessions' unsaved skipped/refused counts for one transaction; put them back if it fails."""
        with self._lock:
            unsaved = {sid: self._unsaved.pop(sid) for sid in list(self._unsaved) if sid in session_ids}
        try:
            yield unsaved
        except BaseException:
            with self._lock:
                for sid, (skipped, refused) in unsaved.items():
                    counts = self._unsaved.setdefault(sid, [0, 0])
                    counts[0] += skipped
                    counts[1] += refused
            raise

    @staticmethod
    def _add_counts(db: Session, unsaved: dict[int, list[int]], heartbeat: dict[int, datetime] | None = None) -> None:
        for sid in set(unsaved) | set(heartbeat or {}):
            skipped, refused = unsaved.get(sid, (0, 0))
            lifecycle.add_frame_counts(db, sid, skipped=skipped, refused=refused,
                                       heartbeat_at=(heartbeat or {}).get(sid))  # fmt: skip

    def _flush(self, rows: list[dict]) -> None:
        """Store a batch in one transaction with the owner's heartbeat; if that fails, session by session, so one
        bad session cannot lose the others' rows."""
        with self._lock:
            pending = set(self._unsaved)
        sessions = {r["session_id"] for r in rows} | pending
        try:
            self._write(rows, sessions)
        except Exception:
            logger.warning("recorder batch failed; retrying session by session", exc_info=True)
            for sid in sessions:
                mine = [r for r in rows if r["session_id"] == sid]
                try:
                    self._write(mine, {sid})
                except Exception:
                    logger.exception("recorder could not write session %s; its %d rows are lost", sid, len(mine))
                    frames = len({r["frame"] for r in mine})
                    with self._lock:
                        self._refuse(sid, frames)  # counted, and stored with the next flush that succeeds

    def _write(self, rows: list[dict], sessions: set[int]) -> None:
        with self._saved_counts(sessions) as unsaved, Session(self.engine) as db, db.begin():
            lifecycle.beat(db, self.owner_id)
            if not sessions:
                return
            accepting = lifecycle.accepting_sessions(db, sessions)
            kept, discarded, lost = [], {}, set()
            for row in rows:
                sid, stream = row["session_id"], row["_stream"]
                if sid in accepting and accepting[sid] == stream:
                    kept.append({k: v for k, v in row.items() if k != "_stream"})
                else:
                    discarded.setdefault(sid, set()).add(row["frame"])
                    if stream is not None:
                        lost.add(stream)
            if kept:
                db.execute(insert(Observation), kept)
            now = utc_now()
            self._add_counts(db, unsaved, heartbeat={r["session_id"]: now for r in kept})
        written: dict[int, set] = {}
        for row in kept:
            written.setdefault(row["session_id"], set()).add(row["frame"])
        with self._lock:
            for sid, frames in written.items():
                self._counts.setdefault(sid, [0, 0, 0, 0, 0])[1] += len(frames)
            for sid, frames in discarded.items():
                self._counts.setdefault(sid, [0, 0, 0, 0, 0])[4] += len(frames)
            self._lost |= lost
        for sid, frames in discarded.items():
            logger.warning("session %s has ended or is held by another stream: %d frames not stored", sid, len(frames))

    def _maintain(self) -> None:
        """Crash recovery and the resume window, in their own transaction (never fatal to the writer)."""
        try:
            with Session(self.engine) as db, db.begin():
                lifecycle.beat(db, self.owner_id)
                aborted = []
                if self.owner_stale_s is not None:
                    aborted += lifecycle.abort_orphaned(db, stale_after_s=self.owner_stale_s, self_id=self.owner_id)
                expired = lifecycle.abort_expired_disconnects(db, grace_s=self.resume_grace_s)
            if aborted:
                logger.warning("ended as aborted the sessions %s of server processes that are gone", aborted)
            if expired:
                logger.warning("ended as aborted the sessions %s: nobody came back within %.0f s", expired,
                               self.resume_grace_s)  # fmt: skip
        except Exception:
            logger.exception("recorder maintenance (crash recovery, resume window) failed")

    def _shutdown(self) -> None:
        """End as ``aborted`` the sessions this process still streams and retire this owner."""
        try:
            with Session(self.engine) as db, db.begin():
                with self._lock:
                    self._unsaved, unsaved = {}, dict(self._unsaved)
                for sid, (skipped, refused) in unsaved.items():
                    lifecycle.add_frame_counts(db, sid, skipped=skipped, refused=refused)
                mine = db.scalars(select(StudySession.id).where(StudySession.owner_id == self.owner_id,
                                                                StudySession.status == "recording")).all()  # fmt: skip
                for sid in mine:
                    lifecycle.end_session(db, sid, "aborted", reason="the server stopped while it was recording",
                                          owner_id=self.owner_id)  # fmt: skip
                db.execute(delete(LiveOwner).where(LiveOwner.id == self.owner_id))
        except Exception:
            logger.exception("recorder could not end its sessions at shutdown")


def recover_interrupted(engine: Engine, *, stale_after_s: float = lifecycle.OWNER_STALE_S) -> list[int]:
    """End as ``aborted`` the recording sessions whose writer is gone (:func:`sessions.lifecycle.abort_orphaned`).

    Every :class:`LiveRecorder` runs this at start and periodically; this function is for tools and tests.
    ``pending`` sessions (a join link not opened yet) are left alone, so their links work after a restart.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The store.
    stale_after_s : float
        Seconds without heartbeat after which a server process (or an ownerless session) counts as gone.

    Returns
    -------
    list of int
        Ids of the sessions ended.

    Raises
    ------
    ValueError
        If ``stale_after_s`` is negative or NaN.
    """
    with Session(engine) as db, db.begin():
        return lifecycle.abort_orphaned(db, stale_after_s=stale_after_s)
