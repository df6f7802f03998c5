"""Knowledge distillation: a trained teacher's probabilities as soft targets for a smaller student.

The teacher (e.g. the shipped ``fer2013_cnn.keras``, flip test-time augmentation built in) is run once
over the training images; its probabilities are cached beside the run and mixed with the labels:
``target = w * teacher + (1 - w) * label`` (Hinton, Vinyals & Dean 2015, arXiv 1503.02531, at
temperature 1; the student is trained with the ordinary cross-entropy against these targets). The
same images are augmented at training time, so the targets are the teacher's view of the unaugmented
image; the flips of the pipeline leave a mirror-averaged teacher's output unchanged.

With ``--teacher-views K`` the teacher sees what the student sees instead: K augmented copies of every
image are made once (:func:`augmented_views`), the teacher labels each copy
(:func:`teacher_view_probabilities`), and each training step draws one of an image's copies with its
own target ("consistent teaching", Beyer et al. 2022; a fixed set of views because a 2-core CPU cannot
run the teacher at every step).
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path

import numpy as np


def _images_digest(images: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(images)).hexdigest()  # hashes the buffer in place: no copy


def _load_cache(cache: str | Path | None) -> dict | None:
    """The arrays of an ``.npz`` cache, or None when there is none or it cannot be read (a cache miss)."""
    if cache is None or not Path(cache).is_file():
        return None
    try:
        with np.load(cache) as saved:
            return {name: saved[name] for name in saved.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:  # e.g. a run killed while writing it
        print(f"{cache}: unreadable cache ({type(exc).__name__}: {exc}); computing it again", flush=True)
        return None


def _save_cache(cache: str | Path, **arrays) -> None:
    """Write an ``.npz`` cache atomically (a partial file, then a rename), so a killed run leaves none half-written."""
    cache = Path(cache)
    partial = cache.with_name(cache.name + ".partial.npz")
    np.savez(partial, **arrays)
    os.replace(partial, cache)


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
    saved = _load_cache(cache)
    if (saved is not None and "probabilities" in saved and str(saved.get("teacher_sha256")) == teacher_sha
            and str(saved.get("images_sha256")) == digest):
        print(f"teacher targets: cached in {cache}", flush=True)
        return saved["probabilities"].astype(np.float32)
    model = keras.models.load_model(teacher, compile=False)
    if tuple(model.input_shape[1:]) != tuple(images.shape[1:]):
        raise ValueError(f"teacher {teacher} takes input {model.input_shape[1:]}, the images are {images.shape[1:]}")
    from tqdm import tqdm

    probs = np.concatenate([
        np.asarray(model.predict_on_batch(images[i:i + batch_size].astype(np.float32)))
        for i in tqdm(range(0, len(images), batch_size), desc="teacher targets", unit="batch", mininterval=5)
    ]) if len(images) else np.zeros((0, 7), np.float32)
    if probs.shape != (len(images), 7):
        raise ValueError(f"teacher {teacher} returned shape {probs.shape}, expected ({len(images)}, 7)")
    probs = (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)
    if cache is not None:
        _save_cache(cache, probabilities=probs, teacher_sha256=teacher_sha, images_sha256=digest)
    print(f"teacher targets: {len(images)} images from {teacher}", flush=True)
    return probs


def distillation_targets(teacher_probs: np.ndarray, labels: np.ndarray, weight: float) -> np.ndarray:
    """Mix the teacher's distribution with the labels: ``weight * teacher + (1 - weight) * labels``.

    Parameters
    ----------
    teacher_probs, labels : ndarray of shape (N, 7) or (N, K, 7), float
        Teacher probabilities and one-hot (or soft) labels, of one shape (with ``--teacher-views``, one
        row per image and view); rows sum to 1.
    weight : float
        Teacher share in [0, 1].

    Returns
    -------
    ndarray of the inputs' shape, dtype float32
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


