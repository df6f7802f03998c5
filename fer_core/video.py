"""Video and image files to the tidy per-face, per-frame table (:data:`OBSERVATION_COLUMNS`).

Videos are decoded with PyAV (FFmpeg): MP4/H.264, MOV/HEVC, WebM/VP8-VP9, AVI and whatever else
the FFmpeg build reads. Each row's ``time_s`` is the decoder's presentation time of the frame
(``frame.time``, seconds from the stream's start), never ``frame_index / fps``, so variable frame
rates and odd time bases (``noface_face.mov`` has a 120 fps time base) come out right.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from pathlib import Path

import av
import cv2
import numpy as np
import pandas as pd
from tqdm import tqdm

from fer_core.analyzer import FrameAnalyzer, observation_rows
from fer_core.emotions import ATTENTION_COLUMNS, EMOTIONS, OBSERVATION_COLUMNS

#: File suffixes the CLI treats as still images (everything else is opened as a video).
IMAGE_SUFFIXES: tuple[str, ...] = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")
#: A video whose last decoded frame ends this many seconds before its declared duration is reported truncated.
TRUNCATION_TOLERANCE_S = 0.5


class VideoDecodeError(ValueError):
    """A video file is missing, unreadable, or holds no decodable video stream."""


class ImageDecodeError(ValueError):
    """An image file is missing or cannot be decoded."""


def _default_analyzer() -> FrameAnalyzer:
    from fer_core.classifier import EmotionClassifier  # noqa: PLC0415 - loads TensorFlow

    return FrameAnalyzer(EmotionClassifier.load())


def observations_frame(rows: list[dict]) -> pd.DataFrame:
    """Build the tidy table from observation rows, with stable column order and dtypes.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`OBSERVATION_COLUMNS` then :data:`ATTENTION_COLUMNS`; ``frame`` and ``face_id`` int64, box,
        probabilities and head angles float64 (NaN on no-face rows; angles NaN without keypoints), ``dominant``
        str, ``attentive`` pandas ``boolean`` (NA where the pose is unknown).
    """
    frame = pd.DataFrame(rows, columns=[*OBSERVATION_COLUMNS, *ATTENTION_COLUMNS])
    frame = frame.astype({"time_s": "float64", "frame": "int64", "face_id": "int64"})
    frame["attentive"] = attentive_series(frame["attentive"])
    return frame.astype({c: "float64" for c in ("x", "y", "w", "h", *EMOTIONS, "yaw_deg", "pitch_deg")})


def attentive_series(values) -> pd.Series:
    """``attentive`` values (True/False/1/0, None or NaN when unknown) as a pandas ``boolean`` Series (NA unknown)."""
    series = pd.Series(values, copy=False)
    if isinstance(series.dtype, pd.BooleanDtype):
        return series
    known = series.notna()
    out = pd.Series(pd.NA, index=series.index, dtype="boolean")
    out[known] = series[known].astype(bool).to_numpy()
    return out


def _check_roi(roi, shape, path) -> tuple[int, int, int, int]:
    try:
        x, y, w, h = (int(v) for v in roi)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"roi has to be (x, y, w, h) in pixels; got {roi!r}") from exc
    height, width = shape[:2]
    if w < 1 or h < 1 or x < 0 or y < 0 or x + w > width or y + h > height:
        raise ValueError(f"roi {roi!r} has to lie inside the {width}x{height} frames of {path}")
    return x, y, w, h


def _open_video(path: Path):
    if not path.is_file():
        raise VideoDecodeError(f"{path}: video file not found")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError) as exc:
        raise VideoDecodeError(f"{path}: not a readable video file ({exc})") from exc
    if not container.streams.video:
        container.close()
        raise VideoDecodeError(f"{path}: file holds no video stream")
    return container


def analyze_video(
    path: str | Path,
    *,
    analyzer: FrameAnalyzer | None = None,
    every_n: int = 1,
    start_s: float | None = None,
    end_s: float | None = None,
    roi=None,
    progress: Callable[[float], None] | None = None,
    show_progress: bool = True,
    first_frame: int | None = None,
) -> pd.DataFrame:
    """Analyze a video file into one row per face per analysed frame.

    Parameters
    ----------
    path : str or Path
        Video file (MP4/H.264, MOV/HEVC, WebM, AVI...).
    analyzer : FrameAnalyzer, optional
        Analyzer to use (it is reset first); default one built on the shipped model.
    every_n : int, default 1
        Analyse every n-th decoded frame of the time range.
    start_s, end_s : float, optional
        Time range in seconds (decoder time); frames before ``start_s`` or after ``end_s`` are skipped.
    roi : (x, y, w, h), optional
        Region of interest in pixels; only it is analysed, boxes are reported in full-frame pixels.
    progress : callable, optional
        Called with the fraction done (0-1) after each analysed frame and with 1.0 at the end.
    show_progress : bool, default True
        Show a tqdm progress bar on the terminal (stderr).
    first_frame : int, optional
        With ``start_s``: seek instead of decoding from the start. The demuxer jumps to the key frame at or
        before ``start_s`` and ``first_frame`` is the index (in the whole video) of the first frame at or
        after ``start_s``; frames are numbered from it. :func:`fer_core.video_ranges.plan_ranges` gives both.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`OBSERVATION_COLUMNS` (see :func:`observations_frame`), one no-face row
        (``face_id`` = -1, NaN box and probabilities, ``dominant`` = ``"none"``) per analysed frame
        without a face. ``df.attrs["source"]`` holds the path; ``df.attrs["decoded_s"]`` the
        seconds decoded (end of the last decoded frame: its time plus its duration) and
        ``df.attrs["duration_s"]`` the duration the file declares (None when it declares none);
        when decoding stopped early (truncated or corrupt file), ``df.attrs["decode_error"]``
        says where and a ``RuntimeWarning`` is issued.

    Raises
    ------
    VideoDecodeError
        If the file is missing, is not a video, or its first frame cannot be decoded.
    ValueError
        If ``every_n``, the time range or ``roi`` is invalid.
    """
    path = Path(path)
    if int(every_n) != every_n or every_n < 1:
        raise ValueError(f"every_n has to be a positive integer; got {every_n!r}")
    if start_s is not None and end_s is not None and end_s <= start_s:
        raise ValueError(f"end_s has to be after start_s; got start_s={start_s}, end_s={end_s}")
    container = _open_video(path)
    analyzer = analyzer if analyzer is not None else _default_analyzer()
    analyzer.reset()
    stream = container.streams.video[0]
    stream.thread_type = "AUTO"
    offset_s = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    duration_s = _duration_s(container, stream)
    range_start = start_s or 0.0
    if first_frame is not None and start_s:
        container.seek(int(round((start_s + offset_s) / stream.time_base)), stream=stream, backward=True)
    range_end = end_s if end_s is not None else duration_s
    rows: list[dict] = []
    error = None
    index = analysed = in_range = 0
    time_s = span_s = math.nan
    roi_box = None
    bar = tqdm(
        total=stream.frames or None, unit="frame", desc=path.name, disable=not show_progress or None, leave=False
    )
    try:
        frames = container.decode(stream)
        while True:
            try:
                frame = next(frames)
            except StopIteration:
                break
            except (av.FFmpegError, OSError) as exc:
                error = f"{path}: decoding stopped after frame {index} (t={time_s:.3f} s): {exc}"
                break
            bar.update(1)
            if frame.time is None:
                raise VideoDecodeError(f"{path}: frame {index} has no presentation timestamp")
            time_s = float(frame.time) - offset_s
            span_s = _frame_span_s(frame, stream)
            index += 1
            if start_s is not None and time_s < start_s:
                continue
            if end_s is not None and time_s > end_s:
                break
            in_range += 1
            if (in_range - 1) % every_n:
                continue
            image = frame.to_ndarray(format="bgr24")
            if roi is not None:
                roi_box = roi_box or _check_roi(roi, image.shape, path)
                x, y, w, h = roi_box
                image = np.ascontiguousarray(image[y : y + h, x : x + w])
            number = index - 1 if first_frame is None else first_frame + in_range - 1
            frame_rows = observation_rows(number, time_s, analyzer.analyze(image, time_s))
            if roi_box is not None and frame_rows[0]["face_id"] >= 0:
                for row in frame_rows:
                    row["x"] += roi_box[0]
                    row["y"] += roi_box[1]
            rows.extend(frame_rows)
            analysed += 1
            if progress is not None and range_end and range_end > range_start:
                progress(min(1.0, max(0.0, (time_s - range_start) / (range_end - range_start))))
    finally:
        bar.close()
        container.close()
    if index == 0:
        raise VideoDecodeError(f"{path}: no frame could be decoded" + (f" ({error})" if error else ""))
    if error is None and duration_s and math.isfinite(time_s):
        wanted_end = min(duration_s, end_s) if end_s is not None else duration_s
        if time_s < wanted_end - TRUNCATION_TOLERANCE_S:
            error = (
                f"{path}: decoding stopped after frame {index - 1} at t={time_s:.3f} s, "
                f"before the declared duration {duration_s:.3f} s (truncated file?)"
            )
    if progress is not None:
        progress(1.0)
    table = observations_frame(rows)
    table.attrs["source"] = str(path)
    table.attrs["decoded_s"] = time_s + span_s
    table.attrs["duration_s"] = duration_s
    if error is not None:
        table.attrs["decode_error"] = error
        warnings.warn(error, RuntimeWarning, stacklevel=2)
    return table


def _frame_span_s(frame, stream) -> float:
    """How long a decoded frame is shown, in seconds: its own duration, else the stream's nominal frame period."""
    if getattr(frame, "duration", None) and frame.time_base is not None:
        return float(frame.duration * frame.time_base)
    rate = stream.average_rate or stream.guessed_rate
    return float(1 / rate) if rate else 0.0


