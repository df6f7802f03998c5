"""The session-to-stimulus time map from stored playback events: pauses, stalls, blanks, randomised sequences,
alignment of sessions started at different moments; event storage and playback quality."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from sessions.db import session_scope
from sessions.playback import (
    PlaybackSpan,
    add_stimulus_columns,
    event_session_times,
    key_moments,
    load_events,
    playback_quality,
    playback_spans,
    record_events,
    session_spans,
    stimulus_bins,
    stimulus_times,
)
from sessions.stimuli import SequenceItem
from tests.sessions.clips import make_stimulus

AD = SequenceItem(0, 7, "ad", "video", 10.0, 0.0)


def events(*rows, page="p1") -> pd.DataFrame:
    """(kind, session_time_s, media_time_s[, position]) tuples as an events table."""
    records = [{"kind": r[0], "session_time_s": r[1], "media_time_s": r[2], "position": r[3] if len(r) > 3 else 0,
                "page_id": page} for r in rows]  # fmt: skip
    return pd.DataFrame(records)


def test_uninterrupted_playback_maps_linearly_and_nothing_outside():
    spans = playback_spans(events(("play", 4.9, 0.0), ("playing", 5.0, 0.0), ("pause", 15.0, 10.0),
                                  ("ended", 15.0, 10.0)), [AD])  # fmt: skip
    assert spans == [PlaybackSpan(0, "ad", 7, 5.0, 15.0, 0.0)]
    names, t = stimulus_times(spans, [0.0, 4.99, 5.0, 7.5, 14.99, 15.0, 30.0])
    assert list(names) == [None, None, "ad", "ad", "ad", None, None]  # [start, end): the end instant shows nothing
    np.testing.assert_allclose(t, [np.nan, np.nan, 0.0, 2.5, 9.99, np.nan, np.nan])


def test_pause_shifts_the_map_by_the_pause():
    plain = playback_spans(events(("playing", 5.0, 0.0), ("ended", 15.0, 10.0)), [AD])
    paused = playback_spans(events(("playing", 5.0, 0.0), ("pause", 8.0, 3.0), ("playing", 10.5, 3.0),
                                   ("ended", 17.5, 10.0)), [AD])  # fmt: skip
    session_t = np.array([6.0, 7.9, 11.0, 17.0])
    _, before = stimulus_times(plain, session_t)
    _, after = stimulus_times(paused, np.where(session_t > 8.0, session_t + 2.5, session_t))
    np.testing.assert_allclose(after, before)  # every second after the pause comes 2.5 s later
    _, during = stimulus_times(paused, [8.5, 10.0])
    assert np.isnan(during).all()  # frames during the pause show no stimulus time


def test_stall_stops_the_clock_until_playing_again_and_a_run_ends_at_the_stimulus_end():
    spans = playback_spans(events(("playing", 0.0, 0.0), ("waiting", 4.0, 4.0), ("stalled", 4.5, 4.0),
                                  ("playing", 6.0, 4.0)), [AD])  # no "ended": the tab was closed  # fmt: skip
    assert [(s.start_s, s.end_s, s.media_start_s) for s in spans] == [(0.0, 4.0, 0.0), (6.0, 12.0, 4.0)]
    _, t = stimulus_times(spans, [5.0, 7.0, 12.5])
    assert np.isnan(t[0]) and t[1] == pytest.approx(5.0) and np.isnan(t[2])


def test_a_camera_gap_ends_an_open_run():
    spans = playback_spans(events(("playing", 2.0, 0.0)), [AD], gap_starts_s=[1.0, 5.0])
    assert [(s.start_s, s.end_s) for s in spans] == [(2.0, 5.0)]


def test_two_sessions_started_at_different_moments_align_exactly_on_stimulus_time():
    rng = np.random.default_rng(3)
    early = playback_spans(events(("playing", 3.25, 0.0), ("ended", 13.25, 10.0)), [AD])
    late = playback_spans(events(("playing", 41.7, 0.0), ("pause", 44.7, 3.0), ("playing", 46.0, 3.0),
                                 ("ended", 53.0, 10.0)), [AD])  # fmt: skip
    frames_early = np.sort(rng.uniform(0, 20, 200))
    stim_early = stimulus_times(early, frames_early)[1]
    inside = ~np.isnan(stim_early)
    # the same stimulus instants in the second session's time
    target = stim_early[inside]
    late_times = np.where(target < 3.0, 41.7 + target, 46.0 + (target - 3.0))
    np.testing.assert_allclose(stimulus_times(late, late_times)[1], target, atol=1e-9)
    obs = pd.DataFrame({"time_s": late_times, "frame": np.arange(len(late_times)), "face_id": 0, "w": 10.0, "h": 10.0,
                        **{e: 1 / 7 for e in ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")}})  # fmt: skip
    bins = stimulus_bins(add_stimulus_columns(obs, late), "ad")
    assert bins["time_s"].tolist() == sorted(set(np.floor(target)))


def test_event_session_time_uses_the_smallest_offset_of_the_page():
    received = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
    table = pd.DataFrame({"client_ms": [1_000_500.0, 1_010_500.0, 2_000.0], "offset_ms": [120.0, 100.0, np.nan],
                          "page_id": ["a", "a", "b"], "received_at": [received, received, received + timedelta(seconds=1)]})  # fmt: skip
    started = 1_000.0  # server epoch seconds of session time 0
    t = event_session_times(table, started)
    assert t[0] == pytest.approx(0.4) and t[1] == pytest.approx(10.4)  # both with the better (100 ms) offset
    # no offset from renders: the receive time bounds it (client 2 s, received at epoch 1_764_637_201 s)
    assert t[2] == pytest.approx(2.0 - (2_000.0 - (received.timestamp() + 1) * 1000) / 1000 - started)
    assert np.isnan(event_session_times(table, None)).all()


@pytest.fixture
def two_ad_study(engine, tmp_path):
    from sessions.repository import create_study
    from sessions.stimuli import add_video_stimulus, set_sequence

    media = tmp_path / "media"
    with session_scope(engine) as db:
        study_id = create_study(db, "Two ads").id
        a = add_video_stimulus(db, study_id, "A", make_stimulus(tmp_path / "a.mp4", seconds=3.0), media_dir=media).id
        b = add_video_stimulus(db, study_id, "B", make_stimulus(tmp_path / "b.mp4", seconds=2.0), media_dir=media).id
        set_sequence(db, study_id, [a, b], order="random", buffer_s=5.0)
    return study_id


def _start(db, session_id: int, at: datetime) -> None:
    from sessions.repository import get_session

    session = get_session(db, session_id)
    session.started_at, session.status = at, "recording"
    db.flush()


def test_randomised_two_stimulus_sequence_stores_its_order_and_both_maps(engine, two_ad_study):
    from sessions.repository import create_session
    from sessions.stimuli import session_sequence

    t0 = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
    ms = t0.timestamp() * 1000
    with session_scope(engine) as db:
        sid = create_session(db, study_id=two_ad_study, participant_code="P1").id
        _start(db, sid, t0)
        order = session_sequence(db, sid, rng=random.Random(1))
        first, second = order
        sent = [  # browser clock = server clock + 250 ms, seen within 10 ms at best
            {"kind": "playing", "position": 0, "media_time_s": 0.0, "client_ms": ms + 2000 + 250, "offset_ms": 260.0},
            {"kind": "ended", "position": 0, "media_time_s": first.duration_s, "client_ms": ms + 2000 + 250 + first.duration_s * 1000, "offset_ms": 250.0},
            {"kind": "blank", "position": 1, "media_time_s": 0.0, "client_ms": ms + 2001 + 250 + first.duration_s * 1000, "offset_ms": 250.0},
            {"kind": "playing", "position": 1, "media_time_s": 0.0, "client_ms": ms + 7100 + 250 + first.duration_s * 1000, "offset_ms": 250.0},
            {"kind": "ended", "position": 1, "media_time_s": second.duration_s, "client_ms": ms + 7100 + 250 + (first.duration_s + second.duration_s) * 1000, "offset_ms": 250.0},
        ]  # fmt: skip
        for i, e in enumerate(sent):
            e.update(page_id="page1", seq=i)
        assert record_events(db, sid, sent) == 5
        assert record_events(db, sid, [*sent, {"kind": "<script>", "page_id": "page1", "seq": 9, "client_ms": 1.0}]) == 0
    with session_scope(engine) as db:
        assert [x.name for x in session_sequence(db, sid)] == [first.name, second.name]
        stored = load_events(db, sid)
        assert list(stored["kind"]) == ["playing", "ended", "blank", "playing", "ended"]
        assert stored["stimulus_id"].iloc[0] == first.stimulus_id and stored["stimulus_id"].iloc[3] == second.stimulus_id
        spans = session_spans(db, sid)
    assert [(s.stimulus, round(s.start_s, 6), round(s.end_s, 6)) for s in spans] == [
        (first.name, 2.0, round(2.0 + first.duration_s, 6)),
        (second.name, round(7.1 + first.duration_s, 6), round(7.1 + first.duration_s + second.duration_s, 6))]
    names, t = stimulus_times(spans, [2.5, 2.0 + first.duration_s + 2.0, 7.1 + first.duration_s + 1.0])
    assert list(names) == [first.name, None, second.name]  # the blank between them has no stimulus
    np.testing.assert_allclose(t[[0, 2]], [0.5, 1.0])


def test_playback_quality_counts_pauses_stalls_and_the_share_seen_with_a_face():
    table = events(("play", 0.9, 0.0), ("playing", 1.0, 0.0), ("pause", 3.0, 2.0), ("playing", 4.0, 2.0),
                   ("waiting", 6.0, 4.0), ("playing", 7.5, 4.0), ("pause", 13.5, 10.0), ("ended", 13.5, 10.0))  # fmt: skip
    spans = playback_spans(table, [AD])
    frames = np.arange(0.0, 14.0, 0.1)
    obs = add_stimulus_columns(pd.DataFrame({"time_s": frames, "face_id": np.where(frames < 9.5, 0, -1)}), spans)
    quality = playback_quality(table, spans, [AD], obs).iloc[0]
    assert (quality["played"], quality["completed"], quality["pauses"], quality["stalls"]) == (True, True, 1, 1)
    assert quality["stalled_s"] == pytest.approx(1.5) and quality["seen_s"] == pytest.approx(10.0)
    # faces until session 9.4 s = stimulus 5.9 s: stimulus seconds 0-5 of 10 had a face
    assert quality["share_seen_with_face"] == pytest.approx(0.6)
    never = playback_quality(events(("blocked", 1.0, 0.0)), [], [AD]).iloc[0]
    assert (never["played"], never["blocked"], never["seen_s"]) == (False, 1, 0.0)


def test_share_seen_is_on_the_stimulus_clock_and_never_exceeds_the_whole_stimulus():
    """Review showed "share seen 100.05%" for a 10 s ad played once: its ``playing`` to ``ended`` span was 10.005
    session seconds (the browser's media clock a little slower than the server's), and the share summed session
    seconds. On the stimulus's own clock that span shows 10 stimulus seconds."""
    slow = events(("playing", 2.0, 0.0), ("timeupdate", 7.0025, 5.0), ("ended", 12.005, 10.0))
    spans = playback_spans(slow, [AD])
    assert sum(s.end_s - s.start_s for s in spans) == pytest.approx(10.005)  # session seconds
    quality = playback_quality(slow, spans, [AD]).iloc[0]
    assert quality["seen_s"] == pytest.approx(10.0) and quality["share_seen"] == pytest.approx(1.0)
    assert quality["share_seen"] <= 1.0
    # a reload replays the first 4 s on a new page: those seconds were seen already
    replay = pd.concat([events(("playing", 1.0, 0.0), ("pagehide", 7.0, 6.0)),
                        events(("playing", 20.0, 0.0), ("ended", 30.0, 10.0), page="p2")])  # fmt: skip
    again = playback_quality(replay, playback_spans(replay, [AD]), [AD]).iloc[0]
    assert again["seen_s"] == pytest.approx(10.0) and again["share_seen"] == pytest.approx(1.0)
    half = events(("playing", 1.0, 2.0), ("pagehide", 4.0, 5.0))  # stimulus seconds 2-5 only
    assert playback_quality(half, playback_spans(half, [AD]), [AD]).iloc[0]["share_seen"] == pytest.approx(0.3)


