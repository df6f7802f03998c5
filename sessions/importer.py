"""Offline import: analyse a recorded video through the core into a new, complete session.

The same function serves ``python -m sessions import-video`` and the dashboard's upload page. A file whose
decoding stops early (corrupt or truncated tail) or covers less than ``MIN_COVERAGE`` of the duration its
container declares is still stored with everything that was decoded, and the import says so
(:attr:`ImportResult.warning`, e.g. ``"decoded 6.1 s of the container's 20.3 s (30%)"``).
"""

from __future__ import annotations

import math
import os
import secrets
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import NamedTuple

import pandas as pd
from sqlalchemy import Engine, insert

from fer_core.emotions import ATTENTION_COLUMNS, NO_FACE_ID, OBSERVATION_COLUMNS
from sessions import lifecycle, repository
from sessions.db import session_scope
from sessions.errors import NoFaceFound
from sessions.models import Observation
from sessions.validation import check_session_fields, check_study

#: Rows per INSERT batch.
INSERT_CHUNK = 10_000
#: Share of the container's declared duration below which an import is reported as incomplete.
MIN_COVERAGE = 0.95


class ImportResult(NamedTuple):
    """What :func:`import_video` stored.

    Attributes
    ----------
    session_id : int
        Id of the new session.
    warning : str or None
        Why the session may be incomplete (:func:`coverage_warning`), or None when the whole video was decoded.
    """

    session_id: int
    warning: str | None = None


def coverage_warning(attrs: Mapping) -> str | None:
    """Say, in one line, how much of a video was decoded when it is not (nearly) all of it.

    Parameters
    ----------
    attrs : mapping
        ``DataFrame.attrs`` of :func:`fer_core.video.analyze_video`: ``decoded_s`` (seconds decoded),
        ``duration_s`` (declared duration in seconds, or None) and, when decoding stopped on an error,
        ``decode_error``.

    Returns
    -------
    str or None
        ``"decoded 6.1 s of the container's 20.3 s (30%)"`` when less than ``MIN_COVERAGE`` of the declared
        duration was decoded, with ``"; decoding stopped early (truncated or corrupt file)"`` added when
        decoding stopped on an error; None when nearly all was decoded without an error. The text holds
        numbers only (no path), so it can be shown to anyone.
    """
    decoded = float(attrs.get("decoded_s") or 0.0)
    declared = attrs.get("duration_s")
    stopped = "decode_error" in attrs
    tail = "; decoding stopped early (truncated or corrupt file)" if stopped else ""
    if declared is None or not math.isfinite(float(declared)) or float(declared) <= 0:
        return f"decoded {decoded:.1f} s{tail}" if stopped else None
    share = decoded / float(declared)
    if share >= MIN_COVERAGE and not stopped:
        return None
    return f"decoded {decoded:.1f} s of the container's {float(declared):.1f} s ({min(share, 1.0):.0%}){tail}"


def new_participant_code() -> str:
    """Return a random pseudonym such as ``"P-3f9a1c"`` (never derived from a name or a file name).

    Returns
    -------
    str
        ``"P-"`` followed by 6 lowercase hex digits (``secrets.token_hex(3)``, 3 random bytes); not checked
        for uniqueness against existing sessions.
    """
    return f"P-{secrets.token_hex(3)}"


def observation_table_rows(session_id: int, observations: pd.DataFrame) -> list[dict]:
    """Turn an ``OBSERVATION_COLUMNS`` table into ``observations`` rows (NaN to NULL).

    Parameters
    ----------
    session_id : int
        Session the rows belong to.
    observations : pandas.DataFrame
        Columns ``OBSERVATION_COLUMNS``; box in pixels, the seven probabilities, ``face_id`` -1 without a face;
        optionally the ``ATTENTION_COLUMNS`` (head angles in degrees, ``attentive``), stored as they are.

    Returns
    -------
    list of dict
        One dict per row, keyed by ``Observation`` column names plus ``session_id``: ``frame``,
        ``face_id`` as int, ``time_s`` as float (seconds), ``x, y, w, h`` rounded to int pixels, the seven
        probabilities as float, ``dominant`` as given; a missing (NaN/None) box, probability or
        ``dominant`` value as None.

    Raises
    ------
    KeyError
        ``observations`` lacks one of the ``OBSERVATION_COLUMNS``.
    TypeError
        A ``frame``, ``face_id`` or ``time_s`` value is missing (NaN/None).
    """
    from sessions.recorder import stored_row  # the one conversion of live and imported rows

    attention = [c for c in ATTENTION_COLUMNS if c in observations.columns]  # absent: unknown (NULL)
    frame = observations[[*OBSERVATION_COLUMNS, *attention]]
    frame = frame.astype(object).where(frame.notna(), None)
    return [stored_row(session_id, record) for record in frame.to_dict("records")]


