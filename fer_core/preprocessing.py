"""The one preprocessing path from a face crop to the classifier's input, for training and inference.

Training (FER2013 rows, image folders) and inference (faces cut from webcam frames or videos) both
call :func:`preprocess_faces`; faces cut from a frame go through :func:`crop_face` first, with the
margin recorded in the model's metadata. The model itself rescales pixel values (a
``Rescaling(1/255)`` layer inside the network, as in the keras-io examples), so the arrays produced
here stay ``uint8`` and the training/serving skew has nowhere to hide.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import cv2
import numpy as np

#: Identifier written into model metadata; loading a model whose metadata names another scheme fails.
PREPROCESSING_NAME = "fer_core.preprocess_faces/v1"


@dataclass(frozen=True)
class PreprocessSpec:
    """How a face crop becomes model input. Stored in every model file's metadata.

    Parameters
    ----------
    input_size : int, default 48
        Side of the square model input in pixels (FER2013 images are 48x48).
    channels : {1, 3}, default 1
        1 for grayscale (FER2013), 3 for RGB (e.g. EfficientNet).
    margin : float, default 0.15
        Fraction of the detector's box side added on every side before cropping a face from a frame,
        so that live crops frame the face like FER2013's aligned crops (forehead to chin with a little
        background). Ignored for images that are already face crops (FER2013 rows).
    name : str
        Preprocessing scheme identifier (:data:`PREPROCESSING_NAME`).
    """

    input_size: int = 48
    channels: int = 1
    margin: float = 0.15
    name: str = PREPROCESSING_NAME

    def __post_init__(self) -> None:
        if self.input_size < 8:
            raise ValueError(f"input_size has to be at least 8 pixels; got {self.input_size}")
        if self.channels not in (1, 3):
            raise ValueError(f"channels has to be 1 (grayscale) or 3 (RGB); got {self.channels}")
        if not 0.0 <= self.margin <= 1.0:
            raise ValueError(f"margin has to be in [0, 1]; got {self.margin}")

    def to_dict(self) -> dict:
        """Return the spec as a JSON-serialisable dict (for model metadata)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> PreprocessSpec:
        """Build a spec from model metadata.

        Raises
        ------
        ValueError
            If the metadata names a preprocessing scheme other than :data:`PREPROCESSING_NAME`
            or holds invalid values.
        """
        name = data.get("name", PREPROCESSING_NAME)
        if name != PREPROCESSING_NAME:
            raise ValueError(
                f"model was trained with preprocessing {name!r}, this code implements {PREPROCESSING_NAME!r}"
            )
        return cls(
            input_size=int(data["input_size"]),
            channels=int(data["channels"]),
            margin=float(data.get("margin", 0.15)),
            name=name,
        )


def _to_channels(image: np.ndarray, channels: int, *, color_order: str) -> np.ndarray:
    """Convert one (H, W), (H, W, 1), (H, W, 3) or (H, W, 4) uint8 image to 1 or 3 channels."""
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[:, :, 0]
    if image.ndim == 2:
        return image if channels == 1 else cv2.cvtColor(image, cv2.COLOR_GRAY2RGB)
    if image.ndim != 3 or image.shape[2] not in (3, 4):
        raise ValueError(f"face image has to be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); got shape {image.shape}")
    if image.shape[2] == 4:
        image = image[:, :, :3]
    if channels == 1:
        code = cv2.COLOR_BGR2GRAY if color_order == "bgr" else cv2.COLOR_RGB2GRAY
        return cv2.cvtColor(np.ascontiguousarray(image), code)
    return image[:, :, ::-1] if color_order == "bgr" else image


