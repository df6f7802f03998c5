"""Per-second aggregates of a session, computed once when it ends and stored (table ``second_aggregates``).

A study-wide chart reads these rows (3,600 per hour of session) instead of every observation (54,000-108,000
per hour at 15-30 analysed frames per second). The rows are exactly :func:`sessions.aggregate.per_bin` of the
session's observations with 1 s bins, so every definition (primary face, mean raw probability, valence,
engagement, face-present rate) stays in :mod:`sessions.aggregate`.

- :func:`store_second_aggregates` computes and (re)writes them; :func:`sessions.lifecycle.end_session` calls it
  (every way a session ends: Stop, a finished import, an abort, crash recovery).
- :func:`load_second_aggregates` reads them for many sessions in one query; an ended session without rows of
  the current :data:`AGGREGATES_VERSION` (a database from before this table, or after a definition change) gets
  them computed and stored on this first read; an open session (still recording) is aggregated from its
  observations and nothing is stored.
- :func:`aggregate_versions` is what a cache keys on: it changes whenever what a comparison reads can change.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable

import numpy as np
import pandas as pd
from sqlalchemy import delete, insert, select, update
from sqlalchemy.orm import Session

from sessions.aggregate import BIN_COLUMNS, per_bin
from sessions.models import ENDED_STATUSES, Marker, SecondAggregate, StudySession
from sessions.repository import get_session, load_observations, stored_live_numbers

#: Version of the stored aggregate definitions; raise it when ``per_bin`` changes, and stored rows are redone.
AGGREGATES_VERSION = 2  # 2: attention_rate added (issue 13)
#: Bin width of the stored aggregates, seconds.
SECOND_BIN_S = 1.0
#: Rows per INSERT statement.
_INSERT_CHUNK = 5000
_VALUE_COLUMNS: tuple[str, ...] = tuple(c for c in BIN_COLUMNS if c not in ("time_s", "n_frames"))


def _records(session_id: int, bins: pd.DataFrame) -> list[dict]:
    values = bins[list(BIN_COLUMNS)].astype({"n_frames": "int64"})
    records = values.replace({np.nan: None}).to_dict("records")
    for record in records:
        record["session_id"] = session_id
        record["n_frames"] = int(record["n_frames"])
    return records


def store_second_aggregates(db: Session, session_id: int) -> pd.DataFrame:
    """Compute a session's per-second aggregates from its observations and store them (replacing any).

    Parameters
    ----------
    db : sqlalchemy.orm.Session
        Open ORM session; pending changes are flushed first, the rows are flushed, nothing is committed.
    session_id : int
        The session.

    Returns
    -------
    pandas.DataFrame
        Columns ``sessions.aggregate.BIN_COLUMNS`` (``time_s``: whole seconds since the session start; mean
        probabilities, shares, valence and engagement float64, NaN without a face; ``n_frames`` int64), one row
        per second holding an analysed frame; no rows without observations.

    Raises
    ------
    SessionNotFound
        Unknown session.
    """
    session = get_session(db, session_id)
    db.flush()
    bins = per_bin(load_observations(db, session_id), SECOND_BIN_S)
    db.execute(delete(SecondAggregate).where(SecondAggregate.session_id == session_id))
    records = _records(session_id, bins)
    for start in range(0, len(records), _INSERT_CHUNK):
        db.execute(insert(SecondAggregate), records[start : start + _INSERT_CHUNK])
    db.execute(update(StudySession).where(StudySession.id == session_id).values(aggregates_version=AGGREGATES_VERSION)
               .execution_options(synchronize_session=False))  # fmt: skip
    session.aggregates_version = AGGREGATES_VERSION
    db.flush()
    return bins.reset_index(drop=True)


def _stored(db: Session, session_ids: list[int]) -> dict[int, pd.DataFrame]:
    columns = [SecondAggregate.session_id, *(getattr(SecondAggregate, c) for c in BIN_COLUMNS)]
    rows = db.execute(select(*columns).where(SecondAggregate.session_id.in_(session_ids))
                      .order_by(SecondAggregate.session_id, SecondAggregate.time_s)).all()  # fmt: skip
    table = pd.DataFrame.from_records([tuple(r) for r in rows], columns=["session_id", *BIN_COLUMNS])
    floats = [c for c in BIN_COLUMNS if c != "n_frames"]
    table[floats] = table[floats].astype("float64")
    table["n_frames"] = table["n_frames"].astype("int64")
    out = {sid: part.drop(columns="session_id").reset_index(drop=True) for sid, part in table.groupby("session_id")}
    empty = table.iloc[:0].drop(columns="session_id")
    return {int(sid): out.get(sid, empty) for sid in session_ids}


def load_second_aggregates(db: Session, session_ids: Iterable[int], *,
                           progress: Callable[[int, int], None] | None = None) -> dict[int, pd.DataFrame]:  # fmt: skip
    """Per-second aggregates of several sessions, read from the store (computed and stored where missing).

    Parameters
    ----------
    db : sqlalchemy.orm.Session
        Open ORM session; aggregates computed for ended sessions of an older database are flushed (the caller
        commits them, or they are computed again next time).
    session_ids : iterable of int
        Sessions to read; unknown ids are left out.
    progress : callable, optional
        Called as ``progress(done, total)`` while ended sessions without stored rows get theirs (the slow part:
        each reads its observations once); not called when every session has them.

    Returns
    -------
    dict of int to pandas.DataFrame
        Session id to its :func:`sessions.aggregate.per_bin` table with 1 s bins (columns ``BIN_COLUMNS``,
        ordered by time; no rows for a session without observations), in the order of ``session_ids``. Ended
        sessions are read from ``second_aggregates``; open ones (pending, recording) are aggregated from their
        observations on each call and nothing is stored for them.
    """
    ids = list(dict.fromkeys(int(i) for i in session_ids))
    if not ids:
        return {}
    known = db.execute(select(StudySession.id, StudySession.status, StudySession.aggregates_version)
                       .where(StudySession.id.in_(ids))).all()  # fmt: skip
    state = {int(sid): (status, version) for sid, status, version in known}
    result: dict[int, pd.DataFrame] = {}
    current = [i for i in ids if i in state and state[i][0] in ENDED_STATUSES and state[i][1] == AGGREGATES_VERSION]
    result.update(_stored(db, current) if current else {})
    todo = [sid for sid in ids if sid in state and sid not in result and state[sid][0] in ENDED_STATUSES]
    for done, sid in enumerate(todo, start=1):  # ended before this table existed (or under older definitions)
        result[sid] = store_second_aggregates(db, sid)
        if progress is not None:
            progress(done, len(todo))
    for sid in ids:
        if sid not in state or sid in result:
            continue
        result[sid] = per_bin(load_observations(db, sid), SECOND_BIN_S)  # open: aggregated live, not stored
    return {sid: result[sid] for sid in ids if sid in result}


def aggregate_versions(db: Session, session_ids: Iterable[int]) -> str:
    """A short fingerprint of what a comparison of ``session_ids`` reads (for a cache key).

    It changes when a session ends or is deleted, gets new rows while recording (its newest frame count), has
    its aggregates recomputed, or has a marker added, moved, renamed or deleted.

    Returns
    -------
    str
        40 hexadecimal characters (SHA-1 of the sessions' ids, status, end time, frame counts, aggregate
        version and the markers' ids, times and labels).
    """
    ids = sorted({int(i) for i in session_ids})
    digest = hashlib.sha1()
    if ids:
        sessions = db.execute(select(StudySession.id, StudySession.status, StudySession.ended_at, StudySession.n_frames,
                                     StudySession.aggregates_version, StudySession.study_id)
                              .where(StudySession.id.in_(ids)).order_by(StudySession.id)).all()  # fmt: skip
        markers = db.execute(select(Marker.session_id, Marker.id, Marker.time_s, Marker.label)
                             .where(Marker.session_id.in_(ids)).order_by(Marker.session_id, Marker.id)).all()  # fmt: skip
        digest.update(repr([tuple(r) for r in sessions]).encode())
        digest.update(repr([tuple(r) for r in markers]).encode())
        open_ids = [int(r[0]) for r in sessions if r[1] not in ENDED_STATUSES]
        if open_ids:
            digest.update(repr([stored_live_numbers(db, i).frames for i in open_ids]).encode())
    return digest.hexdigest()
