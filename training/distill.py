"""Knowledge distillation: a trained teacher's probabilities as soft targets for a smaller student.

The teacher (e.g. the shipped ``fer2013_cnn.keras``, flip test-time augmentation built in) is run once
over the training images; its probabilities are cached beside the run and mixed with the labels:
``target = w * teacher + (1 - w) * label`` (Hinton, Vinyals & Dean 2015, arXiv 1503.02531, at
temperature 1; the student is trained with the ordinary cross-entropy against these targets). The
same images are augmented at training time, so the targets are the teacher's view of the unaugmented
image; the flips of the pipeline leave a mirror-averaged teacher's output unchanged.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np


def _images_digest(images: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(images).tobytes()).hexdigest()


def teacher_probabilities(teacher: str | Path, images: np.ndarray, *, cache: str | Path | None = None,
                          batch_size: int = 256) -> np.ndarray:
    """The teacher's probabilities for every image, read from ``cache`` when it holds them.

    Parameters
    ----------
    teacher : str or Path
        Keras model file mapping (N, S, S, C) float32 pixels 0-255 to (N, 7) probabilities.
    images : ndarray of shape (N, S, S, C), dtype uint8
        Training images as the student sees them before augmentation.
    cache : str or Path, optional
        ``.npz`` file; reused when it holds the same teacher file (SHA-256) and the same images.
    batch_size : int
        Images per teacher call.

    Returns
    -------
    ndarray of shape (N, 7), dtype float32
        Rows sum to 1 (FER2013 class order).

    Raises
    ------
    FileNotFoundError
        If ``teacher`` does not exist.
    ValueError
        If the teacher's input shape does not match the images or its output is not (N, 7).
    """
    import keras

    teacher = Path(teacher)
    if not teacher.is_file():
        raise FileNotFoundError(f"teacher: {teacher} does not exist")
    teacher_sha = hashlib.sha256(teacher.read_bytes()).hexdigest()
    digest = _images_digest(images)
    if cache is not None and Path(cache).is_file():
        saved = np.load(cache)
        if str(saved["teacher_sha256"]) == teacher_sha and str(saved["images_sha256"]) == digest:
            print(f"teacher targets: cached in {cache}", flush=True)
            return saved["probabilities"].astype(np.float32)
    model = keras.models.load_model(teacher, compile=False)
    if tuple(model.input_shape[1:]) != tuple(images.shape[1:]):
        raise ValueError(f"teacher {teacher} takes input {model.input_shape[1:]}, the images are {images.shape[1:]}")
    probs = np.concatenate([
        np.asarray(model.predict_on_batch(images[i:i + batch_size].astype(np.float32)))
        for i in range(0, len(images), batch_size)
    ]) if len(images) else np.zeros((0, 7), np.float32)
    if probs.shape != (len(images), 7):
        raise ValueError(f"teacher {teacher} returned shape {probs.shape}, expected ({len(images)}, 7)")
    probs = (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)
    if cache is not None:
        np.savez(cache, probabilities=probs, teacher_sha256=teacher_sha, images_sha256=digest)
    print(f"teacher targets: {len(images)} images from {teacher}", flush=True)
    return probs


def distillation_targets(teacher_probs: np.ndarray, labels: np.ndarray, weight: float) -> np.ndarray:
    """Mix the teacher's distribution with the labels: ``weight * teacher + (1 - weight) * labels``.

    Parameters
    ----------
    teacher_probs, labels : ndarray of shape (N, 7), float
        Teacher probabilities and one-hot (or soft) labels; rows sum to 1.
    weight : float
        Teacher share in [0, 1].

    Returns
    -------
    ndarray of shape (N, 7), dtype float32
        Rows sum to 1.

    Raises
    ------
    ValueError
        If the shapes differ or ``weight`` is outside [0, 1].
    """
    if teacher_probs.shape != labels.shape:
        raise ValueError(f"teacher probabilities {teacher_probs.shape} and labels {labels.shape} differ in shape")
    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"teacher weight has to be in [0, 1]; got {weight}")
    return (weight * teacher_probs + (1.0 - weight) * labels).astype(np.float32)
