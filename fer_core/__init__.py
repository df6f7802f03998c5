"""fer_core: the shared facial-expression inference core (detection, preprocessing, classification).

Importing the package loads neither TensorFlow nor any model: TensorFlow is imported when a
model is loaded (:meth:`EmotionClassifier.load`). Video analysis lives in :mod:`fer_core.video`.
"""

from fer_core.analyzer import FaceResult, FrameAnalyzer, observation_rows
from fer_core.classifier import EmotionClassifier, default_model_path
from fer_core.detection import DEFAULT_DETECTOR, DETECTOR_NAMES, create_detector
from fer_core.emotions import EMOTIONS, NO_FACE_ID, NUM_CLASSES, OBSERVATION_COLUMNS
from fer_core.model_file import ModelFileError
from fer_core.preprocessing import PreprocessSpec, crop_face, preprocess_faces

__all__ = [
    "DEFAULT_DETECTOR",
    "DETECTOR_NAMES",
    "EMOTIONS",
    "NO_FACE_ID",
    "NUM_CLASSES",
    "OBSERVATION_COLUMNS",
    "EmotionClassifier",
    "FaceResult",
    "FrameAnalyzer",
    "ModelFileError",
    "PreprocessSpec",
    "create_detector",
    "crop_face",
    "default_model_path",
    "observation_rows",
    "preprocess_faces",
]
