"""Stimuli of a study: video files in the media folder (probed and thumbnailed with PyAV), external tasks, the
study's sequence and each session's drawn order.

Files. A video stimulus is copied into the media folder (:func:`resolve_media_dir`: the ``media_dir`` given,
else ``$FER_MEDIA_DIR``, else ``media/`` in the user data folder beside ``sessions.db``) as ``<sha256>.<ext>``,
with its thumbnails in ``<sha256>_thumbs/0000.jpg, 0001.jpg, ...`` (the first frame at or after each whole
second, 160 pixels wide, JPEG). Files are named by content, so two studies with the same advert share one
copy; :func:`prune_media` removes the files no stimulus row names any more (call it after the deleting
transaction has committed, so a rolled-back delete never loses a file).

Formats. Browsers play MP4 with H.264 and WebM with VP8, VP9 or AV1 (audio AAC, MP3, Opus or Vorbis); other
codecs (HEVC, ProRes, MPEG-4 Part 2) and files PyAV cannot decode are refused with :class:`StimulusError`
naming the file and the problem.

Sequences. A study has one sequence (:class:`sessions.models.StimulusSequence`): its stimuli with
``in_sequence`` in ``position`` order, played in that order (``fixed``) or in an order drawn per participant
(``random``), with ``buffer_s`` seconds of blank between two stimuli (default 5 s, as Realeyes). A session's
order is drawn once, the first time it is asked for (:func:`session_sequence`), and stored.
"""

from __future__ import annotations

import hashlib
import os
import random
import shutil
import tempfile
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import av
import cv2
import numpy as np
import pandas as pd
import platformdirs
from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from sessions.errors import SessionNotFound
from sessions.models import (
    SEQUENCE_ORDERS,
    PlaybackEvent,
    SessionStimulus,
    Stimulus,
    StimulusSequence,
    Study,
    StudySession,
)
from sessions.validation import STIMULUS_NAME_MAX, STIMULUS_URL_MAX, check_text, check_web_url

#: Environment variable naming the media folder.
MEDIA_DIR_ENV = "FER_MEDIA_DIR"
#: Video codecs browsers play (PyAV/FFmpeg codec names).
BROWSER_VIDEO_CODECS: frozenset[str] = frozenset({"h264", "vp8", "vp9", "av1"})
#: Audio codecs browsers play.
BROWSER_AUDIO_CODECS: frozenset[str] = frozenset({"aac", "mp3", "opus", "vorbis"})
#: MIME type by file suffix of the accepted containers.
VIDEO_MIME_TYPES: dict[str, str] = {".mp4": "video/mp4", ".m4v": "video/mp4", ".webm": "video/webm"}
#: Width of the thumbnails in pixels.
THUMBNAIL_WIDTH = 160
#: Most thumbnails written for one stimulus (one a second: four hours); a file whose timestamps jump further gets
#: no thumbnails past it.
MAX_THUMBNAILS = 4 * 3600
#: Default blank between two stimuli (seconds), as Realeyes.
DEFAULT_BUFFER_S = 5.0
#: Longest blank accepted between two stimuli (seconds).
MAX_BUFFER_S = 120.0
#: Columns of :func:`list_stimuli`.
STIMULUS_COLUMNS: tuple[str, ...] = (
    "stimulus_id", "name", "kind", "url", "duration_s", "fps", "width", "height", "size_bytes", "has_audio",
    "n_thumbnails", "position", "in_sequence",
)  # fmt: skip


class StimulusError(ValueError):
    """A stimulus cannot be added or used: the message names the input and what is wrong with it."""


class VideoProbe(NamedTuple):
    """What PyAV read from a video file (:func:`probe_video`).

    Attributes
    ----------
    duration_s : float
        Seconds from the first frame's timestamp to the end of the last frame (decoder timestamps, not
        ``frames / fps``).
    fps : float
        Average frame rate (frames per second) as the container declares it, else frames over duration.
    width, height : int
        Frame size in pixels.
    n_frames : int
        Frames decoded.
    video_codec : str
    audio_codec : str or None
        None without an audio track.
    n_thumbnails : int
        Thumbnails written (one per whole second reached; 0 without ``thumbnails_dir``).
    """

    duration_s: float
    fps: float
    width: int
    height: int
    n_frames: int
    video_codec: str
    audio_codec: str | None
    n_thumbnails: int


