"""The live benchmark's profile: py-spy's collapsed stacks sorted into the live path's stages, CPU split by thread."""

from __future__ import annotations

import pytest

from benchmarks.live_profile import NATIVE, STAGES, breakdown, stage_of

WORKER = "thread (101): Thread-12;_worker_thread (streamlit_webrtc/process.py:161);run_until_complete (asyncio/base_events.py:641)"
DECODER = "thread (102): Thread-3;run (threading.py:982);decoder_worker (aiortc/rtcrtpreceiver.py:100)"
RAW = "\n".join([
    f"{WORKER};on_frames (dashboard/live.py:118);on_frame (sessions/live.py:211);analyze (fer_core/analyzer.py:143);"
    "predict (fer_core/classifier.py:201);preprocess_faces (fer_core/preprocessing.py:88) 10",
    f"{WORKER};on_frames (dashboard/live.py:118);on_frame (sessions/live.py:211);analyze (fer_core/analyzer.py:143);"
    "predict (fer_core/classifier.py:210);_invoke (fer_core/classifier.py:250) 20",
    f"{WORKER};on_frames (dashboard/live.py:118);on_frame (sessions/live.py:211);analyze (fer_core/analyzer.py:139);"
    "detect_faces (fer_core/detection.py:301) 10",
    f"{WORKER};on_frames (dashboard/live.py:116);_analysis_image (dashboard/live.py:146) 5",
    f"{WORKER};on_frames (dashboard/live.py:120);_preview (dashboard/live.py:127);fit_width (dashboard/live.py:60) 5",
    f"{DECODER};Vp8Decoder.decode (aiortc/codecs/vpx.py:120) 9",
    f"{DECODER};Queue.get (queue.py:171);Condition.wait (threading.py:320) 30",  # waiting: left out
    "thread (103): ScriptRunner.scriptThread;_run_script (streamlit/runtime/scriptrunner/script_runner.py:600) 5",
    "thread (104): live-recorder;_flush (sessions/recorder.py:400);execute (sqlalchemy/orm/session.py:10) 3",
    "thread (105): MainThread;run_forever (asyncio/base_events.py:608);EpollSelector.select (selectors.py:468) 50",
    "py-spy> not a stack line",
])  # fmt: skip


def test_stacks_go_to_the_most_specific_stage_and_waits_are_left_out():
    counts = breakdown(RAW)
    assert counts["crop + preprocessing"] == 10  # inside predict, but preprocessing
    assert counts["classification"] == 20 and counts["detection"] == 10
    assert counts["colour conversion + resize"] == 5  # PyAV's Cython to_ndarray has no frame: its caller does
    assert counts["preview encode"] == 5  # the preview's resize belongs to the preview
    assert counts["decode (VP8/H.264)"] == 9 and counts["page reruns"] == 5 and counts["live session + recorder"] == 3
    assert sum(counts.values()) == 67  # the waiting decoder and event loop, and the non-stack line, are not counted
    assert set(counts) <= {name for name, _ in STAGES}


def test_each_threads_cpu_is_split_over_its_own_stages():
    cpu = breakdown(RAW, {101: 0.5, 102: 0.2, 105: 0.1, 999: 0.3})  # seconds; 999 has no Python frame
    assert cpu["classification"] == pytest.approx(0.5 * 20 / 50) and cpu["detection"] == pytest.approx(0.1)
    assert cpu["decode (VP8/H.264)"] == pytest.approx(0.2)  # its waits take none of it
    assert cpu[NATIVE] == pytest.approx(0.3)
    assert cpu["other (WebRTC transport, event loops)"] == pytest.approx(0.1)  # the event loop, seen only waiting
    assert sum(cpu.values()) == pytest.approx(1.1)  # every second of the process's threads is somewhere


def test_an_encoder_stack_is_preview_encode():
    assert stage_of("_next_encoded_frame (aiortc/rtcrtpsender.py:300);Vp8Encoder.encode (aiortc/codecs/vpx.py:200)") == "preview encode"