def augmented_views(images: np.ndarray, views: int, *, seed: int, random_erasing: float,
                    augmenter: int | None = None, batch_size: int = 512,
                    cache: str | Path | None = None) -> np.ndarray:
    """``views`` augmented copies of every training image, for a teacher that sees what the student sees.

    Each copy goes through the run's training augmentation (:func:`training.augment.build_augmenter`:
    flip, rotation, shift, zoom, brightness, contrast; then :func:`training.augment.random_erasing`),
    clipped to 0-255 and rounded to uint8; mixup is left to the input pipeline (it mixes images and
    targets alike). Training on these copies with the teacher's probabilities *for each copy* is
    "consistent teaching" (Beyer et al. 2022, "Knowledge distillation: A good teacher is patient and
    consistent", CVPR), approximated with a fixed set of views that are computed, and passed through the
    teacher, once: a 2-core CPU cannot run the teacher on every training step.

    Parameters
    ----------
    images : ndarray of shape (N, S, S, C), dtype uint8
        Training images before augmentation.
    views : int
        Copies per image, at least 1.
    seed : int
        Seed of the augmentation layers (the run's ``seed``). Random erasing draws from TensorFlow's global
        generator, so the views are not reproducible bit for bit; the cache is keyed on the images, not on
        the views, and the teacher's targets on the views' own hash, so a view always has its own target.
    random_erasing : float
        Probability (0-1) of one erased rectangle per copy (the run's ``random_erasing``).
    augmenter : int, optional
        Version of the augmentation's draws (the run's ``augmenter``; :data:`training.augment.AUGMENTER_VERSIONS`);
        None for :data:`training.augment.AUGMENTER_VERSION`.
    batch_size : int
        Images augmented per call.
    cache : str or Path, optional
        ``.npz`` file; reused when it holds views of the same images with the same ``views``, ``seed``,
        ``random_erasing`` and ``augmenter``.

    Returns
    -------
    ndarray of shape (N, views, S, S, C), dtype uint8

    Raises
    ------
    ValueError
        If ``views`` is below 1 or ``images`` is not a uint8 (N, S, S, C) array.
    """
    if views < 1:
        raise ValueError(f"views has to be at least 1; got {views}")
    if images.dtype != np.uint8 or images.ndim != 4:
        raise ValueError(f"images have to be uint8 (N, S, S, C); got {images.dtype} {images.shape}")
    from training.augment import AUGMENTER_VERSION

    augmenter = AUGMENTER_VERSION if augmenter is None else augmenter
    key = {"images_sha256": _images_digest(images), "n_views": views, "seed": seed,
           "random_erasing": float(random_erasing), "augmenter": augmenter}
    saved = _load_cache(cache)
    if saved is not None and "views" in saved and all(str(saved.get(name)) == str(value) for name, value in key.items()):
        print(f"augmented views: cached in {cache}", flush=True)
        return saved["views"]
    import tensorflow as tf
    from tqdm import tqdm

    from training.augment import build_augmenter
    from training.augment import random_erasing as erase

    augment = build_augmenter(seed=seed, version=augmenter)
    out = np.empty((len(images), views, *images.shape[1:]), np.uint8)
    print(f"augmented views: {len(images)} images x {views} views = {out.nbytes / 2**20:.0f} MiB in memory "
          f"(and as much again while the cache is written)", flush=True)
    with tqdm(total=views * len(images), desc="augmented views", unit="image", mininterval=5) as progress:
        for view in range(views):
            for start in range(0, len(images), batch_size):
                x = augment(tf.cast(images[start:start + batch_size], tf.float32), training=True)
                x = tf.clip_by_value(x, 0.0, 255.0)
                if random_erasing > 0:
                    x = erase(x, random_erasing)
                out[start:start + batch_size, view] = np.rint(np.asarray(x)).astype(np.uint8)
                progress.update(len(x))
    if cache is not None:
        _save_cache(cache, views=out, **key)
    return out


def teacher_view_probabilities(teacher: str | Path, views: np.ndarray, *, cache: str | Path | None = None,
                               batch_size: int = 256) -> np.ndarray:
    """The teacher's probabilities for every augmented view (:func:`augmented_views`).

    Parameters
    ----------
    teacher : str or Path
        Keras model file, as for :func:`teacher_probabilities`.
    views : ndarray of shape (N, K, S, S, C), dtype uint8
    cache : str or Path, optional
        As for :func:`teacher_probabilities` (keyed by the teacher file and the views).
    batch_size : int

    Returns
    -------
    ndarray of shape (N, K, 7), dtype float32
        Rows sum to 1.

    Raises
    ------
    FileNotFoundError, ValueError
        As raised by :func:`teacher_probabilities`.
    """
    n, k = views.shape[:2]
    flat = views.reshape(n * k, *views.shape[2:])
    return teacher_probabilities(teacher, flat, cache=cache, batch_size=batch_size).reshape(n, k, -1)
