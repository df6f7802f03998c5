"""Batch import: analyse many videos into sessions of a study, in this process or on Ray, idempotent and resumable.

``python -m sessions import-videos`` and ``reanalyse`` run :func:`import_videos` as a recipe:

1. **Register** this process as a live owner (:mod:`sessions.lifecycle`; a heartbeat thread keeps it fresh) and
   end the sessions of owners that are gone (a crashed import's session becomes ``aborted``).
2. **Plan** each video: its SHA-256; skip it when the study already holds a ``complete`` import of the same
   content with the same model and analysis settings (:class:`BatchSettings`), or when another live process is
   importing it; redo it when an earlier import did not finish (its partial session is deleted); split it into
   time ranges at key frames (:func:`fer_core.video_ranges.plan_ranges`, with ``split_s``); **claim** it: its
   session (``recording``, owned by this process) and its ``running`` import row, in one transaction. At most one
   import of a video (study, content, model, settings) is running (a unique index, migration 0008), so of two
   runs planning at once only one imports it; the other skips it.
3. **Analyse** the ranges on the engine (:mod:`sessions.batch_engines`: ``local`` in this process, ``ray`` on Ray
   Data's actors, each loading the model once).
4. **Write**, in this process only: the results of each video are put back in order, their tracking ids made
   consistent across ranges (:class:`fer_core.video_ranges.RangeStitcher`), and stored range by range, each range
   one transaction, through the one path from a frame to a stored row (:func:`sessions.importer.observation_table_rows`,
   i.e. :func:`sessions.recorder.stored_row`). The session claimed in the plan ends ``complete`` with the last
   range; a video that fails (corrupt file, no face) is reported
   with its reason, its partial session deleted, and the other videos go on.

A crash (kill, power cut) leaves the video being written as a ``recording`` session of a process that is gone:
the next run (or any dashboard's crash recovery) ends it, and the next run deletes it and analyses that video
again; the videos stored before the crash are skipped.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import os
import threading
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy.exc import IntegrityError

from fer_core.attention import DEFAULT_MAX_ANGLE_DEG, check_max_angle
from fer_core.detection import DEFAULT_DETECTOR, DETECTOR_NAMES
from fer_core.emotions import NO_FACE_ID
from sessions import lifecycle, repository
from sessions.batch_engines import ENGINES, range_task, run_local, run_ray, table_from_bytes
from sessions.db import session_scope
from sessions.importer import INSERT_CHUNK, coverage_warning, new_participant_code, observation_table_rows
from sessions.models import LiveOwner, Observation, StudySession, VideoImport, utc_now
from sessions.validation import check_session_fields, check_study, check_tags

logger = logging.getLogger(__name__)

#: Seconds between two heartbeats of the importing process (crash recovery waits 10 s on another machine).
HEARTBEAT_S = 1.0
#: File suffixes taken from a folder given to ``import-videos``.
VIDEO_SUFFIXES: tuple[str, ...] = (".mp4", ".m4v", ".mov", ".webm", ".mkv", ".avi")
#: Version of the analysis pipeline the settings describe; part of the settings key. 2: the attention angle is
#: part of the settings (imports of version 1 were analysed with 30 degrees and are imported again).
SETTINGS_VERSION = 2


@dataclass(frozen=True)
class BatchSettings:
    """What, besides the model and the video, decides an imported video's stored rows.

    Parameters
    ----------
    detector : str, default ``DEFAULT_DETECTOR``
        Face-detector backend (:data:`fer_core.detection.DETECTOR_NAMES`).
    attention_angle_deg : float, default :data:`fer_core.attention.DEFAULT_MAX_ANGLE_DEG` (30)
        Largest head yaw and pitch (degrees) of a face stored ``attentive``: the Upload page's
        ``attention_angle_deg`` (``FER_ATTENTION_ANGLE_DEG``), whose default is the same constant. In (0, 90].

    Every frame is decoded and analysed and the detector runs on every frame (as ``import-video`` does), so the
    rows do not depend on how a video is split into ranges: ``split_s`` and the number of workers are how the
    work is cut, not what is computed, and are not part of the settings.
    """

    detector: str = DEFAULT_DETECTOR
    attention_angle_deg: float = DEFAULT_MAX_ANGLE_DEG

    def __post_init__(self):
        if self.detector not in DETECTOR_NAMES:
            raise ValueError(f"detector has to be one of {', '.join(DETECTOR_NAMES)}; got {self.detector!r}")
        object.__setattr__(self, "attention_angle_deg", check_max_angle(self.attention_angle_deg, "attention_angle_deg"))

    def as_json(self) -> dict:
        """The settings as stored (``video_imports.settings``): version, detector, attention angle (degrees),
        ``every_n`` 1, ``detect_every`` 1."""
        return {"version": SETTINGS_VERSION, "detector": self.detector,
                "attention_angle_deg": self.attention_angle_deg, "every_n": 1, "detect_every": 1}  # fmt: skip

    @property
    def key(self) -> str:
        """SHA-256 (64 hex digits) of :meth:`as_json` with sorted keys: ``video_imports.settings_key``."""
        return hashlib.sha256(json.dumps(self.as_json(), sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class VideoSource:
    """One video to import.

    Parameters
    ----------
    path : str or path-like
        The video file.
    participant_code : str, optional
        Pseudonym of its session; default a random one (:func:`sessions.importer.new_participant_code`).
    tags : dict of str to str, optional
        Tags of its session, added to the batch's tags (these win).
    expected_sha256 : str, optional
        The content it must have (re-analysis: the content imported before); another content fails the video.
    """

    path: str | os.PathLike
    participant_code: str | None = None
    tags: dict[str, str] = field(default_factory=dict)
    expected_sha256: str | None = None


class VideoOutcome(NamedTuple):
    """What the batch did with one video.

    Attributes
    ----------
    path : str
        The video as given.
    status : {"imported", "skipped", "failed"}
    session_id : int or None
        The new session (imported), the existing one (skipped as already imported), else None.
    reason : str or None
        Why it was skipped or failed; for an imported video, a coverage warning or None.
    frames : int
        Analysed frames stored (imported videos).
    """

    path: str
    status: str
    session_id: int | None = None
    reason: str | None = None
    frames: int = 0


class BatchReport(NamedTuple):
    """The outcome of :func:`import_videos`: one :class:`VideoOutcome` per video given, in order.

    Attributes
    ----------
    outcomes : list of VideoOutcome
    wall_s : float
        Seconds from the start of the analysis to the last stored row (planning and hashing excluded).
    """

    outcomes: list[VideoOutcome]
    wall_s: float

    def count(self, status: str) -> int:
        """Number of videos with ``status`` (``"imported"``, ``"skipped"`` or ``"failed"``)."""
        return sum(1 for outcome in self.outcomes if outcome.status == status)

    @property
    def frames(self) -> int:
        """Analysed frames stored by this batch."""
        return sum(outcome.frames for outcome in self.outcomes)

    @property
    def ok(self) -> bool:
        """True when no video failed."""
        return self.count("failed") == 0


def expand_video_paths(paths: Iterable[str | os.PathLike]) -> list[str]:
    """The paths given, with each folder replaced by its video files (suffix in :data:`VIDEO_SUFFIXES`, sorted).

    Folders are not searched recursively; a path that is neither a folder nor an existing file is kept, so the
    import reports it as not found.
    """
    out: list[str] = []
    for path in map(Path, paths):
        if path.is_dir():
            out.extend(str(p) for p in sorted(path.iterdir()) if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        else:
            out.append(str(path))
    return out


def file_sha256(path: str | os.PathLike) -> tuple[str, int]:
    """SHA-256 (64 lowercase hex digits) and size in bytes of a file's content.

    Raises
    ------
    OSError
        The file cannot be read.
    """
    with open(path, "rb") as handle:
        digest = hashlib.file_digest(handle, "sha256")
        return digest.hexdigest(), handle.tell()


def import_videos(
    engine: Engine,
    sources: Iterable[str | os.PathLike | VideoSource],
    *,
    study: str,
    tags: dict[str, str] | None = None,
    engine_name: str = "local",
    address: str | None = None,
    workers: int = 1,
    model_path: str | os.PathLike | None = None,
    settings: BatchSettings | None = None,
    force: bool = False,
    split_s: float | None = None,
    show_progress: bool = True,
) -> BatchReport:
    """Analyse videos into new ``complete`` sessions of ``study`` (``source = "upload"``), one per video.

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The store (written by this process only, whatever the engine).
    sources : iterable of path or VideoSource
        The videos.
    study : str
        Study name; created if missing.
    tags : dict of str to str, optional
        Tags of every new session.
    engine_name : {"local", "ray"}
        Where the analysis runs (:mod:`sessions.batch_engines`).
    address : str, optional
        Ray cluster (``"auto"``, ``"ray://host:10001"``); default a local Ray with ``workers`` CPUs.
    workers : int, default 1
        Ray actors (one CPU and one model each); ignored by ``local``.
    model_path : str or path-like, optional
        Expression model; default the shipped one.
    settings : BatchSettings, optional
        Analysis settings; default ``BatchSettings()``.
    force : bool
        Analyse videos already imported with the same model and settings again, into new sessions.
    split_s : float, optional
        Split videos longer than this many seconds into ranges of at least this length (at key frames).
    show_progress : bool
        Draw tqdm bars on stderr: videos, and frames per second.

    Returns
    -------
    BatchReport
        One outcome per source, in order; ``ok`` is False when a video failed.

    Raises
    ------
    ValueError
        Invalid study name, tags, engine, workers or ``split_s``; checked before anything is stored.
    fer_core.model_file.ModelFileError, OSError
        The model file is missing or invalid; nothing is stored.
    sessions.batch_engines.EngineUnavailable
        ``engine_name="ray"`` and Ray is not installed or its cluster unreachable.
    """
    settings = settings or BatchSettings()
    study = _check_arguments(study, tags, engine_name, workers, split_s)
    if address is not None and engine_name != "ray":
        raise ValueError(f"address names a Ray cluster, which only engine 'ray' uses; got engine {engine_name!r}")
    model_path, model_id = _check_model(model_path)
    batch = _Batch(engine, study=study, tags=dict(tags or {}), model_id=model_id, settings=settings, force=force,
                   show_progress=show_progress)  # fmt: skip
    sources = [s if isinstance(s, VideoSource) else VideoSource(s) for s in sources]
    with batch:
        jobs = batch.plan(sources, split_s)
        tasks = [range_task(number, job.path, r) for number, job in jobs.items() for r in job.ranges]
        runner = model_path if model_path is None else str(model_path)
        if engine_name == "ray":
            results = run_ray(tasks, model_path=runner, detector=settings.detector, workers=workers, address=address,
                              attention_angle_deg=settings.attention_angle_deg)  # fmt: skip
        else:
            results = run_local(tasks, model_path=runner, detector=settings.detector,
                                attention_angle_deg=settings.attention_angle_deg)  # fmt: skip
        started = time.perf_counter()
        batch.write(jobs, results)
        wall_s = time.perf_counter() - started
    return BatchReport(batch.outcomes(len(sources)), wall_s)


def reanalysis_sources(db, study_id: int) -> list[VideoSource]:
    """The videos a study imported (``complete`` imports whose session still exists), once per content.

    Each keeps its first import's participant code and tags (so old and new sessions can be compared per
    participant) and the SHA-256 it had (a changed file fails instead of being analysed under the old name).

    Parameters
    ----------
    db : sqlalchemy.orm.Session
        Open ORM session.
    study_id : int
        The study.

    Returns
    -------
    list of VideoSource
        In order of first import.
    """
    rows = db.execute(
        select(VideoImport.source_path, VideoImport.content_sha256, StudySession.participant_code, StudySession.tags)
        .join(StudySession, StudySession.id == VideoImport.session_id)
        .where(VideoImport.study_id == study_id, VideoImport.status == "complete")
        .order_by(VideoImport.id)
    ).all()  # fmt: skip
    sources, seen = [], set()
    for path, sha, participant, session_tags in rows:
        if sha not in seen:
            seen.add(sha)
            sources.append(VideoSource(path, participant, dict(session_tags or {}), sha))
    return sources


def reanalyse(engine: Engine, *, study: str, model_path: str | os.PathLike, **options) -> BatchReport:
    """Analyse a study's imported videos again with another model into new sessions; the old ones stay.

    The videos are read again from the paths stored at their import (:func:`reanalysis_sources`); a video
    already analysed with ``model_path`` and the same settings is skipped (unless ``force``).

    Parameters
    ----------
    engine : sqlalchemy.Engine
        The store.
    study : str
        Name of an existing study.
    model_path : str or path-like
        The new model.
    **options
        ``engine_name``, ``address``, ``workers``, ``settings``, ``force``, ``split_s``, ``show_progress`` of
        :func:`import_videos`.

    Raises
    ------
    LookupError
        No study has that name, or it holds no imported video.
    """
    from sessions.models import Study

    with session_scope(engine) as db:
        study_id = db.scalar(select(Study.id).where(Study.name == (study or "").strip()))
        if study_id is None:
            raise LookupError(f"no study is named {study!r}")
        sources = reanalysis_sources(db, study_id)
    if not sources:
        raise LookupError(f"study {study!r} holds no video imported by import-videos; nothing to re-analyse")
    return import_videos(engine, sources, study=study, model_path=model_path, **options)


def _check_arguments(study, tags, engine_name, workers, split_s) -> str:
    if not (study or "").strip():
        raise ValueError("study has to be a non-empty name; got an empty one")
    check_study(study.strip())
    check_tags(dict(tags or {}))
    if engine_name not in ENGINES:
        raise ValueError(f"engine has to be one of {', '.join(ENGINES)}; got {engine_name!r}")
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers has to be a positive integer; got {workers!r}")
    if split_s is not None and not (isinstance(split_s, int | float) and math.isfinite(split_s) and split_s > 0):
        raise ValueError(f"split_s has to be a positive number of seconds; got {split_s!r}")
    return study.strip()


def _check_model(model_path) -> tuple[Path | None, str]:
    """The model's path (None: shipped) and id, after checking its metadata (so no worker fails on it)."""
    from fer_core.classifier import default_model_path, model_file_id
    from fer_core.model_file import check_metadata, read_metadata

    path = Path(model_path) if model_path is not None else None
    checked = path if path is not None else default_model_path()
    if not checked.is_file():
        raise FileNotFoundError(f"model file {str(checked)!r} not found")
    check_metadata(read_metadata(checked), source=str(checked))
    return (None if path is None else path.resolve()), model_file_id(checked)


