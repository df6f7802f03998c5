"""The seven FER2013 expression classes and the column names every module shares.

Source: Goodfellow et al. (2013), "Challenges in Representation Learning: A report on three machine
learning contests" (the FER2013 data set). Class codes are the dataset's own: 0 Angry, 1 Disgust,
2 Fear, 3 Happy, 4 Sad, 5 Surprise, 6 Neutral.

These constants are defined once here and imported by the analyzer, the CLI, the session recorder,
the exports and the database schema, so that a column can never be spelled two ways.
"""

from __future__ import annotations

#: FER2013 class names, index = FER2013 code.
EMOTIONS: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")

#: Number of classes (7).
NUM_CLASSES: int = len(EMOTIONS)

#: Columns of the tidy per-face, per-frame table returned by video analysis and stored per session.
#: ``face_id`` is -1 and the box and probabilities are NaN on a row that records a frame with no face.
BOX_COLUMNS: tuple[str, ...] = ("x", "y", "w", "h")
OBSERVATION_COLUMNS: tuple[str, ...] = ("time_s", "frame", "face_id", *BOX_COLUMNS, *EMOTIONS, "dominant")

#: Head pose and attention of each row (:mod:`fer_core.attention`), after ``OBSERVATION_COLUMNS`` in every
#: per-frame table: ``yaw_deg``, ``pitch_deg`` (degrees from the camera axis; NaN when the detector gives no
#: keypoints) and ``attentive`` (face turned to the screen; None when the pose is unknown, False without a face).
ATTENTION_COLUMNS: tuple[str, ...] = ("yaw_deg", "pitch_deg", "attentive")

#: ``face_id`` of a row that records an analysed frame in which no face was found.
NO_FACE_ID: int = -1

#: Synonyms used by image-folder releases of FER2013 and other data sets, mapped to FER2013 names.
EMOTION_SYNONYMS: dict[str, str] = {
    "anger": "angry",
    "angry": "angry",
    "mad": "angry",
    "disgust": "disgust",
    "disgusted": "disgust",
    "fear": "fear",
    "fearful": "fear",
    "afraid": "fear",
    "scared": "fear",
    "happy": "happy",
    "happiness": "happy",
    "joy": "happy",
    "sad": "sad",
    "sadness": "sad",
    "surprise": "surprise",
    "surprised": "surprise",
    "neutral": "neutral",
    "calm": "neutral",
}


def emotion_code(name: str) -> int:
    """Return the FER2013 code (0-6) of an emotion name or one of its synonyms.

    Parameters
    ----------
    name : str
        Class name, case-insensitive (``"Happiness"``, ``"angry"``, ``"surprised"``...).

    Returns
    -------
    int
        FER2013 code, 0 (angry) to 6 (neutral).

    Raises
    ------
    KeyError
        If ``name`` is not one of the seven classes or a known synonym.
    """
    key = name.strip().lower()
    if key not in EMOTION_SYNONYMS:
        raise KeyError(f"unknown emotion name {name!r}; expected one of {EMOTIONS} or a synonym")
    return EMOTIONS.index(EMOTION_SYNONYMS[key])
