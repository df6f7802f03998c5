"""Typed SQLAlchemy 2.0 models of the session store: Study, StudySession, Observation, Marker.

All timestamps are stored in UTC (:class:`UTCDateTime`): aware datetimes are converted to UTC on the way
in and come back aware (``tzinfo=UTC``) on every backend, SQLite included.

Observations store the **raw** per-frame class probabilities of the classifier (``FaceResult.probs``), not
the time-smoothed ones: smoothing is a display choice that can be redone from the raw values, whereas raw
values cannot be recovered from smoothed ones. ``dominant`` is the arg-max of the stored probabilities.
A frame in which no face was found is stored as one row with ``face_id = NO_FACE_ID`` (-1), NULL box and
probabilities and ``dominant = "none"`` (as the core writes it), so that face-present rates are real.

The schema changes only through the Alembic migrations in ``sessions/migrations``.
"""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
    text,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

#: Constraint names, so that migrations can refer to constraints by name on every backend.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}

#: Values of ``StudySession.status``: ``pending`` (created, no camera frame yet), ``recording`` (the camera's
#: first frame arrived; it stays recording through a resumable disconnect), ``complete`` (ended by Stop or a
#: finished import), ``aborted`` (ended otherwise: no return within the grace window, server crash, failure).
SESSION_STATUSES: tuple[str, ...] = ("pending", "recording", "complete", "aborted")
#: Statuses of a session that has ended: no row can be added to it any more.
ENDED_STATUSES: tuple[str, ...] = ("complete", "aborted")
#: Values of ``StudySession.stream_role``: who holds the session's one live stream.
STREAM_ROLES: tuple[str, ...] = ("participant", "researcher")
#: Values of ``StudySession.source``.
SESSION_SOURCES: tuple[str, ...] = ("live", "upload")
#: Values of ``StudySession.consent_source``: who recorded the consent.
CONSENT_SOURCES: tuple[str, ...] = ("participant", "researcher", "uploader")


