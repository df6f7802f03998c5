"""Training-time augmentation as Keras preprocessing layers and ``tf.data`` functions.

Horizontal flip, small rotations, shifts and zoom, brightness and contrast, and random erasing
(Zhong et al. 2020, "Random Erasing Data Augmentation"); mixup (Zhang et al. 2018) as an option.
Augmentation runs in the input pipeline, so the exported model contains none of it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # TensorFlow is imported where it is used, so the version constants below stay light to import
    import keras
    import tensorflow as tf

#: Versions of :func:`build_augmenter`'s random draws. 1: every layer seeded with the same seed, so the
#: layers' generators advanced in step and rotation, zoom, brightness and contrast were one draw per image
#: with the flip tied to the rotation's direction (the models trained before 2026-12-04, the shipped ones
#: included; kept so their recorded commands reproduce them). 2: each layer seeded apart (``seed + i``),
#: independent draws.
AUGMENTER_VERSIONS = (1, 2)
#: The version new runs use (``--augmenter``).
AUGMENTER_VERSION = 2


def build_augmenter(
    *,
    rotation_deg: float = 10.0,
    shift: float = 0.1,
    zoom: float = 0.1,
    brightness: float = 0.2,
    contrast: float = 0.2,
    seed: int | None = None,
    version: int = AUGMENTER_VERSION,
) -> keras.Sequential:
    """Return the geometric and photometric augmentation pipeline.

    Keras preprocessing layers, in this order: horizontal flip, rotation, translation, zoom (pixels
    moved in from outside the image are filled by reflection), brightness, contrast.

    Parameters
    ----------
    rotation_deg : float, default 10.0
        Maximum rotation in degrees, either way.
    shift : float, default 0.1
        Maximum shift as a fraction of the image side, vertically and horizontally.
    zoom : float, default 0.1
        Maximum zoom in or out as a fraction.
    brightness, contrast : float, default 0.2
        Maximum brightness change (fraction of the 0-255 range) and contrast factor (contrast scaled by
        a random factor in [1 - contrast, 1 + contrast]).
    seed : int, optional
        Seed of the pipeline; None for unseeded. Version 2: layer ``i`` (0-5, in the order above) is seeded
        with ``seed + i``, so the six draws are independent; version 1: every layer with ``seed``.
    version : int, default :data:`AUGMENTER_VERSION`
        One of :data:`AUGMENTER_VERSIONS`; 1 only to reproduce models trained before 2026-12-04.

    Returns
    -------
    keras.Sequential
        Maps float32 images (B, S, S, C) with values 0-255 to augmented images of the same shape and
        dtype when called with ``training=True`` (:func:`training.train.make_dataset` then clips the
        result to 0-255).

    Raises
    ------
    ValueError
        If ``version`` is not one of :data:`AUGMENTER_VERSIONS`.
    """
    if version not in AUGMENTER_VERSIONS:
        raise ValueError(f"augmenter version has to be one of {AUGMENTER_VERSIONS}; got {version!r}")
    import keras
    from keras import layers

    def layer_seed(i: int) -> int | None:
        # one seed for every layer makes their generators advance in step: correlated draws (version 1)
        if seed is None:
            return None
        return seed if version == 1 else seed + i

    return keras.Sequential(
        [
            layers.RandomFlip("horizontal", seed=layer_seed(0)),
            layers.RandomRotation(rotation_deg / 360.0, fill_mode="reflect", seed=layer_seed(1)),
            layers.RandomTranslation(shift, shift, fill_mode="reflect", seed=layer_seed(2)),
            layers.RandomZoom((-zoom, zoom), fill_mode="reflect", seed=layer_seed(3)),
            layers.RandomBrightness(brightness, value_range=(0, 255), seed=layer_seed(4)),
            layers.RandomContrast(contrast, value_range=(0, 255), seed=layer_seed(5)),
        ],
        name="augmenter",
    )


def random_erasing(images: tf.Tensor, probability: float = 0.5, area=(0.02, 0.2)) -> tf.Tensor:
    """Erase one random rectangle per image with uniform noise (Zhong et al. 2020).

    Parameters
    ----------
    images : tf.Tensor of shape (B, S, S, C), float32, values 0-255
        Square images (the side is read from axis 1 and used for both axes).
    probability : float, default 0.5
        Chance (0-1) that an image gets a rectangle.
    area : (float, float), default (0.02, 0.2)
        Range of the rectangle's area as a fraction of the image; the rectangle is a square whose
        area is drawn uniformly from this range, at a uniformly random position inside the image.

    Returns
    -------
    tf.Tensor
        Same shape and dtype; erased pixels hold uniform noise in [0, 255) drawn independently per
        pixel and channel.
    """
    import tensorflow as tf

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

    Each image ``i`` is mixed with image ``j = perm(i)`` of a random permutation of the batch:
    ``lam * x_i + (1 - lam) * x_j`` and the same for the targets, with one ``lam ~ Beta(alpha, alpha)``
    per image (drawn as ``G1 / (G1 + G2)`` with ``G1, G2 ~ Gamma(alpha)``). Source: Zhang, Cisse,
    Dauphin & Lopez-Paz (2018), "mixup: Beyond Empirical Risk Minimization", ICLR.

    Parameters
    ----------
    images : tf.Tensor of shape (B, S, S, C), float32
        Pixel values 0-255 (mixing keeps them in range).
    targets : tf.Tensor of shape (B, K), float32
        Class distributions, rows summing to 1.
    alpha : float, default 0.2
        Beta(alpha, alpha) concentration (> 0); values below 1 keep most images close to one original.

    Returns
    -------
    images : tf.Tensor of shape (B, S, S, C), float32
        Mixed images.
    targets : tf.Tensor of shape (B, K), float32
        Mixed targets, rows still summing to 1.
    """
    import tensorflow as tf

    batch = tf.shape(images)[0]
    g1 = tf.random.gamma([batch], alpha)
    g2 = tf.random.gamma([batch], alpha)
    lam = g1 / (g1 + g2)
    index = tf.random.shuffle(tf.range(batch))
    lam_img = tf.reshape(lam, [-1, 1, 1, 1])
    mixed = lam_img * images + (1.0 - lam_img) * tf.gather(images, index)
    lam_t = tf.reshape(lam, [-1, 1])
    return mixed, lam_t * targets + (1.0 - lam_t) * tf.gather(targets, index)
