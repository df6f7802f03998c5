"""Whole-study exports: one file with every session's rows, each row led by whose it is.

One row per session per frame (or per time bin): ``session_id, participant_code, study``, then the session's
``status``, ``source``, ``consent_at``, ``consent_version`` (the study's consent text version agreed to; empty
for the generic text), ``consent_source`` (participant, researcher or uploader) and ``model`` (so a reader can
leave out aborted sessions, check consent and see which model analysed each), then one
``tag_<key>`` column per tag used anywhere in the study (empty where a session lacks it), then the per-frame
columns (``OBSERVATION_COLUMNS``, then ``ATTENTION_COLUMNS``: head angles and ``attentive``) or the per-bin columns of :func:`sessions.aggregate.per_bin`, then ``stimulus``
and ``stimulus_time_s`` (:func:`sessions.playback.add_stimulus_columns`; per bin at its middle). The file format
follows the suffix (CSV cells neutralised against formula injection, Parquet, JSON), written atomically by
:mod:`sessions.exports`.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pandas as pd
from sqlalchemy import select
from sqlalchemy.orm import Session

from fer_core.emotions import ATTENTION_COLUMNS, OBSERVATION_COLUMNS
from sessions.aggregate import per_bin
from sessions.exports import IDENTITY_COLUMNS, TAG_COLUMN_PREFIX, resolve_format, with_attention_columns, write_table
from sessions.models import StudySession
from sessions.playback import STIMULUS_TIME_COLUMNS, add_stimulus_columns, session_spans
from sessions.repository import list_sessions, load_observations
from sessions.second_aggregates import SECOND_BIN_S, load_second_aggregates

#: Session columns written after the identity columns of a study export.
SESSION_COLUMNS: tuple[str, ...] = ("status", "source", "consent_at", "consent_version", "consent_source", "model")


def study_table(db: Session, study_id: int, *, per_second: bool = False, bin_s: float = 1.0,
                progress: Callable[[float], None] | None = None) -> pd.DataFrame:  # fmt: skip
    """Every session of a study, per frame or per bin, in one tidy table (module docstring for the columns).

    Parameters
    ----------
    db : sqlalchemy.orm.Session
        Open ORM session.
    study_id : int
        The study; an unknown id gives a table without rows.
    per_second : bool
        Per-bin rows (:func:`sessions.aggregate.per_bin`, with ``n_frames`` per bin) instead of per-frame rows.
    bin_s : float
        Bin width in seconds with ``per_second`` (> 0).
    progress : callable, optional
        Called with the fraction of sessions read (float in [0, 1]).

    Returns
    -------
    pandas.DataFrame
        Rows of every session (oldest session first, then by time); ``consent_at`` as ISO 8601 UTC text.

    Raises
    ------
    ValueError
        If ``bin_s`` is not positive (from :func:`sessions.aggregate.per_bin`).
    """
    sessions = list_sessions(db, study_id=study_id).sort_values("session_id")
    consent = {sid: (at, version, source) for sid, at, version, source in db.execute(
        select(StudySession.id, StudySession.consent_at, StudySession.consent_version, StudySession.consent_source)
        .where(StudySession.study_id == study_id))}  # fmt: skip
    tag_keys = sorted({key for tags in sessions["tags"] for key in (tags or {})})
    parts = []
    for i, row in enumerate(sessions.itertuples()):
        spans = session_spans(db, int(row.session_id))  # the stimulus on screen (none: empty columns)
        if per_second:  # 1 s bins: the rows stored when the session ended (sessions.second_aggregates)
            bins = (load_second_aggregates(db, [int(row.session_id)])[int(row.session_id)] if bin_s == SECOND_BIN_S
                    else per_bin(load_observations(db, int(row.session_id)), bin_s))  # fmt: skip
            data = add_stimulus_columns(bins, spans, bin_s=bin_s)
        else:
            data = add_stimulus_columns(with_attention_columns(load_observations(db, int(row.session_id))), spans)
        lead = {"session_id": int(row.session_id), "participant_code": row.participant_code, "study": row.study,
                "status": row.status, "source": row.source, **_consent_cells(consent.get(row.session_id)),
                "model": row.model or ""}  # fmt: skip
        for key in tag_keys:
            lead[f"{TAG_COLUMN_PREFIX}{key}"] = (row.tags or {}).get(key, "")
        part = data.reset_index(drop=True)
        for position, (name, value) in enumerate(lead.items()):
            part.insert(position, name, value)
        parts.append(part)
        if progress is not None:
            progress((i + 1) / len(sessions))
    columns = [*IDENTITY_COLUMNS, *SESSION_COLUMNS, *(f"{TAG_COLUMN_PREFIX}{k}" for k in tag_keys)]
    if not parts:
        data_columns = [*((*OBSERVATION_COLUMNS, *ATTENTION_COLUMNS) if not per_second else ["time_s"]),
                        *STIMULUS_TIME_COLUMNS]  # fmt: skip
        return pd.DataFrame(columns=[*columns, *data_columns])
    return pd.concat(parts, ignore_index=True)


def _consent_cells(consent: tuple | None) -> dict:
    """``consent_at`` (ISO 8601 UTC text, empty without consent), ``consent_version`` (the study's consent text
    version agreed to; empty for the generic text or no consent) and ``consent_source`` (who recorded it)."""
    at, version, source = consent or (None, None, None)
    return {"consent_at": "" if at is None else at.isoformat(), "consent_version": "" if version is None else str(version),
            "consent_source": source or ""}  # fmt: skip


def export_study(db: Session, study_id: int, path: str | os.PathLike, *, per_second: bool = False,
                 bin_s: float = 1.0, fmt: str | None = None,
                 progress: Callable[[float], None] | None = None) -> Path:  # fmt: skip
    """Write :func:`study_table` to ``path`` (format from its suffix) and return the written file.

    Raises
    ------
    ValueError
        Unknown or contradicting format, or a non-positive ``bin_s``; nothing is written.
    sessions.errors.ExportError
        The file cannot be written; nothing is left behind.
    """
    resolve_format(path, fmt)  # refuse a bad format before reading a whole study
    table = study_table(db, study_id, per_second=per_second, bin_s=bin_s, progress=progress)
    return write_table(table, path, fmt=fmt)
