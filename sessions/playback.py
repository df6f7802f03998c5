"""Playback events of a session's stimulus player and the map from session time to stimulus time.

Events. The player (``dashboard/stimulus_player.py``) reports the HTML media events of its ``<video>``
(``play``, ``playing``, ``pause``, ``waiting``, ``stalled``, ``seeking``, ``seeked``, ``ended``, ``error``) and its
own (``ready``: the page loaded the sequence; ``start``: the Start click; ``blank``: a blank buffer began;
``blocked``: the browser refused to play; ``missing``: the stimulus was deleted), each with the video's
``currentTime`` and the browser's clock. :func:`record_events` stores them once each (a page load and an event
number name an event, so a list sent again is stored once); the stimulus of an event is taken from the
session's stored order, never from the browser.

Session time of an event. Camera frames get session time from their capture clock (:class:`sessions.live.
CaptureClock`): session time 0 is the server's arrival time of the session's first frame, and later frames are
placed by their own timestamps. A browser event has only the browser's wall clock (``performance.timeOrigin +
event.timeStamp``, ms). The player corrects it to the server's clock as the marker bar does: with every render
the server sends its time, and the browser keeps the smallest difference ``browser arrival - server time`` it has
seen (``offset_ms``); the server then uses, per page load, the smallest offset of all its events
(:func:`event_session_times`), so the correction only improves. Events sent before the page saw any render
(no ``offset_ms``) take the page's offset from its other events; only a page none of whose events has one falls
back to ``client_ms - received_at``, which is at most the true offset (the delivery delay is subtracted), so the
largest of them is the best. Assumption: the browser's and the server's
clocks run at the same rate over a session (drift of common clocks: well under 1 ms a minute). Error: events are
placed early, relative to the frames, by the server-to-browser delivery delay of the fastest render plus the
first camera frame's upload delay (both a few ms on one machine; one-way network delays, tens of ms, for remote
participants). It is a constant per page load, so durations (``ended`` minus ``playing``) are not affected.

The map (:func:`playback_spans`, :func:`stimulus_times`). Between a ``playing`` event (playback really runs:
after the start, a pause or a stall) and the next event that stops it (``pause``, ``waiting``, ``seeking``,
``ended``, ``error``, ``blocked``, or any event of another stimulus or page load), the map passes through every
anchor the player reported (``(session time, media time)`` of the ``playing`` event, of a ``timeupdate`` at most
every second, and of the stopping event) and is linear between two of them: piecewise linear, with slope 1 when
the browser plays in real time and the browser's own pace when a starved page plays slower; flat gaps for pauses
and stalls. A ``seeking`` event stops a run without an end anchor (its media time is the seek's target); the next
``playing`` or ``timeupdate`` starts a new run there. After the last anchor of a run that never stopped it runs at
slope 1, cut where the stimulus would have ended, at the start of a stored camera gap and at the last sign of the
page (the session's last analysed frame or its end, :func:`open_run_limit`): a closed tab sends nothing, so
nothing after it counts as seen. Session times outside every run (blank buffers, before the start, pauses, after
the end) have no stimulus time.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import NamedTuple

import numpy as np
import pandas as pd
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from fer_core.emotions import EMOTIONS
from sessions.aggregate import per_bin
from sessions.errors import SessionNotFound
from sessions.models import Observation, PlaybackEvent, SessionGap, SessionStimulus, utc_now
from sessions.repository import get_session, load_observations
from sessions.stimuli import SequenceItem, session_sequence, stored_sequence

logger = logging.getLogger(__name__)

#: Event kinds the store accepts.
EVENT_KINDS: tuple[str, ...] = (
    "ready", "start", "blank", "play", "playing", "timeupdate", "pause", "waiting", "stalled", "seeking", "seeked",
    "ended", "error", "blocked", "missing", "pagehide",
)  # fmt: skip
#: The event after which stimulus time runs.
RUN_START = "playing"
#: A position report during playback (the player sends one at most every second): the map passes through it.
RUN_ANCHOR = "timeupdate"
#: A seek: stops a run with no end anchor (its media time is the target); the next ``playing`` or position report
#: starts a new run.
SEEK = "seeking"
#: Events that stop a run.
RUN_STOPS: frozenset[str] = frozenset({"pause", "waiting", "seeking", "ended", "error", "blocked", "missing", "pagehide",
                                       "ready", "start", "blank"})  # fmt: skip
#: Columns of :func:`load_events`.
EVENT_COLUMNS: tuple[str, ...] = (
    "position", "stimulus_id", "kind", "media_time_s", "client_ms", "perf_ms", "offset_ms", "page_id", "seq",
    "received_at", "session_time_s",
)  # fmt: skip
#: Columns a table gets from :func:`add_stimulus_columns`.
STIMULUS_TIME_COLUMNS: tuple[str, ...] = ("stimulus", "stimulus_time_s")
#: Events stored per session at most (a page cannot flood the store).
MAX_EVENTS_PER_SESSION = 20_000
_PAGE_ID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")


class PlaybackSpan(NamedTuple):
    """One stretch of session time during which a stimulus played (stimulus time = session time + offset).

    Attributes
    ----------
    position : int
        Place of the stimulus in the session's order.
    stimulus : str
        Its name.
    stimulus_id : int or None
        None once the stimulus was deleted.
    start_s, end_s : float
        Session seconds of the run's start (the ``playing`` event) and end.
    media_start_s : float
        Stimulus seconds at ``start_s``; at session time ``t`` in the span the stimulus is at
        ``media_start_s + rate * (t - start_s)``.
    rate : float
        Stimulus seconds per session second: 1 unless two anchors (``playing``, ``timeupdate``, the stopping event)
        say the media clock ran slower (a starved browser) or faster.
    """

    position: int
    stimulus: str
    stimulus_id: int | None
    start_s: float
    end_s: float
    media_start_s: float
    rate: float = 1.0


def _finite(value, name: str, *, optional: bool = False) -> float | None:
    if value is None and optional:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(float(value)):
        raise ValueError(f"playback event {name} has to be a finite number; got {value!r}")
    return float(value)


def check_event(event: dict) -> dict:
    """Validate one event sent by a player; return the cleaned fields.

    Parameters
    ----------
    event : dict
        ``kind`` (one of ``EVENT_KINDS``), ``client_ms`` (browser ms since the epoch), ``page_id`` (1-32 characters
        of ``[A-Za-z0-9_-]``), ``seq`` (int >= 0); optional ``media_time_s`` (s, >= 0), ``perf_ms``,
        ``offset_ms`` (ms), ``position`` (int >= 0).

    Returns
    -------
    dict
        The fields above, numbers as float/int, missing optional ones as None.

    Raises
    ------
    ValueError
        A field is missing, of the wrong type, out of range or not finite; the message names it.
    """
    if not isinstance(event, dict):
        raise ValueError(f"a playback event has to be an object; got {type(event).__name__}")
    kind = event.get("kind")
    if kind not in EVENT_KINDS:
        raise ValueError(f"playback event kind has to be one of {', '.join(EVENT_KINDS)}; got {str(kind)[:30]!r}")
    page_id = event.get("page_id")
    if not isinstance(page_id, str) or not _PAGE_ID.match(page_id):
        raise ValueError("playback event page_id has to be 1-32 letters, digits, '-' or '_'")
    seq, position = event.get("seq"), event.get("position")
    if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
        raise ValueError(f"playback event seq has to be an integer >= 0; got {seq!r}")
    if position is not None and (isinstance(position, bool) or not isinstance(position, int) or position < 0):
        raise ValueError(f"playback event position has to be an integer >= 0; got {position!r}")
    media = _finite(event.get("media_time_s"), "media_time_s", optional=True)
    if media is not None and media < 0:
        raise ValueError(f"playback event media_time_s has to be >= 0 seconds; got {media!r}")
    return {"kind": kind, "page_id": page_id, "seq": seq, "position": position, "media_time_s": media,
            "client_ms": _finite(event.get("client_ms"), "client_ms"),
            "perf_ms": _finite(event.get("perf_ms"), "perf_ms", optional=True),
            "offset_ms": _finite(event.get("offset_ms"), "offset_ms", optional=True)}  # fmt: skip


def record_events(db: Session, session_id: int, events: Iterable[dict], *, received_at: datetime | None = None) -> int:
    """Store a player's events on a session, each once; return how many were new.

    The stimulus of each event comes from the session's stored order (its ``position``); an event naming a
    position the session does not have is stored without a stimulus. Malformed events are left out and logged
    (:func:`check_event`); the others are stored.

    Parameters
    ----------
    db : sqlalchemy.orm.Session
        Open ORM session; flushed, not committed.
    session_id : int
    events : iterable of dict
        As :func:`check_event`; events already stored (same ``page_id`` and ``seq``) are skipped.
    received_at : datetime, optional
        Aware receive time (default now).

    Returns
    -------
    int
        Events stored by this call.

    Raises
    ------
    sessions.errors.SessionNotFound
        Unknown session.
    """
    sequence = {item.position: item for item in session_sequence(db, session_id)}
    clean = []
    for event in events:
        try:
            clean.append(check_event(event))
        except ValueError as exc:
            logger.warning("session %s: playback event left out: %s", session_id, exc)
    if not clean:
        return 0
    pages = sorted({e["page_id"] for e in clean})
    seen = set(db.execute(select(PlaybackEvent.page_id, PlaybackEvent.seq)
                          .where(PlaybackEvent.session_id == session_id, PlaybackEvent.page_id.in_(pages))).tuples())  # fmt: skip
    room = MAX_EVENTS_PER_SESSION - int(db.scalar(select(func.count()).select_from(PlaybackEvent)
                                                  .where(PlaybackEvent.session_id == session_id)))  # fmt: skip
    when = received_at or utc_now()
    new = 0
    for e in clean:
        if (e["page_id"], e["seq"]) in seen or new >= room:
            continue
        seen.add((e["page_id"], e["seq"]))
        item = sequence.get(e["position"]) if e["position"] is not None else None
        db.add(PlaybackEvent(session_id=session_id, stimulus_id=item.stimulus_id if item else None,
                             received_at=when, **{**e, "position": e["position"] if item else None}))  # fmt: skip
        new += 1
    db.flush()
    return new


def event_session_times(events: pd.DataFrame, started_at_s: float | None) -> np.ndarray:
    """Session time (seconds) of each event from the browser's clock (module docstring for the method and error).

    Parameters
    ----------
    events : pandas.DataFrame
        Columns ``client_ms`` (browser ms since the epoch), ``offset_ms`` (browser minus server clock, ms; NaN
        when the page had no estimate yet), ``page_id``, ``received_at`` (aware datetimes, the fallback offset).
        Per page, the offset is the smallest non-NaN ``offset_ms`` of its events; for a page with none, the
        largest ``client_ms - received_at``.
    started_at_s : float or None
        The session's ``started_at`` as UTC epoch seconds; None before its first camera frame.

    Returns
    -------
    ndarray of shape (n_events,) float64
        Seconds since the session started; NaN when ``started_at_s`` is None.
    """
    if started_at_s is None or events.empty:
        return np.full(len(events), np.nan)
    client = events["client_ms"].to_numpy(dtype=np.float64)
    offset = events["offset_ms"].to_numpy(dtype=np.float64)
    received = np.array([t.timestamp() * 1000.0 for t in events["received_at"]], dtype=np.float64)
    pages = events["page_id"].to_numpy()
    # a render offset (browser arrival - server time) is at least the true offset: the smallest is the best
    rendered = pd.Series(offset).groupby(pages).transform("min").to_numpy()
    # client - received is at most the true offset (the delivery delay is subtracted): the largest is the best
    bound = pd.Series(client - received).groupby(pages).transform("max").to_numpy()
    best = np.where(np.isnan(rendered), bound, rendered)  # the bound only for a page without any render offset
    return (client - best) / 1000.0 - float(started_at_s)


def load_events(db: Session, session_id: int) -> pd.DataFrame:
    """A session's playback events with their session time, in session-time order.

    Returns
    -------
    pandas.DataFrame
        Columns ``EVENT_COLUMNS``: ``position`` (float, NaN without a stimulus), ``kind``, ``media_time_s`` (s),
        ``client_ms``/``perf_ms``/``offset_ms`` (ms), ``page_id``, ``seq``, ``received_at`` (aware UTC),
        ``session_time_s`` (:func:`event_session_times`; NaN before the session started).

    Raises
    ------
    sessions.errors.SessionNotFound
        Unknown session.
    """
    started = get_session(db, session_id).started_at
    rows = db.execute(select(PlaybackEvent.position, PlaybackEvent.stimulus_id, PlaybackEvent.kind,
                             PlaybackEvent.media_time_s, PlaybackEvent.client_ms, PlaybackEvent.perf_ms,
                             PlaybackEvent.offset_ms, PlaybackEvent.page_id, PlaybackEvent.seq, PlaybackEvent.received_at)
                      .where(PlaybackEvent.session_id == session_id).order_by(PlaybackEvent.id)).all()  # fmt: skip
    frame = pd.DataFrame([tuple(r) for r in rows], columns=list(EVENT_COLUMNS[:-1]))
    for column in ("position", "stimulus_id", "media_time_s", "client_ms", "perf_ms", "offset_ms"):
        frame[column] = frame[column].astype("float64")
    frame["session_time_s"] = event_session_times(frame, None if started is None else started.timestamp())
    return frame.sort_values(["session_time_s", "page_id", "seq"], kind="stable").reset_index(drop=True)


def playback_spans(events: pd.DataFrame, sequence: Sequence[SequenceItem], *, gap_starts_s: Iterable[float] = (),
                   open_until_s: float | None = None) -> list[PlaybackSpan]:  # fmt: skip
    """The runs of stimulus playback in a session (the map of the module docstring); a pure function.

    Parameters
    ----------
    events : pandas.DataFrame
        Columns ``kind``, ``position`` (NaN without a stimulus), ``media_time_s`` (s), ``session_time_s`` (s),
        ``page_id``; in any order (sorted by session time here; events without a session time are left out).
    sequence : sequence of SequenceItem
        The session's order (:func:`sessions.stimuli.session_sequence`): names, ids and durations (seconds).
    gap_starts_s : iterable of float
        Session seconds at which the camera went away (stored gaps): the open segment (after a run's last anchor)
        ends at the first of them at or after its start; segments between anchors are kept.
    open_until_s : float, optional
        Session seconds of the last evidence the page was still there (:func:`open_run_limit`: the last analysed
        frame or the session's end): a run still open after its last anchor ends there at the latest (a tab closed
        for good sends nothing). None: not capped (only by the stimulus's end and the gaps).

    Returns
    -------
    list of PlaybackSpan
        In session-time order, non-overlapping; a run shorter than 1 ms is left out.
    """
    items = {item.position: item for item in sequence}
    if events.empty:
        return []
    ordered = events[events["session_time_s"].notna()].sort_values("session_time_s", kind="stable")
    gaps = sorted(float(g) for g in gap_starts_s)
    spans: list[PlaybackSpan] = []
    run = None  # (item, start_s, media_start_s, page_id)
    seek_from = None  # (position, page_id) of a seek that stopped a run, until the next run or stop

    def segment(end_s: float, end_media: float | None) -> None:
        item, start, media, _ = run
        rate = 1.0
        if end_media is not None and end_media >= media and end_s > start:
            rate = (end_media - media) / (end_s - start)  # the media clock between two anchors
        if math.isinf(end_s):  # open after the last anchor: only as long as the page is known to be there
            end_s = min([end_s, *(g for g in gaps if g >= start), *(() if open_until_s is None else (open_until_s,))])
        if item.duration_s is not None and rate > 0:
            end_s = min(end_s, start + max(0.0, item.duration_s - media) / rate)
        if end_s - start > 1e-3:
            spans.append(PlaybackSpan(item.position, item.name, item.stimulus_id, start, end_s, media, rate))

    columns = ["kind", "position", "media_time_s", "session_time_s", "page_id"]
    for kind, position, media, t, page in ordered[columns].itertuples(index=False):
        t, media = float(t), None if pd.isna(media) else float(media)
        same = run is not None and not pd.isna(position) and int(position) == run[0].position and page == run[3]
        if same and kind in (RUN_START, RUN_ANCHOR) and media is not None and media >= run[2] and t > run[1]:
            segment(t, media)  # an anchor inside the run: the map passes through it
            run = (run[0], t, media, page)
            continue
        if run is not None and (kind in RUN_STOPS or kind == RUN_START or not same):
            # a seek's media time is its target, not where playback stopped: that segment has no end anchor
            segment(t, media if same and kind != SEEK else None)
            run = None
        resumes = kind == RUN_ANCHOR and seek_from == (position, page)  # a position report after a seek plays on
        seek_from = (position, page) if kind == SEEK else None if kind in RUN_STOPS or kind == RUN_START else seek_from
        if (kind == RUN_START or resumes) and not pd.isna(position) and int(position) in items:
            run, seek_from = (items[int(position)], t, 0.0 if media is None else media, page), None
    if run is not None:
        segment(math.inf, None)
    return spans


def stimulus_times(spans: Sequence[PlaybackSpan], times_s) -> tuple[np.ndarray, np.ndarray]:
    """Map session times to ``(stimulus, stimulus_time_s)`` through the playback spans.

    Parameters
    ----------
    spans : sequence of PlaybackSpan
        :func:`playback_spans`.
    times_s : array-like of shape (n,)
        Session seconds.

    Returns
    -------
    stimulus : ndarray of shape (n,) object
        The stimulus name playing at each time, None outside every span.
    stimulus_time_s : ndarray of shape (n,) float64
        Stimulus seconds (``media_start_s + rate * (t - start_s)``), NaN outside every span. A span covers
        ``[start_s, end_s)``: the instant the stimulus ends shows none of it.
    """
    times = np.asarray(times_s, dtype=np.float64)
    names = np.full(times.shape, None, dtype=object)
    stimulus_time = np.full(times.shape, np.nan)
    for span in spans:
        inside = (times >= span.start_s) & (times < span.end_s) & np.isnan(stimulus_time)
        names[inside] = span.stimulus
        stimulus_time[inside] = span.media_start_s + span.rate * (times[inside] - span.start_s)
    return names, stimulus_time


def add_stimulus_columns(table: pd.DataFrame, spans: Sequence[PlaybackSpan], *, bin_s: float | None = None) -> pd.DataFrame:
    """Return ``table`` with ``stimulus`` and ``stimulus_time_s`` columns (after its own columns).

    Parameters
    ----------
    table : pandas.DataFrame
        Has ``time_s`` (session seconds): per-frame observations, or per-bin rows (then give ``bin_s``).
    spans : sequence of PlaybackSpan
    bin_s : float, optional
        For per-bin rows: each bin is labelled with the stimulus and stimulus time at its middle
        (``time_s + bin_s / 2``).

    Returns
    -------
    pandas.DataFrame
        A copy; ``stimulus`` (object: name or None), ``stimulus_time_s`` (float64 seconds, NaN outside playback).
    """
    out = table.copy()
    times = out["time_s"].to_numpy(dtype=np.float64) + (0.0 if bin_s is None else float(bin_s) / 2)
    out["stimulus"], out["stimulus_time_s"] = stimulus_times(spans, times)
    return out


def session_spans(db: Session, session_id: int) -> list[PlaybackSpan]:
    """The playback spans of a stored session: its events, order and camera gaps through :func:`playback_spans`.

    The one function other modules (exports, per-second aggregates, batch imports) call to put a session on its
    stimuli's timelines; an imported video or a session that never played a stimulus has none.

    Raises
    ------
    sessions.errors.SessionNotFound
        Unknown session.
    """
    events = load_events(db, session_id)
    if events.empty:
        return []
    sequence = session_sequence(db, session_id)
    gaps = db.scalars(select(SessionGap.start_s).where(SessionGap.session_id == session_id)).all()
    return playback_spans(events, sequence, gap_starts_s=gaps, open_until_s=open_run_limit(db, session_id))


def open_run_limit(db: Session, session_id: int) -> float | None:
    """The latest session time a run still open after its last anchor may reach: the earlier of the session's last
    analysed frame (max ``Observation.time_s``) and its end (``ended_at - started_at``), in session seconds.

    Returns
    -------
    float or None
        Seconds; None when the session has neither (not started, no frames and not ended).

    Raises
    ------
    sessions.errors.SessionNotFound
        Unknown session.
    """
    session = get_session(db, session_id)
    limits = [db.scalar(select(func.max(Observation.time_s)).where(Observation.session_id == session_id))]
    if session.started_at is not None and session.ended_at is not None:
        limits.append((session.ended_at - session.started_at).total_seconds())
    known = [float(v) for v in limits if v is not None]
    return min(known) if known else None


def session_stimulus_times(db: Session, session_id: int, times_s) -> tuple[np.ndarray, np.ndarray]:
    """:func:`stimulus_times` of a stored session (``times_s``: session seconds, array-like of shape (n,))."""
    return stimulus_times(session_spans(db, session_id), times_s)


def stimulus_bins(observations: pd.DataFrame, stimulus: str, bin_s: float = 1.0) -> pd.DataFrame:
    """Per-bin aggregates of one stimulus on its own timeline: :func:`sessions.aggregate.per_bin` over the frames
    shown that stimulus, with ``time_s`` their stimulus time.

    Parameters
    ----------
    observations : pandas.DataFrame
        Observation rows with ``stimulus`` and ``stimulus_time_s`` (:func:`add_stimulus_columns`).
    stimulus : str
    bin_s : float

    Returns
    -------
    pandas.DataFrame
        ``BIN_COLUMNS``, ``time_s`` the bin start in stimulus seconds; no rows when the stimulus never played.
    """
    shown = observations[(observations["stimulus"] == stimulus) & observations["stimulus_time_s"].notna()]
    return per_bin(shown.assign(time_s=shown["stimulus_time_s"]), bin_s)


def stimulus_seconds_seen(spans: Sequence[PlaybackSpan], position: int, duration_s: float | None = None) -> float:
    """How much of a stimulus was shown, in stimulus seconds: the length of the union of the stretches of its own
    timeline its spans covered (``media_start_s`` to ``media_start_s + rate * (end_s - start_s)``).

    Counted on the stimulus's clock, not the session's: a browser whose media clock ran slower than the server's
    (``rate`` < 1) spends more session seconds on the same stimulus seconds, and a stretch shown twice (a reload
    replays it) counts once, so the result never exceeds the stimulus's duration.

    Parameters
    ----------
    spans : sequence of PlaybackSpan
        :func:`playback_spans` of a session.
    position : int
        The stimulus's place in the session's order.
    duration_s : float, optional
        Its duration (s); the stretches are clipped to ``[0, duration_s]`` (NaN or None: not clipped above).

    Returns
    -------
    float
        Seconds, ``0.0`` when it never played.
    """
    top = math.inf if duration_s is None or not duration_s == duration_s else float(duration_s)
    stretches = sorted((max(0.0, s.media_start_s), min(top, s.media_start_s + s.rate * (s.end_s - s.start_s)))
                       for s in spans if s.position == position)  # fmt: skip
    seen, reach = 0.0, 0.0
    for start, end in stretches:
        start = max(start, reach)
        if end > start:
            seen, reach = seen + end - start, end
    return seen


def playback_quality(events: pd.DataFrame, spans: Sequence[PlaybackSpan], sequence: Sequence[SequenceItem],
                     observations: pd.DataFrame | None = None) -> pd.DataFrame:  # fmt: skip
    """How each stimulus of a session played.

    Parameters
    ----------
    events, spans, sequence
        :func:`load_events`, :func:`playback_spans`, :func:`sessions.stimuli.session_sequence`.
    observations : pandas.DataFrame, optional
        With ``stimulus``, ``stimulus_time_s`` and ``face_id`` (:func:`add_stimulus_columns`), for the share seen
        with a face.

    Returns
    -------
    pandas.DataFrame
        One row per stimulus of the order: ``position``, ``stimulus``, ``duration_s``, ``played`` (a run
        started), ``completed`` (an ``ended`` event), ``pauses`` (``pause`` events, not counting the one a browser
        fires just before ``ended``), ``stalls`` (``waiting`` events after playback first ran: it stopped for data;
        the loading before the first ``playing`` is no stall), ``stalled_s``
        (seconds from each ``waiting`` to the next event of that stimulus), ``blocked`` (autoplay refusals),
        ``seen_s`` (:func:`stimulus_seconds_seen`: the stimulus's seconds shown at least once), ``share_seen``
        (``seen_s / duration_s``, at most 1), ``share_seen_with_face``
        (share of the stimulus's whole seconds in which at least one analysed frame shown that second had a
        face; NaN without observations).
    """
    rows = []
    ordered = events.sort_values("session_time_s", kind="stable") if len(events) else events
    for item in sequence:
        mine = ordered[ordered["position"] == item.position] if len(ordered) else ordered
        kinds = list(mine["kind"]) if len(mine) else []
        times = list(mine["session_time_s"]) if len(mine) else []
        pauses = sum(1 for i, k in enumerate(kinds) if k == "pause" and (i + 1 >= len(kinds) or kinds[i + 1] != "ended"))
        started = kinds.index("playing") if "playing" in kinds else len(kinds)  # waiting before it: loading, no stall
        stalls = [i for i, k in enumerate(kinds) if k == "waiting" and i > started]
        stalled = sum(times[i + 1] - times[i] for i in stalls if i + 1 < len(kinds))
        duration = item.duration_s or float("nan")
        seen = stimulus_seconds_seen(spans, item.position, duration)
        with_face = float("nan")
        if observations is not None and duration == duration and duration > 0:
            shown = observations[(observations["stimulus"] == item.name) & (observations["face_id"] >= 0)]
            seconds = np.unique(np.floor(shown["stimulus_time_s"].to_numpy(dtype=np.float64)))
            whole = max(1, math.ceil(duration - 1e-6))  # 9.96 + 0.04 s is 10 seconds, not 11
            with_face = len(seconds[(seconds >= 0) & (seconds < whole)]) / whole
        rows.append({"position": item.position, "stimulus": item.name, "duration_s": item.duration_s,
                     "played": any(s.position == item.position for s in spans), "completed": "ended" in kinds,
                     "pauses": pauses, "stalls": len(stalls), "stalled_s": float(stalled),
                     "blocked": kinds.count("blocked"), "seen_s": float(seen),
                     # summed span lengths can exceed the duration by a rounding error (1 + 2e-16)
                     "share_seen": min(1.0, seen / duration) if duration == duration and duration > 0 else float("nan"),
                     "share_seen_with_face": with_face})  # fmt: skip
    return pd.DataFrame(rows, columns=["position", "stimulus", "duration_s", "played", "completed", "pauses", "stalls",
                                       "stalled_s", "blocked", "seen_s", "share_seen", "share_seen_with_face"])  # fmt: skip


def key_moments(bins: pd.DataFrame, *, n: int = 3, min_gap_s: float = 2.0, min_rise: float = 0.05,
                bin_s: float = 1.0) -> pd.DataFrame:  # fmt: skip
    """The few stimulus seconds where an expression rises most (key moments, after Realeyes).

    Definition: for each expression but neutral, the rise at second ``t`` is its value at ``t`` minus its value
    at the bin before (per-second mean probability for one session, share of participants expressing for a
    group), taken only when that bin is the neighbouring one (``bin_s`` earlier: a missing bin, e.g. seconds
    never shown or without a face, makes no rise over several seconds); the key moments are the ``n`` largest rises of at least ``min_rise`` over all expressions, at least
    ``min_gap_s`` apart (the largest first). A stimulus with no such rise has none.

    Parameters
    ----------
    bins : pandas.DataFrame
        ``time_s`` (stimulus seconds, ascending bins) and the emotion columns (values in [0, 1], NaN allowed).
    n : int
    min_gap_s : float
        Seconds.
    min_rise : float
        Smallest rise counted (probability or share, 0.05 = 5 points).
    bin_s : float
        Width of the bins (seconds); two rows are neighbours when their ``time_s`` differ by it (within 1 ms).

    Returns
    -------
    pandas.DataFrame
        Columns ``time_s``, ``emotion``, ``value`` (at ``time_s``), ``rise`` (> 0); at most ``n`` rows, by rise.
    """
    columns = ["time_s", "emotion", "value", "rise"]
    if len(bins) < 2:
        return pd.DataFrame(columns=columns)
    ordered = bins.sort_values("time_s")
    times = ordered["time_s"].to_numpy(dtype=np.float64)
    candidates = []
    for emotion in (e for e in EMOTIONS if e != "neutral" and e in ordered.columns):
        values = ordered[emotion].to_numpy(dtype=np.float64)
        rise = np.diff(values)
        for i, r in enumerate(rise, start=1):
            if np.isfinite(r) and r >= min_rise and abs(times[i] - times[i - 1] - bin_s) <= 1e-3:
                candidates.append((float(times[i]), emotion, float(values[i]), float(r)))
    chosen: list[tuple] = []
    for candidate in sorted(candidates, key=lambda c: -c[3]):
        if all(abs(candidate[0] - c[0]) >= min_gap_s for c in chosen):
            chosen.append(candidate)
        if len(chosen) == n:
            break
    return pd.DataFrame(chosen, columns=columns)




class SessionPlayback(NamedTuple):
    """A stored session on its stimuli's timelines (:func:`session_playback`).

    Attributes
    ----------
    observations : pandas.DataFrame
        The session's rows with ``stimulus`` and ``stimulus_time_s`` (:func:`add_stimulus_columns`).
    quality : pandas.DataFrame
        :func:`playback_quality`: one row per stimulus of the session's order (none without stimuli).
    spans : list of PlaybackSpan
    events : pandas.DataFrame
        :func:`load_events`.
    sequence : list of SequenceItem
    """

    observations: pd.DataFrame
    quality: pd.DataFrame
    spans: list[PlaybackSpan]
    events: pd.DataFrame
    sequence: list[SequenceItem]


def session_playback(db: Session, session_id: int, observations: pd.DataFrame) -> SessionPlayback:
    """Put a stored session's rows on its stimuli's timelines and say how each stimulus played.

    Parameters
    ----------
    observations : pandas.DataFrame
        The session's rows (:func:`sessions.repository.load_observations`).

    Raises
    ------
    sessions.errors.SessionNotFound
        Unknown session.
    """
    events = load_events(db, session_id)
    sequence = session_sequence(db, session_id) if len(events) else stored_sequence(db, session_id)
    gaps = db.scalars(select(SessionGap.start_s).where(SessionGap.session_id == session_id)).all()
    spans = playback_spans(events, sequence, gap_starts_s=gaps, open_until_s=open_run_limit(db, session_id))
    shown = add_stimulus_columns(observations, spans)
    return SessionPlayback(shown, playback_quality(events, spans, sequence, shown), spans, events, sequence)



def stimulus_per_second(db: Session, session_ids: Iterable[int], stimulus: str, *,
                        bin_s: float = 1.0) -> dict[int, pd.DataFrame]:  # fmt: skip
    """Per-second tables of several sessions on one stimulus's timeline, for comparing sessions on stimulus time.

    Each session's frames shown ``stimulus`` are binned on their stimulus time (:func:`stimulus_bins`), so two
    sessions line up second by second of the stimulus whenever they started it and however often it paused or
    stalled. Feed the result to :func:`sessions.stats.session_bins` (no ``align``) or to the Compare analysis as
    its per-second rows.

    Parameters
    ----------
    db : sqlalchemy.orm.Session
    session_ids : iterable of int
        Unknown sessions are left out.
    stimulus : str
        The stimulus name (as in the sessions' orders).
    bin_s : float
        Bin width in stimulus seconds.

    Returns
    -------
    dict of int to pandas.DataFrame
        Session id to its ``BIN_COLUMNS`` table (``time_s`` = stimulus seconds), only for the sessions in which
        the stimulus played, in the order of ``session_ids``.
    """
    result = {}
    for sid in dict.fromkeys(int(i) for i in session_ids):
        try:
            spans = [s for s in session_spans(db, sid) if s.stimulus == stimulus]
        except SessionNotFound:
            continue
        if spans:
            result[sid] = stimulus_bins(add_stimulus_columns(load_observations(db, sid), spans), stimulus, bin_s)
    return result


def played_stimuli(db: Session, session_ids: Iterable[int]) -> list[str]:
    """Names of the stimuli that played (a ``playing`` event) in any of the sessions, in first-seen order."""
    ids = [int(i) for i in session_ids]
    rows = db.execute(select(SessionStimulus.name).join(
        PlaybackEvent, (PlaybackEvent.session_id == SessionStimulus.session_id)
        & (PlaybackEvent.position == SessionStimulus.position))
        .where(SessionStimulus.session_id.in_(ids), PlaybackEvent.kind == RUN_START)
        .order_by(SessionStimulus.session_id, SessionStimulus.position)).scalars().all()  # fmt: skip
    return list(dict.fromkeys(rows))


def markers_on_stimulus(db: Session, markers: dict[str, dict[int, float]], stimulus: str) -> dict[str, dict[int, float]]:
    """Marker times moved from session time to one stimulus's time, for analyses on that stimulus's timeline.

    Parameters
    ----------
    markers : dict of str to dict of int to float
        Label to session id to session seconds (:func:`sessions.analysis.marker_times`).
    stimulus : str

    Returns
    -------
    dict of str to dict of int to float
        The same labels; each time in stimulus seconds, a marker placed while the stimulus was not playing left out.
    """
    spans: dict[int, list[PlaybackSpan]] = {}
    result: dict[str, dict[int, float]] = {}
    for label, times in markers.items():
        result[label] = {}
        for sid, t in times.items():
            if sid not in spans:
                spans[sid] = [s for s in session_spans(db, sid) if s.stimulus == stimulus]
            value = stimulus_times(spans[sid], [t])[1][0]
            if np.isfinite(value):
                result[label][sid] = float(value)
    return result


def stimulus_id_named(db: Session, session_ids: Iterable[int], stimulus: str) -> int | None:
    """The id of the stimulus named ``stimulus`` in these sessions' orders (None when every copy was deleted)."""
    return db.scalar(select(SessionStimulus.stimulus_id).where(
        SessionStimulus.session_id.in_([int(i) for i in session_ids]), SessionStimulus.name == stimulus,
        SessionStimulus.stimulus_id.is_not(None)).limit(1))  # fmt: skip


def sessions_share_seen(db: Session, session_ids: Iterable[int], stimulus: str | None = None) -> dict[int, float]:
    """Share of its stimulus video(s) each session showed, for the quality gate (``stats.ExclusionRules``).

    Parameters
    ----------
    db : sqlalchemy.orm.Session
    session_ids : iterable of int
    stimulus : str, optional
        Only this stimulus (an analysis on its timeline); default every video of the session's order.

    Returns
    -------
    dict of int to float
        Session id to ``seen / duration`` in [0, 1]: the stimulus seconds shown at least once
        (:func:`stimulus_seconds_seen`, as Review's playback quality) over the videos' durations, summed over
        the videos. Only sessions whose stored order holds such a video with a duration (a session without a
        stimulus, e.g. an imported video or one recorded without the player, is absent: not applicable); a
        session whose order was drawn but that never played gets 0.
    """
    ids = [int(i) for i in dict.fromkeys(session_ids)]
    if not ids:
        return {}
    with_order = set(db.scalars(select(SessionStimulus.session_id).where(SessionStimulus.session_id.in_(ids))
                                .distinct()))  # fmt: skip
    result = {}
    for sid in (i for i in ids if i in with_order):
        items = [item for item in stored_sequence(db, sid) if item.kind != "external" and item.duration_s
                 and item.duration_s > 0 and (stimulus is None or item.name == stimulus)]  # fmt: skip
        if not items:
            continue
        spans = session_spans(db, sid)
        seen = sum(stimulus_seconds_seen(spans, item.position, item.duration_s) for item in items)
        result[sid] = min(1.0, seen / sum(item.duration_s for item in items))
    return result