def import_video(
    engine: Engine,
    path: str | os.PathLike,
    *,
    study: str,
    participant_code: str | None = None,
    tags: dict[str, str] | None = None,
    progress: Callable[[float], None] | None = None,
    analyzer=None,
    consent_at: datetime | None = None,
) -> ImportResult:
    """Analyse a video file with the core and store it as a new ``complete`` session of ``study``.

    The names and tags are checked first, then the video is analysed (``fer_core.video.analyze_video``,
    time from the decoder's timestamps); the database is written only when the analysis succeeded and found
    a face, in one transaction. A video decoded only in part is stored with what was decoded, and the
    result's ``warning`` says how much (:func:`coverage_warning`); the session's ``end_reason`` keeps it
    (``"video imported; decoded 6.1 s of the container's 20.3 s (30%)"``).

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The store.
    path : str or path-like
        Video file (anything PyAV decodes: mp4, mov, webm...).
    study : str
        Study name; created if it does not exist.
    participant_code : str, optional
        Pseudonym; default a random one (:func:`new_participant_code`).
    tags : dict of str to str, optional
        Group or condition labels.
    progress : callable, optional
        Called with the fraction done (float in [0, 1]).
    analyzer : fer_core.analyzer.FrameAnalyzer, optional
        Default: the core's default analyzer (shipped model, default detector).
    consent_at : datetime, optional
        Aware time at which the uploader confirmed that the person filmed consented; stored with the session
        (``consent_source`` ``"uploader"``, ``consent_version`` the study's consent text version at that time:
        :func:`sessions.fieldwork.give_consent`). None: no consent recorded.

    Returns
    -------
    ImportResult
        ``session_id`` of the new session and ``warning`` (str, or None when the whole video was decoded).

    Raises
    ------
    fer_core.video.VideoDecodeError
        The file is missing or cannot be decoded; nothing is stored.
    fer_core.model_file.ModelFileError
        No ``analyzer`` was given and the shipped model is missing or invalid; nothing is stored.
    NoFaceFound
        No frame holds a face; nothing is stored.
    ValueError
        Empty study name, invalid tags, or a study name, participant code or tag too long or holding control
        characters (:mod:`sessions.validation`); checked before the analysis, nothing is stored.
    """
    from fer_core.video import analyze_video  # imported here: decoding stacks load only when importing videos

    path = Path(path)
    if not (study or "").strip():
        raise ValueError("study has to be a non-empty name; got an empty one")
    check_study(study.strip())
    participant_code = participant_code or new_participant_code()
    if not participant_code.strip():
        raise ValueError("participant_code has to be a non-empty pseudonym (or None for a random one); got blanks")
    check_session_fields(participant_code=participant_code.strip(), tags=dict(tags or {}))

    def analysis_progress(fraction: float) -> None:
        if progress is not None:
            progress(0.95 * min(max(float(fraction), 0.0), 1.0))

    observations = analyze_video(path, analyzer=analyzer, progress=analysis_progress, show_progress=False)
    model = _model_id(analyzer)
    if observations.empty or not (observations["face_id"] != NO_FACE_ID).any():
        raise NoFaceFound(f"video {str(path)!r} has no face in any of its {observations['frame'].nunique()} "
                          "analysed frames; nothing was stored")  # fmt: skip
    warning = coverage_warning(observations.attrs)
    with session_scope(engine) as db:
        study_row = repository.get_or_create_study(db, study)
        session = repository.create_session(
            db, study_id=study_row.id, participant_code=participant_code, tags=tags, source="upload",
        )  # fmt: skip
        if consent_at is not None:
            from sessions.fieldwork import current_consent, give_consent  # fieldwork imports this module

            version = current_consent(db, study_row.id).version
            give_consent(db, session.id, consent_at, source="uploader", version=version)
        lifecycle.start_session(db, session.id, session.created_at, model=model)
        rows = observation_table_rows(session.id, observations)
        for start in range(0, len(rows), INSERT_CHUNK):
            db.execute(insert(Observation), rows[start : start + INSERT_CHUNK])
        lifecycle.end_session(db, session.id, "complete", reason="video imported" + (f"; {warning}" if warning else ""))
        session_id = session.id
    if progress is not None:
        progress(1.0)
    return ImportResult(session_id, warning)


def _model_id(analyzer) -> str | None:
    """The model a video was analysed with: the analyzer's classifier, else the shipped default model."""
    classifier = getattr(analyzer, "classifier", None)
    if classifier is not None:
        return getattr(classifier, "model_id", None)
    from fer_core.classifier import default_model_path, model_file_id

    try:
        return model_file_id(default_model_path())
    except OSError:
        return None