class UTCDateTime(TypeDecorator):
    """A timezone-aware UTC timestamp on every backend (SQLite stores it as naive UTC text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"timestamps have to be timezone-aware; got the naive datetime {value!r}")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def utc_now() -> datetime:
    """Return the current time as an aware UTC datetime."""
    return datetime.now(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)


class Study(Base):
    """A study (product test, game-play test, ad screening) grouping participant sessions."""

    __tablename__ = "studies"

    __table_args__ = {"sqlite_autoincrement": True}  # ids are never handed out twice, even after a delete

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(200), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    #: where a participant who finishes is sent, ``{code}`` filled with the participant code (http/https only;
    #: :func:`sessions.fieldwork.completion_link`); None: no redirect
    completion_url: Mapped[str | None] = mapped_column(Text)
    #: The study's analysis settings (``sessions.analysis.AnalysisSettings`` as JSON); None: the defaults.
    analysis_settings: Mapped[dict | None] = mapped_column(JSON)

    sessions: Mapped[list[StudySession]] = relationship(
        back_populates="study", cascade="all, delete-orphan", passive_deletes=True
    )


class StudySession(Base):
    """One participant run of a study (live webcam or uploaded video).

    ``tags`` holds free group/condition labels (``{"variant": "A", "age": "18-24"}``); ``participant_code``
    is a pseudonym. ``created_at`` is when the session was created, ``started_at`` the capture time of the
    camera's (or video's) first frame (None while ``pending``).

    The one live stream of a session is claimed in the store (:func:`sessions.repository.claim_stream`):
    ``stream_id`` names it (None: nobody streams), ``stream_role`` says who (participant or researcher),
    ``stream_since`` since when, ``owner_id`` the server process (:class:`LiveOwner`) that serves it; that
    process's heartbeat tells crash recovery whether the session's writer is gone. ``disconnected_at`` is set
    when a stream dropped without Stop: the session can be resumed until the grace window runs out.

    Frame counts: ``skipped_frames`` are camera frames not analysed because analysis was busy (the newer frame
    was analysed instead), ``refused_frames`` analysed frames the recorder's queue refused (full); their sum is
    the "dropped frames" every page shows. ``latency_p50_ms`` and ``latency_p90_ms`` are the capture-to-result
    latency percentiles (milliseconds, the last 300 frames) of the session's latest stream, stored when it ends. ``n_frames``, ``n_face_frames``, ``dominant_emotion`` and
    ``duration_s`` are cached by :func:`sessions.repository.refresh_session_stats` when the session ends.
    ``end_reason`` says in words why it ended. ``model`` names the expression model that analysed it
    (:attr:`fer_core.classifier.EmotionClassifier.model_id`: file name and SHA-256 prefix), set when it starts.
    """

    __tablename__ = "study_sessions"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    participant_code: Mapped[str] = mapped_column(String(100))
    tags: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    stimulus_name: Mapped[str | None] = mapped_column(String(300))
    stimulus_url: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(20), default="live")
    consent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    #: version of the study's consent text agreed to (:class:`ConsentText`); None: the platform's generic text
    consent_version: Mapped[int | None] = mapped_column(Integer)
    #: who recorded the consent: ``CONSENT_SOURCES`` (the participant's link, the researcher's Record page, the
    #: uploader confirming it was given for a video)
    consent_source: Mapped[str | None] = mapped_column(String(20))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    status: Mapped[str] = mapped_column(String(20), default="pending", index=True)
    end_reason: Mapped[str | None] = mapped_column(String(200))
    heartbeat_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    owner_id: Mapped[str | None] = mapped_column(String(64), index=True)
    stream_id: Mapped[str | None] = mapped_column(String(64))
    stream_role: Mapped[str | None] = mapped_column(String(20))
    stream_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    disconnected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    skipped_frames: Mapped[int] = mapped_column(Integer, default=0)
    refused_frames: Mapped[int] = mapped_column(Integer, default=0)
    model: Mapped[str | None] = mapped_column(String(300))
    latency_p50_ms: Mapped[float | None] = mapped_column(Float)
    latency_p90_ms: Mapped[float | None] = mapped_column(Float)
    join_token: Mapped[str | None] = mapped_column(String(64), unique=True)
    # statistics cached when the session ends (NULL while recording), so listing sessions scans no observations
    n_frames: Mapped[int | None] = mapped_column(Integer)
    n_face_frames: Mapped[int | None] = mapped_column(Integer)
    dominant_emotion: Mapped[str | None] = mapped_column(String(20))
    duration_s: Mapped[float | None] = mapped_column(Float)
    #: Version of the per-second aggregates stored for it (``sessions.second_aggregates.AGGREGATES_VERSION``);
    #: None while none are stored (open sessions, sessions of an older database until first read).
    aggregates_version: Mapped[int | None] = mapped_column(Integer)

    study: Mapped[Study] = relationship(back_populates="sessions")
    observations: Mapped[list[Observation]] = relationship(
        back_populates="session", cascade="all, delete-orphan", passive_deletes=True
    )
    markers: Mapped[list[Marker]] = relationship(
        back_populates="session", cascade="all, delete-orphan", passive_deletes=True, order_by="Marker.time_s"
    )
    gaps: Mapped[list[SessionGap]] = relationship(
        back_populates="session", cascade="all, delete-orphan", passive_deletes=True, order_by="SessionGap.start_s"
    )

    @property
    def dropped_frames(self) -> int:
        """Camera frames not stored: skipped (analysis busy) plus refused (recorder queue full)."""
        return int(self.skipped_frames or 0) + int(self.refused_frames or 0)


class Observation(Base):
    """One face (or the absence of a face) in one analysed frame; columns follow ``OBSERVATION_COLUMNS``.

    ``time_s`` is seconds since the session started, ``x, y, w, h`` the face box in pixels, the seven
    emotion columns the raw classifier probabilities (FER2013 order), ``dominant`` their arg-max.
    """

    __tablename__ = "observations"
    __table_args__ = (Index("ix_observations_session_id_time_s", "session_id", "time_s"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("study_sessions.id", ondelete="CASCADE"))
    time_s: Mapped[float] = mapped_column(Float)
    frame: Mapped[int] = mapped_column(Integer)
    face_id: Mapped[int] = mapped_column(Integer)
    x: Mapped[int | None] = mapped_column(Integer)
    y: Mapped[int | None] = mapped_column(Integer)
    w: Mapped[int | None] = mapped_column(Integer)
    h: Mapped[int | None] = mapped_column(Integer)
    angry: Mapped[float | None] = mapped_column(Float)
    disgust: Mapped[float | None] = mapped_column(Float)
    fear: Mapped[float | None] = mapped_column(Float)
    happy: Mapped[float | None] = mapped_column(Float)
    sad: Mapped[float | None] = mapped_column(Float)
    surprise: Mapped[float | None] = mapped_column(Float)
    neutral: Mapped[float | None] = mapped_column(Float)
    dominant: Mapped[str | None] = mapped_column(String(20))
    # head pose and attention (fer_core.attention): NULL where the detector gives no keypoints, and on rows stored
    # before migration 0005
    yaw_deg: Mapped[float | None] = mapped_column(Float)
    pitch_deg: Mapped[float | None] = mapped_column(Float)
    attentive: Mapped[bool | None] = mapped_column(Boolean)

    session: Mapped[StudySession] = relationship(back_populates="observations")


class SecondAggregate(Base):
    """One second of one ended session: ``sessions.aggregate.per_bin`` with 1 s bins, stored when it ends.

    ``time_s`` is the bin start (whole seconds since the session start); the value columns follow
    ``sessions.aggregate.BIN_COLUMNS`` (mean raw probabilities, dominant shares, face-present rate, valence,
    engagement; NULL where the second holds no face), ``n_frames`` the analysed frames in it. Derived data:
    :func:`sessions.second_aggregates.store_second_aggregates` rewrites it from the observations.
    """

    __tablename__ = "second_aggregates"

    session_id: Mapped[int] = mapped_column(ForeignKey("study_sessions.id", ondelete="CASCADE"), primary_key=True)
    time_s: Mapped[float] = mapped_column(Float, primary_key=True)
    angry: Mapped[float | None] = mapped_column(Float)
    disgust: Mapped[float | None] = mapped_column(Float)
    fear: Mapped[float | None] = mapped_column(Float)
    happy: Mapped[float | None] = mapped_column(Float)
    sad: Mapped[float | None] = mapped_column(Float)
    surprise: Mapped[float | None] = mapped_column(Float)
    neutral: Mapped[float | None] = mapped_column(Float)
    dominant_angry: Mapped[float | None] = mapped_column(Float)
    dominant_disgust: Mapped[float | None] = mapped_column(Float)
    dominant_fear: Mapped[float | None] = mapped_column(Float)
    dominant_happy: Mapped[float | None] = mapped_column(Float)
    dominant_sad: Mapped[float | None] = mapped_column(Float)
    dominant_surprise: Mapped[float | None] = mapped_column(Float)
    dominant_neutral: Mapped[float | None] = mapped_column(Float)
    face_present_rate: Mapped[float | None] = mapped_column(Float)
    valence: Mapped[float | None] = mapped_column(Float)
    engagement: Mapped[float | None] = mapped_column(Float)
    attention_rate: Mapped[float | None] = mapped_column(Float)
    n_frames: Mapped[int] = mapped_column(Integer)


class ConsentText(Base):
    """One version of a study's consent text: what a participant agrees to before the camera starts.

    The five parts follow what informed consent to processing personal data has to say (GDPR Art. 13): the
    ``purpose``, who holds the data (``controller``), how long it is kept (``retention``), whom to ask
    (``contact``) and how to withdraw (``withdrawal``). Versions count from 1 per study; a change adds a version
    and never alters one, so a session's ``consent_version`` always names the text it agreed to.
    """

    __tablename__ = "consent_texts"
    __table_args__ = (UniqueConstraint("study_id", "version"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    purpose: Mapped[str] = mapped_column(Text)
    controller: Mapped[str] = mapped_column(Text)
    retention: Mapped[str] = mapped_column(Text)
    contact: Mapped[str] = mapped_column(Text)
    withdrawal: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class Marker(Base):
    """A labelled instant of a session (``time_s`` seconds since its start), e.g. ``"stimulus start"``."""

    __tablename__ = "markers"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("study_sessions.id", ondelete="CASCADE"), index=True)
    time_s: Mapped[float] = mapped_column(Float)
    label: Mapped[str] = mapped_column(String(200))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)

    session: Mapped[StudySession] = relationship(back_populates="markers")


class SessionGap(Base):
    """A stretch of a session without camera frames that the session survived (reload, network drop).

    ``start_s`` is the session time of the last frame before the drop, ``end_s`` that of the first frame after
    the participant came back (seconds since ``started_at``).
    """

    __tablename__ = "session_gaps"
    __table_args__ = {"sqlite_autoincrement": True}

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("study_sessions.id", ondelete="CASCADE"), index=True)
    start_s: Mapped[float] = mapped_column(Float)
    end_s: Mapped[float] = mapped_column(Float)

    session: Mapped[StudySession] = relationship(back_populates="gaps")


class LiveOwner(Base):
    """A dashboard server process that serves live sessions (one row per process start).

    ``heartbeat_at`` is refreshed every second or so while the process lives; sessions whose ``owner_id`` names
    an owner with a stale heartbeat lost their writer and are ended as ``aborted`` by whichever process notices
    (:func:`sessions.repository.abort_orphaned`). ``host`` and ``pid`` let a restart on the same machine see at
    once that the previous process is gone.
    """

    __tablename__ = "live_owners"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    host: Mapped[str] = mapped_column(String(255))
    pid: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    heartbeat_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


#: Values of ``Stimulus.kind``: a video file played in the page, or an external task (a game, a web page) whose
#: timing comes from markers.
STIMULUS_KINDS: tuple[str, ...] = ("video", "external")
#: Values of ``StimulusSequence.order``.
SEQUENCE_ORDERS: tuple[str, ...] = ("fixed", "random")


class Stimulus(Base):
    """What a study shows its participants: a video file (in the media folder) or an external task (a URL).

    For a video, ``file_name`` is the file in the media folder (named by its ``sha256``), and ``duration_s``
    (seconds), ``fps`` (frames per second), ``width``/``height`` (pixels), ``size_bytes`` and ``has_audio`` were
    read with PyAV at upload (:func:`sessions.stimuli.probe_video`); ``n_thumbnails`` JPEGs (one per second of
    the video) are cached beside it. ``position`` orders the study's sequence; ``in_sequence`` says whether
    sessions play it.
    """

    __tablename__ = "stimuli"
    __table_args__ = (UniqueConstraint("study_id", "name"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(20))
    url: Mapped[str | None] = mapped_column(Text)
    file_name: Mapped[str | None] = mapped_column(String(200))
    mime_type: Mapped[str | None] = mapped_column(String(50))
    sha256: Mapped[str | None] = mapped_column(String(64))
    duration_s: Mapped[float | None] = mapped_column(Float)
    fps: Mapped[float | None] = mapped_column(Float)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    size_bytes: Mapped[int | None] = mapped_column(BigInteger)
    has_audio: Mapped[bool] = mapped_column(Boolean, default=False)
    n_thumbnails: Mapped[int] = mapped_column(Integer, default=0)
    position: Mapped[int] = mapped_column(Integer, default=0)
    in_sequence: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


class StimulusSequence(Base):
    """How a study's sessions play its stimuli: ``order`` fixed (by position) or random (drawn per participant),
    with ``buffer_s`` seconds of blank screen between two stimuli (5 s by default, as Realeyes)."""

    __tablename__ = "stimulus_sequences"

    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), primary_key=True)
    order: Mapped[str] = mapped_column(String(20), default="fixed")
    buffer_s: Mapped[float] = mapped_column(Float, default=5.0)


class SessionStimulus(Base):
    """One stimulus of the order a session plays (drawn once, when the session first needs it).

    ``name`` and ``duration_s`` are copied from the stimulus, so a session keeps them when the stimulus is
    deleted (``stimulus_id`` then becomes NULL); ``buffer_s`` is the blank shown before it (0 for the first).
    """

    __tablename__ = "session_stimuli"
    __table_args__ = (UniqueConstraint("session_id", "position"), {"sqlite_autoincrement": True})

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("study_sessions.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    stimulus_id: Mapped[int | None] = mapped_column(ForeignKey("stimuli.id", ondelete="SET NULL"))
    name: Mapped[str] = mapped_column(String(300))
    duration_s: Mapped[float | None] = mapped_column(Float)
    buffer_s: Mapped[float] = mapped_column(Float, default=0.0)


class PlaybackEvent(Base):
    """One event of a session's stimulus player (:mod:`sessions.playback`).

    ``kind`` is the HTML media event (``play``, ``playing``, ``pause``, ``waiting``, ``stalled``, ``seeking``,
    ``ended``, ...) or the player's own (``blocked``: autoplay refused; ``missing``: the stimulus was deleted;
    ``error``); ``media_time_s`` the video's ``currentTime`` (seconds); ``client_ms`` the browser's clock at the
    event (``performance.timeOrigin + event.timeStamp``, ms since the epoch), ``perf_ms`` its
    ``performance.now()``, ``offset_ms`` the browser's estimate of its clock minus the server's; ``page_id`` and
    ``seq`` name the page load and the event's number in it (unique: an event sent twice is stored once);
    ``received_at`` is when the server stored it.
    """

    __tablename__ = "playback_events"
    __table_args__ = (UniqueConstraint("session_id", "page_id", "seq"),)

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    session_id: Mapped[int] = mapped_column(ForeignKey("study_sessions.id", ondelete="CASCADE"))
    position: Mapped[int | None] = mapped_column(Integer)
    stimulus_id: Mapped[int | None] = mapped_column(ForeignKey("stimuli.id", ondelete="SET NULL"))
    kind: Mapped[str] = mapped_column(String(20))
    media_time_s: Mapped[float | None] = mapped_column(Float)
    client_ms: Mapped[float] = mapped_column(Float)
    perf_ms: Mapped[float | None] = mapped_column(Float)
    offset_ms: Mapped[float | None] = mapped_column(Float)
    page_id: Mapped[str] = mapped_column(String(32))
    seq: Mapped[int] = mapped_column(Integer)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)


#: Values of ``VideoImport.status``: ``running`` (its session is being written), ``complete``, ``failed``.
IMPORT_STATUSES: tuple[str, ...] = ("running", "complete", "failed")


class VideoImport(Base):
    """One import of a video file into a study by the batch importer (:mod:`sessions.batch`).

    ``content_sha256`` (64 hex digits) and ``size_bytes`` identify the file's content, ``model`` the expression
    model (:attr:`fer_core.classifier.EmotionClassifier.model_id`), ``settings`` the analysis settings as JSON
    (:class:`sessions.batch.BatchSettings`) and ``settings_key`` their SHA-256: a video whose study, content,
    model and settings already have a ``complete`` import is skipped, and at most one import of it is ``running``
    (a unique partial index). ``source_path`` is the absolute path the
    video was read from (re-analysis reads it again). ``owner_id`` is the :class:`LiveOwner` (process) that runs
    the import; a ``running`` import whose owner is gone was interrupted and is redone. ``error`` says why a
    ``failed`` import failed; ``n_frames`` counts the analysed frames of a complete one.
    """

    __tablename__ = "video_imports"
    __table_args__ = (Index("ix_video_imports_lookup", "study_id", "content_sha256", "model", "settings_key"),
                      # at most one running import of a video per study, model and settings (migration 0008):
                      # the importer's claim in its plan is atomic on SQLite and PostgreSQL
                      Index("uq_video_imports_running", "study_id", "content_sha256", "model", "settings_key",
                            unique=True, sqlite_where=text("status = 'running'"),
                            postgresql_where=text("status = 'running'")),
                      {"sqlite_autoincrement": True})  # fmt: skip

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    session_id: Mapped[int | None] = mapped_column(ForeignKey("study_sessions.id", ondelete="CASCADE"), index=True)
    source_path: Mapped[str] = mapped_column(Text)
    content_sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    model: Mapped[str] = mapped_column(String(300))
    settings: Mapped[dict] = mapped_column(JSON)
    settings_key: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))
    error: Mapped[str | None] = mapped_column(Text)
    owner_id: Mapped[str | None] = mapped_column(String(64))
    n_frames: Mapped[int | None] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utc_now)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