def test_key_moments_are_the_largest_rises_at_least_the_gap_apart():
    bins = pd.DataFrame({"time_s": np.arange(8.0), "happy": [0.1, 0.1, 0.6, 0.7, 0.2, 0.2, 0.2, 0.2],
                         "surprise": [0.0, 0.0, 0.0, 0.5, 0.0, 0.0, 0.45, 0.0], "neutral": [0, 0, 0, 0, 0, 0.9, 0, 0]})  # fmt: skip
    moments = key_moments(bins, n=3, min_gap_s=2.0)
    assert list(zip(moments["time_s"], moments["emotion"], strict=True)) == [(2.0, "happy"), (6.0, "surprise")]
    assert moments["rise"].iloc[0] == pytest.approx(0.5)


def test_stored_rows_and_exports_carry_the_stimulus_time(engine, two_ad_study, tmp_path):
    from sessions.exports import SessionIdentity, export_observations
    from sessions.models import Observation
    from sessions.playback import session_playback
    from sessions.recorder import observation_records
    from sessions.repository import create_session, list_sessions, load_observations
    from sessions.stimuli import session_sequence
    from sessions.study_export import study_table
    from tests.sessions.conftest import face

    t0 = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
    with session_scope(engine) as db:
        sid = create_session(db, study_id=two_ad_study, participant_code="P1").id
        _start(db, sid, t0)
        first = session_sequence(db, sid, rng=random.Random(0))[0]
        ms = t0.timestamp() * 1000
        record_events(db, sid, [
            {"kind": "playing", "position": 0, "media_time_s": 0.0, "client_ms": ms + 1000, "offset_ms": 0.0, "page_id": "p", "seq": 0},
            {"kind": "ended", "position": 0, "media_time_s": first.duration_s, "client_ms": ms + 1000 + first.duration_s * 1000, "offset_ms": 0.0, "page_id": "p", "seq": 1},
        ])  # fmt: skip
        for i, t in enumerate(np.arange(0.0, 6.0, 0.5)):
            for row in observation_records(sid, i, float(t), [face(happy=0.7)] if t < 2.5 else []):
                db.add(Observation(**row))
    with session_scope(engine) as db:
        shown, quality = session_playback(db, sid, load_observations(db, sid))[:2]
        table = study_table(db, two_ad_study)
        bins = study_table(db, two_ad_study, per_second=True)
        identity = SessionIdentity.from_listing(list_sessions(db, session_ids=[sid]).iloc[0])
    playing = shown[shown["stimulus"].notna()]
    assert playing["time_s"].min() == 1.0 and playing["time_s"].max() == pytest.approx(1.0 + first.duration_s - 0.5)
    assert (np.diff(playing["stimulus_time_s"]) > 0).all() and (playing["stimulus"] == first.name).all()
    assert shown.loc[shown["time_s"] < 1.0, "stimulus_time_s"].isna().all()
    assert quality.loc[0, "completed"] and quality.loc[0, "share_seen_with_face"] == pytest.approx(2 / first.duration_s)
    np.testing.assert_allclose(table["stimulus_time_s"], shown["stimulus_time_s"])
    assert bins.loc[bins["time_s"] == 1.0, "stimulus_time_s"].item() == pytest.approx(0.5)  # the bin's middle
    back = pd.read_csv(export_observations(shown, tmp_path / "frames.csv", identity=identity))
    assert list(back.columns[-2:]) == ["stimulus", "stimulus_time_s"]
    np.testing.assert_allclose(back["stimulus_time_s"], shown["stimulus_time_s"])


