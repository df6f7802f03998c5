"""Face finding for datasets: cropping the largest face from full photos, and face-detection cleaning.

Uses the core's detector (:func:`fer_core.detection.create_detector`), so evaluation and cleaning
see faces the way the live analyzer does. FER2013's 48x48 crops are too small for the detectors'
minimum face size and receptive fields, so small images are first upsampled (bicubic) to
``upsample_to`` pixels; a face that fills a 48x48 crop becomes a 192x192 face.
"""

from __future__ import annotations

import cv2
import numpy as np

from fer_core.detection import DEFAULT_DETECTOR
from fer_core.preprocessing import crop_face


class FaceCropper:
    """Find the largest face in an image and return its crop (with the model's margin), or None.

    Parameters
    ----------
    detector : str, default :data:`fer_core.detection.DEFAULT_DETECTOR`
        Backend name for :func:`fer_core.detection.create_detector`; the default is the live analyzer's, so
        evaluation and cleaning crop faces the way the dashboard does.
    margin : float, default 0.15
        Margin added around the box before cropping (``PreprocessSpec.margin``).
    upsample_to : int, default 192
        Images whose shorter side is below this are enlarged (bicubic) so that it reaches this many
        pixels before detection; boxes are mapped back to the original image.
    confidence : float, optional
        Detector score threshold (the detector's default when None).
    min_face_size : int, default 24
        Smallest face side in pixels of the (upsampled) image.

    Attributes
    ----------
    detector_ : FaceDetector
        Built on first use.

    Raises
    ------
    ValueError
        If ``upsample_to`` is negative; an unknown ``detector`` name raises ``ValueError`` on first use
        (:func:`fer_core.detection.create_detector`).
    """

    def __init__(
        self,
        detector: str = DEFAULT_DETECTOR,
        *,
        margin: float = 0.15,
        upsample_to: int = 192,
        confidence: float | None = None,
        min_face_size: int = 24,
    ):
        if upsample_to < 0:
            raise ValueError(f"upsample_to has to be >= 0 pixels; got {upsample_to}")
        self.detector = detector
        self.margin = margin
        self.upsample_to = upsample_to
        self.confidence = confidence
        self.min_face_size = min_face_size
        self.detector_ = None

    def _detector(self):
        if self.detector_ is None:
            from fer_core.detection import create_detector

            kwargs = {"min_face_size": self.min_face_size}
            if self.confidence is not None:
                kwargs["confidence"] = self.confidence
            self.detector_ = create_detector(self.detector, **kwargs)
        return self.detector_

    def largest_face(self, image: np.ndarray) -> tuple[int, int, int, int] | None:
        """Return the largest face box (x, y, w, h) in pixels of ``image``, or None.

        Parameters
        ----------
        image : ndarray of shape (H, W), (H, W, 1) or (H, W, 3) BGR, dtype uint8
        """
        frame = image[:, :, 0] if image.ndim == 3 and image.shape[2] == 1 else image
        if frame.ndim == 2:
            frame = cv2.cvtColor(frame, cv2.COLOR_GRAY2BGR)
        scale = 1.0
        short = min(frame.shape[:2])
        if self.upsample_to and short < self.upsample_to:
            scale = self.upsample_to / short
            frame = cv2.resize(frame, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
        boxes = self._detector().detect(np.ascontiguousarray(frame))
        if len(boxes) == 0:
            return None
        x, y, w, h = boxes[int(np.argmax(boxes[:, 2] * boxes[:, 3])), :4] / scale
        return int(round(x)), int(round(y)), max(1, int(round(w))), max(1, int(round(h)))

    def has_face(self, image: np.ndarray) -> bool:
        """Return True when the detector finds at least one face in ``image`` (gray or BGR, as :meth:`largest_face`)."""
        return self.largest_face(image) is not None

    def has_face_rgb(self, image: np.ndarray) -> bool:
        """Like :meth:`has_face` for model input, whose 3-channel images are RGB (``preprocess_faces``)."""
        if image.ndim == 3 and image.shape[2] == 3:
            image = np.ascontiguousarray(image[:, :, ::-1])
        return self.largest_face(image) is not None

    def __call__(self, image: np.ndarray) -> np.ndarray | None:
        """Return the crop of the largest face, or None when there is none.

        Parameters
        ----------
        image : ndarray of shape (H, W) or (H, W, C), uint8
            Grayscale or BGR image, any size.

        Returns
        -------
        ndarray of shape (h, w) or (h, w, C), uint8, or None
            A view of ``image``: the largest face's box grown by ``margin`` and clipped to the image.
        """
        box = self.largest_face(image)
        return None if box is None else crop_face(image, box, self.margin)
