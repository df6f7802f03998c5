"""IoU, IoU tracking and time-constant EMA smoothing (irregular time steps included)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from fer_core.tracking import EmaSmoother, IouTracker, ema_alpha, iou


def test_iou_known_values():
    a = [[0, 0, 10, 10]]
    b = [[0, 0, 10, 10], [5, 0, 10, 10], [20, 20, 5, 5], [0, 0, 0, 0]]
    np.testing.assert_allclose(iou(a, b), [[1.0, 50 / 150, 0.0, 0.0]])
    assert iou(np.zeros((0, 4)), b).shape == (0, 4)
    # Extra columns (scores) are ignored.
    np.testing.assert_allclose(iou([[0, 0, 10, 10, 0.9]], [[0, 0, 10, 10, 0.1]]), [[1.0]])


def test_tracker_keeps_ids_of_moving_faces_and_numbers_new_ones():
    tracker = IouTracker(iou_threshold=0.3, max_age_s=0.5)
    first = tracker.update([[0, 0, 100, 100], [300, 0, 100, 100]], 0.0)
    # Both move by a few pixels, listed in the other order; a third face appears.
    second = tracker.update([[305, 4, 100, 100], [6, 2, 100, 100], [600, 300, 80, 80]], 0.04)
    assert list(first) == [0, 1]
    assert list(second) == [1, 0, 2]


def test_tracker_ends_tracks_after_max_age():
    tracker = IouTracker(max_age_s=0.5)
    assert tracker.update([[0, 0, 100, 100]], 0.0)[0] == 0
    assert len(tracker.update([], 0.3)) == 0
    assert tracker.update([[0, 0, 100, 100]], 0.4)[0] == 0  # within max_age: same face
    tracker.update([], 0.8)
    assert tracker.update([[0, 0, 100, 100]], 1.0)[0] == 1  # 0.6 s unseen: a new track
    with pytest.raises(ValueError, match="non-decreasing"):
        tracker.update([], 0.5)


def test_ema_alpha_formula():
    assert ema_alpha(0.1, 0.0) == 1.0
    assert ema_alpha(0.0, 0.5) == 0.0
    assert ema_alpha(0.5, 0.5) == pytest.approx(1 - math.exp(-1))


def test_smoothing_with_irregular_steps_follows_exponential_decay():
    tau = 0.4
    smoother = EmaSmoother(time_constant_s=tau)
    start = np.array([[1.0, 0.0]], np.float32)
    target = np.array([[0.0, 1.0]], np.float32)
    smoother.update([7], start, 0.0)
    times = [0.013, 0.05, 0.051, 0.2, 0.47, 0.9]  # irregular, like dropped frames
    for t in times:
        out = smoother.update([7], target, t)
    # A step input decays as exp(-t / tau) whatever the steps were.
    np.testing.assert_allclose(out[0], [math.exp(-0.9 / tau), 1 - math.exp(-0.9 / tau)], rtol=1e-5)


def test_smoothing_does_not_depend_on_frame_rate():
    results = []
    for fps in (10, 30, 60):
        smoother = EmaSmoother(time_constant_s=0.5)
        smoother.update([0], [[1.0, 0.0]], 0.0)
        for i in range(1, fps + 1):
            out = smoother.update([0], [[0.0, 1.0]], i / fps)
        results.append(out[0])
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5)
    np.testing.assert_allclose(results[1], results[2], rtol=1e-5)


def test_smoother_tracks_are_independent_and_can_be_forgotten():
    smoother = EmaSmoother(time_constant_s=1.0)
    smoother.update([1, 2], [[1.0, 0.0], [0.0, 1.0]], 0.0)
    out = smoother.update([2], [[1.0, 0.0]], 1.0)
    np.testing.assert_allclose(out[0], [1 - math.exp(-1), math.exp(-1)], rtol=1e-5)
    smoother.retain([2])
    assert set(smoother.state_) == {2}
    np.testing.assert_allclose(smoother.update([1], [[0.0, 1.0]], 2.0)[0], [0.0, 1.0])  # restarted