class SequenceItem(NamedTuple):
    """One stimulus of a session's order (:func:`session_sequence`).

    Attributes
    ----------
    position : int
        0, 1, ... in playing order.
    stimulus_id : int or None
        None once the stimulus was deleted (the session keeps its name and duration).
    name : str
    kind : str or None
        ``"video"`` or ``"external"``; None once deleted.
    duration_s : float or None
        Seconds (videos).
    buffer_s : float
        Seconds of blank shown before it (0 for the first).
    """

    position: int
    stimulus_id: int | None
    name: str
    kind: str | None
    duration_s: float | None
    buffer_s: float


def resolve_media_dir(media_dir: str | os.PathLike | None = None) -> Path:
    """The media folder: ``media_dir`` if given, else ``$FER_MEDIA_DIR``, else ``media`` in the user data folder.

    Returns
    -------
    pathlib.Path
        The folder (created if missing).
    """
    if media_dir:
        path = Path(media_dir).expanduser()
    elif os.environ.get(MEDIA_DIR_ENV):
        path = Path(os.environ[MEDIA_DIR_ENV]).expanduser()
    else:
        path = Path(platformdirs.user_data_dir("fer-platform")) / "media"
    path.mkdir(parents=True, exist_ok=True)
    return path


def file_sha256(path: str | os.PathLike) -> str:
    """Hex SHA-256 of a file's bytes (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def probe_video(path: str | os.PathLike, *, thumbnails_dir: str | os.PathLike | None = None,
                progress: Callable[[float], None] | None = None) -> VideoProbe:  # fmt: skip
    """Decode a video file with PyAV: its duration, frame rate, size and codecs; optionally its thumbnails.

    Every frame is decoded (a file that breaks half-way is refused, not found out by a participant). With
    ``thumbnails_dir``, the first frame at or after each whole second (0 s, 1 s, ...; decoder timestamps) is
    written there as ``NNNN.jpg`` (``THUMBNAIL_WIDTH`` pixels wide, aspect kept): one a second, none skipped, so
    the k-th file (from 0) is second k also where frames are more than a second apart (a variable-frame-rate
    file: the frame after the gap stands for each second it spans); at most ``MAX_THUMBNAILS``.

    Parameters
    ----------
    path : str or path-like
        The video file.
    thumbnails_dir : str or path-like, optional
        Folder for the thumbnails (created).
    progress : callable, optional
        Called with the fraction decoded (float in [0, 1], by timestamp over the declared duration).

    Returns
    -------
    VideoProbe

    Raises
    ------
    StimulusError
        The file cannot be opened or decoded, has no video track, no decodable frame, or a codec browsers do
        not play; the message names the file (not its folder) and the problem.
    """
    name = Path(path).name
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as exc:
        raise StimulusError(f"stimulus file {name!r} cannot be read as a video: {_reason(exc)}") from None
    with container:
        if not container.streams.video:
            raise StimulusError(f"stimulus file {name!r} has no video track")
        stream = container.streams.video[0]
        codec = stream.codec_context.name
        if codec not in BROWSER_VIDEO_CODECS:
            raise StimulusError(f"stimulus file {name!r} uses the video codec {codec!r}, which browsers do not play; "
                                "convert it to MP4 with H.264 (or WebM with VP9)")  # fmt: skip
        audio = container.streams.audio[0].codec_context.name if container.streams.audio else None
        if audio is not None and audio not in BROWSER_AUDIO_CODECS:
            raise StimulusError(f"stimulus file {name!r} uses the audio codec {audio!r}, which browsers do not play; "
                                "convert the sound to AAC (MP4) or Opus (WebM)")  # fmt: skip
        declared = float(container.duration / av.time_base) if container.duration else None
        stream.thread_type = "AUTO"
        thumbs = Path(thumbnails_dir) if thumbnails_dir is not None else None
        if thumbs is not None:
            thumbs.mkdir(parents=True, exist_ok=True)
        first = last = None
        frame_duration = 0.0
        n_frames = n_thumbs = 0
        width = height = 0
        try:
            for frame in container.decode(stream):
                if frame.pts is None:
                    continue
                t = float(frame.pts * frame.time_base)
                first = t if first is None else first
                if last is not None and t > last:
                    frame_duration = t - last
                last = t if last is None else max(last, t)
                n_frames += 1
                width, height = frame.width, frame.height
                if thumbs is not None and t - first >= n_thumbs - 1e-6 and n_thumbs < MAX_THUMBNAILS:
                    second = min(int(np.floor(t - first + 1e-6)), MAX_THUMBNAILS - 1)
                    # every second up to this frame's: file k is always second k (Review indexes them so)
                    _write_thumbnail(frame, [thumbs / f"{k:04d}.jpg" for k in range(n_thumbs, second + 1)])
                    n_thumbs = second + 1
                if progress is not None and declared:
                    progress(min(1.0, (t - first) / declared))
        except (av.FFmpegError, ValueError) as exc:
            raise StimulusError(f"stimulus file {name!r} cannot be decoded after {n_frames} frames: "
                                f"{_reason(exc)}") from None  # fmt: skip
        if n_frames == 0:
            raise StimulusError(f"stimulus file {name!r} holds no decodable video frame")
        if not frame_duration and stream.average_rate:
            frame_duration = float(1 / Fraction(stream.average_rate))
        duration = (last - first) + frame_duration
        fps = float(stream.average_rate) if stream.average_rate else n_frames / duration
    if progress is not None:
        progress(1.0)
    return VideoProbe(duration, fps, width, height, n_frames, codec, audio, n_thumbs)


def _reason(exc: BaseException) -> str:
    """An FFmpeg error's own words, without the path it may quote."""
    text = getattr(exc, "strerror", None) or str(exc)
    return str(text).split(":")[0].strip() or exc.__class__.__name__


