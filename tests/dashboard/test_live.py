"""The webrtc callback glue and the live session: newest-frame analysis, exact drop counts, frame time,
recording, one stream per session, resume, participants' plain preview."""

from __future__ import annotations

import asyncio
import time
from fractions import Fraction

import av
import numpy as np
import pytest

from dashboard.live import LiveRegistry, LiveStream, fit_width
from sessions.db import session_scope
from sessions.live import LiveSession
from sessions.recorder import LiveRecorder
from sessions.repository import create_session, get_or_create_study, get_session, load_observations
from tests.dashboard.conftest import StubAnalyzer


def make_frame(pts: int, *, width: int = 320, height: int = 240, rate: int = 90000) -> av.VideoFrame:
    frame = av.VideoFrame.from_ndarray(np.full((height, width, 3), 90, np.uint8), format="bgr24")
    frame.pts = pts
    frame.time_base = Fraction(1, rate)
    return frame


def new_stream(recorder, session_id, *, analyzer=None, role="researcher", **kwargs) -> LiveStream:
    analyzer = analyzer or StubAnalyzer()
    return LiveStream(lambda: LiveSession(session_id, analyzer=analyzer, recorder=recorder, role=role),
                      annotate=role == "researcher", **kwargs)  # fmt: skip


def wait_until(condition, timeout_s: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.05)
    return condition()


@pytest.fixture
def recording(engine):
    recorder = LiveRecorder(engine, batch_interval_s=0.05)
    with session_scope(engine) as db:
        session_id = create_session(db, study_id=get_or_create_study(db, "live").id, participant_code="P1").id
    yield recorder, session_id
    recorder.close()


def status_of(engine, session_id) -> str:
    with session_scope(engine) as db:
        return get_session(db, session_id).status


def test_fit_width_keeps_aspect_and_small_frames():
    small = np.zeros((240, 320, 3), np.uint8)
    assert fit_width(small, 640) is small
    assert fit_width(np.zeros((720, 1280, 3), np.uint8), 640).shape == (360, 640, 3)


def test_callback_analyses_newest_frame_counts_drops_and_records(engine, recording):
    recorder, session_id = recording
    analyzer = StubAnalyzer()
    stream = new_stream(recorder, session_id, analyzer=analyzer, frame_width=160)
    first = asyncio.run(stream.on_frames([make_frame(90000 * 10)]))  # stream clocks do not start at 0
    out = asyncio.run(stream.on_frames([make_frame(90000 * 10 + 6000 * k) for k in (1, 2, 3)]))
    assert len(first) == len(out) == 1
    assert [t for _, t in analyzer.calls] == pytest.approx([0.0, 18000 / 90000])  # newest frame, from frame.time
    assert analyzer.calls[0][0] == (120, 160, 3)  # scaled to frame_width before analysis
    image = out[0].to_ndarray(format="bgr24")
    assert image.shape == (120, 160, 3) and (image != 90).any()  # the box and label are drawn
    snap = stream.snapshot()
    assert snap.frames == 2 and snap.dropped == 2 and (snap.skipped, snap.refused) == (2, 0) and snap.faces == 1
    assert snap.probs.argmax() == 3  # happy
    assert list(snap.history.columns)[:2] == ["time_s", "angry"] and len(snap.history) == 2
    assert stream.session.finish("complete") and not stream.session.finish("aborted")
    with session_scope(engine) as db:
        session = get_session(db, session_id)
        assert session.status == "complete" and session.started_at is not None
        assert len(load_observations(db, session_id)) == 2
        assert session.dropped_frames == snap.dropped  # the store says what the live panel said
        assert session.latency_p50_ms is not None and 0 <= session.latency_p50_ms <= session.latency_p90_ms


def test_stream_ended_without_stop_releases_the_session_for_a_resume(engine, recording):
    recorder, session_id = recording
    stream = new_stream(recorder, session_id, role="participant")
    asyncio.run(stream.on_frames([make_frame(0)]))
    stream.on_ended()  # reload or network drop: not the end of the session
    assert wait_until(lambda: _row(engine, session_id).stream_id is None)
    assert status_of(engine, session_id) == "recording"
    again = new_stream(recorder, session_id, role="participant")  # the same link, reloaded
    asyncio.run(again.on_frames([make_frame(90000 * 50)]))  # another sender clock: time continues on the session's
    assert again.session.state == "streaming" and again.snapshot().time_s > 0
    again.on_ended()  # the same page: STOP's track end is seen first, then a new START of the widget
    asyncio.run(again.on_frames([make_frame(90000 * 70)]))
    assert again.session.state == "streaming"  # a fresh live session for the new track
    again.session.finish("complete")
    with session_scope(engine) as db:
        obs = load_observations(db, session_id)
        assert obs["frame"].tolist() == [0, 1, 2] and len(get_session(db, session_id).gaps) == 2
    assert status_of(engine, session_id) == "complete"


