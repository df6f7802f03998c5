"""Frame analysis: detect, track, classify and smooth the faces of one frame.

:class:`FrameAnalyzer` holds one detector, one shared classifier, an IoU tracker and a smoother.
Each :meth:`FrameAnalyzer.analyze` call makes at most one detector call (every ``detect_every``-th
frame; in between the last boxes are reused) and one batched classifier call for all faces.
The analyzer keeps per-stream state (tracks, averages): build one per stream; the classifier may
be shared across analyzers and threads.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from fer_core.attention import DEFAULT_MAX_ANGLE_DEG, attentive, check_max_angle, head_pose
from fer_core.detection import FaceDetector, check_frame, create_detector, detect_faces
from fer_core.emotions import ATTENTION_COLUMNS, EMOTIONS, NO_FACE_ID, OBSERVATION_COLUMNS
from fer_core.preprocessing import crop_face
from fer_core.tracking import EmaSmoother, IouTracker

#: ``dominant`` value of a row that records a frame with no face.
NO_FACE_LABEL = "none"


class FaceResult(NamedTuple):
    """One face in one frame.

    Attributes
    ----------
    face_id : int
        Track id, stable while the face stays in view (IoU tracking).
    box : tuple of int
        ``(x, y, w, h)`` in pixels of the analysed frame.
    probs : ndarray of shape (7,), dtype float32
        Raw probabilities in FER2013 order.
    smoothed : ndarray of shape (7,), dtype float32
        Time-constant EMA of ``probs`` over the track.
    dominant : str
        Name of the largest smoothed probability.
    yaw_deg, pitch_deg : float
        Head yaw and pitch in degrees from the camera axis (:func:`fer_core.attention.head_pose`: yaw positive
        towards the image's right, pitch positive up); NaN when the detector gives no keypoints.
    attentive : bool or None
        Face turned to the screen (both angles within the analyzer's ``max_head_angle_deg``); None when the
        pose is unknown.
    """

    face_id: int
    box: tuple[int, int, int, int]
    probs: np.ndarray
    smoothed: np.ndarray
    dominant: str
    yaw_deg: float = math.nan
    pitch_deg: float = math.nan
    attentive: bool | None = None


class FrameAnalyzer:
    """Analyze a stream of BGR frames into tracked, smoothed per-face emotions.

    Parameters
    ----------
    classifier : EmotionClassifier
        Loaded classifier (shared, read-only).
    detector : FaceDetector, optional
        Face detector for this stream; default ``create_detector()``.
    smoothing_s : float, default 0.5
        EMA time constant in seconds (0: no smoothing).
    detect_every : int, default 1
        Run the detector on every k-th frame and reuse its boxes in between.
    iou_threshold : float, default 0.3
        Smallest IoU for a box to continue a track.
    max_age_s : float, default 1.0
        Seconds a track survives unseen.
    max_head_angle_deg : float, default 30
        Largest head yaw and pitch (degrees) of an attentive face (:data:`fer_core.attention.DEFAULT_MAX_ANGLE_DEG`).
        The pose comes from the detector's keypoints (:func:`fer_core.detection.detect_faces`); with a detector
        that gives none (SSD, Haar) every face's pose and attention are unknown (NaN, None).
    """

    def __init__(
        self,
        classifier,
        detector: FaceDetector | None = None,
        *,
        smoothing_s: float = 0.5,
        detect_every: int = 1,
        iou_threshold: float = 0.3,
        max_age_s: float = 1.0,
        max_head_angle_deg: float = DEFAULT_MAX_ANGLE_DEG,
    ):
        if int(detect_every) != detect_every or detect_every < 1:
            raise ValueError(f"detect_every has to be a positive integer; got {detect_every!r}")
        if smoothing_s < 0:
            raise ValueError(f"smoothing_s has to be >= 0 seconds; got {smoothing_s}")
        self.classifier = classifier
        self.detector = detector if detector is not None else create_detector()
        self.smoothing_s = smoothing_s
        self.detect_every = int(detect_every)
        self.max_head_angle_deg = check_max_angle(max_head_angle_deg)
        self.tracker_ = IouTracker(iou_threshold=iou_threshold, max_age_s=max_age_s)
        self.smoother_ = EmaSmoother(time_constant_s=smoothing_s)
        self.margin_ = classifier.spec_.margin
        self.frames_seen_ = 0
        self._boxes = np.zeros((0, 5), np.float32)
        self._ids = np.zeros(0, np.int64)
        self._pose = np.zeros((0, 2))
        self._last_time: float | None = None

    def reset(self) -> None:
        """Forget tracks, averages and the frame count (a new stream)."""
        self.tracker_ = IouTracker(iou_threshold=self.tracker_.iou_threshold, max_age_s=self.tracker_.max_age_s)
        self.smoother_ = EmaSmoother(time_constant_s=self.smoothing_s)
        self.frames_seen_ = 0
        self._boxes = np.zeros((0, 5), np.float32)
        self._ids = np.zeros(0, np.int64)
        self._pose = np.zeros((0, 2))
        self._last_time = None

    def analyze(self, frame_bgr: np.ndarray, time_s: float) -> list[FaceResult]:
        """Analyze one frame.

        Parameters
        ----------
        frame_bgr : ndarray of shape (H, W, 3), dtype uint8
            BGR frame of any size.
        time_s : float
            Frame time in seconds (from the decoder or the WebRTC frame); non-decreasing.

        Returns
        -------
        list of FaceResult
            One per face, best detection first; empty when no face is found.

        Raises
        ------
        ValueError
            If the frame is not (H, W, 3) uint8, or ``time_s`` is not finite or goes back in time.
        """
        check_frame(frame_bgr, "frame_bgr")
        time_s = float(time_s)
        if not math.isfinite(time_s):
            raise ValueError(f"time_s has to be a finite number of seconds; got {time_s}")
        if self._last_time is not None and time_s < self._last_time:
            raise ValueError(f"time_s has to be non-decreasing; got {time_s} after {self._last_time}")
        self._last_time = time_s
        if self.frames_seen_ % self.detect_every == 0:
            self._boxes, keypoints = detect_faces(self.detector, frame_bgr)
            self._pose = np.full((len(self._boxes), 2), np.nan) if keypoints is None else head_pose(keypoints)
            self._ids = self.tracker_.update(self._boxes, time_s)
            self.smoother_.retain(self.tracker_.tracks_)
        self.frames_seen_ += 1
        if len(self._boxes) == 0:
            return []
        crops = [crop_face(frame_bgr, box[:4], self.margin_) for box in self._boxes]
        probs = self.classifier.predict(crops)
        smoothed = self.smoother_.update(self._ids, probs, time_s)
        looking = attentive(self._pose[:, 0], self._pose[:, 1], self.max_head_angle_deg)
        results = []
        for face_id, box, raw, smooth, (yaw, pitch), att in zip(
            self._ids, self._boxes, probs, smoothed, self._pose, looking, strict=True
        ):
            x, y, w, h = (int(round(float(v))) for v in box[:4])
            results.append(FaceResult(int(face_id), (x, y, w, h), raw, smooth, EMOTIONS[int(np.argmax(smooth))],
                                      float(yaw), float(pitch), att))  # fmt: skip
        return results


def observation_rows(
    frame_index: int, time_s: float, results: list[FaceResult], *, smoothed: bool = False
) -> list[dict]:
    """Turn one frame's results into rows keyed by :data:`OBSERVATION_COLUMNS` and :data:`ATTENTION_COLUMNS`.

    Parameters
    ----------
    frame_index : int
        Index of the frame in its source (0-based, decoded frames).
    time_s : float
        Frame time in seconds.
    results : list of FaceResult
        Output of :meth:`FrameAnalyzer.analyze`.
    smoothed : bool, default False
        Store the smoothed probabilities instead of the raw ones.

    Returns
    -------
    list of dict
        One row per face; when ``results`` is empty, one no-face row with ``face_id`` =
        :data:`NO_FACE_ID`, NaN box and probabilities and ``dominant`` = ``"none"``. ``yaw_deg``, ``pitch_deg``
        (degrees, NaN when unknown) and ``attentive`` (True/False, None when the pose is unknown) come from the
        results (results without them: unknown); a frame without a face is not attentive (False).
    """
    if not results:
        row = dict.fromkeys((*OBSERVATION_COLUMNS, *ATTENTION_COLUMNS), math.nan)
        row.update(time_s=float(time_s), frame=int(frame_index), face_id=NO_FACE_ID, dominant=NO_FACE_LABEL,
                   attentive=False)  # fmt: skip
        return [row]
    rows = []
    for result in results:
        values = result.smoothed if smoothed else result.probs
        x, y, w, h = result.box
        row = {
            "time_s": float(time_s),
            "frame": int(frame_index),
            "face_id": result.face_id,
            "x": x,
            "y": y,
            "w": w,
            "h": h,
        }
        row.update(zip(EMOTIONS, (float(v) for v in values), strict=True))
        row["dominant"] = EMOTIONS[int(np.argmax(values))]
        row["yaw_deg"] = float(getattr(result, "yaw_deg", math.nan))
        row["pitch_deg"] = float(getattr(result, "pitch_deg", math.nan))
        row["attentive"] = getattr(result, "attentive", None)
        rows.append(row)
    return rows