def _write_thumbnail(frame: av.VideoFrame, targets: list[Path]) -> None:
    """Write ``frame`` as a ``THUMBNAIL_WIDTH``-pixel JPEG to each of ``targets`` (encoded once)."""
    image = frame.to_ndarray(format="bgr24")
    height = max(1, round(image.shape[0] * THUMBNAIL_WIDTH / image.shape[1]))
    small = cv2.resize(image, (THUMBNAIL_WIDTH, height), interpolation=cv2.INTER_AREA)
    ok, data = cv2.imencode(".jpg", small, [cv2.IMWRITE_JPEG_QUALITY, 80])
    if ok:
        for target in targets:
            target.write_bytes(data.tobytes())


def _check_name(db: Session, study_id: int, name: str) -> str:
    if db.get(Study, study_id) is None:
        raise StimulusError(f"study_id has to name an existing study; got {study_id!r}")
    name = (name or "").strip()
    if not name:
        raise StimulusError("stimulus name has to be a non-empty string; got an empty one")
    try:
        check_text(name, "stimulus name", max_length=STIMULUS_NAME_MAX)
    except ValueError as exc:
        raise StimulusError(str(exc)) from None
    if db.scalar(select(Stimulus.id).where(Stimulus.study_id == study_id, Stimulus.name == name)) is not None:
        raise StimulusError(f"stimulus name has to be unique in its study; a stimulus named {name!r} exists")
    return name


def _next_position(db: Session, study_id: int) -> int:
    return int(db.scalar(select(func.coalesce(func.max(Stimulus.position), -1)).where(Stimulus.study_id == study_id))) + 1


def add_video_stimulus(db: Session, study_id: int, name: str, source: str | os.PathLike, *,
                       media_dir: str | os.PathLike | None = None,
                       progress: Callable[[float], None] | None = None) -> Stimulus:  # fmt: skip
    """Probe a video file, copy it with its thumbnails into the media folder and add it to the study.

    Parameters
    ----------
    db : sqlalchemy.orm.Session
        Open ORM session; flushed, not committed.
    study_id : int
        The study.
    name : str
        Name shown to researchers and written in exports (stripped; unique in the study; at most 300 characters).
    source : str or path-like
        The uploaded file; its suffix decides the container (``.mp4``, ``.m4v``, ``.webm``).
    media_dir : str or path-like, optional
        The media folder (:func:`resolve_media_dir`).
    progress : callable, optional
        Called with the fraction decoded (float in [0, 1]).

    Returns
    -------
    Stimulus
        The new row (kind ``"video"``, with duration, frame rate, size, SHA-256 and thumbnail count), last in
        the study's sequence.

    Raises
    ------
    StimulusError
        Unknown study, an empty, too long or duplicate name, a suffix other than ``.mp4``/``.m4v``/``.webm``, or
        a file that cannot be decoded or that browsers cannot play (:func:`probe_video`); nothing is stored.
    """
    name = _check_name(db, study_id, name)
    source = Path(source)
    suffix = source.suffix.lower()
    if suffix not in VIDEO_MIME_TYPES:
        raise StimulusError(f"stimulus file {source.name!r} has to be MP4 (H.264) or WebM; got the suffix {suffix!r}")
    media = resolve_media_dir(media_dir)
    sha = file_sha256(source)
    with tempfile.TemporaryDirectory(dir=media, prefix=".upload-") as scratch:
        probe = probe_video(source, thumbnails_dir=Path(scratch) / "thumbs", progress=progress)
        target, thumbs = media / f"{sha}{suffix}", media / f"{sha}_thumbs"
        if not target.is_file():
            partial = Path(scratch) / "file"
            shutil.copyfile(source, partial)
            os.replace(partial, target)
        if not thumbs.is_dir():
            os.replace(Path(scratch) / "thumbs", thumbs)
    stimulus = Stimulus(study_id=study_id, name=name, kind="video", file_name=target.name,
                        mime_type=VIDEO_MIME_TYPES[suffix], sha256=sha, duration_s=probe.duration_s, fps=probe.fps,
                        width=probe.width, height=probe.height, size_bytes=target.stat().st_size,
                        has_audio=probe.audio_codec is not None, n_thumbnails=probe.n_thumbnails,
                        position=_next_position(db, study_id), in_sequence=True)  # fmt: skip
    db.add(stimulus)
    db.flush()
    return stimulus