def preprocess_faces(faces, spec: PreprocessSpec | None = None, *, color_order: str = "bgr") -> np.ndarray:
    """Turn face crops of any size and colour mode into the classifier's input batch.

    This is the only function that prepares model input: the training loaders call it on dataset
    images and the inference core calls it on crops cut by :func:`crop_face`.

    Parameters
    ----------
    faces : ndarray or sequence of ndarray
        Either a batch array of shape (N, H, W) or (N, H, W, C), or a sequence of N images each of
        shape (H, W) or (H, W, C) with C in {1, 3, 4}; dtype uint8 (0-255). Sizes may differ.
    spec : PreprocessSpec, optional
        Target size and channels (default: 48x48 grayscale).
    color_order : {"bgr", "rgb"}, default "bgr"
        Channel order of 3/4-channel inputs (OpenCV frames are BGR).

    Returns
    -------
    ndarray of shape (N, S, S, C), dtype uint8
        ``S = spec.input_size``, ``C = spec.channels``. Resized with area interpolation when
        shrinking and bilinear when enlarging.

    Raises
    ------
    ValueError
        If an image is empty, not uint8, or has an unsupported shape; the message gives its index.
    """
    spec = spec or PreprocessSpec()
    if color_order not in ("bgr", "rgb"):
        raise ValueError(f"color_order has to be 'bgr' or 'rgb'; got {color_order!r}")
    size = spec.input_size
    if isinstance(faces, np.ndarray) and faces.ndim in (3, 4) and faces.dtype == np.uint8:
        # Fast path: a batch that is already the right size (FER2013 rows). A BGR colour batch
        # still goes through the loop below, which turns it into RGB like any other colour face.
        same_channels = (faces.ndim == 3 and spec.channels == 1) or (
            faces.ndim == 4 and faces.shape[3] == spec.channels and (spec.channels == 1 or color_order == "rgb")
        )
        if faces.shape[1:3] == (size, size) and same_channels:
            return faces.reshape(len(faces), size, size, spec.channels)
    n = len(faces)
    out = np.empty((n, size, size, spec.channels), dtype=np.uint8)
    for i in range(n):
        image = np.asarray(faces[i])
        if image.dtype != np.uint8:
            raise ValueError(f"face {i} has to be uint8 (0-255); got dtype {image.dtype}")
        if image.size == 0 or image.ndim < 2 or min(image.shape[:2]) < 1:
            raise ValueError(f"face {i} is empty; got shape {image.shape}")
        image = _to_channels(image, spec.channels, color_order=color_order)
        h, w = image.shape[:2]
        if (h, w) != (size, size):
            interp = cv2.INTER_AREA if h > size or w > size else cv2.INTER_LINEAR
            image = cv2.resize(image, (size, size), interpolation=interp)
        out[i] = image.reshape(size, size, spec.channels)
    return out


def expand_box(box, margin: float, frame_shape) -> tuple[int, int, int, int]:
    """Grow a face box into a square with ``margin`` on every side, clipped to the frame.

    Parameters
    ----------
    box : (x, y, w, h)
        Face box in pixels, top-left corner plus width and height.
    margin : float
        Fraction of the box's longer side added on every side.
    frame_shape : tuple
        ``frame.shape``; only (H, W) are used.

    Returns
    -------
    (x, y, w, h) : tuple of int
        Square (before clipping) crop box in pixels, inside the frame.
    """
    x, y, w, h = (float(v) for v in box)
    side = max(w, h) * (1.0 + 2.0 * margin)
    cx, cy = x + w / 2.0, y + h / 2.0
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    x1, y1 = int(round(cx + side / 2)), int(round(cy + side / 2))
    fh, fw = frame_shape[:2]
    x0, y0 = max(0, x0), max(0, y0)
    x1, y1 = min(fw, x1), min(fh, y1)
    return x0, y0, max(0, x1 - x0), max(0, y1 - y0)


def crop_face(frame: np.ndarray, box, margin: float) -> np.ndarray:
    """Cut one face out of a frame, with the model's margin, clipped at the frame's borders.

    Parameters
    ----------
    frame : ndarray of shape (H, W) or (H, W, 3), dtype uint8
    box : (x, y, w, h)
        Face box in pixels.
    margin : float
        Fraction of the box side added on every side (``PreprocessSpec.margin``).

    Returns
    -------
    ndarray
        A view of ``frame`` (no copy) of shape (h', w'[, 3]).

    Raises
    ------
    ValueError
        If the box lies outside the frame (empty crop).
    """
    x, y, w, h = expand_box(box, margin, frame.shape)
    if w == 0 or h == 0:
        raise ValueError(f"face box {tuple(box)} lies outside the frame of shape {frame.shape}")
    return frame[y : y + h, x : x + w]