def _row(engine, session_id):
    with session_scope(engine) as db:
        return get_session(db, session_id)


def test_a_second_camera_on_the_same_session_is_refused(engine, recording):
    recorder, session_id = recording
    participant = new_stream(recorder, session_id, role="participant")
    researcher = new_stream(recorder, session_id, role="researcher")
    asyncio.run(participant.on_frames([make_frame(0)]))
    asyncio.run(researcher.on_frames([make_frame(0)]))
    assert participant.session.state == "streaming" and researcher.session.state == "refused"
    assert "participant" in researcher.snapshot().message
    assert not researcher.session.finish("complete")  # a refused page cannot end the participant's session
    asyncio.run(participant.on_frames([make_frame(9000)]))
    participant.session.finish("complete")
    with session_scope(engine) as db:
        assert load_observations(db, session_id)["frame"].tolist() == [0, 1]


def test_finish_rejects_unknown_status(recording):
    recorder, session_id = recording
    with pytest.raises(ValueError, match="has to be 'complete' or 'aborted'"):
        new_stream(recorder, session_id).session.finish("done")


def test_registry_forgets_finished_streams(recording):
    recorder, session_id = recording
    registry = LiveRegistry()
    stream = new_stream(recorder, session_id)
    registry.add(stream)
    assert registry.get(session_id) is stream
    stream.session.finish("complete")
    other = new_stream(recorder, session_id + 1)
    registry.add(other)
    assert registry.get(session_id) is None and registry.get(session_id + 1) is other


def test_watchdog_releases_a_started_stream_that_went_silent(engine, recording):
    recorder, session_id = recording
    registry = LiveRegistry(stall_s=0.2)
    silent = new_stream(recorder, session_id, role="participant")
    registry.add(silent)
    assert registry.release_stalled() == []  # not started yet: waiting for the participant is not a stall
    asyncio.run(silent.on_frames([make_frame(0)]))
    assert registry.release_stalled() == []
    assert wait_until(lambda: silent.session.state == "finished")  # released by the registry's watchdog thread
    assert wait_until(lambda: _row(engine, session_id).disconnected_at is not None)
    assert status_of(engine, session_id) == "recording"  # waits for the participant to come back
    with pytest.raises(ValueError, match="stall_s has to be > 0"):
        LiveRegistry(stall_s=0)


def test_session_time_never_goes_back_when_the_sender_clock_restarts(engine, recording):
    recorder, session_id = recording
    analyzer = StubAnalyzer()
    stream = new_stream(recorder, session_id, analyzer=analyzer, frame_width=160)
    for pts in (90000 * 5, 90000 * 7, 90000 * 1, 90000 * 8):  # the third frame comes from a restarted clock
        asyncio.run(stream.on_frames([make_frame(pts)]))
    times = [t for _, t in analyzer.calls]
    assert times == pytest.approx([0.0, 2.0, 2.0, 3.0])
    assert stream.snapshot().frames == 4


def test_latency_is_never_negative_when_the_first_frame_arrives_late(engine, recording):
    recorder, session_id = recording
    stream = new_stream(recorder, session_id, frame_width=160)
    for k in range(4):  # stamps 1 s apart delivered at once: the first frame was the late one
        asyncio.run(stream.on_frames([make_frame(90000 * (10 + k))]))
    snap = stream.snapshot()
    assert 0.0 <= snap.latency_p50_ms <= snap.latency_p90_ms < 1000.0


def test_frame_without_timestamp_is_placed_by_its_arrival_on_the_sender_clock(engine, recording):
    recorder, session_id = recording
    analyzer = StubAnalyzer()
    stream = new_stream(recorder, session_id, analyzer=analyzer, frame_width=160)
    asyncio.run(stream.on_frames([make_frame(90000 * 100)]))  # sender clock at 100 s
    time.sleep(0.2)
    untimed = make_frame(0)
    untimed.pts = None
    asyncio.run(stream.on_frames([untimed]))
    times = [t for _, t in analyzer.calls]
    assert times[0] == 0.0 and 0.15 <= times[1] < 2.0  # about 0.2 s later, not ~monotonic-clock seconds