def test_loading_before_the_first_playing_is_no_stall_and_small_rises_are_no_key_moment():
    table = events(("play", 0.5, 0.0), ("waiting", 0.5, 0.0), ("playing", 1.3, 0.0), ("ended", 11.3, 10.0))
    quality = playback_quality(table, playback_spans(table, [AD]), [AD]).iloc[0]
    assert (quality["stalls"], quality["stalled_s"], quality["seen_s"]) == (0, 0.0, pytest.approx(10.0))
    flat = pd.DataFrame({"time_s": np.arange(4.0), "happy": [0.5, 0.52, 0.53, 0.51]})
    assert key_moments(flat).empty


def _played_session(engine, study_id: int, code: str, start_s: float, pause: tuple[float, float] | None = None, *,
                    marker_at_s: float | None = None, tags: dict | None = None) -> tuple[int, str]:  # fmt: skip
    """A session that plays stimulus "A" from session second ``start_s`` (``pause``: (stimulus s, length s)),
    15 fps frames whose happiness is 0.1 + 0.25 per whole stimulus second, and a "boss" marker placed at stimulus
    second ``marker_at_s``; returns its id and the stimulus name."""
    from sessions.models import Marker, Observation
    from sessions.recorder import observation_records
    from sessions.repository import create_session
    from sessions.stimuli import session_sequence
    from tests.sessions.conftest import face

    t0 = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
    ms = t0.timestamp() * 1000
    with session_scope(engine) as db:
        sid = create_session(db, study_id=study_id, participant_code=code, tags=tags or {}).id
        _start(db, sid, t0)
        item = next(x for x in session_sequence(db, sid, rng=random.Random(0)) if x.name == "A")
        plays = [("playing", start_s, 0.0)]
        if pause:
            plays += [("pause", start_s + pause[0], pause[0]), ("playing", start_s + pause[0] + pause[1], pause[0])]
        end = start_s + item.duration_s + (pause[1] if pause else 0.0)
        plays.append(("ended", end, item.duration_s))
        record_events(db, sid, [{"kind": k, "position": item.position, "media_time_s": m, "client_ms": ms + t * 1000,
                                 "offset_ms": 0.0, "page_id": "p", "seq": i} for i, (k, t, m) in enumerate(plays)])  # fmt: skip
        spans = playback_spans(load_events(db, sid), session_sequence(db, sid))
        for i, t in enumerate(np.arange(0.0, end + 2.0, 1 / 15)):  # 15 fps; happiness follows the stimulus
            _, stimulus_t = stimulus_times(spans, [t])
            happy = 0.1 if np.isnan(stimulus_t[0]) else 0.1 + 0.25 * np.floor(stimulus_t[0])
            for row in observation_records(sid, i, float(t), [face(happy=min(happy, 0.9))]):
                db.add(Observation(**row))
        if marker_at_s is not None:
            paused = pause[1] if pause and marker_at_s > pause[0] else 0.0
            db.add(Marker(session_id=sid, time_s=start_s + marker_at_s + paused, label="boss"))
        return sid, item.name