def add_external_task(db: Session, study_id: int, name: str, url: str) -> Stimulus:
    """Add an external task (a game, a web page) that participants open at ``url``; its timing comes from markers.

    Parameters
    ----------
    db : sqlalchemy.orm.Session
        Open ORM session; flushed, not committed.
    study_id : int
    name : str
        Stripped; unique in the study; at most 300 characters.
    url : str
        A web address (:func:`sessions.validation.check_web_url`, as a completion URL): ``http://`` or ``https://``
        with a host, at most 2,000 characters, no spaces; stripped.

    Returns
    -------
    Stimulus
        The new row (kind ``"external"``, not in the played sequence: the player plays videos only).

    Raises
    ------
    StimulusError
        Unknown study, a bad name, or a URL that is empty, too long, holds spaces or control characters, is not
        http(s) or names no host.
    """
    name = _check_name(db, study_id, name)
    try:  # the same definition as a study's completion URL
        url = check_web_url(url or "", "task URL", max_length=STIMULUS_URL_MAX, example="https://game.example.org/level1")
    except ValueError as exc:
        raise StimulusError(str(exc)) from None
    stimulus = Stimulus(study_id=study_id, name=name, kind="external", url=url, position=_next_position(db, study_id),
                        in_sequence=False)  # fmt: skip
    db.add(stimulus)
    db.flush()
    return stimulus


def get_stimulus(db: Session, stimulus_id: int) -> Stimulus:
    """The stimulus with id ``stimulus_id``; raises :class:`StimulusError` when there is none (deleted)."""
    stimulus = db.get(Stimulus, int(stimulus_id))
    if stimulus is None:
        raise StimulusError(f"no stimulus has id {stimulus_id!r} (it was deleted)")
    return stimulus


def list_stimuli(db: Session, study_id: int) -> pd.DataFrame:
    """A study's stimuli in sequence position order.

    Returns
    -------
    pandas.DataFrame
        Columns ``STIMULUS_COLUMNS``: ``duration_s`` (seconds), ``fps`` (frames per second), ``width``/``height``
        (pixels), ``size_bytes`` (NaN for external tasks), ``url`` (external tasks), ``position``, ``in_sequence``.
    """
    rows = db.scalars(select(Stimulus).where(Stimulus.study_id == study_id).order_by(Stimulus.position, Stimulus.id))
    records = [(s.id, s.name, s.kind, s.url, s.duration_s, s.fps, s.width, s.height, s.size_bytes, bool(s.has_audio),
                int(s.n_thumbnails or 0), int(s.position), bool(s.in_sequence)) for s in rows]  # fmt: skip
    return pd.DataFrame.from_records(records, columns=list(STIMULUS_COLUMNS))


def delete_stimulus(db: Session, stimulus_id: int) -> None:
    """Delete one stimulus; sessions that played it keep its name and duration (their ``stimulus_id`` is cleared).

    Call :func:`prune_media` after the commit to remove its file.

    Raises
    ------
    StimulusError
        Unknown stimulus.
    """
    stimulus = get_stimulus(db, stimulus_id)
    db.execute(update(SessionStimulus).where(SessionStimulus.stimulus_id == stimulus.id).values(stimulus_id=None))
    db.execute(update(PlaybackEvent).where(PlaybackEvent.stimulus_id == stimulus.id).values(stimulus_id=None))
    db.delete(stimulus)
    db.flush()


