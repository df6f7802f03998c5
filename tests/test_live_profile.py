"""The live benchmark's profile: py-spy's collapsed stacks sorted into the live path's stages."""

from __future__ import annotations

from benchmarks.live_profile import STAGES, breakdown, stage_of

WORKER = "thread (0x7f): Thread-12;_worker_thread (streamlit_webrtc/process.py:161);run_until_complete (asyncio/base_events.py:641)"
RAW = "\n".join([
    f"{WORKER};on_frames (dashboard/live.py:118);on_frame (sessions/live.py:211);analyze (fer_core/analyzer.py:143);"
    "predict (fer_core/classifier.py:201);preprocess_faces (fer_core/preprocessing.py:88) 7",
    f"{WORKER};on_frames (dashboard/live.py:118);on_frame (sessions/live.py:211);analyze (fer_core/analyzer.py:143);"
    "predict (fer_core/classifier.py:210);_invoke (fer_core/classifier.py:250) 20",
    f"{WORKER};on_frames (dashboard/live.py:118);on_frame (sessions/live.py:211);analyze (fer_core/analyzer.py:139);"
    "detect_faces (fer_core/detection.py:301) 10",
    f"{WORKER};on_frames (dashboard/live.py:116);to_ndarray (av/video/frame.py:1) 4",
    f"{WORKER};on_frames (dashboard/live.py:120);_preview (dashboard/live.py:127);fit_width (dashboard/live.py:60) 2",
    "thread (0x7e): Thread-3;run (threading.py:982);decoder_worker (aiortc/rtcrtpreceiver.py:100);"
    "Vp8Decoder.decode (aiortc/codecs/vpx.py:120) 9",
    "thread (0x7d): ScriptRunner.scriptThread;_run_script (streamlit/runtime/scriptrunner/script_runner.py:600) 5",
    "thread (0x7c): live-recorder;_flush (sessions/recorder.py:400);execute (sqlalchemy/orm/session.py:10) 3",
    "thread (0x7b): MainThread;run_forever (asyncio/base_events.py:608);_read_ready (asyncio/selector_events.py:1) 1",
    "py-spy> not a stack line",
])  # fmt: skip


def test_stacks_go_to_the_most_specific_stage():
    counts = breakdown(RAW)
    assert counts["crop + preprocessing"] == 7  # inside predict, but preprocessing
    assert counts["classification"] == 20 and counts["detection"] == 10
    assert counts["colour conversion + resize"] == 4
    assert counts["preview encode"] == 2  # the preview's resize belongs to the preview
    assert counts["decode (VP8/H.264)"] == 9 and counts["page reruns"] == 5 and counts["live session + recorder"] == 3
    assert counts["other (WebRTC transport, event loops)"] == 1
    assert sum(counts.values()) == 61  # every stack line counted once, the rest ignored
    assert set(counts) <= {name for name, _ in STAGES}


def test_an_encoder_stack_is_preview_encode():
    assert stage_of("thread (1): T;_next_encoded_frame (aiortc/rtcrtpsender.py:300);Vp8Encoder.encode (aiortc/codecs/vpx.py:200)") == "preview encode"