def test_two_sessions_of_one_stimulus_align_exactly_in_the_compare_statistics(engine, two_ad_study):
    """Sessions started 3 s and 40 s into their recordings, one pausing 4 s: on stimulus time their per-second
    values coincide, so the group curve (each participant once) equals each session's curve."""
    from sessions import stats
    from sessions.playback import played_stimuli, stimulus_per_second

    def session(code: str, start_s: float, pause: tuple[float, float] | None) -> tuple[int, str]:
        return _played_session(engine, two_ad_study, code, start_s, pause)

    early, name = session("early", 3.0, None)
    late, _ = session("late", 40.0, (1.5, 4.0))
    with session_scope(engine) as db:
        assert played_stimuli(db, [early, late]) == ["A"]
        per_second = stimulus_per_second(db, [early, late], name)
    bins = stats.session_bins(per_second)
    a, b = (bins[bins["session_id"] == s].set_index("time_s")["happy"] for s in (early, late))
    assert list(a.index) == list(b.index) == [0.0, 1.0, 2.0]
    np.testing.assert_allclose(a.to_numpy(), b.to_numpy(), atol=1e-6)
    np.testing.assert_allclose(a.to_numpy(), [0.1, 0.35, 0.6], atol=1e-6)
    curves = stats.group_curves(bins, metrics=["happy"]).sort_values("time_s")
    np.testing.assert_allclose(curves["mean"].to_numpy(), a.to_numpy(), atol=1e-6)
    assert (curves["n_sessions"] == 2).all()