def delete_study_stimuli(db: Session, study_id: int) -> int:
    """Delete every stimulus and the sequence of a study (rows only; :func:`prune_media` removes the files).

    Returns
    -------
    int
        Stimuli deleted.
    """
    ids = list(db.scalars(select(Stimulus.id).where(Stimulus.study_id == study_id)))
    for stimulus_id in ids:
        delete_stimulus(db, stimulus_id)
    db.execute(delete(StimulusSequence).where(StimulusSequence.study_id == study_id))
    db.flush()
    return len(ids)


def prune_media(db: Session, media_dir: str | os.PathLike | None = None) -> list[Path]:
    """Remove the media files and thumbnail folders that no stimulus names any more; return what was removed.

    Run it after the transaction that deleted stimuli (or a study) has committed.
    """
    media = resolve_media_dir(media_dir)
    used = set(db.scalars(select(Stimulus.sha256).where(Stimulus.sha256.is_not(None))))
    removed = []
    for path in media.iterdir():
        sha = path.name.split(".")[0].removesuffix("_thumbs")
        if len(sha) != 64 or sha in used or path.name.startswith("."):
            continue
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)
        removed.append(path)
    return removed


def stimulus_file(stimulus: Stimulus, media_dir: str | os.PathLike | None = None) -> Path | None:
    """The stimulus's video file in the media folder, or None (an external task, or the file is gone)."""
    if stimulus.file_name is None:
        return None
    path = resolve_media_dir(media_dir) / stimulus.file_name
    return path if path.is_file() else None


def thumbnail_files(stimulus: Stimulus, media_dir: str | os.PathLike | None = None) -> list[Path]:
    """The stimulus's thumbnails in time order; ``NNNN.jpg`` shows the first frame at or after ``NNNN`` seconds, so
    item k is stimulus second k (:func:`probe_video` writes every second)."""
    if stimulus.sha256 is None:
        return []
    folder = resolve_media_dir(media_dir) / f"{stimulus.sha256}_thumbs"
    return sorted(folder.glob("*.jpg")) if folder.is_dir() else []


def get_sequence(db: Session, study_id: int) -> tuple[str, float, list[Stimulus]]:
    """A study's sequence: ``(order, buffer_s, stimuli)``, the stimuli with ``in_sequence`` in position order.

    A study without a stored sequence plays ``"fixed"`` with the default 5 s buffer.
    """
    sequence = db.get(StimulusSequence, study_id)
    order, buffer_s = (sequence.order, sequence.buffer_s) if sequence else ("fixed", DEFAULT_BUFFER_S)
    stimuli = list(db.scalars(select(Stimulus).where(Stimulus.study_id == study_id, Stimulus.in_sequence.is_(True),
                                                     Stimulus.kind == "video").order_by(Stimulus.position, Stimulus.id)))  # fmt: skip
    return order, float(buffer_s), stimuli


def set_sequence(db: Session, study_id: int, stimulus_ids: list[int], *, order: str = "fixed",
                 buffer_s: float = DEFAULT_BUFFER_S) -> None:  # fmt: skip
    """Set a study's sequence: these video stimuli in this order (the study's other stimuli leave it).

    Sessions whose order was already drawn keep it.

    Parameters
    ----------
    stimulus_ids : list of int
        Video stimuli of the study, in playing order (for ``"random"``, the set drawn from).
    order : {"fixed", "random"}
    buffer_s : float
        Seconds of blank between two stimuli, 0 to 120.

    Raises
    ------
    StimulusError
        Unknown study, an id that is not a video stimulus of the study or appears twice, an unknown ``order``, or
        a buffer outside 0-120 s.
    """
    if db.get(Study, study_id) is None:
        raise StimulusError(f"study_id has to name an existing study; got {study_id!r}")
    if order not in SEQUENCE_ORDERS:
        raise StimulusError(f"sequence order has to be one of {SEQUENCE_ORDERS}; got {order!r}")
    buffer_s = float(buffer_s)
    if not 0 <= buffer_s <= MAX_BUFFER_S:
        raise StimulusError(f"buffer between stimuli has to be 0 to {MAX_BUFFER_S:.0f} seconds; got {buffer_s!r}")
    ids = [int(i) for i in stimulus_ids]
    if len(set(ids)) != len(ids):
        raise StimulusError(f"a stimulus can be in a sequence once; got {ids}")
    stimuli = {s.id: s for s in db.scalars(select(Stimulus).where(Stimulus.study_id == study_id))}
    for i in ids:
        if i not in stimuli or stimuli[i].kind != "video":
            raise StimulusError(f"stimulus {i} is not a video stimulus of this study")
    rest = [s for s in sorted(stimuli.values(), key=lambda s: (s.position, s.id)) if s.id not in ids]
    for position, stimulus in enumerate([*(stimuli[i] for i in ids), *rest]):
        stimulus.position, stimulus.in_sequence = position, stimulus.id in ids
    sequence = db.get(StimulusSequence, study_id)
    if sequence is None:
        db.add(StimulusSequence(study_id=study_id, order=order, buffer_s=buffer_s))
    else:
        sequence.order, sequence.buffer_s = order, buffer_s
    db.flush()