def _duration_s(container, stream) -> float | None:
    """Declared duration of the video stream in seconds, or None when the file does not say."""
    if stream.duration is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file as a BGR frame.

    Returns
    -------
    ndarray of shape (H, W, 3), dtype uint8

    Raises
    ------
    ImageDecodeError
        If the file is missing or cannot be decoded as an image.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageDecodeError(f"{path}: image file not found")
    image = cv2.imdecode(np.fromfile(path, dtype=np.uint8), cv2.IMREAD_COLOR)
    if image is None:
        raise ImageDecodeError(f"{path}: cannot be decoded as an image (corrupt or not an image file)")
    return image


def analyze_image(path: str | Path, *, analyzer: FrameAnalyzer | None = None) -> pd.DataFrame:
    """Analyze a still image into the tidy table (frame 0, ``time_s`` 0).

    Parameters
    ----------
    path : str or Path
        Image file OpenCV can decode (.jpg, .png...).
    analyzer : FrameAnalyzer, optional
        Analyzer to use (it is reset first); default one built on the shipped model.

    Returns
    -------
    pandas.DataFrame
        Columns :data:`OBSERVATION_COLUMNS`; one row per face, or one no-face row.

    Raises
    ------
    ImageDecodeError
        If the file is missing or not a decodable image.
    """
    image = read_image(path)
    analyzer = analyzer if analyzer is not None else _default_analyzer()
    analyzer.reset()
    table = observations_frame(observation_rows(0, 0.0, analyzer.analyze(image, 0.0)))
    table.attrs["source"] = str(path)
    return table