def test_anchors_follow_a_browser_that_plays_slower_than_real_time():
    """A starved page plays 10 s of video in 12.5 s: its timeupdate anchors bend the map to the media clock."""
    table = events(("playing", 0.0, 0.0), ("timeupdate", 5.0, 5.0), ("timeupdate", 10.0, 6.0),
                   ("timeupdate", 11.25, 9.0), ("ended", 12.5, 10.0))  # fmt: skip
    spans = playback_spans(table, [AD])
    assert [round(s.rate, 6) for s in spans] == [1.0, 0.2, 2.4, 0.8]
    _, t = stimulus_times(spans, [2.5, 7.5, 10.0, 12.0, 12.5])
    np.testing.assert_allclose(t[:4], [2.5, 5.5, 6.0, 9.6])
    assert np.isnan(t[4])  # the end instant shows nothing


@pytest.mark.parametrize("segmenting", ["cut points", "markers"])
def test_segments_on_the_stimulus_timeline_are_the_same_for_sessions_started_at_different_moments(
        engine, two_ad_study, segmenting):  # fmt: skip
    """Compare's segments on a stimulus (load_inputs -> analyse -> metric_view, as Compare and the report do): cut
    points in stimulus seconds, or a marker moved to stimulus time, give each group the same mean, peak,
    time to peak and share expressing, although one session started the stimulus 3 s in and the other 40 s in
    with a 4 s pause. On session time the same cut point splits them differently."""
    from sessions.analysis import AnalysisSettings, analyse, load_inputs
    from sessions.report import metric_view

    early, name = _played_session(engine, two_ad_study, "early", 3.0, marker_at_s=1.0)
    late, _ = _played_session(engine, two_ad_study, "late", 40.0, (0.5, 4.0), marker_at_s=1.0)
    settings = (AnalysisSettings(cut_points=(1.0,)) if segmenting == "cut points"
                else AnalysisSettings(segment_markers=("boss",)))  # fmt: skip
    groups = {early: "early", late: "late"}

    def segments(**where) -> pd.DataFrame:
        with session_scope(engine) as db:
            inputs = load_inputs(db, [early, late], settings=settings, **where)
        analysis = analyse(inputs.sessions, inputs.per_second, groups=groups, settings=settings, align=inputs.align,
                           markers=inputs.markers, stimulus=where.get("stimulus"))  # fmt: skip
        assert bool(analysis.timeline_note()) == ("stimulus" in where)
        return metric_view(analysis, "happy", markers=inputs.markers).segments

    table = segments(stimulus=name)
    first_segment = "0-1 s" if segmenting == "cut points" else None
    figures = ["mean", "peak", "time_to_peak_s", "share_expressing"]
    by_group = {g: part.set_index("segment")[figures] for g, part in table.groupby("group")}
    pd.testing.assert_frame_equal(by_group["early"], by_group["late"], atol=1e-9)
    assert (table["n_sessions"] == 1).all()
    last = by_group["early"].iloc[-1]  # stimulus seconds 1-3: happy 0.35 then 0.6
    assert (last["mean"], last["peak"], last["time_to_peak_s"], last["share_expressing"]) == (
        pytest.approx(0.475), pytest.approx(0.6), pytest.approx(1.0), 1.0)
    if first_segment is not None:
        assert list(by_group["early"].index) == ["0-1 s", "1-3 s"]
        assert by_group["early"].loc["0-1 s", "mean"] == pytest.approx(0.1)
        plain = segments()  # session time: the early session's stimulus starts at 3 s, the late one's at 40 s
        plain_groups = {g: part.set_index("segment")["mean"] for g, part in plain.groupby("group")}
        assert not np.allclose(plain_groups["early"].to_numpy(), plain_groups["late"].to_numpy())
        from sessions.analysis import save_settings
        from sessions.report import build_report

        with session_scope(engine) as db:  # the study report (CLI --stimulus) reads the same pipeline
            save_settings(db, two_ad_study, settings)
            html = build_report(db, "Two ads", metrics=["happy"], stimulus=name)
            with pytest.raises(ValueError, match="in which stimulus 'B' played"):
                build_report(db, "Two ads", metrics=["happy"], stimulus="B")
        assert "1-3 s" in html and "47.5" in html and "Time axis: the seconds of stimulus &#x27;A&#x27;" in html
    else:
        assert list(by_group["early"].index) == ["after boss"]


