"""FrameAnalyzer on the real clip: stable ids, detection every k-th frame, rows, bad frames."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fer_core.analyzer import FaceResult, FrameAnalyzer, observation_rows
from fer_core.detection import create_detector
from fer_core.emotions import ATTENTION_COLUMNS, EMOTIONS, NO_FACE_ID, OBSERVATION_COLUMNS


class CountingDetector:
    """Wraps a detector and counts its calls."""

    def __init__(self, detector):
        self.detector = detector
        self.calls = 0

    def detect(self, frame_bgr):
        self.calls += 1
        return self.detector.detect(frame_bgr)


def test_track_id_is_stable_over_single_face_clip(tiny_classifier, single_face_frames):
    analyzer = FrameAnalyzer(tiny_classifier, create_detector("blazeface"))
    ids = []
    for time_s, frame in single_face_frames:
        results = analyzer.analyze(frame, time_s)
        assert len(results) == 1
        ids.append(results[0].face_id)
    assert set(ids) == {0}
    result = results[0]
    assert isinstance(result, FaceResult)
    assert result.probs.shape == (7,) and result.smoothed.shape == (7,)
    assert result.dominant == EMOTIONS[int(np.argmax(result.smoothed))]
    assert all(isinstance(v, int) for v in result.box)


def test_detect_every_third_frame_reuses_boxes(tiny_classifier, single_face_frames):
    counting = CountingDetector(create_detector("blazeface"))
    analyzer = FrameAnalyzer(tiny_classifier, counting, detect_every=3)
    boxes = [analyzer.analyze(frame, t)[0].box for t, frame in single_face_frames[:9]]
    assert counting.calls == 3
    assert boxes[0] == boxes[1] == boxes[2] and boxes[3] == boxes[4] == boxes[5]


def test_smoothed_probs_lag_raw_ones(tiny_classifier, single_face_frames):
    smooth = FrameAnalyzer(tiny_classifier, create_detector("blazeface"), smoothing_s=10.0)
    raw = FrameAnalyzer(tiny_classifier, create_detector("blazeface"), smoothing_s=0.0)
    for t, frame in single_face_frames[:20]:
        a, b = smooth.analyze(frame, t)[0], raw.analyze(frame, t)[0]
    np.testing.assert_allclose(b.smoothed, b.probs)
    assert not np.allclose(a.smoothed, a.probs)


def test_bad_frames_and_times_are_named(tiny_classifier):
    analyzer = FrameAnalyzer(tiny_classifier, create_detector("blazeface"))
    with pytest.raises(ValueError, match="frame_bgr has to be uint8"):
        analyzer.analyze(np.zeros((48, 48, 3), np.float64), 0.0)
    with pytest.raises(ValueError, match=r"frame_bgr has to have shape \(H, W, 3\)"):
        analyzer.analyze(np.zeros((48, 48, 4), np.uint8), 0.0)
    with pytest.raises(ValueError, match="numpy array"):
        analyzer.analyze([[0, 0, 0]], 0.0)
    analyzer.analyze(np.zeros((48, 48, 3), np.uint8), 1.0)
    with pytest.raises(ValueError, match="non-decreasing"):
        analyzer.analyze(np.zeros((48, 48, 3), np.uint8), 0.5)
    with pytest.raises(ValueError, match="detect_every"):
        FrameAnalyzer(tiny_classifier, detect_every=0)


def test_observation_rows_for_faces_and_no_face():
    probs = np.array([0.1, 0, 0, 0.6, 0.1, 0.1, 0.1], np.float32)
    result = FaceResult(3, (1, 2, 30, 40), probs, probs, "happy")
    (row,) = observation_rows(5, 0.2, [result])
    assert list(row) == [*OBSERVATION_COLUMNS, *ATTENTION_COLUMNS]
    assert (
        row["face_id"] == 3 and row["frame"] == 5 and row["happy"] == pytest.approx(0.6) and row["dominant"] == "happy"
    )
    (empty,) = observation_rows(6, 0.25, [])
    assert empty["face_id"] == NO_FACE_ID and empty["dominant"] == "none"
    assert all(math.isnan(empty[c]) for c in ("x", "y", "w", "h", *EMOTIONS))


def test_draw_results_marks_the_box():
    from fer_core.drawing import draw_results

    probs = np.full(7, 1 / 7, np.float32)
    frame = np.zeros((200, 300, 3), np.uint8)
    drawn = draw_results(frame, [FaceResult(0, (50, 60, 100, 80), probs, probs, "angry")], copy=True)
    assert drawn.shape == frame.shape and drawn.dtype == np.uint8
    assert not frame.any(), "copy=True leaves the input alone"
    assert drawn[60 + 40, 50].any() and drawn[60 + 40, 150].any(), "box edges are drawn"
    assert not drawn[100, 100].any(), "the face itself is not covered"
    with pytest.raises(ValueError, match="uint8"):
        draw_results(frame.astype(np.float32), [])
