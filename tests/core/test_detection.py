"""Face detector backends on the real stills, plus the common interface's contract."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from fer_core.detection import DEFAULT_DETECTOR, DETECTOR_NAMES, create_detector
from fer_core.tracking import iou


@pytest.fixture(scope="module")
def stills(video_dir):
    return {name: cv2.imread(str(video_dir / name)) for name in ("single_face.jpg", "multi_face.jpg")}


@pytest.fixture(scope="module", params=DETECTOR_NAMES)
def detector(request):
    return create_detector(request.param)


def _check_boxes(boxes, frame):
    assert boxes.dtype == np.float32 and boxes.ndim == 2 and boxes.shape[1] == 5
    height, width = frame.shape[:2]
    assert (boxes[:, :2] >= 0).all()
    assert (boxes[:, 0] + boxes[:, 2] <= width + 1e-3).all() and (boxes[:, 1] + boxes[:, 3] <= height + 1e-3).all()
    assert ((boxes[:, 4] >= 0) & (boxes[:, 4] <= 1)).all()
    assert (np.diff(boxes[:, 4]) <= 0).all(), "boxes come best first"


def test_single_face_still_has_one_face(detector, stills):
    frame = stills["single_face.jpg"]
    boxes = detector.detect(frame)
    _check_boxes(boxes, frame)
    assert len(boxes) == 1
    # The face is the man's, near the middle of the 572x562 still (hand-checked box 190,150,180,240).
    assert iou(boxes, [[190, 150, 180, 240]])[0, 0] > 0.4


# multi_face.jpg shows five people; BlazeFace short-range is made for faces close to a webcam and
# misses the smaller ones, Haar adds a duplicate box.
@pytest.mark.parametrize(
    ("name", "low", "high"), [("ssd", 5, 5), ("blazeface_full", 5, 5), ("haar", 5, 6), ("blazeface", 2, 5)]
)
def test_multi_face_still_has_several_faces(name, low, high, stills):
    frame = stills["multi_face.jpg"]
    boxes = create_detector(name).detect(frame)
    _check_boxes(boxes, frame)
    assert low <= len(boxes) <= high


def test_blank_frame_has_no_face(detector):
    boxes = detector.detect(np.full((240, 320, 3), 128, np.uint8))
    assert boxes.shape == (0, 5) and boxes.dtype == np.float32


def test_min_face_size_and_confidence_filter(stills):
    frame = stills["multi_face.jpg"]
    assert len(create_detector("ssd", min_face_size=400).detect(frame)) == 0
    loose = create_detector("ssd", confidence=0.3).detect(frame)
    strict = create_detector("ssd", confidence=0.95).detect(frame)
    assert len(strict) < len(loose)
    assert (strict[:, 4] >= 0.95).all()


def test_boxes_at_the_border_are_clipped(stills):
    # Cut the still at x = 300 through the face (x 192-375): the face sticks out of the left edge.
    frame = np.ascontiguousarray(stills["single_face.jpg"][:, 300:])
    for name in ("ssd", "blazeface"):
        boxes = create_detector(name).detect(frame)
        assert len(boxes) >= 1, f"{name} lost the face cut by the left edge"
        assert boxes[:, 0].min() == 0, f"{name}: the cut face's box should be clipped to x = 0"
        _check_boxes(boxes, frame)


def test_bad_arguments_and_frames_are_named():
    with pytest.raises(ValueError, match="detector name has to be one of"):
        create_detector("yolo")
    with pytest.raises(ValueError, match="min_face_size"):
        create_detector(DEFAULT_DETECTOR, min_face_size=0)
    with pytest.raises(ValueError, match="confidence"):
        create_detector(DEFAULT_DETECTOR, confidence=1.5)
    detector = create_detector(DEFAULT_DETECTOR)
    with pytest.raises(ValueError, match="uint8"):
        detector.detect(np.zeros((48, 48, 3), np.float32))
    with pytest.raises(ValueError, match=r"\(H, W, 3\)"):
        detector.detect(np.zeros((48, 48), np.uint8))