AD30 = SequenceItem(0, 8, "ad30", "video", 30.0, 0.0)


def test_a_tab_closed_for_good_counts_only_up_to_the_last_frame(engine, two_ad_study):
    """Issue 13 review: start, playing, timeupdate at 1 s and 2 s, then nothing (the tab closed) on a 30 s ad was
    counted as 30 s seen (share 100%): the open run ran on at slope 1 to the stimulus's end. It ends at the
    session's last analysed frame or at its end, whichever is earlier."""
    from sessions.models import Observation
    from sessions.playback import session_playback
    from sessions.recorder import observation_records
    from sessions.repository import create_session, get_session, load_observations
    from sessions.stimuli import session_sequence
    from tests.sessions.conftest import face

    closed = events(("start", 0.9, 0.0), ("playing", 1.0, 0.0), ("timeupdate", 2.0, 1.0), ("timeupdate", 3.0, 2.0))
    assert playback_quality(closed, playback_spans(closed, [AD30]), [AD30]).iloc[0]["seen_s"] == pytest.approx(30.0)
    spans = playback_spans(closed, [AD30], open_until_s=3.5)  # the last frame at session 3.5 s
    quality = playback_quality(closed, spans, [AD30]).iloc[0]
    assert quality["seen_s"] == pytest.approx(2.5) and quality["share_seen"] == pytest.approx(2.5 / 30)
    assert playback_spans(closed, [AD30], open_until_s=40.0)[-1].end_s == pytest.approx(30.0 + 1.0)  # the ad's end

    t0 = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
    ms = t0.timestamp() * 1000
    with session_scope(engine) as db:
        sid = create_session(db, study_id=two_ad_study, participant_code="closed").id
        _start(db, sid, t0)
        item = session_sequence(db, sid, rng=random.Random(0))[0]  # 3 s or 2 s: the tab closes 1.2 s in
        record_events(db, sid, [{"kind": k, "position": item.position, "media_time_s": m, "client_ms": ms + t * 1000,
                                 "offset_ms": 0.0, "page_id": "p", "seq": i}
                                for i, (k, t, m) in enumerate([("playing", 1.0, 0.0), ("timeupdate", 2.0, 1.0)])])  # fmt: skip
        for i, t in enumerate(np.arange(0.0, 2.25, 0.1)):  # frames until session 2.2 s
            for row in observation_records(sid, i, float(t), [face(happy=0.5)]):
                db.add(Observation(**row))
    with session_scope(engine) as db:
        assert session_spans(db, sid)[-1].end_s == pytest.approx(2.2)
        quality = session_playback(db, sid, load_observations(db, sid)).quality
        assert quality.loc[0, "seen_s"] == pytest.approx(1.2)
        get_session(db, sid).ended_at = t0 + timedelta(seconds=2.1)  # ended before its last frame: the end counts
    with session_scope(engine) as db:
        assert session_spans(db, sid)[-1].end_s == pytest.approx(2.1)


