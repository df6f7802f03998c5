"""Repository functions over the session store.

Every function takes an ORM session ``db`` first and never commits: the caller owns the transaction
(see :func:`sessions.db.session_scope`). Times are aware UTC datetimes.
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import NamedTuple

import numpy as np
import pandas as pd
from sqlalchemy import case, delete, func, select
from sqlalchemy.orm import Session

from fer_core.emotions import ATTENTION_COLUMNS, NO_FACE_ID, OBSERVATION_COLUMNS
from fer_core.video import attentive_series
from sessions.errors import MarkerNotFound, SessionBusy, SessionNotFound
from sessions.models import (
    SESSION_SOURCES,
    Marker,
    Observation,
    PlaybackEvent,
    SecondAggregate,
    SessionGap,
    SessionStimulus,
    Study,
    StudySession,
    utc_now,
)
from sessions.stimuli import delete_study_stimuli
from sessions.validation import check_marker, check_session_fields, check_study, is_plausible_token

#: Columns of :func:`list_sessions`.
SESSION_LIST_COLUMNS: tuple[str, ...] = (
    "session_id", "study", "participant_code", "tags", "source", "status", "end_reason", "created_at",
    "started_at", "ended_at", "duration_s", "face_present_rate", "dominant_emotion", "skipped_frames",
    "refused_frames", "dropped_frames", "model",
)  # fmt: skip
#: Columns of :func:`load_markers`.
MARKER_COLUMNS: tuple[str, ...] = ("marker_id", "time_s", "label", "note")


def _aware_utc(when: datetime, name: str) -> datetime:
    if not isinstance(when, datetime):
        raise ValueError(f"{name} has to be a datetime; got {type(when).__name__}")
    if when.tzinfo is None:
        raise ValueError(f"{name} has to be timezone-aware (e.g. datetime.now(UTC)); got the naive {when!r}")
    return when.astimezone(UTC)


def create_study(db: Session, name: str, description: str = "") -> Study:
    """Add a study named ``name`` (unique, non-empty after stripping) and return it (flushed, so it has an id).

    Parameters
    ----------
    db : sqlalchemy.orm.Session
        Open ORM session; not committed here.
    name : str
        Study name; leading and trailing whitespace is stripped before the checks and storage.
    description : str, default ""
        Free text; None is stored as ``""``.

    Returns
    -------
    Study
        The new row, with ``id`` set and ``created_at`` an aware UTC datetime.

    Raises
    ------
    ValueError
        If ``name`` is empty or a study with this name exists, or ``name`` or ``description`` is too long or
        holds control characters (limits in :mod:`sessions.validation`).
    """
    name = (name or "").strip()
    if not name:
        raise ValueError("study name has to be a non-empty string; got an empty one")
    check_study(name, description)
    if db.scalar(select(Study.id).where(Study.name == name)) is not None:
        raise ValueError(f"study name has to be unique; a study named {name!r} exists")
    study = Study(name=name, description=description or "")
    db.add(study)
    db.flush()
    return study


def list_studies(db: Session) -> list[Study]:
    """Return all studies, ordered by name.

    Parameters
    ----------
    db : sqlalchemy.orm.Session
        Open ORM session.

    Returns
    -------
    list of Study
        Every study, sorted by ``name`` (the database's string order); empty when there is none.
    """
    return list(db.scalars(select(Study).order_by(Study.name)))


def get_or_create_study(db: Session, name: str) -> Study:
    """Return the study named ``name``, creating it (with an empty description) if needed.

    Parameters
    ----------
    db : sqlalchemy.orm.Session
        Open ORM session; a new study is flushed, not committed.
    name : str
        Study name, matched exactly after stripping leading and trailing whitespace.

    Returns
    -------
    Study
        The existing study, or the new one (flushed, so it has an id) made by :func:`create_study`.

    Raises
    ------
    ValueError
        If ``name`` is empty (after stripping) and so cannot name a new study, or is longer than 200 characters
        or holds control characters (checked before any query).
    """
    check_study((name or "").strip())
    study = db.scalar(select(Study).where(Study.name == (name or "").strip()))
    return study if study is not None else create_study(db, name)


def create_session(
    db: Session,
    *,
    study_id: int,
    participant_code: str,
    tags: dict[str, str] | None = None,
    stimulus_name: str | None = None,
    stimulus_url: str | None = None,
    source: str = "live",
    consent_at: datetime | None = None,
) -> StudySession:
    """Add a session in status ``pending`` and return it (flushed, so it has an id).

    It starts (``recording``, ``started_at``) with its first camera frame (:func:`sessions.lifecycle.claim_stream`)
    or when an import begins (:func:`sessions.lifecycle.start_session`).

    Parameters
    ----------
    study_id : int
        Id of an existing study.
    participant_code : str
        Pseudonym of the participant (not a real name).
    tags : dict of str to str, optional
        Group or condition labels, e.g. ``{"variant": "A", "age": "18-24"}``.
    stimulus_name, stimulus_url : str, optional
        What the participant watched or played, and where it is (URL or file).
    source : {"live", "upload"}
        Live webcam or uploaded video.
    consent_at : datetime, optional
        Aware datetime at which consent was given (stored in UTC).

    Returns
    -------
    StudySession
        The new row (flushed, so it has an id): ``created_at`` now (aware UTC), no ``started_at``,
        ``ended_at`` or heartbeat, frame counts 0 and no cached statistics yet.

    Raises
    ------
    ValueError
        Unknown study, empty participant code, unknown source, non-string tags or a naive ``consent_at``; a
        participant code, tag, stimulus name or URL too long or holding control characters
        (:func:`sessions.validation.check_session_fields`).
    """
    if db.get(Study, study_id) is None:
        raise ValueError(f"study_id has to name an existing study; got {study_id!r}")
    code = (participant_code or "").strip()
    if not code:
        raise ValueError("participant_code has to be a non-empty pseudonym; got an empty one")
    if source not in SESSION_SOURCES:
        raise ValueError(f"source has to be one of {SESSION_SOURCES}; got {source!r}")
    tags = dict(tags or {})
    if not all(isinstance(k, str) and isinstance(v, str) for k, v in tags.items()):
        raise ValueError(f"tags have to map str to str; got {tags!r}")
    check_session_fields(participant_code=code, tags=tags, stimulus_name=stimulus_name, stimulus_url=stimulus_url)
    now = utc_now()
    session = StudySession(
        study_id=study_id, participant_code=code, tags=tags, stimulus_name=stimulus_name,
        stimulus_url=stimulus_url, source=source, created_at=now, status="pending",
        consent_at=None if consent_at is None else _aware_utc(consent_at, "consent_at"), skipped_frames=0,
        refused_frames=0,
    )  # fmt: skip
    db.add(session)
    db.flush()
    return session


def get_session(db: Session, session_id: int) -> StudySession:
    """Return the session with id ``session_id``.

    Parameters
    ----------
    db : sqlalchemy.orm.Session
        Open ORM session.
    session_id : int
        Primary key of the session.

    Returns
    -------
    StudySession
        The session row (times are aware UTC datetimes).

    Raises
    ------
    SessionNotFound
        If there is none.
    """
    session = db.get(StudySession, session_id)
    if session is None:
        raise SessionNotFound(f"no session has id {session_id!r}")
    return session


def _session_stats(db: Session, ids: list[int]) -> pd.DataFrame:
    """Per session: duration (last observation time), face-present rate over frames, most frequent dominant."""
    face_frame = case((Observation.face_id != NO_FACE_ID, Observation.frame))
    frames = db.execute(
        select(
            Observation.session_id,
            func.max(Observation.time_s),
            func.count(func.distinct(Observation.frame)),
            func.count(func.distinct(face_frame)),
        )
        .where(Observation.session_id.in_(ids))
        .group_by(Observation.session_id)
    ).all()
    stats = pd.DataFrame(frames, columns=["session_id", "last_time_s", "n_frames", "n_face_frames"])
    dominant = db.execute(
        select(Observation.session_id, Observation.dominant, func.count())
        .where(Observation.session_id.in_(ids), Observation.face_id != NO_FACE_ID)
        .group_by(Observation.session_id, Observation.dominant)
    ).all()
    dom = pd.DataFrame(dominant, columns=["session_id", "dominant_emotion", "n"])
    if len(dom):
        dom = dom.sort_values(["session_id", "n"], ascending=[True, False]).drop_duplicates("session_id")
    stats = stats.merge(dom[["session_id", "dominant_emotion"]], on="session_id", how="left")
    with np.errstate(invalid="ignore", divide="ignore"):
        stats["face_present_rate"] = stats["n_face_frames"] / stats["n_frames"].where(stats["n_frames"] > 0)
    return stats.set_index("session_id")


def list_sessions(
    db: Session, *, study_id: int | None = None, session_ids: Iterable[int] | None = None
) -> pd.DataFrame:
    """Return one row per session (newest first), optionally restricted to a study or to given ids.

    Statistics are read from those cached by :func:`refresh_session_stats` when a session ended; for
    sessions without cached statistics (e.g. still recording) they are computed from the observations.

    Parameters
    ----------
    db : sqlalchemy.orm.Session
        Open ORM session.
    study_id : int, optional
        Keep only the sessions of this study (an unknown id gives an empty table).
    session_ids : iterable of int, optional
        Keep only these session ids (each converted with ``int``); unknown ids are left out silently.

    Returns
    -------
    pandas.DataFrame
        Columns ``SESSION_LIST_COLUMNS``: ``session_id`` (int), ``study`` (name), ``participant_code``,
        ``tags`` (dict), ``source``, ``status``, ``started_at`` / ``ended_at`` (aware UTC datetimes or None),
        ``duration_s`` (float seconds: time of the last observation, else end minus start, else NaN),
        ``face_present_rate`` (share of analysed frames with a face, NaN without observations),
        ``dominant_emotion`` (most frequent per-frame dominant emotion, None without faces),
        ``skipped_frames`` (int, camera frames not analysed because analysis was busy), ``refused_frames``
        (int, analysed frames the recorder's queue refused), ``dropped_frames`` (int, their sum: what the live
        panel shows), ``end_reason`` (str or None), ``created_at``, ``model`` (the expression model that analysed it,
        or None). Without matching sessions: no rows, the numeric columns keep their dtypes
        (int64/float64, so sums and means work), the others are of dtype object.

    Raises
    ------
    ValueError, TypeError
        If an element of ``session_ids`` cannot be converted to ``int``.
    """
    query = select(StudySession, Study.name).join(Study).order_by(StudySession.id.desc())
    if study_id is not None:
        query = query.where(StudySession.study_id == study_id)
    if session_ids is not None:
        query = query.where(StudySession.id.in_([int(i) for i in session_ids]))
    rows = db.execute(query).all()
    if not rows:
        numeric = {"session_id": "int64", "duration_s": "float64", "face_present_rate": "float64",
                   "skipped_frames": "int64", "refused_frames": "int64", "dropped_frames": "int64"}
        return pd.DataFrame({name: pd.Series(dtype=numeric.get(name, object)) for name in SESSION_LIST_COLUMNS})
    uncached = [s.id for s, _ in rows if s.n_frames is None]
    live = _session_stats(db, uncached) if uncached else None
    records = []
    for s, study_name in rows:
        if s.n_frames is not None:
            n_frames, n_face, dominant, last_time = s.n_frames, s.n_face_frames, s.dominant_emotion, s.duration_s
        elif live is not None and s.id in live.index:
            st = live.loc[s.id]
            n_frames, n_face, last_time = int(st["n_frames"]), int(st["n_face_frames"]), st["last_time_s"]
            dominant = st["dominant_emotion"] if pd.notna(st["dominant_emotion"]) else None
        else:
            n_frames, n_face, dominant, last_time = 0, 0, None, None
        if last_time is not None and pd.notna(last_time):
            duration = float(last_time)
        elif s.ended_at is not None and s.started_at is not None:
            duration = (s.ended_at - s.started_at).total_seconds()
        else:
            duration = float("nan")
        records.append({
            "session_id": s.id, "study": study_name, "participant_code": s.participant_code,
            "tags": dict(s.tags or {}), "source": s.source, "status": s.status, "end_reason": s.end_reason,
            "created_at": s.created_at, "started_at": s.started_at, "ended_at": s.ended_at, "duration_s": duration,
            "face_present_rate": n_face / n_frames if n_frames else float("nan"),
            "dominant_emotion": dominant, "skipped_frames": int(s.skipped_frames or 0),
            "refused_frames": int(s.refused_frames or 0), "dropped_frames": s.dropped_frames, "model": s.model,
        })  # fmt: skip
    table = pd.DataFrame.from_records(records, columns=list(SESSION_LIST_COLUMNS))
    for column in ("dominant_emotion", "ended_at", "started_at", "end_reason", "model"):  # keep None (not NaN/NaT)
        table[column] = pd.Series([r[column] for r in records], dtype=object, index=table.index)
    return table


def refresh_session_stats(db: Session, session_id: int) -> StudySession:
    """Compute a session's statistics from its observations and cache them on the session row.

    Called when a session ends (:func:`sessions.lifecycle.end_session`, the only way a session ends),
    so that :func:`list_sessions` reads finished sessions without scanning their observations.

    Parameters
    ----------
    db : sqlalchemy.orm.Session
        Open ORM session; pending changes are flushed first so that they are counted.
    session_id : int
        The session.

    Returns
    -------
    StudySession
        The session with ``n_frames`` and ``n_face_frames`` (int, analysed frames and frames with a face),
        ``duration_s`` (float seconds, time of the last observation) and ``dominant_emotion`` (most
        frequent ``dominant`` value over the rows with a face, or None) set; 0, 0, None, None without
        observations.

    Raises
    ------
    SessionNotFound
        Unknown session.
    """
    session = get_session(db, session_id)
    db.flush()
    stats = _session_stats(db, [session_id])
    if session_id in stats.index:
        st = stats.loc[session_id]
        session.n_frames, session.n_face_frames = int(st["n_frames"]), int(st["n_face_frames"])
        session.duration_s = float(st["last_time_s"])
        session.dominant_emotion = st["dominant_emotion"] if pd.notna(st["dominant_emotion"]) else None
    else:
        session.n_frames, session.n_face_frames, session.duration_s, session.dominant_emotion = 0, 0, None, None
    db.flush()
    return session


def add_marker(db: Session, session_id: int, time_s: float, label: str, note: str = "") -> Marker:
    """Add a marker ``label`` at ``time_s`` seconds since the session start (>= 0) and return it.

    Parameters
    ----------
    db : sqlalchemy.orm.Session
        Open ORM session; the marker is flushed, not committed.
    session_id : int
        The session.
    time_s : float
        Seconds since the session start (converted with ``float``).
    label : str
        Marker name, e.g. ``"stimulus start"``; stripped of leading and trailing whitespace.
    note : str, default ""
        Free text; None is stored as ``""``.

    Returns
    -------
    Marker
        The new row (flushed, so it has an id).

    Raises
    ------
    SessionNotFound
        Unknown session.
    ValueError
        Negative or non-finite ``time_s``, an empty label, or a label (over 200 characters) or note (over 2,000)
        too long or holding control characters.
    """
    get_session(db, session_id)
    time_s = float(time_s)
    if not np.isfinite(time_s) or time_s < 0:
        raise ValueError(f"time_s has to be a finite number of seconds >= 0; got {time_s!r}")
    label = (label or "").strip()
    if not label:
        raise ValueError("marker label has to be a non-empty string; got an empty one")
    check_marker(label, note or "")
    marker = Marker(session_id=session_id, time_s=time_s, label=label, note=note or "")
    db.add(marker)
    db.flush()
    return marker


def _marker_time(time_s: float) -> float:
    time_s = float(time_s)
    if not np.isfinite(time_s) or time_s < 0:
        raise ValueError(f"time_s has to be a finite number of seconds >= 0; got {time_s!r}")
    return time_s


def _get_marker(db: Session, marker_id: int) -> Marker:
    marker = db.get(Marker, int(marker_id))
    if marker is None:
        raise MarkerNotFound(f"no marker has id {marker_id!r}")
    return marker


def update_marker(db: Session, marker_id: int, *, label: str | None = None, time_s: float | None = None,
                  note: str | None = None) -> Marker:  # fmt: skip
    """Change a marker's label, time or note (each left as it is when None) and return it.

    Parameters
    ----------
    db : sqlalchemy.orm.Session
        Open ORM session; the change is flushed, not committed.
    marker_id : int
        The marker (``marker_id`` of :func:`load_markers`).
    label : str, optional
        New name; stripped, non-empty, at most 200 characters.
    time_s : float, optional
        New time in seconds since the session start (finite, >= 0).
    note : str, optional
        New free text (``""`` clears it), at most 2,000 characters.

    Returns
    -------
    Marker
        The changed row.

    Raises
    ------
    MarkerNotFound
        Unknown marker.
    ValueError
        Negative or non-finite ``time_s``, an empty label, or a label or note too long or holding control
        characters; nothing is changed.
    """
    marker = _get_marker(db, marker_id)
    if label is not None:
        label = label.strip()
        if not label:
            raise ValueError("marker label has to be a non-empty string; got an empty one")
    check_marker(label, note)
    new_time = None if time_s is None else _marker_time(time_s)
    if label is not None:
        marker.label = label
    if new_time is not None:
        marker.time_s = new_time
    if note is not None:
        marker.note = note
    db.flush()
    return marker


def delete_marker(db: Session, marker_id: int) -> None:
    """Delete one marker.

    Parameters
    ----------
    db : sqlalchemy.orm.Session
        Open ORM session; the delete is flushed, not committed.
    marker_id : int
        The marker (``marker_id`` of :func:`load_markers`).

    Raises
    ------
    MarkerNotFound
        Unknown marker.
    """
    db.delete(_get_marker(db, marker_id))
    db.flush()


def delete_session(db: Session, session_id: int) -> None:
    """Delete a session with its observations and markers (right to be forgotten).

    The database deletes the children (``ON DELETE CASCADE``); the ORM relationships cascade too,
    without loading the observations.

    Parameters
    ----------
    db : sqlalchemy.orm.Session
        Open ORM session; the deletes are flushed, not committed.
    session_id : int
        The session.

    Raises
    ------
    SessionNotFound
        Unknown session.
    SessionBusy
        The session is ``recording`` (streaming, or waiting for its participant to come back): stop it first.
    """
    session = get_session(db, session_id)
    if session.status == "recording":
        raise SessionBusy(f"session {session_id} is recording; stop it (or wait until it ends) before deleting it")
    # Explicit deletes keep this correct on a SQLite connection opened without foreign keys.
    db.execute(delete(Observation).where(Observation.session_id == session_id))
    db.execute(delete(Marker).where(Marker.session_id == session_id))
    db.execute(delete(SessionGap).where(SessionGap.session_id == session_id))
    db.execute(delete(PlaybackEvent).where(PlaybackEvent.session_id == session_id))
    db.execute(delete(SessionStimulus).where(SessionStimulus.session_id == session_id))
    db.execute(delete(SecondAggregate).where(SecondAggregate.session_id == session_id))
    db.delete(session)
    db.flush()


def load_observations(db: Session, session_id: int) -> pd.DataFrame:
    """Return a session's observations ordered by time, frame and face.

    Parameters
    ----------
    db : sqlalchemy.orm.Session
        Open ORM session.
    session_id : int
        The session.

    Returns
    -------
    pandas.DataFrame
        Columns ``OBSERVATION_COLUMNS``: ``time_s`` (float64 s since the start), ``frame`` and ``face_id``
        (int64, ``face_id`` -1 on no-face rows), ``x, y, w, h`` (float64 pixels, NaN without a face), the seven
        raw probabilities (float64, NaN without a face), ``dominant`` (str, ``"none"`` without a face); then the
        ``ATTENTION_COLUMNS``: ``yaw_deg``, ``pitch_deg`` (float64 degrees, NaN where unknown) and ``attentive``
        (pandas ``boolean``, NA where unknown).

    Raises
    ------
    SessionNotFound
        Unknown session.
    """
    get_session(db, session_id)
    names = [*OBSERVATION_COLUMNS, *ATTENTION_COLUMNS]
    columns = [getattr(Observation, name) for name in names]
    result = db.execute(
        select(*columns)
        .where(Observation.session_id == session_id)
        .order_by(Observation.time_s, Observation.frame, Observation.face_id)
    )
    # plain tuples: pandas probes Row objects attribute by attribute, which is several times slower
    frame = pd.DataFrame.from_records([tuple(row) for row in result], columns=names)
    frame["attentive"] = attentive_series(frame["attentive"])
    numeric = [c for c in names if c not in ("frame", "face_id", "dominant", "attentive")]
    frame[numeric] = frame[numeric].astype("float64")
    frame[["frame", "face_id"]] = frame[["frame", "face_id"]].astype("int64")
    frame["dominant"] = frame["dominant"].astype(object).where(frame["dominant"].notna(), None)
    return frame


def load_markers(db: Session, session_id: int) -> pd.DataFrame:
    """Return a session's markers ordered by time: columns ``marker_id``, ``time_s`` (float s), ``label``, ``note``.

    Parameters
    ----------
    db : sqlalchemy.orm.Session
        Open ORM session.
    session_id : int
        The session.

    Returns
    -------
    pandas.DataFrame
        Columns ``MARKER_COLUMNS``: ``marker_id`` (int64, for :func:`update_marker` and :func:`delete_marker`),
        ``time_s`` (float64 seconds since the session start), ``label`` (str), ``note`` (str); one row per
        marker (ties in time in the order they were added), no rows when the session has none.

    Raises
    ------
    SessionNotFound
        Unknown session.
    """
    get_session(db, session_id)
    rows = db.execute(
        select(Marker.id, Marker.time_s, Marker.label, Marker.note)
        .where(Marker.session_id == session_id)
        .order_by(Marker.time_s, Marker.id)
    ).all()
    frame = pd.DataFrame(rows, columns=list(MARKER_COLUMNS))
    frame["marker_id"] = frame["marker_id"].astype("int64")
    frame["time_s"] = frame["time_s"].astype("float64")
    return frame


def marker_offsets(db: Session, session_ids: Iterable[int], label: str) -> dict[int, float]:
    """Return, per session, the time (s) of its first marker named ``label``; sessions without one are left out.

    Feed the result to :func:`sessions.aggregate.compare` as ``align`` to align sessions on e.g.
    ``"stimulus start"``.

    Parameters
    ----------
    db : sqlalchemy.orm.Session
        Open ORM session.
    session_ids : iterable of int
        Sessions to look up (each converted with ``int``); unknown ids are left out, not an error.
    label : str
        Marker label, compared with ``=`` in the database (no stripping).

    Returns
    -------
    dict of int to float
        Session id to the earliest ``time_s`` (float seconds since that session's start) of its markers
        named ``label``.

    Raises
    ------
    ValueError, TypeError
        If an element of ``session_ids`` cannot be converted to ``int``.
    """
    rows = db.execute(
        select(Marker.session_id, func.min(Marker.time_s))
        .where(Marker.session_id.in_([int(i) for i in session_ids]), Marker.label == label)
        .group_by(Marker.session_id)
    ).all()
    return {int(sid): float(t) for sid, t in rows}


def set_consent(db: Session, session_id: int, when: datetime) -> None:
    """Record that the participant gave consent at ``when`` (aware datetime, stored in UTC).

    Parameters
    ----------
    db : sqlalchemy.orm.Session
        Open ORM session; the change is flushed, not committed.
    session_id : int
        The session.
    when : datetime
        Timezone-aware time of consent; replaces any earlier ``consent_at``.

    Raises
    ------
    SessionNotFound
        Unknown session.
    ValueError
        ``when`` is naive or not a datetime.
    """
    get_session(db, session_id).consent_at = _aware_utc(when, "when")
    db.flush()


def create_join_token(db: Session, session_id: int) -> str:
    """Give the session a new unguessable join token (``secrets.token_urlsafe(24)``) and return it.

    A participant link carries the token; a new token replaces (invalidates) the previous one.

    Parameters
    ----------
    db : sqlalchemy.orm.Session
        Open ORM session; the token is flushed, not committed.
    session_id : int
        The session.

    Returns
    -------
    str
        The token: 32 URL-safe base64 characters (24 random bytes).

    Raises
    ------
    SessionNotFound
        Unknown session.
    """
    session = get_session(db, session_id)
    session.join_token = secrets.token_urlsafe(24)
    db.flush()
    return session.join_token


def session_for_token(db: Session, token: str) -> StudySession:
    """Return the session whose join token is ``token``.

    Parameters
    ----------
    db : sqlalchemy.orm.Session
        Open ORM session.
    token : str
        Join token from a participant link (:func:`create_join_token`).

    Returns
    -------
    StudySession
        The session holding this token.

    Raises
    ------
    SessionNotFound
        If no session has this token (or ``token`` is empty, longer than 64 characters or holds a control
        character such as NUL: then without a database query).
    """
    session = db.scalar(select(StudySession).where(StudySession.join_token == token)) if is_plausible_token(token) else None
    if session is None:
        raise SessionNotFound("no session has this join token (it is unknown or was replaced)")
    return session


#: Columns of :func:`load_gaps`.
GAP_COLUMNS: tuple[str, ...] = ("start_s", "end_s")


def load_gaps(db: Session, session_id: int) -> pd.DataFrame:
    """Return a session's gaps without camera frames that it survived (reload, network drop), ordered by time.

    Parameters
    ----------
    db : sqlalchemy.orm.Session
        Open ORM session.
    session_id : int
        The session.

    Returns
    -------
    pandas.DataFrame
        Columns ``GAP_COLUMNS``: ``start_s`` (session time of the last frame before the drop) and ``end_s`` (of
        the first frame after the return), float64 seconds; no rows when the session never dropped.

    Raises
    ------
    SessionNotFound
        Unknown session.
    """
    get_session(db, session_id)
    rows = db.execute(select(SessionGap.start_s, SessionGap.end_s).where(SessionGap.session_id == session_id)
                      .order_by(SessionGap.start_s)).all()  # fmt: skip
    return pd.DataFrame(rows, columns=list(GAP_COLUMNS)).astype("float64")


class StoredLiveNumbers(NamedTuple):
    """A streaming session's numbers as the store has them (any server process can read them).

    Attributes
    ----------
    time_s : float
        Session time (seconds) of the newest stored frame; 0 without frames.
    frames : int
        Frames stored so far (the newest frame's index plus one: indices are unique and increasing).
    fps : float
        Frames stored per second of session time over the last ``window_s`` seconds.
    dropped : int
        Skipped plus refused frames stored so far (flushed every half second by the recorder).
    """

    time_s: float
    frames: int
    fps: float
    dropped: int


def stored_live_numbers(db: Session, session_id: int, *, window_s: float = 5.0) -> StoredLiveNumbers:
    """Return the live numbers of a session from the store, for a page on another server process than the stream.

    Reads only the newest rows through the ``(session_id, time_s)`` index, so it costs the same in the first
    minute and the sixtieth.

    Parameters
    ----------
    db : sqlalchemy.orm.Session
        Open ORM session.
    session_id : int
        The session.
    window_s : float
        Seconds of session time over which ``fps`` is measured (> 0).

    Raises
    ------
    SessionNotFound
        Unknown session.
    ValueError
        If ``window_s`` is not positive.
    """
    if not window_s > 0:
        raise ValueError(f"window_s has to be > 0 seconds; got {window_s!r}")
    session = get_session(db, session_id)
    newest = db.execute(select(Observation.time_s, Observation.frame).where(Observation.session_id == session_id)
                        .order_by(Observation.time_s.desc()).limit(1)).first()  # fmt: skip
    if newest is None:
        return StoredLiveNumbers(0.0, 0, 0.0, session.dropped_frames)
    last_time, last_frame = float(newest[0]), int(newest[1])
    recent = db.scalar(select(func.count(func.distinct(Observation.frame))).where(
        Observation.session_id == session_id, Observation.time_s > last_time - window_s))  # fmt: skip
    span = min(window_s, last_time) if last_time > 0 else window_s
    return StoredLiveNumbers(last_time, last_frame + 1, float(recent or 0) / span, session.dropped_frames)


def rename_study(db: Session, study_id: int, name: str) -> Study:
    """Give study ``study_id`` a new name (unique, non-empty after stripping, within the study-name limits).

    Parameters
    ----------
    db : sqlalchemy.orm.Session
        Open ORM session; flushed, not committed.
    study_id : int
        The study.
    name : str
        The new name; leading and trailing whitespace is stripped.

    Returns
    -------
    Study
        The renamed study.

    Raises
    ------
    LookupError
        Unknown study.
    ValueError
        Empty, over-long or control-character name, or another study has it.
    """
    study = db.get(Study, study_id)
    if study is None:
        raise LookupError(f"no study has id {study_id!r}")
    name = (name or "").strip()
    if not name:
        raise ValueError("study name has to be a non-empty string; got an empty one")
    check_study(name)
    if db.scalar(select(Study.id).where(Study.name == name, Study.id != study_id)) is not None:
        raise ValueError(f"study name has to be unique; a study named {name!r} exists")
    study.name = name
    db.flush()
    return study


def delete_study(db: Session, study_id: int) -> int:
    """Delete a study with all its sessions, their observations, markers and gaps, and its stimuli; return the
    sessions deleted. The stimuli's files stay until :func:`sessions.stimuli.prune_media` (after the commit).

    Parameters
    ----------
    db : sqlalchemy.orm.Session
        Open ORM session; flushed, not committed.
    study_id : int
        The study.

    Raises
    ------
    LookupError
        Unknown study.
    SessionBusy
        A session of the study is recording (streaming, or waiting for its participant to come back).
    """
    study = db.get(Study, study_id)
    if study is None:
        raise LookupError(f"no study has id {study_id!r}")
    ids = list(db.scalars(select(StudySession.id).where(StudySession.study_id == study_id)))
    busy = db.scalars(select(StudySession.id).where(StudySession.study_id == study_id,
                                                   StudySession.status == "recording")).all()  # fmt: skip
    if busy:
        raise SessionBusy(f"study {study.name!r} has sessions recording ({', '.join(f'#{i}' for i in busy)}); "
                          "stop them (or wait until they end) before deleting the study")  # fmt: skip
    for session_id in ids:
        delete_session(db, session_id)
    delete_study_stimuli(db, study_id)  # rows; sessions.stimuli.prune_media removes their files after the commit
    db.delete(study)
    db.flush()
    return len(ids)
