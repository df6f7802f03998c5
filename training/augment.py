"""Training-time augmentation as Keras preprocessing layers and ``tf.data`` functions.

Horizontal flip, small rotations, shifts and zoom, brightness and contrast, and random erasing
(Zhong et al. 2020, "Random Erasing Data Augmentation"); mixup (Zhang et al. 2018) as an option.
Augmentation runs in the input pipeline, so the exported model contains none of it.
"""

from __future__ import annotations

import keras
import tensorflow as tf
from keras import layers


def build_augmenter(
    *,
    rotation_deg: float = 10.0,
    shift: float = 0.1,
    zoom: float = 0.1,
    brightness: float = 0.2,
    contrast: float = 0.2,
    seed: int | None = None,
) -> keras.Sequential:
    """Return the geometric and photometric augmentation pipeline.

    Parameters
    ----------
    rotation_deg : float
        Maximum rotation in degrees, either way.
    shift : float
        Maximum shift as a fraction of the image side.
    zoom : float
        Maximum zoom in or out as a fraction.
    brightness, contrast : float
        Maximum brightness change (fraction of the 0-255 range) and contrast factor.

    Returns
    -------
    keras.Sequential
        Maps float32 images (B, S, S, C) with values 0-255 to augmented images of the same shape.
    """
    return keras.Sequential(
        [
            layers.RandomFlip("horizontal", seed=seed),
            layers.RandomRotation(rotation_deg / 360.0, fill_mode="reflect", seed=seed),
            layers.RandomTranslation(shift, shift, fill_mode="reflect", seed=seed),
            layers.RandomZoom((-zoom, zoom), fill_mode="reflect", seed=seed),
            layers.RandomBrightness(brightness, value_range=(0, 255), seed=seed),
            layers.RandomContrast(contrast, value_range=(0, 255), seed=seed),
        ],
        name="augmenter",
    )


def random_erasing(images: tf.Tensor, probability: float = 0.5, area=(0.02, 0.2)) -> tf.Tensor:
    """Erase one random rectangle per image with uniform noise (Zhong et al. 2020).

    Parameters
    ----------
    images : tf.Tensor of shape (B, S, S, C), float32, values 0-255
    probability : float
        Chance that an image gets a rectangle.
    area : (float, float)
        Range of the rectangle's area as a fraction of the image.

    Returns
    -------
    tf.Tensor
        Same shape and dtype.
    """
    shape = tf.shape(images)
    batch, size = shape[0], shape[1]
    side_frac = tf.sqrt(tf.random.uniform([batch], area[0], area[1]))
    side = tf.cast(side_frac * tf.cast(size, tf.float32), tf.int32)
    y0 = tf.cast(tf.random.uniform([batch]) * tf.cast(size - side, tf.float32), tf.int32)
    x0 = tf.cast(tf.random.uniform([batch]) * tf.cast(size - side, tf.float32), tf.int32)
    grid = tf.range(size)
    rows = (grid[None, :] >= y0[:, None]) & (grid[None, :] < (y0 + side)[:, None])
    cols = (grid[None, :] >= x0[:, None]) & (grid[None, :] < (x0 + side)[:, None])
    mask = rows[:, :, None] & cols[:, None, :]
    apply = tf.random.uniform([batch]) < probability
    mask = mask & apply[:, None, None]
    noise = tf.random.uniform(tf.shape(images), 0.0, 255.0)
    return tf.where(mask[..., None], noise, images)


def mixup(images: tf.Tensor, targets: tf.Tensor, alpha: float = 0.2) -> tuple[tf.Tensor, tf.Tensor]:
    """Mix pairs of images and their one-hot/soft targets (Zhang et al. 2018, "mixup").

    Parameters
    ----------
    images : tf.Tensor of shape (B, S, S, C), float32
    targets : tf.Tensor of shape (B, K), float32
    alpha : float
        Beta(alpha, alpha) concentration.

    Returns
    -------
    (images, targets) of the same shapes.
    """
    batch = tf.shape(images)[0]
    g1 = tf.random.gamma([batch], alpha)
    g2 = tf.random.gamma([batch], alpha)
    lam = g1 / (g1 + g2)
    index = tf.random.shuffle(tf.range(batch))
    lam_img = tf.reshape(lam, [-1, 1, 1, 1])
    mixed = lam_img * images + (1.0 - lam_img) * tf.gather(images, index)
    lam_t = tf.reshape(lam, [-1, 1])
    return mixed, lam_t * targets + (1.0 - lam_t) * tf.gather(targets, index)
