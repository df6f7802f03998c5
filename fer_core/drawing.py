"""Draw analysis results onto a frame (boxes and labels for the returned WebRTC video)."""

from __future__ import annotations

import cv2
import numpy as np

from fer_core.detection import check_frame

#: BGR colour of face boxes and label backgrounds.
BOX_COLOR = (80, 200, 80)
#: BGR colour of label text.
TEXT_COLOR = (0, 0, 0)


def draw_results(frame_bgr: np.ndarray, results, *, copy: bool = False) -> np.ndarray:
    """Draw each face's box and ``"#id dominant 0.87"`` label.

    Parameters
    ----------
    frame_bgr : ndarray of shape (H, W, 3), dtype uint8
        Frame the results were computed on.
    results : list of FaceResult
        Output of :meth:`fer_core.analyzer.FrameAnalyzer.analyze`.
    copy : bool, default False
        Draw on a copy instead of in place.

    Returns
    -------
    ndarray of shape (H, W, 3), dtype uint8
        The frame with boxes and labels (the input itself unless ``copy``).

    Raises
    ------
    ValueError
        If the frame is not (H, W, 3) uint8.
    """
    frame = check_frame(frame_bgr, "frame_bgr")
    if copy or not frame.flags.writeable:
        frame = frame.copy()
    thickness = max(1, round(min(frame.shape[:2]) / 300))
    scale = 0.4 * thickness + 0.1
    for result in results:
        x, y, w, h = result.box
        score = float(np.max(result.smoothed))
        label = f"#{result.face_id} {result.dominant} {score:.2f}"
        cv2.rectangle(frame, (x, y), (x + w, y + h), BOX_COLOR, thickness)
        (text_w, text_h), baseline = cv2.getTextSize(label, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
        top = max(0, y - text_h - baseline - 2)
        cv2.rectangle(frame, (x, top), (x + text_w + 4, top + text_h + baseline + 2), BOX_COLOR, cv2.FILLED)
        cv2.putText(
            frame, label, (x + 2, top + text_h + 1), cv2.FONT_HERSHEY_SIMPLEX, scale, TEXT_COLOR, thickness, cv2.LINE_AA
        )
    return frame