def session_sequence(db: Session, session_id: int, *, rng: random.Random | None = None) -> list[SequenceItem]:
    """The order in which a session plays its study's stimuli: drawn and stored the first time, then read.

    With the study's order ``"random"`` each participant gets an order drawn uniformly at random
    (``random.Random.shuffle``; ``rng`` for tests); with ``"fixed"``, the study's positions. The blank before each
    stimulus but the first is the study's ``buffer_s``. A session whose study has no video stimulus gets an empty
    order, and nothing is stored (it can still get one later).

    Parameters
    ----------
    db : sqlalchemy.orm.Session
        Open ORM session; a drawn order is flushed, not committed.
    session_id : int

    Returns
    -------
    list of SequenceItem
        In playing order.

    Raises
    ------
    SessionNotFound
        Unknown session.
    """
    session = db.get(StudySession, session_id)
    if session is None:
        raise SessionNotFound(f"no session has id {session_id!r}")
    stored = stored_sequence(db, session_id)
    if stored:
        return stored
    order, buffer_s, stimuli = get_sequence(db, session.study_id)
    if not stimuli:
        return []
    if order == "random":
        stimuli = list(stimuli)
        (rng or random.Random()).shuffle(stimuli)
    try:
        with db.begin_nested():  # a second page drawing at the same moment: the first stored order wins
            for position, stimulus in enumerate(stimuli):
                db.add(SessionStimulus(session_id=session_id, position=position, stimulus_id=stimulus.id,
                                       name=stimulus.name, duration_s=stimulus.duration_s,
                                       buffer_s=0.0 if position == 0 else buffer_s))  # fmt: skip
    except IntegrityError:
        pass
    return stored_sequence(db, session_id)


def stored_sequence(db: Session, session_id: int) -> list[SequenceItem]:
    """The order a session plays, as stored; empty when it was never drawn (:func:`session_sequence` draws it)."""
    rows = db.execute(select(SessionStimulus, Stimulus.kind).outerjoin(Stimulus, SessionStimulus.stimulus_id == Stimulus.id)
                      .where(SessionStimulus.session_id == session_id).order_by(SessionStimulus.position)).all()  # fmt: skip
    return [SequenceItem(r.position, r.stimulus_id, r.name, kind, r.duration_s, float(r.buffer_s or 0.0))
            for r, kind in rows]  # fmt: skip


def frame_at(stimulus: Stimulus, second: float, media_dir: str | os.PathLike | None = None) -> np.ndarray:
    """The stimulus's frame shown at ``second`` (the first frame whose timestamp is at or after it), full size.

    Parameters
    ----------
    stimulus : Stimulus
        A video stimulus.
    second : float
        Stimulus seconds (clipped to the video).

    Returns
    -------
    ndarray of shape (height, width, 3) uint8
        RGB.

    Raises
    ------
    StimulusError
        An external task, a deleted file, or a file that no longer decodes.
    """
    path = stimulus_file(stimulus, media_dir)
    if path is None:
        raise StimulusError(f"stimulus {stimulus.name!r} has no video file (an external task, or its file was removed)")
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
            target = start + max(0.0, float(second))
            container.seek(int(target / stream.time_base), stream=stream, backward=True)
            last = None
            for frame in container.decode(stream):
                last = frame
                if frame.pts is not None and float(frame.pts * frame.time_base) >= target - 1e-6:
                    break
            if last is None:
                raise StimulusError(f"stimulus {stimulus.name!r} has no frame at {second:.1f} s")
            return last.to_ndarray(format="rgb24")
    except av.FFmpegError as exc:
        raise StimulusError(f"stimulus {stimulus.name!r} cannot be decoded: {_reason(exc)}") from None