def test_preview_is_scaled_to_preview_width_with_the_boxes(engine, recording):
    recorder, session_id = recording
    stream = new_stream(recorder, session_id, frame_width=640, preview_width=160)
    (out,) = asyncio.run(stream.on_frames([make_frame(0, width=640, height=480)]))
    image = out.to_ndarray(format="bgr24")
    assert image.shape == (120, 160, 3) and (image != 90).any()


class FakeTrack:
    """An aiortc-like incoming video track: ``recv`` returns the given frames, then ends (MediaStreamError)."""

    def __init__(self, frames, *, gap_s: float = 0.0):
        self.frames = list(frames)
        self.gap_s = gap_s

    async def recv(self):
        from aiortc.mediastreams import MediaStreamError

        if not self.frames:
            raise MediaStreamError
        await asyncio.sleep(self.gap_s)
        return self.frames.pop(0)


def run_sink(sink, track) -> None:
    """Attach ``track`` to ``sink`` and run its reader on an event loop until the track ends."""

    async def main():
        sink.addTrack(track)
        sink.start()
        await sink._task

    asyncio.run(main())


def test_a_participants_camera_is_send_only_and_its_sink_records_every_due_frame(engine, recording):
    """The participant's frames reach a sink track (nothing sent back); what is recorded is what on_frames records."""
    recorder, session_id = recording
    analyzer = StubAnalyzer()
    stream = LiveStream(lambda: LiveSession(session_id, analyzer=analyzer, recorder=recorder, role="participant",
                                            analysis_fps=10), send_back=False)  # fmt: skip
    assert stream.sink is not None and stream.send_back is False
    ended = []
    original = stream.on_ended
    stream.sink._on_ended = lambda: (ended.append(stream.session.state), original())
    run_sink(stream.sink, FakeTrack([make_frame(6000 * k) for k in range(15)], gap_s=0.01))  # 1 s at 15 fps
    assert wait_until(lambda: ended)  # the worker analysed what was left, then handled the end once
    assert ended == ["streaming"] and len(analyzer.calls) == 10  # at a 10 Hz analysis rate
    assert [t for _, t in analyzer.calls][:3] == pytest.approx([0.0, 12000 / 90000, 18000 / 90000])
    assert wait_until(lambda: _row(engine, session_id).stream_id is None)  # released for a resume, not ended
    assert status_of(engine, session_id) == "recording"
    run_sink(stream.sink, FakeTrack([make_frame(90000 * 60)]))  # START again: the same sink takes the new track
    assert wait_until(lambda: len(ended) == 2) and len(analyzer.calls) == 11
    with session_scope(engine) as db:
        assert len(load_observations(db, session_id)) == 11 and len(get_session(db, session_id).gaps) == 1


def test_a_sink_lets_older_images_go_and_counts_them_as_skipped_when_due(engine, recording):
    """Analysis busy: only the newest waiting frame keeps its image; the other due frames count as skipped."""
    from dashboard.live import FrameTime

    recorder, session_id = recording
    analyzer = StubAnalyzer()
    stream = LiveStream(lambda: LiveSession(session_id, analyzer=analyzer, recorder=recorder, role="participant",
                                            analysis_fps=10), send_back=False)  # fmt: skip
    seen = []
    sink = stream.sink
    sink._on_frames = lambda frames, arrival: (seen.append([type(f) for f in frames]), stream.analyse(frames, arrival))
    from dashboard.live import _Mailbox

    sink._box = box = _Mailbox()
    for k in range(3):  # three frames queued before the worker takes any
        sink.put(make_frame(9000 * k), time.time())
    box.close()
    sink._work(box, None)
    assert seen == [[FrameTime, FrameTime, av.VideoFrame]]
    assert len(analyzer.calls) == 1 and stream.snapshot().skipped == 2  # 3 frames 0.1 s apart, all due at 10 Hz
    assert stream.session.state == "finished"  # the end was handled after the frames


