"""Fieldwork for remote panels: a study's consent text (versioned), consent records, links in bulk, completion URL.

- **Consent text per study** (:class:`ConsentFields`): purpose, who holds the data, how long it is kept, contact,
  how to withdraw (what GDPR Art. 13 asks a controller to tell). :func:`set_consent_text` stores a new version
  whenever the text changes (versions 1, 2, ... per study; a stored version never changes), so each consent
  names the exact text agreed to. A study without one shows the platform's generic text (version None).
- **Consent records** (:func:`give_consent`): the time, the version shown and who recorded it
  (``participant``: their link; ``researcher``: the Record page; ``uploader``: a video uploaded with the
  uploader's confirmation that consent was given), stored once per session.
- **Participant links in bulk** (:func:`create_participant_links`): N pending sessions with random pseudonyms and
  join tokens; :func:`links_table` puts code and link side by side for a panel provider's CSV.
- **Completion URL** (:func:`check_completion_url`, :func:`completion_link`): where a participant who finishes is
  sent, ``{code}`` filled with the participant code (URL-encoded); http and https only.
- **Who is connected** (:func:`connected_sessions`): the study's sessions whose one live stream is held now.

Functions take an ORM session and never commit (the caller owns the transaction).
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import UTC, datetime
from urllib.parse import quote

import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from sessions.importer import new_participant_code
from sessions.models import CONSENT_SOURCES, ENDED_STATUSES, ConsentText, Study, StudySession
from sessions.repository import create_join_token, create_session, get_session
from sessions.validation import STIMULUS_URL_MAX, check_text, check_web_url

#: Longest part of a consent text, characters.
CONSENT_PART_MAX = 5_000
#: Most participant links made at once.
MAX_LINKS = 1_000
#: The placeholder of a completion URL that is replaced by the participant code.
CODE_PLACEHOLDER = "{code}"
#: Columns of :func:`links_table`.
LINK_COLUMNS: tuple[str, ...] = ("participant_code", "link", "session_id")
#: Columns of :func:`connected_sessions`.
CONNECTED_COLUMNS: tuple[str, ...] = ("session_id", "participant_code", "stream_role", "stream_since", "status")


@dataclass(frozen=True)
class ConsentFields:
    """The five parts of a study's consent text (plain text; line breaks allowed).

    Attributes
    ----------
    purpose : str
        What the session is for and what is measured.
    controller : str
        Who holds the data (the organisation responsible).
    retention : str
        How long the data are kept.
    contact : str
        Whom to ask (name, e-mail).
    withdrawal : str
        How to withdraw consent and have one's data deleted.
    """

    purpose: str
    controller: str
    retention: str
    contact: str
    withdrawal: str

    #: Headings shown above each part, in order.
    HEADINGS = {"purpose": "Purpose", "controller": "Who holds the data", "retention": "How long it is kept",
                "contact": "Contact", "withdrawal": "How to withdraw"}  # fmt: skip

    def checked(self) -> ConsentFields:
        """The parts stripped, after checking each: not empty, at most :data:`CONSENT_PART_MAX` characters, no
        control characters but line breaks and tabs.

        Raises
        ------
        ValueError
            Naming the part (``consent purpose``...) and what is wrong, never repeating the text.
        """
        values = {}
        for item in fields(self):
            label = f"consent {self.HEADINGS[item.name].lower()}"
            value = getattr(self, item.name)
            if not isinstance(value, str):
                raise ValueError(f"{label} has to be text; got {type(value).__name__}")
            value = check_text(value.strip(), label, max_length=CONSENT_PART_MAX, multiline=True)
            if not value:
                raise ValueError(f"{label} is empty; every part of the consent text has to be filled in")
            values[item.name] = value
        return ConsentFields(**values)

    def sections(self) -> list[tuple[str, str]]:
        """``(heading, text)`` per part, in display order (a page shows them as text, escaped)."""
        return [(self.HEADINGS[item.name], getattr(self, item.name)) for item in fields(self)]


@dataclass(frozen=True)
class StudyConsent:
    """The consent text a study shows now: ``version`` (None: the platform's generic text) and its parts ``text``
    (None for the generic text), stored at ``created_at`` (aware UTC)."""

    version: int | None
    text: ConsentFields | None
    created_at: datetime | None = None


def _fields_of(row: ConsentText) -> ConsentFields:
    return ConsentFields(**{item.name: getattr(row, item.name) for item in fields(ConsentFields)})


def _study(db: Session, study_id: int) -> Study:
    study = db.get(Study, study_id)
    if study is None:
        raise LookupError(f"study {study_id} does not exist")
    return study


def current_consent(db: Session, study_id: int) -> StudyConsent:
    """The study's latest consent text, or the generic one (``version`` None) when it has none.

    Raises
    ------
    LookupError
        Unknown study.
    """
    _study(db, study_id)
    row = db.scalar(select(ConsentText).where(ConsentText.study_id == study_id).order_by(ConsentText.version.desc()))
    return StudyConsent(None, None) if row is None else StudyConsent(row.version, _fields_of(row), row.created_at)


def consent_versions(db: Session, study_id: int) -> pd.DataFrame:
    """Every version of a study's consent text, newest first: ``version`` (int64), ``created_at`` (aware UTC),
    then the five parts (str).

    Raises
    ------
    LookupError
        Unknown study.
    """
    _study(db, study_id)
    rows = db.scalars(select(ConsentText).where(ConsentText.study_id == study_id).order_by(ConsentText.version.desc()))
    names = [item.name for item in fields(ConsentFields)]
    records = [(r.version, r.created_at, *(getattr(r, n) for n in names)) for r in rows]
    return pd.DataFrame.from_records(records, columns=["version", "created_at", *names]).astype({"version": "int64"})


def set_consent_text(db: Session, study_id: int, text: ConsentFields) -> StudyConsent:
    """Store ``text`` as the study's consent text: a new version when it differs from the latest, else nothing.

    Parameters
    ----------
    db : sqlalchemy.orm.Session
        Open ORM session; the new version is flushed, not committed.
    study_id : int
        The study.
    text : ConsentFields
        The five parts (stripped and checked here, :meth:`ConsentFields.checked`).

    Returns
    -------
    StudyConsent
        The study's consent text now (the new version, or the unchanged latest one).

    Raises
    ------
    LookupError
        Unknown study.
    ValueError
        A part is empty, too long or holds control characters (the message names the part).
    """
    text = text.checked()
    latest = current_consent(db, study_id)
    if latest.text == text:
        return latest
    # the (study_id, version) unique constraint refuses a version another server wrote at the same moment
    version = (latest.version or 0) + 1
    row = ConsentText(
        study_id=study_id, version=version, **{item.name: getattr(text, item.name) for item in fields(text)}
    )
    db.add(row)
    db.flush()
    return StudyConsent(version, text, row.created_at)


def give_consent(db: Session, session_id: int, when: datetime, *, source: str, version: int | None) -> bool:
    """Record a session's consent once: its time, the consent text version shown and who recorded it.

    Parameters
    ----------
    db : sqlalchemy.orm.Session
        Open ORM session; the change is flushed, not committed.
    session_id : int
        The session.
    when : datetime
        Timezone-aware time of consent (stored in UTC).
    source : {"participant", "researcher", "uploader"}
        Who recorded it (:data:`sessions.models.CONSENT_SOURCES`).
    version : int or None
        The version of the session's study consent text that was shown (None: the generic text).

    Returns
    -------
    bool
        True when stored now; False when the session had consent already (a second tab keeps the first record).

    Raises
    ------
    SessionNotFound
        Unknown session.
    ValueError
        ``when`` naive, ``source`` unknown, or ``version`` not a version of the session's study.
    """
    if source not in CONSENT_SOURCES:
        raise ValueError(f"consent source has to be one of {CONSENT_SOURCES}; got {source!r}")
    session = get_session(db, session_id)
    if not isinstance(when, datetime) or when.tzinfo is None:
        raise ValueError(f"consent time has to be a timezone-aware datetime; got {when!r}")
    when = when.astimezone(UTC)
    if version is not None:
        known = db.scalar(select(func.count()).select_from(ConsentText)
                          .where(ConsentText.study_id == session.study_id, ConsentText.version == version))  # fmt: skip
        if not known:
            raise ValueError(f"consent version {version!r} is not a version of this session's study consent text")
    if session.consent_at is not None:
        return False
    session.consent_at, session.consent_version, session.consent_source = when, version, source
    db.flush()
    return True


def consent_of(db: Session, session_id: int) -> dict:
    """A session's consent record: ``consent_at`` (aware UTC or None), ``consent_version`` (int or None: the generic
    text), ``consent_source`` (str or None) and ``text`` (:class:`ConsentFields` of that version, or None).

    Raises
    ------
    SessionNotFound
        Unknown session.
    """
    session = get_session(db, session_id)
    text = None
    if session.consent_version is not None:
        row = db.scalar(select(ConsentText).where(ConsentText.study_id == session.study_id,
                                                   ConsentText.version == session.consent_version))  # fmt: skip
        text = None if row is None else _fields_of(row)
    return {"consent_at": session.consent_at, "consent_version": session.consent_version,
            "consent_source": session.consent_source, "text": text}  # fmt: skip


def consent_json(record: dict) -> dict:
    """A consent record (:func:`consent_of`) for a JSON summary: ``consent_at`` (ISO 8601 UTC text or None),
    ``consent_version`` (int, None for the generic text or no consent), ``consent_source`` (str or None)."""
    at = record["consent_at"]
    return {"consent_at": None if at is None else at.isoformat(), "consent_version": record["consent_version"],
            "consent_source": record["consent_source"]}  # fmt: skip


def consent_summary(db: Session, session_id: int) -> dict:
    """:func:`consent_json` of the session's consent record.

    Raises
    ------
    SessionNotFound
        Unknown session.
    """
    return consent_json(consent_of(db, session_id))


def check_completion_url(url: str | None) -> str | None:
    """Return a valid completion URL template (stripped), or None for an empty one (no redirect).

    A completion URL is a web address as :func:`sessions.validation.check_web_url` defines it (absolute
    ``http://`` or ``https://`` with a host, at most 2,000 characters, without spaces or control characters, the
    same check as an external task's URL); its only placeholder is ``{code}`` (the participant code), anywhere.

    Raises
    ------
    ValueError
        Naming the completion URL and what is wrong: another scheme (``javascript:``, ``data:``...), no host,
        spaces, an unknown placeholder, or too long.
    """
    if url is None or not str(url).strip():
        return None
    url = check_web_url(str(url), "completion URL", max_length=STIMULUS_URL_MAX, placeholder=CODE_PLACEHOLDER,
                        example="https://panel.example.org/complete?id={code}")  # fmt: skip
    braces = sum(url.replace(CODE_PLACEHOLDER, "").count(b) for b in "{}")
    if braces:
        raise ValueError(f"completion URL may hold only the placeholder {CODE_PLACEHOLDER} (the participant code); "
                         f"got {braces} other brace{'s' if braces != 1 else ''}")  # fmt: skip
    return url


def completion_link(template: str, participant_code: str) -> str:
    """The completion URL for one participant: ``{code}`` replaced by the URL-encoded participant code.

    Parameters
    ----------
    template : str
        A URL accepted by :func:`check_completion_url`.
    participant_code : str
        The session's participant code (encoded with ``urllib.parse.quote``, no character left unencoded but
        ``-._~`` and letters and digits, so a code cannot add a parameter or a path).

    Raises
    ------
    ValueError
        ``template`` is not a valid completion URL.
    """
    template = check_completion_url(template)
    if template is None:
        raise ValueError("completion URL is empty")
    return template.replace(CODE_PLACEHOLDER, quote(str(participant_code), safe=""))


def get_completion_url(db: Session, study_id: int) -> str | None:
    """The study's completion URL template (with ``{code}``), or None when it has none.

    Raises
    ------
    LookupError
        Unknown study.
    """
    return _study(db, study_id).completion_url


def set_completion_url(db: Session, study_id: int, url: str | None) -> str | None:
    """Check and store a study's completion URL (empty or None: no redirect); return what is stored.

    Raises
    ------
    LookupError
        Unknown study.
    ValueError
        Invalid URL (:func:`check_completion_url`); nothing is changed.
    """
    checked = check_completion_url(url)
    _study(db, study_id).completion_url = checked
    db.flush()
    return checked


def session_completion_link(db: Session, session_id: int) -> str | None:
    """Where the session's participant is sent when finished: the study's completion URL with their code, or None.

    Raises
    ------
    SessionNotFound
        Unknown session.
    """
    session = get_session(db, session_id)
    template = db.scalar(select(Study.completion_url).where(Study.id == session.study_id))
    return None if not template else completion_link(template, session.participant_code)


def create_participant_links(
    db: Session, study_id: int, count: int, *, tags: dict[str, str] | None = None
) -> pd.DataFrame:
    """Create ``count`` pending sessions of a study, each with a random pseudonym and a join token.

    Parameters
    ----------
    db : sqlalchemy.orm.Session
        Open ORM session; flushed, not committed (one transaction: all links or none).
    study_id : int
        The study.
    count : int
        How many, 1 to :data:`MAX_LINKS`.
    tags : dict, optional
        Tags given to every session (e.g. ``{"panel": "wave1"}``), checked as on any session.

    Returns
    -------
    pandas.DataFrame
        Columns ``session_id`` (int64), ``participant_code`` (``P-`` and 6 hex digits, unique in the study) and
        ``token`` (the join token of :func:`sessions.repository.create_join_token`), one row per new session.

    Raises
    ------
    LookupError
        Unknown study.
    ValueError
        ``count`` not an integer from 1 to :data:`MAX_LINKS`, or invalid tags.
    """
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_LINKS:
        raise ValueError(f"number of links has to be a whole number from 1 to {MAX_LINKS}; got {count!r}")
    _study(db, study_id)
    taken = set(db.scalars(select(StudySession.participant_code).where(StudySession.study_id == study_id)))
    rows = []
    while len(rows) < count:
        code = new_participant_code()
        if code in taken:
            continue
        taken.add(code)
        session = create_session(db, study_id=study_id, participant_code=code, tags=dict(tags or {}))
        rows.append((session.id, code, create_join_token(db, session.id)))
    return pd.DataFrame.from_records(rows, columns=["session_id", "participant_code", "token"]).astype(
        {"session_id": "int64"}
    )


def join_link(base_url: str, token: str) -> str:
    """The participant link of a join token: ``{base_url}/?join={token}`` (``base_url`` without a trailing slash)."""
    return f"{str(base_url).rstrip('/')}/?join={token}"


def links_table(links: pd.DataFrame, base_url: str) -> pd.DataFrame:
    """Participant code and link per session, for a panel provider (CSV through :func:`sessions.exports.write_table`).

    Parameters
    ----------
    links : pandas.DataFrame
        Columns ``session_id``, ``participant_code``, ``token`` (:func:`create_participant_links`).
    base_url : str
        The dashboard's address as participants reach it, e.g. ``https://fer.example.org``.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`LINK_COLUMNS`: ``participant_code``, ``link``, ``session_id``.
    """
    table = pd.DataFrame({"participant_code": links["participant_code"].astype(str),
                          "link": [join_link(base_url, t) for t in links["token"]],
                          "session_id": links["session_id"].astype("int64")})  # fmt: skip
    return table[list(LINK_COLUMNS)]


def study_links(db: Session, study_id: int) -> pd.DataFrame:
    """The study's sessions that have a participant link and have not ended, oldest first: ``session_id``,
    ``participant_code``, ``token`` (as :func:`create_participant_links`), for downloading the links again.

    Raises
    ------
    LookupError
        Unknown study.
    """
    _study(db, study_id)
    rows = db.execute(select(StudySession.id, StudySession.participant_code, StudySession.join_token)
                      .where(StudySession.study_id == study_id, StudySession.join_token.is_not(None),
                             StudySession.status.not_in(ENDED_STATUSES))
                      .order_by(StudySession.id)).all()  # fmt: skip
    return pd.DataFrame.from_records([tuple(r) for r in rows], columns=["session_id", "participant_code", "token"]).astype(
        {"session_id": "int64"})  # fmt: skip


def connected_sessions(db: Session, study_id: int | None = None) -> pd.DataFrame:
    """Sessions whose one live stream is held right now (from the store, whichever server streams them).

    Parameters
    ----------
    db : sqlalchemy.orm.Session
        Open ORM session.
    study_id : int, optional
        Only this study's sessions.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`CONNECTED_COLUMNS`: ``session_id`` (int64), ``participant_code``, ``stream_role``
        (participant or researcher), ``stream_since`` (aware UTC), ``status``; oldest connection first.
    """
    query = select(StudySession.id, StudySession.participant_code, StudySession.stream_role, StudySession.stream_since,
                   StudySession.status).where(StudySession.stream_id.is_not(None),
                                              StudySession.status.not_in(ENDED_STATUSES))  # fmt: skip
    if study_id is not None:
        query = query.where(StudySession.study_id == study_id)
    rows = db.execute(query.order_by(StudySession.stream_since, StudySession.id)).all()
    return pd.DataFrame.from_records([tuple(r) for r in rows], columns=list(CONNECTED_COLUMNS)).astype(
        {"session_id": "int64"})  # fmt: skip