class _Job:
    """A video being imported: its plan, then the state of writing it."""

    def __init__(self, number: int, source: VideoSource, path: Path, sha256: str, size: int, ranges: list,
                 tags: dict):  # fmt: skip
        from fer_core.video_ranges import RangeStitcher

        self.number = number
        self.source, self.path, self.sha256, self.size, self.ranges, self.tags = source, path, sha256, size, ranges, tags
        self.participant_code = source.participant_code or new_participant_code()
        self.stitcher = RangeStitcher()
        self.waiting: dict[int, dict] = {}
        self.next_range = 0
        self.session_id: int | None = None
        self.import_id: int | None = None
        self.attrs: list[dict] = []
        self.frames = 0
        self.face_rows = 0
        self.done = False


class _Batch:
    """One run of :func:`import_videos`: the live owner, the plan, the writer, the outcomes."""

    def __init__(self, engine: Engine, *, study: str, tags: dict, model_id: str, settings: BatchSettings,
                 force: bool, show_progress: bool):  # fmt: skip
        self.engine, self.study, self.tags, self.model_id = engine, study, tags, model_id
        self.settings, self.force, self.show_progress = settings, force, show_progress
        self.owner_id = uuid.uuid4().hex
        self.study_id: int | None = None
        self._outcomes: dict[int, VideoOutcome] = {}
        self._stop = threading.Event()
        self._heartbeat = threading.Thread(target=self._beat, name="batch-import-heartbeat", daemon=True)
        self._open: dict[int, _Job] = {}

    # -- live owner -------------------------------------------------------------------------------------------
    def __enter__(self) -> _Batch:
        with session_scope(self.engine) as db:
            lifecycle.register_owner(db, self.owner_id)
            aborted = lifecycle.abort_orphaned(db, self_id=self.owner_id)
            self.study_id = repository.get_or_create_study(db, self.study).id
        if aborted:
            logger.info("ended the sessions of processes that are gone: %s", aborted)
        self._heartbeat.start()
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is not None:
                for job in list(self._open.values()):  # interrupted (Ctrl-C, database error): end what was open
                    try:
                        self._drop_session(job, reason="import interrupted")
                    except Exception:  # noqa: BLE001 - the next run (or crash recovery) ends it; keep the first error
                        logger.warning("could not remove the partial session %s", job.session_id, exc_info=True)
        finally:
            self._stop.set()
            self._heartbeat.join(timeout=5)
            if not self._open:  # nothing left for crash recovery to judge: retire this owner, as a recorder does
                try:
                    with session_scope(self.engine) as db:
                        db.execute(delete(LiveOwner).where(LiveOwner.id == self.owner_id))
                except Exception:  # noqa: BLE001 - a stale owner row is removed by the next recovery
                    logger.warning("could not retire batch owner %s", self.owner_id, exc_info=True)

    def _beat(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                with session_scope(self.engine) as db:
                    lifecycle.beat(db, self.owner_id)
            except Exception:  # noqa: BLE001 - a missed beat is retried; the import itself reports its errors
                logger.warning("heartbeat of batch import %s failed", self.owner_id, exc_info=True)

    # -- plan ---------------------------------------------------------------------------------------------------
    def plan(self, sources: Sequence[VideoSource], split_s: float | None) -> dict[int, _Job]:
        """Hash, deduplicate, check the store and split every source; record skips and failures."""
        from fer_core.video import VideoDecodeError
        from fer_core.video_ranges import plan_ranges

        jobs: dict[int, _Job] = {}
        first_of: dict[str, str] = {}
        for number, source in enumerate(self._bar(sources, "planning", "video")):
            shown = str(source.path)
            try:
                path = Path(source.path).resolve()
                if not path.is_file():
                    raise FileNotFoundError(f"{shown}: video file not found")
                sha256, size = file_sha256(path)
                if source.expected_sha256 and sha256 != source.expected_sha256:
                    raise ValueError(f"{shown}: the file changed since it was imported (its SHA-256 differs)")
                tags = check_tags({**self.tags, **source.tags})
                if source.participant_code is not None:
                    check_session_fields(participant_code=source.participant_code, tags=tags)
            except (OSError, ValueError) as exc:
                self._outcomes[number] = VideoOutcome(shown, "failed", reason=str(exc))
                continue
            if sha256 in first_of:  # even with force: a run analyses a content once (one running import of it)
                self._outcomes[number] = VideoOutcome(shown, "skipped", reason=f"same content as {first_of[sha256]}")
                continue
            first_of.setdefault(sha256, shown)
            skip = self._previous_import(sha256)
            if skip is not None:
                self._outcomes[number] = VideoOutcome(shown, "skipped", skip[0], skip[1])
                continue
            try:
                ranges = plan_ranges(path, split_s)
            except VideoDecodeError as exc:
                self._record_failure(number, shown, path, sha256, size, str(exc))
                continue
            job = _Job(number, source, path, sha256, size, ranges, tags)
            claimed_by = self._claim(job)
            if claimed_by is not None:
                self._outcomes[number] = VideoOutcome(shown, "skipped", claimed_by[0], claimed_by[1])
                continue
            jobs[number] = job
        return jobs

    def _claim(self, job: _Job) -> tuple[int | None, str] | None:
        """Create the video's session (``recording``, owned by this process) and its ``running`` import row in one
        transaction, before any analysis; None when claimed. The unique index on running imports (migration
        0008) refuses a second claim of the same video, study, model and settings by a run planning at the same
        time: then (its session, why) and this run skips the video."""
        try:
            with session_scope(self.engine) as db:
                self._start_session(db, job)
        except IntegrityError:
            job.session_id = job.import_id = None
            with session_scope(self.engine) as db:
                other = db.scalar(select(VideoImport.session_id).where(
                    VideoImport.study_id == self.study_id, VideoImport.content_sha256 == job.sha256,
                    VideoImport.model == self.model_id, VideoImport.settings_key == self.settings.key,
                    VideoImport.status == "running"))  # fmt: skip
            return other, f"being imported by another process (session {other})"
        return None

    def _previous_import(self, sha256: str) -> tuple[int | None, str] | None:
        """(session, reason) when the video is to be skipped; else None (after removing an unfinished import)."""
        with session_scope(self.engine) as db:
            earlier = db.execute(
                select(VideoImport.id, VideoImport.status, VideoImport.session_id, StudySession.status)
                .outerjoin(StudySession, StudySession.id == VideoImport.session_id)
                .where(VideoImport.study_id == self.study_id, VideoImport.content_sha256 == sha256,
                       VideoImport.model == self.model_id, VideoImport.settings_key == self.settings.key,
                       VideoImport.status != "failed")
                .order_by(VideoImport.id)
            ).all()  # fmt: skip
            for import_id, status, session_id, session_status in earlier:
                if status == "running" and session_status == "recording":
                    return session_id, f"being imported by another process (session {session_id})"
                if status == "running":  # its process is gone (the session was ended by crash recovery)
                    logger.info("redoing interrupted import %s: deleting its partial session %s", import_id, session_id)
                    if session_id is not None:
                        repository.delete_session(db, session_id)  # its import row goes with it (ON DELETE CASCADE)
                    db.execute(VideoImport.__table__.delete().where(VideoImport.id == import_id))
            complete = [(sid, st) for _, status, sid, st in earlier if status == "complete" and sid is not None]
        if complete and not self.force:
            return complete[-1][0], f"already imported with this model and settings (session {complete[-1][0]})"
        return None

    def _record_failure(self, number: int, shown: str, path: Path, sha256: str, size: int, reason: str) -> None:
        with session_scope(self.engine) as db:
            db.add(self._import_row(path, sha256, size, status="failed", error=reason[:2000], finished_at=utc_now()))
        self._outcomes[number] = VideoOutcome(shown, "failed", reason=reason)

    def _import_row(self, path: Path, sha256: str, size: int, **values) -> VideoImport:
        return VideoImport(study_id=self.study_id, source_path=str(path), content_sha256=sha256, size_bytes=size,
                           model=self.model_id, settings=self.settings.as_json(), settings_key=self.settings.key,
                           owner_id=self.owner_id, started_at=utc_now(), **values)  # fmt: skip

    # -- write --------------------------------------------------------------------------------------------------
    def write(self, jobs: dict[int, _Job], results: Iterable[dict]) -> None:
        """Store the engine's results video by video, range by range, in order."""
        total_frames = sum(r.n_frames for job in jobs.values() for r in job.ranges) or None
        videos = self._bar(None, "videos", "video", total=len(jobs))
        frames = self._bar(None, "frames", "frame", total=total_frames)
        try:
            for result in results:
                job = jobs[int(result["job"])]
                if job.done:
                    continue
                job.waiting[int(result["range"])] = result
                while not job.done and job.next_range in job.waiting:
                    stored = self.store_range(job, job.waiting.pop(job.next_range))
                    frames.update(stored)
                    if job.done:
                        videos.update(1)
        finally:
            frames.close()
            videos.close()
        for number, job in jobs.items():
            if not job.done:  # the engine returned no result for it: never expected, reported rather than lost
                self._fail(number, job, "the engine returned no result for some of its ranges")

    def store_range(self, job: _Job, result: dict) -> int:
        """Store one range of a video (the next in order); return the analysed frames it held."""
        number = job.number
        if result["error"]:
            self._fail(number, job, str(result["error"]))
            return 0
        table = job.stitcher.add(table_from_bytes(result["table"]))
        job.attrs.append({"decoded_s": _finite(result["decoded_s"]), "duration_s": _finite(result["duration_s"]),
                          "decode_error": result["decode_error"] or None})  # fmt: skip
        with session_scope(self.engine) as db:  # the session was created when the video was claimed (plan)
            rows = observation_table_rows(job.session_id, table)
            for start in range(0, len(rows), INSERT_CHUNK):
                db.execute(insert(Observation), rows[start : start + INSERT_CHUNK])
        job.frames += int(result["frames"])
        job.face_rows += int((table["face_id"] != NO_FACE_ID).sum())
        job.next_range += 1
        if job.next_range == len(job.ranges):
            self._finish(number, job)
        return int(result["frames"])

    def _start_session(self, db, job: _Job) -> None:
        session = repository.create_session(db, study_id=self.study_id, participant_code=job.participant_code,
                                            tags=job.tags, source="upload")  # fmt: skip
        lifecycle.start_session(db, session.id, session.created_at, model=self.model_id, owner_id=self.owner_id)
        row = self._import_row(job.path, job.sha256, job.size, status="running", session_id=session.id)
        db.add(row)
        db.flush()
        job.session_id, job.import_id = session.id, row.id
        self._open[job.session_id] = job

    def _finish(self, number: int, job: _Job) -> None:
        from fer_core.video_ranges import stitch_attrs

        if job.face_rows == 0:
            self._fail(number, job, f"no face in any of its {job.frames} analysed frames")
            return
        warning = coverage_warning(stitch_attrs(job.attrs))
        with session_scope(self.engine) as db:
            lifecycle.end_session(db, job.session_id, "complete",
                                  reason="video imported" + (f"; {warning}" if warning else ""))  # fmt: skip
            db.execute(VideoImport.__table__.update().where(VideoImport.id == job.import_id)
                       .values(status="complete", n_frames=job.frames, finished_at=utc_now()))  # fmt: skip
        self._open.pop(job.session_id, None)
        job.done = True
        self._outcomes[number] = VideoOutcome(str(job.source.path), "imported", job.session_id, warning, job.frames)

    def _fail(self, number: int, job: _Job, reason: str) -> None:
        if job.session_id is not None:
            self._drop_session(job, reason=reason)
        self._record_failure(number, str(job.source.path), job.path, job.sha256, job.size, reason)
        job.done = True

    def _drop_session(self, job: _Job, *, reason: str) -> None:
        """End and delete a video's partial session (its import row goes with it)."""
        with session_scope(self.engine) as db:
            lifecycle.end_session(db, job.session_id, "aborted", reason=reason[:200])
            repository.delete_session(db, job.session_id)
        self._open.pop(job.session_id, None)
        job.session_id = job.import_id = None

    # -- report -------------------------------------------------------------------------------------------------
    def outcomes(self, n_sources: int) -> list[VideoOutcome]:
        return [self._outcomes[number] for number in range(n_sources)]

    def _bar(self, iterable, desc: str, unit: str, total: int | None = None):
        from tqdm import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, disable=not self.show_progress, leave=False,
                    dynamic_ncols=True)  # fmt: skip


def _finite(value) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None