def test_frames_after_the_watchdog_released_a_frozen_stream_resume_the_session(engine, recording):
    """A network freeze longer than the stall window, then frames again on the same track: recorded again."""
    recorder, session_id = recording
    registry = LiveRegistry(stall_s=0.2)
    stream = new_stream(recorder, session_id, role="participant")
    registry.add(stream)
    asyncio.run(stream.on_frames([make_frame(0)]))
    assert wait_until(lambda: stream.session.state == "finished")  # released by the watchdog
    assert wait_until(lambda: _row(engine, session_id).stream_id is None)
    recorder.skip(session_id, 3)  # counts from before the freeze are not counted twice after the resume
    asyncio.run(stream.on_frames([make_frame(90000 * 2)]))  # the same track delivers again
    assert stream.session.state == "streaming"
    asyncio.run(stream.on_frames([make_frame(90000 * 3)]))
    assert wait_until(lambda: len(load_observations_of(engine, session_id)) == 3)
    shown = stream.snapshot().dropped
    stream.session.finish("complete")
    with session_scope(engine) as db:
        session = get_session(db, session_id)
        assert session.status == "complete" and len(session.gaps) == 1
        assert session.dropped_frames == shown == 3


def load_observations_of(engine, session_id):
    with session_scope(engine) as db:
        return load_observations(db, session_id)


def test_a_live_session_records_the_model_that_analyses_it(engine, recording):
    from types import SimpleNamespace

    recorder, session_id = recording
    analyzer = StubAnalyzer()
    analyzer.classifier = SimpleNamespace(model_id="fer2013_cnn.keras sha256:0123456789ab")
    stream = new_stream(recorder, session_id, analyzer=analyzer)
    asyncio.run(stream.on_frames([make_frame(0)]))
    assert _row(engine, session_id).model == "fer2013_cnn.keras sha256:0123456789ab"


def test_frames_above_the_analysis_rate_are_neither_analysed_nor_counted(engine, recording):
    recorder, session_id = recording
    analyzer = StubAnalyzer()
    stream = LiveStream(lambda: LiveSession(session_id, analyzer=analyzer, recorder=recorder, role="participant",
                                            analysis_fps=10), frame_width=160)  # fmt: skip
    outputs = [asyncio.run(stream.on_frames([make_frame(6000 * k)])) for k in range(15)]  # 1 s of a 15 fps camera
    assert len(analyzer.calls) == 10 and sum(len(out) for out in outputs) == 10  # 2 of every 3 frames
    assert [len(out) for out in outputs[:3]] == [1, 0, 1]  # nothing sent back: the video repeats its last frame
    assert stream.snapshot().skipped == 0  # frames left out by the rate are not "dropped"
    asyncio.run(stream.on_frames([make_frame(6000 * k) for k in (15, 16, 17)]))  # analysis was busy: 3 queued, 2 due
    assert len(analyzer.calls) == 11 and stream.snapshot().skipped == 1
    assert stream.media_constraints()["video"]["frameRate"] == {"ideal": 10.0}  # the browser is asked for the rate
    stream.session.finish("complete")
    with session_scope(engine) as db:
        assert get_session(db, session_id).skipped_frames == 1 and len(load_observations(db, session_id)) == 11


def test_a_participant_page_shows_no_annotated_video_in_a_small_player(app, engine, camera, video_dir):
    """The participant link's camera is send-only (no video back, so none annotated) and shows their own camera."""
    import cv2

    from sessions.repository import create_join_token

    with session_scope(engine) as db:
        session_id = create_session(db, study_id=get_or_create_study(db, "live").id, participant_code="P1").id
        token = create_join_token(db, session_id)
    at = app(query={"join": token})
    at.checkbox(key=f"part_consent_{session_id}").check().run()
    assert not at.exception
    call = camera.calls[-1]
    from streamlit_webrtc import WebRtcMode

    assert call["mode"] == WebRtcMode.SENDONLY and "queued_video_frames_callback" not in call
    assert call["sink_video_track"] is not None and "video_html_attrs" not in call
    assert call["media_stream_constraints"] == {
        "video": {"width": {"ideal": 640}, "height": {"ideal": 480}, "frameRate": {"ideal": 10.0}}, "audio": False}
    stream = at.session_state[f"part_stream_{session_id}"]
    assert stream.annotate is False and stream.sink is call["sink_video_track"]
    camera.playing = True
    at.run()
    assert not at.exception  # the self-view (the browser's own camera image) renders while the camera plays
    image = cv2.imread(str(video_dir / "single_face.jpg"))
    frame = av.VideoFrame.from_ndarray(image, format="bgr24")
    frame.pts, frame.time_base = 0, Fraction(1, 90000)
    assert stream.analyse([frame], time.time()) is not None
    assert stream.snapshot().faces == 1  # analysed and recorded all the same
    stream.session.finish("complete")