def test_a_camera_gap_mid_stimulus_cuts_only_the_open_run():
    """Issue 13 review: every segment was cut at a camera gap, so a gap at 12 s left only 10-12 s of a stimulus
    anchored every 5-10 s from 10 s to 40 s. Anchored segments are kept; only the open one ends at a gap."""
    table = events(("playing", 10.0, 0.0), ("timeupdate", 15.0, 5.0), ("timeupdate", 25.0, 15.0),
                   ("timeupdate", 30.0, 20.0), ("timeupdate", 40.0, 30.0))  # fmt: skip
    spans = playback_spans(table, [AD30], gap_starts_s=[12.0, 44.0])
    assert [(s.start_s, s.end_s) for s in spans] == [(10.0, 15.0), (15.0, 25.0), (25.0, 30.0), (30.0, 40.0)]
    _, t = stimulus_times(spans, [13.0, 35.0])
    np.testing.assert_allclose(t, [3.0, 25.0])
    still_open = events(("playing", 10.0, 0.0), ("timeupdate", 15.0, 5.0))
    assert [(s.start_s, s.end_s) for s in playback_spans(still_open, [AD30], gap_starts_s=[12.0, 18.0])] == [
        (10.0, 15.0), (15.0, 18.0)]


def test_one_event_without_a_render_offset_does_not_override_the_page_offset():
    """Issue 13 review: an event sent before the page saw a render (no offset_ms) fell back to client - received,
    which is smaller than the true offset by the delivery delay, and the page's minimum picked it for every event."""
    received = datetime(2026, 12, 2, 1, 0, tzinfo=UTC)
    epoch_ms = received.timestamp() * 1000
    # browser clock = server clock + 250 ms; each event arrives 300 ms after it happened
    client = [epoch_ms - 300 + 250, epoch_ms + 5000 - 300 + 250, epoch_ms + 9000 - 300 + 250]
    table = pd.DataFrame({"client_ms": client, "offset_ms": [np.nan, 252.0, 250.0], "page_id": ["a"] * 3,
                          "received_at": [received + timedelta(seconds=s) for s in (0, 5, 9)]})  # fmt: skip
    started = epoch_ms / 1000 - 10.0
    t = event_session_times(table, started)
    np.testing.assert_allclose(t, [9.7, 14.7, 18.7])  # all with the 250 ms render offset
    # a page without any render offset: the largest client - received (the least delayed delivery) is the best
    slow = table.assign(offset_ms=np.nan, received_at=[received + timedelta(seconds=s) for s in (0, 4.8, 9)])
    t = event_session_times(slow, started)
    # the 2nd event arrived after 100 ms (the others 300 ms): offset 250 - 100 ms, events placed 100 ms late
    np.testing.assert_allclose(t, [9.8, 14.8, 18.8])


