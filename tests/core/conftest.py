"""Fixtures of the inference-core tests: a tiny model of their own, and the trained model when shipped."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from fer_core.classifier import EmotionClassifier, default_model_path
from fer_core.emotions import EMOTIONS
from fer_core.model_file import write_metadata
from fer_core.preprocessing import PreprocessSpec


def build_tiny_model(path: Path, *, input_size: int = 48, seed: int = 0) -> Path:
    """Save a few-layer random Keras model (Rescaling inside, as the real one) without metadata."""
    import keras

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((input_size, input_size, 1))
    x = keras.layers.Rescaling(1.0 / 255.0)(inputs)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    outputs = keras.layers.Dense(len(EMOTIONS), activation="softmax")(x)
    keras.Model(inputs, outputs).save(path)
    return path


def tiny_metadata(spec: PreprocessSpec | None = None) -> dict:
    return {"classes": list(EMOTIONS), "preprocessing": (spec or PreprocessSpec()).to_dict()}


@pytest.fixture(scope="session")
def tiny_model_path(tmp_path_factory) -> Path:
    """A tiny random 48x48 grayscale model file with valid metadata (no training involved)."""
    path = build_tiny_model(tmp_path_factory.mktemp("model") / "tiny.keras")
    write_metadata(path, tiny_metadata())
    return path


@pytest.fixture(scope="session")
def tiny_classifier(tiny_model_path) -> EmotionClassifier:
    return EmotionClassifier.load(tiny_model_path)


@pytest.fixture(scope="session")
def trained_classifier() -> EmotionClassifier:
    """The trained model: $FER_TEST_MODEL if set, else the shipped default; skipped while absent."""
    path = Path(os.environ["FER_TEST_MODEL"]) if os.environ.get("FER_TEST_MODEL") else default_model_path()
    if not path.is_file():
        pytest.skip(
            f"trained model not available: {path} is missing (shipped by the training issue; or set FER_TEST_MODEL)"
        )
    return EmotionClassifier.load(path)


@pytest.fixture(scope="session")
def single_face_frames(video_dir) -> list[tuple[float, np.ndarray]]:
    """Every frame of single_face.mp4 as (time_s, BGR array)."""
    import av

    with av.open(str(video_dir / "single_face.mp4")) as container:
        return [(float(f.time), f.to_ndarray(format="bgr24")) for f in container.decode(video=0)]
