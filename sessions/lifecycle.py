"""The life of a session in the store: the one writer of its state, from ``pending`` to ``complete``/``aborted``.

Every state change of a session goes through a function here, each one a conditional ``UPDATE`` so that it is
atomic on SQLite and PostgreSQL alike, whatever number of server processes share the store:

- :func:`claim_stream` gives a session its one live stream (the first frame of a camera). It starts a
  ``pending`` session (``started_at`` = the capture time of that frame), resumes a ``recording`` one whose
  stream dropped (storing the gap), and refuses a second stream while the first one delivers frames.
- :func:`release_stream` is the stream dropping without Stop (reload, closed tab, network): the session stays
  ``recording`` and can be resumed from its link until the grace window runs out.
- :func:`end_session` is the only way a session ends; an ended session never changes status again and takes
  no more rows (:func:`accepting_sessions`).
- :func:`beat` keeps a server process's :class:`~sessions.models.LiveOwner` heartbeat fresh;
  :func:`abort_orphaned` ends the sessions of processes that are gone, :func:`abort_expired_disconnects` the
  sessions nobody came back to.

Like the repository, functions take an ORM session ``db`` and never commit: the caller owns the transaction.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import NamedTuple

from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.orm import Session

from sessions.errors import SessionEnded, StreamRefused
from sessions.models import ENDED_STATUSES, STREAM_ROLES, LiveOwner, Observation, SessionGap, StudySession, utc_now
from sessions.repository import get_session, refresh_session_stats
from sessions.second_aggregates import store_second_aggregates

logger = logging.getLogger(__name__)

#: Seconds without stored frames after which a session's stream counts as gone and another may take over.
TAKEOVER_S = 5.0
#: Seconds a dropped session waits for its participant to come back before it ends ``aborted`` (default).
RESUME_GRACE_S = 120.0
#: Seconds without a heartbeat after which a server process counts as gone (default).
OWNER_STALE_S = 10.0
#: Statuses that still take rows.
OPEN_STATUSES: tuple[str, ...] = ("pending", "recording")


class StreamClaim(NamedTuple):
    """What a stream needs to continue a session after :func:`claim_stream`.

    Attributes
    ----------
    started_at : datetime
        Aware UTC capture time of the session's first frame (session time 0).
    first_time_s : float
        Session time (seconds) of the claiming frame: never before ``last_time_s``.
    next_frame : int
        Frame index to give the claiming frame (indices stay unique across resumes).
    resumed : bool
        True when the session already had frames (a reload or a dropped network came back).
    gap : tuple of float or None
        ``(start_s, end_s)`` of the stored gap when resumed, else None.
    skipped_frames, refused_frames : int
        The session's stored counts at the claim (a resumed stream adds to them).
    started : bool
        True when this claim started the session (its frame is session time 0).
    """

    started_at: datetime
    first_time_s: float
    next_frame: int
    resumed: bool
    gap: tuple[float, float] | None
    skipped_frames: int
    refused_frames: int
    started: bool = False


def process_start_token(pid: int | None = None) -> int | None:
    """Start time of process ``pid`` in clock ticks since boot (Linux ``/proc/PID/stat``), None if unknown.

    Together with the host name and the pid it names one process incarnation: a restarted server that got
    the same pid (pid 1 in a container) has another start time.
    """
    try:
        stat = open(f"/proc/{pid or os.getpid()}/stat", encoding="ascii").read()
        return int(stat.rsplit(")", 1)[1].split()[19])  # field 22 (starttime); fields after the command name
    except (OSError, ValueError, IndexError):
        return None


def _host() -> str:
    """This machine and pid namespace: two containers with one host name (host networking) are two hosts here,
    since a pid of one means nothing in the other."""
    try:
        namespace = os.readlink("/proc/self/ns/pid")  # e.g. "pid:[4026531836]"
    except OSError:
        namespace = ""
    return f"{socket.gethostname()} {namespace}".strip()[:255]


def register_owner(db: Session, owner_id: str) -> LiveOwner:
    """Add (or refresh) the :class:`LiveOwner` row of this process under ``owner_id`` and return it.

    Parameters
    ----------
    db : sqlalchemy.orm.Session
        Open ORM session; flushed, not committed.
    owner_id : str
        Unique id of this process's live recorder (e.g. ``uuid4().hex``), at most 64 characters.

    Raises
    ------
    ValueError
        If ``owner_id`` is empty or longer than 64 characters.
    """
    if not owner_id or len(owner_id) > 64:
        raise ValueError(f"owner_id has to be 1-64 characters; got {len(owner_id or '')}")
    now = utc_now()
    owner = db.get(LiveOwner, owner_id)
    if owner is None:
        owner = LiveOwner(id=owner_id, host=_host(), pid=os.getpid(), started_at=now, heartbeat_at=now)
        db.add(owner)
    owner.heartbeat_at = now
    db.flush()
    return owner


def beat(db: Session, owner_id: str, at: datetime | None = None) -> None:
    """Refresh the heartbeat of owner ``owner_id`` (registering it if its row is missing)."""
    at = at or utc_now()
    done = db.execute(update(LiveOwner).where(LiveOwner.id == owner_id).values(heartbeat_at=at)).rowcount
    if not done:
        register_owner(db, owner_id)


def _owner_is_gone(owner: LiveOwner, cutoff: datetime, self_id: str | None) -> bool:
    if owner.id == self_id:
        return False
    if owner.heartbeat_at < cutoff:
        return True
    if owner.host != _host():
        return False  # another machine: only its heartbeat can tell
    if owner.pid == os.getpid():
        # this very process (another recorder of it, e.g. in tests) or an earlier process that had our pid
        return owner.started_at < _process_started_at()
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return True  # no such process on this machine: it crashed or was killed
    except PermissionError:
        return False
    return False


def _process_started_at() -> datetime:
    """Approximate UTC start time of this process (from ``/proc`` uptime arithmetic, else the import time)."""
    token = process_start_token()
    try:
        uptime = float(open("/proc/uptime", encoding="ascii").read().split()[0])
        ticks = os.sysconf("SC_CLK_TCK")
        if token is not None:
            return utc_now() - timedelta(seconds=uptime - token / ticks) - timedelta(seconds=1)
    except (OSError, ValueError, IndexError):
        pass
    return _IMPORTED_AT


_IMPORTED_AT = utc_now()


def abort_orphaned(db: Session, *, stale_after_s: float = OWNER_STALE_S, self_id: str | None = None) -> list[int]:
    """End as ``aborted`` the open sessions whose writer is gone; return their ids.

    A session's writer is gone when its owner process's heartbeat is older than ``stale_after_s``, or, for an
    owner on this machine, at once when that process no longer exists (a restart within a second still
    finds the sessions of the process it replaces). Sessions of owners that are alive, on any machine, are
    never touched, so several servers on one PostgreSQL never abort each other's sessions. ``pending``
    sessions (never started) are left alone: their links keep working. Sessions of an older schema without an
    owner are judged by their own heartbeat. Ended sessions get their last heartbeat as end time.

    Parameters
    ----------
    db : sqlalchemy.orm.Session
        Open ORM session; flushed, not committed.
    stale_after_s : float
        Seconds without heartbeat after which an owner (or an ownerless recording session) counts as gone.
    self_id : str, optional
        The caller's own owner id, never considered gone.

    Raises
    ------
    ValueError
        If ``stale_after_s`` is negative or NaN.
    """
    if not stale_after_s >= 0:
        raise ValueError(f"stale_after_s has to be >= 0 seconds; got {stale_after_s!r}")
    cutoff = utc_now() - timedelta(seconds=stale_after_s)
    owners = {o.id: o for o in db.scalars(select(LiveOwner))}
    gone = {oid for oid, owner in owners.items() if _owner_is_gone(owner, cutoff, self_id)}
    candidates = db.execute(
        select(StudySession.id, StudySession.owner_id, StudySession.heartbeat_at, StudySession.started_at)
        .where(StudySession.status == "recording")
    ).all()
    aborted = []
    for sid, owner_id, heartbeat, started in candidates:
        if owner_id is not None and owner_id in owners:
            if owner_id not in gone:
                continue
            reason = "the server process recording it stopped (crash or restart)"
        elif owner_id is not None:  # an owner registered after our snapshot, or retired: the session's heartbeat
            if heartbeat is not None and heartbeat >= cutoff:
                continue
            reason = "the server process recording it stopped (crash or restart)"
        else:
            last = heartbeat or started
            if last is not None and last >= cutoff:
                continue
            reason = "interrupted: no heartbeat from its recorder"
        if end_session(db, sid, "aborted", reason=reason, ended_at=heartbeat or started, owner_id=owner_id):
            aborted.append(int(sid))
    if gone:
        db.execute(delete(LiveOwner).where(LiveOwner.id.in_(gone), ~select(StudySession.id).where(
            StudySession.owner_id == LiveOwner.id, StudySession.status == "recording").exists()))  # fmt: skip
    db.flush()
    return aborted


def abort_expired_disconnects(db: Session, *, grace_s: float = RESUME_GRACE_S) -> list[int]:
    """End as ``aborted`` the recording sessions whose stream dropped more than ``grace_s`` seconds ago.

    Parameters
    ----------
    db : sqlalchemy.orm.Session
        Open ORM session; flushed, not committed.
    grace_s : float
        The resume window in seconds (>= 0).

    Returns
    -------
    list of int
        Ids of the sessions ended; their end time is the moment of the drop.

    Raises
    ------
    ValueError
        If ``grace_s`` is negative or NaN.
    """
    if not grace_s >= 0:
        raise ValueError(f"grace_s has to be >= 0 seconds; got {grace_s!r}")
    cutoff = utc_now() - timedelta(seconds=grace_s)
    expired = db.execute(
        select(StudySession.id, StudySession.disconnected_at).where(
            StudySession.status == "recording", StudySession.stream_id.is_(None),
            StudySession.disconnected_at < cutoff)
    ).all()  # fmt: skip
    done = []
    for sid, when in expired:
        reason = f"the participant's camera did not come back within {grace_s:.0f} s of the disconnect"
        if end_session(db, sid, "aborted", reason=reason, ended_at=when, require_no_stream=True):
            done.append(int(sid))
    # A holder that stored nothing for the whole window is gone too, even if its release never reached the store
    # (a full queue, a worker that died): the same window, conditioned on that very holder.
    silent = db.execute(
        select(StudySession.id, StudySession.stream_id, StudySession.heartbeat_at).where(
            StudySession.status == "recording", StudySession.stream_id.is_not(None),
            StudySession.heartbeat_at < cutoff)
    ).all()  # fmt: skip
    for sid, stream, when in silent:
        reason = f"no camera frame for {grace_s:.0f} s"
        if end_session(db, sid, "aborted", reason=reason, ended_at=when, stream_id=stream, require_stream=True):
            done.append(int(sid))
    return done


def claim_stream(
    db: Session,
    session_id: int,
    *,
    stream_id: str,
    owner_id: str,
    role: str,
    capture_at: datetime,
    takeover_after_s: float = TAKEOVER_S,
    model: str | None = None,
) -> StreamClaim:
    """Make ``stream_id`` the one live stream of a session, starting or resuming it.

    The claim succeeds when nobody streams the session, when ``stream_id`` already holds it, or when the
    holder has stored no frame for ``takeover_after_s`` seconds (its network dropped before its drop was
    noticed). A ``pending`` session becomes ``recording`` with ``started_at = capture_at``; a session that
    already has frames is resumed: its gap (last stored frame to this one) is stored in ``session_gaps``.

    Parameters
    ----------
    db : sqlalchemy.orm.Session
        Open ORM session; flushed, not committed (commit before sending frames).
    session_id : int
        The session.
    stream_id : str
        Unique id of the claiming stream (at most 64 characters).
    owner_id : str
        The server process serving the stream (:func:`register_owner`).
    role : {"participant", "researcher"}
        Who streams: the participant link or the researcher's Record page.
    capture_at : datetime
        Aware capture time of the stream's first frame.
    takeover_after_s : float
        Seconds of silence after which another stream may take over.
    model : str, optional
        The expression model analysing the stream (``EmotionClassifier.model_id``); stored when the claim starts
        the session (a resumed session keeps the model it started with).

    Returns
    -------
    StreamClaim

    Raises
    ------
    sessions.errors.SessionNotFound
        Unknown session.
    SessionEnded
        The session is ``complete`` or ``aborted``: nothing can be added to it.
    StreamRefused
        Another stream delivers frames to this session (its role and since when are in the message).
    ValueError
        Unknown ``role``, empty or over-long ids, or a naive ``capture_at``.
    """
    if role not in STREAM_ROLES:
        raise ValueError(f"role has to be one of {STREAM_ROLES}; got {role!r}")
    for name, value in (("stream_id", stream_id), ("owner_id", owner_id)):
        if not value or len(value) > 64:
            raise ValueError(f"{name} has to be 1-64 characters; got {len(value or '')}")
    if capture_at.tzinfo is None:
        raise ValueError(f"capture_at has to be timezone-aware; got the naive {capture_at!r}")
    now = utc_now()
    cutoff = now - timedelta(seconds=takeover_after_s)
    claimed = db.execute(
        update(StudySession)
        .where(StudySession.id == session_id, StudySession.status.in_(OPEN_STATUSES),
               or_(StudySession.stream_id.is_(None), StudySession.stream_id == stream_id,
                   StudySession.heartbeat_at.is_(None), StudySession.heartbeat_at < cutoff))
        .values(stream_id=stream_id, owner_id=owner_id, stream_role=role, stream_since=now, heartbeat_at=now,
                disconnected_at=None)
        .execution_options(synchronize_session=False)
    ).rowcount  # fmt: skip
    session = get_session(db, session_id)
    db.refresh(session)
    if not claimed:
        if session.status in ENDED_STATUSES:
            raise SessionEnded(f"session {session_id} has ended ({session.status}); nothing more can be recorded")
        since = session.stream_since.strftime("%H:%M:%S UTC") if session.stream_since else "a moment ago"
        raise StreamRefused(
            f"session {session_id} is already being streamed from the {session.stream_role or 'other'} page "
            f"(since {since}); a session takes one camera at a time"
        )
    last_time, last_frame = db.execute(
        select(func.max(Observation.time_s), func.max(Observation.frame)).where(Observation.session_id == session_id)
    ).one()
    gap = None
    started = session.started_at is None
    if started:
        session.started_at = capture_at
        session.status = "recording"
        session.model = (model or None) and model[:300]
    elif model and session.model and model != session.model:
        logger.warning("session %s resumed with the model %s; it started with %s", session_id, model, session.model)
    first = max(float(last_time or 0.0), (capture_at - session.started_at).total_seconds())
    if last_frame is not None:
        gap = (float(last_time), first)
        db.add(SessionGap(session_id=session_id, start_s=gap[0], end_s=gap[1]))
    db.flush()
    return StreamClaim(
        started_at=session.started_at, first_time_s=first,
        next_frame=0 if last_frame is None else int(last_frame) + 1, resumed=last_frame is not None, gap=gap,
        skipped_frames=int(session.skipped_frames or 0), refused_frames=int(session.refused_frames or 0),
        started=started,
    )  # fmt: skip


def release_stream(db: Session, session_id: int, stream_id: str, *, at: datetime | None = None) -> bool:
    """The stream ``stream_id`` dropped without Stop: free the session for a resume, keep it ``recording``.

    Returns
    -------
    bool
        True if the stream held the session (and the session is open); False otherwise (nothing changed).
    """
    at = at or utc_now()
    return bool(db.execute(
        update(StudySession)
        .where(StudySession.id == session_id, StudySession.stream_id == stream_id,
               StudySession.status.in_(OPEN_STATUSES))
        .values(stream_id=None, stream_role=None, stream_since=None, disconnected_at=at)
        .execution_options(synchronize_session=False)
    ).rowcount)  # fmt: skip


def end_session(
    db: Session,
    session_id: int,
    status: str,
    *,
    reason: str | None = None,
    ended_at: datetime | None = None,
    owner_id: str | None = None,
    require_no_stream: bool = False,
    stream_id: str | None = None,
    require_stream: bool = False,
) -> bool:
    """End an open session as ``complete`` or ``aborted`` and cache its statistics and per-second aggregates; the only way a session ends.

    An ended session is never changed again: a later call (a late abort after a Stop, a crash recovery racing
    a Stop) returns False and changes nothing.

    Parameters
    ----------
    db : sqlalchemy.orm.Session
        Open ORM session; flushed, not committed.
    session_id : int
        The session.
    status : {"complete", "aborted"}
        Final status.
    reason : str, optional
        Why it ended, in words (at most 200 characters are stored).
    ended_at : datetime, optional
        Aware end time; default now.
    owner_id : str, optional
        Only end it if this process still owns it (crash recovery must not end a session another process has
        taken over in the meantime).
    require_no_stream : bool
        Only end it if no stream holds it (a participant who came back at the last second wins).
    stream_id : str, optional
        Only end it if this stream holds it or none does (a STOP from a page whose stream was released a moment
        before must not end a session another page has taken over since).
    require_stream : bool
        With ``stream_id``: only end it if that very stream still holds it.

    Returns
    -------
    bool
        True if this call ended the session.

    Raises
    ------
    ValueError
        Unknown ``status``.
    sessions.errors.SessionNotFound
        Unknown session.
    """
    if status not in ENDED_STATUSES:
        raise ValueError(f"status has to be 'complete' or 'aborted'; got {status!r}")
    conditions = [StudySession.id == session_id, StudySession.status.in_(OPEN_STATUSES)]
    if owner_id is not None:
        conditions.append(StudySession.owner_id == owner_id)
    if require_no_stream:
        conditions.append(StudySession.stream_id.is_(None))
    if stream_id is not None and require_stream:
        conditions.append(StudySession.stream_id == stream_id)
    elif stream_id is not None:
        conditions.append(or_(StudySession.stream_id.is_(None), StudySession.stream_id == stream_id))
    ended = db.execute(
        update(StudySession).where(*conditions)
        .values(status=status, ended_at=ended_at or utc_now(), end_reason=(reason or None) and reason[:200],
                stream_id=None, stream_role=None, stream_since=None)
        .execution_options(synchronize_session=False)
    ).rowcount  # fmt: skip
    if not ended:
        get_session(db, session_id)  # an unknown session is an error, an ended one is not
        return False
    session = db.get(StudySession, session_id)
    if session is not None:
        db.refresh(session)
        refresh_session_stats(db, session_id)
        store_second_aggregates(db, session_id)  # what Compare and the study report read
    return True


def start_session(db: Session, session_id: int, started_at: datetime, *, model: str | None = None,
                  owner_id: str | None = None) -> None:  # fmt: skip
    """Start a ``pending`` session that is not streamed (an uploaded video): status ``recording``.

    ``owner_id`` names the live owner (process) that writes it over several transactions (a batch import): crash
    recovery then ends it when that process is gone (:func:`abort_orphaned`), and not before.

    Raises
    ------
    SessionNotFound
        Unknown session.
    SessionEnded
        The session is not ``pending``.
    """
    started = db.execute(update(StudySession).where(StudySession.id == session_id, StudySession.status == "pending")
                         .values(status="recording", started_at=started_at, model=(model or None) and model[:300],
                                 owner_id=owner_id, heartbeat_at=started_at if owner_id else None)
                         .execution_options(synchronize_session=False)).rowcount  # fmt: skip
    if not started:
        session = get_session(db, session_id)
        raise SessionEnded(f"session {session_id} is {session.status}, not pending; it cannot be started again")
    db.refresh(get_session(db, session_id))


def accepting_sessions(db: Session, session_ids: Iterable[int]) -> dict[int, str | None]:
    """The open sessions among ``session_ids``, each with the stream that holds it (None: no stream holds it).

    The recorder keeps only rows of these sessions, and of a held session only the holder's rows. On PostgreSQL
    the session rows are locked (``SELECT ... FOR UPDATE``) until the caller's transaction ends, so no other
    server can end or take over a session between this check and the insert of its rows (SQLite's single writer
    gives the same guarantee).
    """
    ids = [int(i) for i in session_ids]
    if not ids:
        return {}
    rows = db.execute(
        select(StudySession.id, StudySession.stream_id)
        .where(StudySession.id.in_(ids), StudySession.status.in_(OPEN_STATUSES))
        .order_by(StudySession.id)  # one lock order for every server: no deadlock between two flushes
        .with_for_update()
    ).all()  # fmt: skip
    return {int(sid): stream for sid, stream in rows}


def add_frame_counts(db: Session, session_id: int, *, skipped: int = 0, refused: int = 0,
                     heartbeat_at: datetime | None = None) -> None:  # fmt: skip
    """Add to a session's stored skipped and refused frame counts (and refresh its heartbeat if given)."""
    values: dict = {}
    if skipped:
        values["skipped_frames"] = StudySession.skipped_frames + int(skipped)
    if refused:
        values["refused_frames"] = StudySession.refused_frames + int(refused)
    if heartbeat_at is not None:
        values["heartbeat_at"] = heartbeat_at
    if values:
        db.execute(update(StudySession).where(StudySession.id == session_id, StudySession.status.in_(OPEN_STATUSES))
                   .values(**values).execution_options(synchronize_session=False))  # fmt: skip


def set_latency(db: Session, session_id: int, p50_ms: float, p90_ms: float) -> None:
    """Store the capture-to-result latency percentiles (milliseconds) of the session's latest stream.

    NaN (a stream that analysed no frame) leaves the stored figures as they are.
    """
    if p50_ms == p50_ms and p90_ms == p90_ms:  # not NaN
        db.execute(update(StudySession).where(StudySession.id == session_id)
                   .values(latency_p50_ms=float(p50_ms), latency_p90_ms=float(p90_ms))
                   .execution_options(synchronize_session=False))  # fmt: skip