def test_a_seek_ends_the_segment_where_playback_was_not_at_the_seek_target():
    """The seeking event's media time is the seek's target: a jump from 4 s back to 1 s at session 5 s must not
    make the segment before it run backwards or stretch; the next playing (or position report) starts anew."""
    back = events(("playing", 1.0, 0.0), ("timeupdate", 4.0, 3.0), ("seeking", 5.0, 1.0), ("seeked", 5.2, 1.0),
                  ("playing", 5.2, 1.0), ("ended", 14.2, 10.0))  # fmt: skip
    spans = playback_spans(back, [AD])
    assert [(s.start_s, s.end_s, s.media_start_s, round(s.rate, 6)) for s in spans] == [
        (1.0, 4.0, 0.0, 1.0), (4.0, 5.0, 3.0, 1.0), (5.2, 14.2, 1.0, 1.0)]
    ahead = events(("playing", 1.0, 0.0), ("seeking", 3.0, 8.0), ("timeupdate", 3.5, 8.5), ("ended", 5.0, 10.0))
    spans = playback_spans(ahead, [AD])
    assert [(s.start_s, s.end_s, s.media_start_s, round(s.rate, 6)) for s in spans] == [
        (1.0, 3.0, 0.0, 1.0), (3.5, 5.0, 8.5, 1.0)]
    _, t = stimulus_times(spans, [2.0, 3.2, 4.0])
    assert t[0] == pytest.approx(1.0) and np.isnan(t[1]) and t[2] == pytest.approx(9.0)


def test_key_moments_take_rises_only_between_neighbouring_seconds():
    """A missing second (never shown, or no face) must not turn a slow climb over several seconds into one rise."""
    gappy = pd.DataFrame({"time_s": [0.0, 1.0, 5.0, 6.0], "happy": [0.1, 0.12, 0.5, 0.53]})
    assert key_moments(gappy).empty
    halves = pd.DataFrame({"time_s": [0.0, 0.5, 1.0, 2.0], "happy": [0.1, 0.4, 0.42, 0.9]})
    assert list(key_moments(halves, bin_s=0.5)["time_s"]) == [0.5]
