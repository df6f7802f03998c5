"""Training runs: one config, a fixed seed, a checkpoint every epoch, ``--resume``, logs and an exported model.

Reads top to bottom like the keras-io examples: load the data, build the input pipelines, build the
model, ``fit``, then export the best checkpoint with its metadata.
"""

from __future__ import annotations

import contextlib
import json
import os
import shlex
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from fer_core.emotions import EMOTIONS, NUM_CLASSES
from fer_core.preprocessing import PreprocessSpec
from training.augment import AUGMENTER_VERSION, AUGMENTER_VERSIONS

#: Architectures trained from scratch with the cosine schedule, SWA and early stopping of ``train``.
SCRATCH_ARCHITECTURES: tuple[str, ...] = ("compact_cnn", "fast_cnn")
#: Keras dtype policies a run can train under (:func:`training_precision`).
PRECISIONS: tuple[str, ...] = ("float32", "mixed_bfloat16")
#: Architectures :func:`build_model` builds.
ARCHITECTURES: tuple[str, ...] = ("compact_cnn", "fast_cnn", "efficientnet_b0", "efficientnet_b1", "efficientnet_b2")


@dataclass
class TrainConfig:
    """Everything that defines a training run; saved as ``config.json`` beside its outputs.

    Attributes
    ----------
    data : str
        Dataset path (Kaggle CSV, FER+ votes are given separately in ``ferplus``).
    out : str
        Output folder (checkpoints, logs, plots, ``model.keras``).
    arch : {"compact_cnn", "fast_cnn", "efficientnet_b0", "efficientnet_b1", "efficientnet_b2"}
        ``fast_cnn`` (:func:`training.models.build_fast_cnn`) takes ``fast_widths``/``fast_blocks``; the schedule,
        SWA and every other option are those of ``compact_cnn``.
    train_split, val_split : str
        ``Usage`` values used for training and validation (never a test split for validation).
    epochs : int
        Epochs for ``compact_cnn``; EfficientNet uses ``phases``.
    batch_size : int
        Images per training batch (the last incomplete batch of an epoch is dropped).
    learning_rate : float
        Peak learning rate of the cosine schedule (after a one-epoch linear warm-up), or the
        learning rate throughout with ``lr_schedule="constant"``.
    lr_schedule : {"cosine", "constant"}
        Compact CNN: one-epoch warm-up then cosine decay to 1% of ``learning_rate``, or a constant
        ``learning_rate`` (the schedule of stochastic weight averaging).
    swa_start : int
        Compact CNN: average the weights at the end of every epoch from this one (1-based) on
        (stochastic weight averaging, :mod:`training.swa`; Izmailov et al. 2018); 0 disables it.
        The average, with its BatchNorm statistics recomputed, becomes the run's model when its
        validation accuracy is at least the best epoch's.
    label_smoothing : float
    mixup_alpha : float
        0 disables mixup.
    random_erasing : float
        Probability of erasing a rectangle per image; 0 disables it.
    class_weight : {"none", "balanced", "sqrt"}
        Loss weights for rare classes (Disgust is 1.5% of FER2013).
    patience : int
        Early-stopping patience in epochs on validation accuracy (no early stopping when ``swa_start``
        is set: the average takes every epoch up to the last).
    seed : int
    widths : list of int
        Filters per block of the compact CNN.
    dense_units : int
        Width of the compact CNN's dense layer before the classifier.
    dropout_rate : float
        Dropout rate (fraction of units) in the classifier head, for every architecture.
    weight_decay : float
        L2 penalty on the compact CNN's convolution and dense kernels (0 disables it).
    input_size, channels, margin : preprocessing (see :class:`fer_core.preprocessing.PreprocessSpec`).
        Input side in pixels, 1 (grayscale) or 3 (RGB) channels, and the crop margin as a fraction of
        the detector's box side (checked when :meth:`spec` is called).
    limit : int
        Use only the first ``limit`` training images (0 = all); for smoke tests.
    verbose : int
        Keras ``fit`` verbosity (0 silent, 1 progress bar, 2 one line per epoch); non-zero also shows
        the face-detection cleaning progress bar.
    ferplus : str
        ``fer2013new.csv`` aligned with ``data``; used when ``ferplus_mode`` is not ``"none"``.
    ferplus_mode : {"none", "majority", "soft"}
        FER+ majority labels or vote distributions as soft targets (:mod:`training.ferplus`).
    ferplus_contempt : str
        ``"exclude"`` or the FER2013 class that contempt votes are folded into.
    val_fraction : float
        When above 0, validate on this stratified fraction of ``train_split`` (seeded) instead of
        ``val_split``.
    weights : str
        Local no-top weights file for EfficientNet ("" = random initialisation; nothing is downloaded).
    phases : str
        EfficientNet schedule, e.g. ``"head:6,top:4"`` (:func:`training.finetune.parse_phases`).
    phase_repeats : int
        How many times the schedule runs.
    finetune_learning_rate : float
        Learning rate of ``top`` phases (``learning_rate`` is used for ``head`` phases).
    unfreeze_blocks : int
        EfficientNet stages (of 7) unfrozen in ``top`` phases.
    balanced_sampling : bool
        Draw every class equally often in each batch (instead of, or on top of, ``class_weight``).
    drop_duplicates, drop_conflicts, drop_overlap : bool
        Cleaning of the training split (:mod:`training.cleaning`): exact duplicates, duplicates with
        conflicting labels, images that also appear in the other splits.
    face_cleaning : str
        Detector name (``"ssd"``, ``"haar"``, ``"blazeface"``) to drop training images with no
        detected face; "" disables it.
    face_upsample : int
        Side in pixels that small images are enlarged to before face detection.
    skip_malformed : bool
        Skip and count malformed rows and unreadable images instead of failing.
    skip_unknown : bool
        Skip and count image-folder class folders with names outside the seven classes and their
        synonyms instead of failing (:func:`training.folders.load_image_folder`).
    init_weights : str
        Model file (``.keras``) of the same architecture whose weights start the run ("warm start",
        e.g. continuing the shipped model under a new learning-rate schedule); "" = random
        initialisation. Ignored on ``--resume`` (the checkpoint wins).
    fast_widths, fast_blocks : list of int
        Filters and residual blocks per stage of the fast CNN.
    teacher : str
        Model file of a trained network (e.g. the shipped ``fer2013_cnn.keras``) whose probabilities on
        the (unaugmented) training images become soft targets: knowledge distillation (Hinton et al. 2015,
        arXiv 1503.02531, with the student at temperature 1). The teacher's outputs are computed once and
        cached in ``<out>/teacher_targets.npz`` (reused on ``--resume``). "" disables it.
    teacher_weight : float
        Share of the teacher's distribution in each target, ``w * teacher + (1 - w) * label``, in [0, 1].
    teacher_views : int
        0: the teacher labels the unaugmented images (above). K > 0: K augmented copies of every
        training image are made once and the teacher labels each copy; every training step draws one
        copy per image with its own target ("consistent teaching", Beyer et al. 2022;
        :func:`training.distill.augmented_views`), cached in ``<out>/teacher_views.npz`` and
        ``<out>/teacher_targets.npz``. Needs ``teacher`` and K of at least 2 (one fixed copy would
        take the per-step randomness away); not with ``balanced_sampling``. Memory: about ``2 * N * K * S * S * C``
        bytes, the uint8 views held twice (the array and the input pipeline's copy): about 132 MB per view for
        the 28,709 FER2013 Training images at 48x48 (66 MB each copy).
    views_seed : int
        Seed of the augmented views of ``teacher_views``; negative (the default): ``seed``. Another value
        draws fresh views for a further distillation cycle while ``seed`` keeps the same calibration
        hold-out, so the temperature is still fitted on images the network never trained on.
    calibration_fraction : float
        Stratified share of ``train_split`` (seeded with ``seed``) held out of training to fit the
        temperature of temperature scaling (Guo et al. 2017) after training; 0 disables it. Never
        PublicTest.
    precision : str
        ``"float32"`` or ``"mixed_bfloat16"`` (:func:`training_precision`).
    augmenter : int
        Version of the augmentation's random draws (:data:`training.augment.AUGMENTER_VERSIONS`): 2, independent
        draws per transform; 1 reproduces the models trained before 2026-12-04 (one seed for every layer, so
        their draws were correlated). A ``config.json`` without the key is version 1 (:meth:`from_saved`).

    Raises
    ------
    ValueError
        On construction, if ``arch`` is unknown, an EfficientNet ``arch`` has ``channels`` other than 3,
        ``lr_schedule`` is unknown, ``swa_start`` is outside 0..``epochs``, either is set for EfficientNet,
        ``ferplus_mode`` is unknown or set without ``ferplus``, ``val_fraction`` is outside [0, 1),
        ``epochs`` or ``batch_size`` is below 1, ``teacher_views`` is 1, negative or set without a teacher
        or with ``balanced_sampling``, ``views_seed`` is set without ``teacher_views``, or (EfficientNet)
        ``phases`` / ``phase_repeats`` are invalid (:func:`training.finetune.parse_phases`).
    """

    data: str = "../shared/data/fer2013/fer2013.csv.xz"
    out: str = "runs/compact"
    arch: str = "compact_cnn"
    ferplus: str = ""
    ferplus_mode: str = "none"
    train_split: str = "Training"
    val_split: str = "PublicTest"
    epochs: int = 40
    batch_size: int = 64
    learning_rate: float = 1e-3
    label_smoothing: float = 0.1
    mixup_alpha: float = 0.0
    random_erasing: float = 0.5
    class_weight: str = "none"
    patience: int = 10
    seed: int = 1337
    widths: list = field(default_factory=lambda: [32, 64, 128, 256])
    dense_units: int = 256
    dropout_rate: float = 0.4
    weight_decay: float = 1e-4
    input_size: int = 48
    channels: int = 1
    margin: float = 0.15
    limit: int = 0
    verbose: int = 2
    ferplus_contempt: str = "exclude"
    val_fraction: float = 0.0
    weights: str = ""
    phases: str = "head:6,top:4"
    phase_repeats: int = 1
    finetune_learning_rate: float = 1e-5
    unfreeze_blocks: int = 2
    balanced_sampling: bool = False
    drop_duplicates: bool = False
    drop_conflicts: bool = False
    drop_overlap: bool = False
    face_cleaning: str = ""
    face_upsample: int = 192
    skip_malformed: bool = False
    skip_unknown: bool = False
    init_weights: str = ""
    lr_schedule: str = "cosine"
    swa_start: int = 0
    fast_widths: list = field(default_factory=lambda: [48, 96, 192, 288])
    fast_blocks: list = field(default_factory=lambda: [1, 2, 2, 1])
    teacher: str = ""
    teacher_weight: float = 0.7
    teacher_views: int = 0
    views_seed: int = -1
    calibration_fraction: float = 0.0
    precision: str = "float32"
    augmenter: int = AUGMENTER_VERSION

    @classmethod
    def from_saved(cls, saved: dict) -> TrainConfig:
        """The configuration of a run's ``config.json``; one written before ``augmenter`` existed had version 1.

        Parameters
        ----------
        saved : dict
            The parsed ``config.json`` (field name to value).

        Returns
        -------
        TrainConfig
            With ``augmenter`` 1 when ``saved`` has no such key.

        Raises
        ------
        TypeError, ValueError
            On keys this code does not know, or values :meth:`__post_init__` refuses.
        """
        return cls(**{"augmenter": 1, **saved})

    def __post_init__(self) -> None:
        if self.arch not in ARCHITECTURES:
            raise ValueError(f"arch has to be one of {ARCHITECTURES}; got {self.arch!r}")
        if self.arch.startswith("efficientnet") and self.channels != 3:
            raise ValueError(f"EfficientNet takes RGB input: channels has to be 3; got {self.channels}")
        if self.ferplus_mode not in ("none", "majority", "soft"):
            raise ValueError(f"ferplus_mode has to be 'none', 'majority' or 'soft'; got {self.ferplus_mode!r}")
        if self.ferplus_mode != "none" and not self.ferplus:
            raise ValueError("ferplus_mode needs the FER+ votes file: pass ferplus (--ferplus PATH)")
        if not 0.0 <= self.val_fraction < 1.0:
            raise ValueError(f"val_fraction has to be in [0, 1); got {self.val_fraction}")
        if self.epochs < 1 or self.batch_size < 1:
            raise ValueError(f"epochs and batch_size have to be at least 1; got {self.epochs}, {self.batch_size}")
        if self.lr_schedule not in ("cosine", "constant"):
            raise ValueError(f"lr_schedule has to be 'cosine' or 'constant'; got {self.lr_schedule!r}")
        if not 0 <= self.swa_start <= self.epochs:
            raise ValueError(f"swa_start has to be 0 (off) or an epoch 1..{self.epochs}; got {self.swa_start}")
        if not 0.0 <= self.teacher_weight <= 1.0:
            raise ValueError(f"teacher_weight has to be in [0, 1]; got {self.teacher_weight}")
        if self.teacher_views < 0 or self.teacher_views == 1 or (self.teacher_views and not self.teacher):
            raise ValueError(f"teacher_views has to be 0 (off) or a number of views, at least 2, with a teacher; "
                             f"got {self.teacher_views} with teacher {self.teacher!r}")
        if self.views_seed >= 0 and not self.teacher_views:
            raise ValueError(f"views_seed ({self.views_seed}) draws the views of teacher_views; set teacher_views too")
        if self.teacher_views and self.balanced_sampling:
            raise ValueError("teacher_views and balanced_sampling cannot be combined (the views are drawn per image)")
        if not 0.0 <= self.calibration_fraction < 0.5:
            raise ValueError(f"calibration_fraction has to be in [0, 0.5); got {self.calibration_fraction}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision has to be one of {PRECISIONS}; got {self.precision!r}")
        if self.augmenter not in AUGMENTER_VERSIONS:
            raise ValueError(f"augmenter has to be one of {AUGMENTER_VERSIONS}; got {self.augmenter!r}")
        if len(self.fast_widths) != len(self.fast_blocks) or not self.fast_widths:
            raise ValueError(f"fast_widths and fast_blocks need the same, non-zero length; got {self.fast_widths} "
                             f"and {self.fast_blocks}")
        if (self.swa_start or self.lr_schedule != "cosine") and self.arch not in SCRATCH_ARCHITECTURES:
            raise ValueError("swa_start (weight averaging) and lr_schedule are implemented for the compact_cnn only; "
                             "EfficientNet follows its phases")
        if self.arch.startswith("efficientnet"):
            from training.finetune import parse_phases

            parse_phases(self.phases, self.phase_repeats)

    def spec(self) -> PreprocessSpec:
        """Return the preprocessing this run trains with.

        Returns
        -------
        PreprocessSpec
            ``input_size`` (pixels), ``channels`` and ``margin`` of this config.

        Raises
        ------
        ValueError
            If ``input_size`` is below 8, ``channels`` is not 1 or 3, or ``margin`` is outside [0, 1].
        """
        return PreprocessSpec(input_size=self.input_size, channels=self.channels, margin=self.margin)


def class_weights(labels: np.ndarray, mode: str) -> dict[int, float] | None:
    """Return per-class loss weights.

    Parameters
    ----------
    labels : ndarray of shape (N,), int
    mode : {"none", "balanced", "sqrt"}
        ``balanced`` is N / (K * count) as in scikit-learn; ``sqrt`` is its square root, a milder
        correction that costs less overall accuracy.

    Returns
    -------
    dict of int to float, or None
        FER2013 class code (0-6) to its loss weight, for all seven classes (a class absent from
        ``labels`` is weighted as if it had one image); None when ``mode`` is ``"none"``.

    Raises
    ------
    ValueError
        If ``mode`` is unknown.
    """
    if mode == "none":
        return None
    counts = np.bincount(labels, minlength=NUM_CLASSES).astype(float)
    weights = len(labels) / (NUM_CLASSES * np.maximum(counts, 1.0))
    if mode == "sqrt":
        weights = np.sqrt(weights)
    elif mode != "balanced":
        raise ValueError(f"class_weight has to be 'none', 'balanced' or 'sqrt'; got {mode!r}")
    return {i: float(w) for i, w in enumerate(weights)}


def make_dataset(images, targets, *, batch_size, training, config, sample_weights=None):
    """Build a ``tf.data`` pipeline of (float32 images 0-255, float32 targets (B, 7)).

    Augmentation (flip, rotation, shift, zoom, brightness, contrast, random erasing, optional mixup)
    is applied only when ``training`` is True.

    Parameters
    ----------
    images : ndarray of shape (N, S, S, C), dtype uint8
        Model input (:attr:`training.data.FerDataset.images`), pixel values 0-255.
    targets : ndarray of shape (N, 7), dtype float32
        One-hot labels or soft (FER+) target distributions, rows summing to 1.
    batch_size : int
        Images per batch.
    training : bool
        True: shuffle (buffer ``min(N, 30000)``, seeded with ``config.seed``, reshuffled every epoch),
        drop the last incomplete batch and augment (:mod:`training.augment`; images clipped to 0-255
        after the geometric and photometric layers). False: keep the order and every image, no
        augmentation.
    config : TrainConfig
        Supplies ``seed``, ``random_erasing`` and ``mixup_alpha``.
    sample_weights : ndarray of shape (N,), dtype float32, optional
        Per-image loss weights, passed through unchanged as a third element.

    Returns
    -------
    tf.data.Dataset
        Finite, prefetched; elements ``(images, targets)`` or ``(images, targets, sample_weights)``:
        float32 (B, S, S, C) with values 0-255, float32 (B, 7) (mixed when mixup is on) and
        (B,) weights as given. ``B = batch_size`` except possibly the last batch when not training.

    Raises
    ------
    ValueError
        If ``images``, ``targets`` and ``sample_weights`` do not have the same length (raised by
        ``tf.data.Dataset.from_tensor_slices``).
    """
    import tensorflow as tf

    parts = (images, targets) if sample_weights is None else (images, targets, sample_weights)
    ds = tf.data.Dataset.from_tensor_slices(parts)
    if training:
        ds = ds.shuffle(min(len(images), 30000), seed=config.seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=training)
    if training:
        return _augment_batches(ds, config)

    def to_float(x, *rest):
        return (tf.cast(x, tf.float32), *rest)

    return ds.map(to_float, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def make_view_dataset(views, targets, *, batch_size, config, sample_weights=None, mirror=False):
    """Build the training pipeline over precomputed augmented views (``--teacher-views``).

    Every element is one image's view drawn uniformly at random, anew each epoch, with the target of
    that view; no further augmentation except mixup (which mixes images and targets alike) and, with
    ``mirror``, a horizontal flip of half the drawn views.

    Parameters
    ----------
    views : ndarray of shape (N, K, S, S, C), dtype uint8
        :func:`training.distill.augmented_views`.
    targets : ndarray of shape (N, K, 7), dtype float32
        Target distribution of each view (rows sum to 1).
    batch_size : int
    config : TrainConfig
        Supplies ``seed`` (shuffle and view draws) and ``mixup_alpha``.
    sample_weights : ndarray of shape (N,), dtype float32, optional
    mirror : bool
        Flip each drawn view left-right with probability 0.5 (its own draw, redrawn each epoch), keeping
        its target. Exact when the teacher is mirror-averaged (:func:`training.models.has_mirror`: its
        probabilities for a view and for its mirror are the same), which doubles the distinct inputs per
        image at no teacher cost.

    Returns
    -------
    tf.data.Dataset
        Finite (N // batch_size batches, the last incomplete one dropped), prefetched; elements
        float32 (B, S, S, C) 0-255, float32 (B, 7)[, (B,) weights].

    Raises
    ------
    ValueError
        If ``views`` and ``targets`` disagree in N or K.
    """
    import tensorflow as tf

    from training.augment import mixup

    if views.shape[:2] != targets.shape[:2]:
        raise ValueError(f"views {views.shape} and targets {targets.shape} differ in images or views")
    n_views = views.shape[1]
    parts = (views, targets) if sample_weights is None else (views, targets, sample_weights)
    draws = tf.data.Dataset.random(seed=config.seed, rerandomize_each_iteration=True)

    def pick(element, draw):
        view = tf.cast(draw % n_views, tf.int32)
        image = element[0][view]
        if mirror:  # the parity of draw // K, independent of draw % K: one random number per element
            image = tf.cond((draw // n_views) % 2 == 1, lambda: tf.reverse(image, axis=[1]), lambda: image)
        return (image, element[1][view], *element[2:])

    ds = tf.data.Dataset.zip(tf.data.Dataset.from_tensor_slices(parts), draws).map(pick)
    ds = ds.shuffle(min(len(views), 30000), seed=config.seed, reshuffle_each_iteration=True)
    ds = ds.batch(batch_size, drop_remainder=True)

    def to_float(x, y, *w):
        x = tf.cast(x, tf.float32)
        if config.mixup_alpha > 0:
            x, y = mixup(x, y, config.mixup_alpha)
        return (x, y, *w)

    return ds.map(to_float, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _augment_batches(ds, config):
    """Cast batches to float32 and augment them (flip, rotation, shift, zoom, brightness, contrast,
    random erasing, optional mixup)."""
    import tensorflow as tf

    from training.augment import build_augmenter, mixup, random_erasing

    augmenter = build_augmenter(seed=config.seed, version=config.augmenter)

    def augment(x, y, *w):
        x = augmenter(tf.cast(x, tf.float32), training=True)
        x = tf.clip_by_value(x, 0.0, 255.0)
        if config.random_erasing > 0:
            x = random_erasing(x, config.random_erasing)
        if config.mixup_alpha > 0:
            x, y = mixup(x, y, config.mixup_alpha)
        return (x, y, *w)

    return ds.map(augment, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def _one_hot(labels: np.ndarray) -> np.ndarray:
    return np.eye(NUM_CLASSES, dtype=np.float32)[labels]


def _warm_start(model, path: str) -> None:
    """Copy the weights of the model file ``path`` into ``model`` (same architecture).

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file's network does not have the same weight shapes as ``model``.
    """
    import keras

    if not Path(path).exists():
        raise FileNotFoundError(f"init_weights: {path} does not exist")
    source = keras.models.load_model(path, compile=False)
    theirs, ours = source.get_weights(), model.get_weights()
    if [w.shape for w in theirs] != [w.shape for w in ours]:
        if any(layer.name == "mirror_mean" for layer in source.layers):
            raise ValueError(f"init_weights: {path} has flip test-time augmentation built in "
                             "(training.models.mirror_average); warm-start from the run's model.keras instead")
        if any(layer.name == "mean_probabilities" for layer in source.layers):
            raise ValueError(f"init_weights: {path} is an ensemble (training.models.average_ensemble); "
                             "warm-start from one of its members' model files instead")
        raise ValueError(f"init_weights: {path} is not the same architecture as this run "
                         f"({len(theirs)} weight arrays vs {len(ours)}, or different shapes)")
    model.set_weights(theirs)
    print(f"warm start: weights from {path}", flush=True)


@contextlib.contextmanager
def training_precision(precision: str):
    """Train under a Keras dtype policy, restoring float32 afterwards (also on errors).

    ``"mixed_bfloat16"`` computes convolutions and matrix products in bfloat16 while the variables
    (weights, optimizer state) stay float32 (Micikevicius et al. 2018, "Mixed Precision Training";
    Keras ``mixed_precision``). It can pay only on CPUs with bfloat16 matrix units (Intel AMX,
    AVX-512 BF16): 1.2x-1.7x faster steps for the compact CNN measured on an AMX Xeon, 1.1x on an AMD
    EPYC with AVX-512 BF16 (commands and conditions in ``training/README.md``); other CPUs were not
    measured. Every network's last layer (the softmax) is float32 already (:mod:`training.models`), so
    probabilities stay float32.

    Parameters
    ----------
    precision : str
        ``"float32"`` or ``"mixed_bfloat16"`` (:data:`PRECISIONS`); the global policy inside the block.

    Raises
    ------
    ValueError
        If ``precision`` is not one of :data:`PRECISIONS`.
    """
    import keras

    if precision not in PRECISIONS:
        raise ValueError(f"precision has to be one of {PRECISIONS}; got {precision!r}")
    keras.mixed_precision.set_global_policy(precision)
    try:
        yield
    finally:
        keras.mixed_precision.set_global_policy("float32")


def float32_copy(model, config: TrainConfig):
    """Return the network of ``config`` built in float32 with ``model``'s weights (same architecture).

    A network trained under ``mixed_bfloat16`` keeps float32 variables, so the copy loses nothing;
    its layers compute in float32 like every shipped model (LiteRT conversion, int8 quantization).

    Parameters
    ----------
    model : keras.Model
        A network of ``config``'s architecture under any dtype policy.
    config : TrainConfig
        The run's config (:func:`build_model` builds the copy).

    Returns
    -------
    keras.Model
        Float32 network: input (None, input_size, input_size, channels) float32 with values 0-255, output
        (None, 7) float32 probabilities, weights equal to ``model``'s.

    Raises
    ------
    ValueError
        If ``model``'s weight shapes differ from the network ``config`` builds.
    """
    with training_precision("float32"):
        copy = build_model(config)
    theirs = model.get_weights()
    if [w.shape for w in theirs] != [w.shape for w in copy.get_weights()]:
        raise ValueError("float32_copy: the model is not the network this config builds")
    copy.set_weights(theirs)
    return copy


def build_model(config: TrainConfig):
    """Build the network named by ``config.arch`` (uncompiled).

    Parameters
    ----------
    config : TrainConfig
        ``arch``, ``input_size``, ``channels``, ``widths``, ``dense_units``, ``dropout_rate`` and
        ``weight_decay`` (compact CNN) or ``weights`` (EfficientNet) are used.

    Returns
    -------
    keras.Model
        Input (None, input_size, input_size, channels) float32 with values 0-255; output (None, 7)
        float32 softmax probabilities in FER2013 class order (:func:`training.models.build_compact_cnn`,
        :func:`training.models.build_efficientnet`).

    Raises
    ------
    ValueError
        If ``config.arch`` is neither ``"compact_cnn"`` nor an ``"efficientnet_*"`` name, or (EfficientNet)
        the variant is unknown, ``input_size`` is below 32 or ``weights`` is not an existing file.
    """
    from training.models import build_compact_cnn

    if config.arch == "compact_cnn":
        return build_compact_cnn(
            config.input_size,
            config.channels,
            widths=tuple(config.widths),
            dense_units=config.dense_units,
            dropout_rate=config.dropout_rate,
            weight_decay=config.weight_decay,
        )
    if config.arch == "fast_cnn":
        from training.models import build_fast_cnn

        return build_fast_cnn(config.input_size, config.channels, widths=tuple(config.fast_widths),
                              blocks=tuple(config.fast_blocks), dropout_rate=config.dropout_rate,
                              weight_decay=config.weight_decay)
    if config.arch.startswith("efficientnet"):
        from training.models import build_efficientnet

        return build_efficientnet(config.arch, config.input_size, weights=config.weights or None,
                                  dropout_rate=config.dropout_rate)
    raise ValueError(f"unknown arch {config.arch!r}; expected 'compact_cnn', 'fast_cnn' or 'efficientnet_b0'..'b2'")


def holdout_split(dataset, fraction: float, seed: int):
    """Split a dataset into (train, validation) with a seeded, per-class (stratified) random fraction.

    Parameters
    ----------
    dataset : FerDataset
        Images to split (usually one split, e.g. ``Training``).
    fraction : float
        Share of each class's images held out for validation (0-1), rounded per class to a whole
        number of images.
    seed : int
        Seed of ``numpy.random.default_rng``; the same seed gives the same split.

    Returns
    -------
    (FerDataset, FerDataset)
        The remaining images (split names unchanged) and the held-out ones, whose ``splits`` are all
        ``"holdout"``; both keep the original order.
    """
    rng = np.random.default_rng(seed)
    val = np.zeros(len(dataset), dtype=bool)
    for code in range(NUM_CLASSES):
        rows = np.flatnonzero(dataset.labels == code)
        val[rng.permutation(rows)[: int(round(fraction * len(rows)))]] = True
    held = dataset.subset(val)
    held.splits = np.full(len(held), "holdout", dtype=object)
    return dataset.subset(~val), held


def load_training_data(config: TrainConfig):
    """Load, clean and split the data named in ``config``.

    Cleaning steps (``drop_conflicts``, ``drop_duplicates``, ``drop_overlap``, ``face_cleaning``)
    touch only the training split; their counts are in ``train.report["cleaning"]``.

    Parameters
    ----------
    config : TrainConfig
        ``data``, ``ferplus``/``ferplus_mode``/``ferplus_contempt``, preprocessing, cleaning flags,
        ``train_split``, ``val_split`` or ``val_fraction``, ``seed``, ``limit``, ``skip_malformed``,
        ``skip_unknown`` and ``verbose`` are used.

    Returns
    -------
    (train, val) : tuple of FerDataset
        Images (N, S, S, C) uint8 with int64 labels 0-6. ``val`` is ``config.val_split``, or a
        stratified ``val_fraction`` of the training split (:func:`holdout_split`). With ``limit``,
        ``train`` keeps its first ``limit`` images and ``val`` its first ``max(limit // 4, 64)``.

    Raises
    ------
    FileNotFoundError
        If ``config.data`` (or the FER+ votes file) does not exist.
    DatasetError
        If the dataset is malformed and ``skip_malformed`` is False (:func:`training.data.load_dataset`).
    ValueError
        Invalid preprocessing (:meth:`TrainConfig.spec`), FER+ votes given for an image folder, or an
        invalid ``face_cleaning`` detector or ``face_upsample``.
    KeyError
        If ``train_split`` (or ``val_split``, when ``val_fraction`` is 0) holds no image.
    """
    from training.cleaning import clean_dataset
    from training.data import load_dataset

    ferplus = config.ferplus if config.ferplus_mode != "none" else None
    data = load_dataset(config.data, spec=config.spec(), ferplus=ferplus, ferplus_mode=config.ferplus_mode,
                        contempt=config.ferplus_contempt, skip_malformed=config.skip_malformed,
                        skip_unknown=config.skip_unknown)
    has_face = None
    if config.face_cleaning:
        from training.faces import FaceCropper

        has_face = FaceCropper(config.face_cleaning, margin=config.margin, upsample_to=config.face_upsample).has_face_rgb
    others = sorted(set(map(str, data.splits)) - {config.train_split})
    data, _ = clean_dataset(data, train_split=config.train_split, holdout_splits=others,
                            exact_duplicates=config.drop_duplicates, conflicting_duplicates=config.drop_conflicts,
                            overlap=config.drop_overlap, has_face=has_face, progress=bool(config.verbose))
    train = data.split(config.train_split)
    if config.val_fraction > 0:
        train, val = holdout_split(train, config.val_fraction, config.seed)
    else:
        val = data.split(config.val_split)
    if config.limit:
        train = train.subset(np.arange(min(config.limit, len(train))))
        val = val.subset(np.arange(min(max(config.limit // 4, 64), len(val))))
    return train, val


def make_balanced_dataset(images, targets, *, batch_size, config, labels):
    """Build a ``tf.data`` pipeline that draws every class equally often (balanced sampling).

    Each class is shuffled and repeated on its own and the streams are interleaved with equal
    weights, so a batch holds about ``batch_size / K`` images of each of the K classes present;
    augmentation as in :func:`make_dataset`. The pipeline is infinite: pass ``steps_per_epoch`` to ``fit``.

    Parameters
    ----------
    images : ndarray of shape (N, S, S, C), dtype uint8
        Model input, pixel values 0-255.
    targets : ndarray of shape (N, 7), dtype float32
        One-hot or soft targets.
    batch_size : int
        Images per batch (every batch is full).
    config : TrainConfig
        Supplies ``seed`` (class ``c`` is shuffled with ``seed + c``), ``random_erasing`` and ``mixup_alpha``.
    labels : ndarray of shape (N,), int
        FER2013 codes 0-6 that define the classes to balance.

    Returns
    -------
    tf.data.Dataset
        Infinite; elements ``(images, targets)``: float32 (batch_size, S, S, C) with values 0-255 and
        float32 (batch_size, 7). No sample weights.

    Raises
    ------
    ValueError
        If ``labels`` holds no code 0-6 (no class to sample from).
    """
    import tensorflow as tf

    present = [c for c in range(NUM_CLASSES) if (labels == c).any()]
    if not present:
        raise ValueError("balanced sampling needs labels with at least one FER2013 class code 0-6; got none")
    streams = []
    for code in present:
        rows = np.flatnonzero(labels == code)
        part = tf.data.Dataset.from_tensor_slices((images[rows], targets[rows]))
        streams.append(part.shuffle(len(rows), seed=config.seed + code, reshuffle_each_iteration=True).repeat())
    mixed = tf.data.Dataset.sample_from_datasets(streams, weights=[1.0 / len(present)] * len(present),
                                                 seed=config.seed)
    return _augment_batches(mixed.batch(batch_size, drop_remainder=True), config)


def train(config: TrainConfig, *, resume: bool = False, command: str | None = None) -> Path:
    """Train a model, checkpointing every epoch, and export the best one with its metadata.

    Parameters
    ----------
    config : TrainConfig
        The run; saved as ``<out>/config.json``. Outputs in ``config.out``: ``best.keras``,
        ``last.keras``, ``backup/``, ``history.csv``, ``tensorboard/``, ``data_report.json``, ``run.json``
        and ``model.keras``.
    resume : bool
        Continue an interrupted run in ``config.out`` from its last epoch (weights, optimizer
        state and epoch counter come from Keras' ``BackupAndRestore``). If ``config.out`` holds a
        ``config.json``, that saved config replaces ``config`` (except ``out``).
    command : str, optional
        The command line recorded in the model's metadata.

    Returns
    -------
    Path
        ``<out>/model.keras``: the best epoch's model, with metadata.

    Raises
    ------
    FileExistsError
        If ``out`` already holds a run and ``resume`` is False.
    ValueError
        If ``class_weight`` is unknown, ``balanced_sampling`` is combined with a ``class_weight`` other
        than ``"none"``, ``init_weights`` is a model of another architecture, or as raised by
        :func:`load_training_data` and :func:`build_model`.
    FileNotFoundError
        If ``init_weights`` or the dataset does not exist.
    DatasetError, KeyError
        As raised by :func:`load_training_data`.
    """
    import keras

    from fer_core.model_file import write_metadata

    out = Path(config.out)
    if (out / "config.json").exists() and not resume:
        raise FileExistsError(f"{out} already holds a training run; pass --resume or choose another --out")
    out.mkdir(parents=True, exist_ok=True)
    if resume and (out / "config.json").exists():
        saved = json.loads((out / "config.json").read_text())
        config = TrainConfig.from_saved({**saved, "out": str(out)})
    (out / "config.json").write_text(json.dumps(asdict(config), indent=2))
    draws = pipeline_config(config, epochs_done(out))
    # global seed too: random erasing and mixup draw from it (a resumed run's weights come from its backup)
    keras.utils.set_random_seed(draws.seed)

    started = time.time()
    train_ds, val_ds = load_training_data(config)
    calib_ds = None
    if config.calibration_fraction > 0:
        train_ds, calib_ds = holdout_split(train_ds, config.calibration_fraction, config.seed)
        print(f"calibration images (held out of {config.train_split}): {len(calib_ds)}", flush=True)
    print(f"training images: {len(train_ds)} {train_ds.class_counts()}", flush=True)
    print(f"validation images ({config.val_split}): {len(val_ds)}", flush=True)

    (out / "data_report.json").write_text(json.dumps(
        {"report": train_ds.report, "n_train": len(train_ds), "n_val": len(val_ds),
         "train_classes": train_ds.class_counts()}, indent=2, default=str))

    weights = class_weights(train_ds.labels, config.class_weight)
    train_targets = train_ds.soft_labels if train_ds.soft_labels is not None else _one_hot(train_ds.labels)
    if config.teacher:
        from training.distill import distillation_targets, teacher_probabilities

        if config.teacher_views:
            from training.distill import augmented_views, teacher_view_probabilities
            from training.models import has_mirror

            views_seed = config.seed if config.views_seed < 0 else config.views_seed
            views = augmented_views(train_ds.images, config.teacher_views, seed=views_seed,
                                    augmenter=config.augmenter,
                                    random_erasing=config.random_erasing, cache=out / "teacher_views.npz")
            teacher_probs = teacher_view_probabilities(config.teacher, views, cache=out / "teacher_targets.npz")
            teacher_mirrored = has_mirror(keras.models.load_model(config.teacher, compile=False))
            if teacher_mirrored:
                print("teacher is mirror-averaged: each step also mirrors half of the drawn views (same targets)",
                      flush=True)
            labels = np.broadcast_to(train_targets[:, None, :], teacher_probs.shape)
            train_targets = distillation_targets(teacher_probs, labels, config.teacher_weight)
        else:
            teacher_probs = teacher_probabilities(config.teacher, train_ds.images, cache=out / "teacher_targets.npz")
            train_targets = distillation_targets(teacher_probs, train_targets, config.teacher_weight)
    sample_w = None if weights is None else np.array([weights[c] for c in train_ds.labels], np.float32)
    steps_per_epoch = len(train_ds) // config.batch_size
    if config.balanced_sampling:
        if sample_w is not None:
            raise ValueError("balanced_sampling and class_weight correct the same imbalance; choose one")
        train_pipe = make_balanced_dataset(train_ds.images, train_targets, batch_size=config.batch_size,
                                           config=draws, labels=train_ds.labels)
    elif config.teacher_views:
        train_pipe = make_view_dataset(views, train_targets, batch_size=config.batch_size, config=draws,
                                       sample_weights=sample_w, mirror=teacher_mirrored)
    else:
        train_pipe = make_dataset(train_ds.images, train_targets, batch_size=config.batch_size, training=True,
                                  config=draws, sample_weights=sample_w)
    val_pipe = make_dataset(val_ds.images, _one_hot(val_ds.labels), batch_size=256, training=False, config=config)

    loss = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
    metrics = [keras.metrics.CategoricalAccuracy(name="accuracy")]
    with training_precision(config.precision):
        model = build_model(config)
        if config.init_weights:
            _warm_start(model, config.init_weights)
        best_checkpoint = keras.callbacks.ModelCheckpoint(str(out / "best.keras"), monitor="val_accuracy", mode="max",
                                                          save_best_only=True)
        if config.arch in SCRATCH_ARCHITECTURES:
            schedule = config.learning_rate if config.lr_schedule == "constant" else keras.optimizers.schedules.CosineDecay(
                initial_learning_rate=config.learning_rate / 10,
                decay_steps=max(1, steps_per_epoch * (config.epochs - 1)),
                warmup_target=config.learning_rate,
                warmup_steps=steps_per_epoch,
                alpha=0.01,
            )
            model.compile(optimizer=keras.optimizers.Adam(schedule), loss=loss, metrics=metrics)
            model.summary(print_fn=lambda line, **_: print(line, flush=True))
            callbacks = [
                keras.callbacks.BackupAndRestore(str(out / "backup")),
                keras.callbacks.ModelCheckpoint(str(out / "last.keras")),
                best_checkpoint,
                keras.callbacks.CSVLogger(str(out / "history.csv"), append=True),
                keras.callbacks.TensorBoard(str(out / "tensorboard"), write_graph=False),
            ]
            if not config.swa_start:  # weight averaging needs every epoch up to the last: no early stopping
                callbacks.insert(3, keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max",
                                                                  patience=config.patience))
            if config.swa_start:
                from training.swa import WeightAverager

                # before BackupAndRestore: an epoch re-run after a crash between the two is not averaged twice
                callbacks.insert(0, WeightAverager(out / "swa_weights.npz", config.swa_start))
            model.fit(train_pipe, validation_data=val_pipe, epochs=config.epochs, callbacks=callbacks,
                      verbose=config.verbose, steps_per_epoch=steps_per_epoch if config.balanced_sampling else None)
        else:
            from training.finetune import fit_phases, parse_phases

            def callbacks_for_phase(index):
                return [
                    keras.callbacks.ModelCheckpoint(str(out / "last.keras")),
                    best_checkpoint,
                    keras.callbacks.EarlyStopping(monitor="val_accuracy", mode="max", patience=config.patience),
                    keras.callbacks.ReduceLROnPlateau(monitor="val_loss", factor=0.5,
                                                      patience=max(1, config.patience // 3)),
                    keras.callbacks.CSVLogger(str(out / "history.csv"), append=True),
                    keras.callbacks.TensorBoard(str(out / "tensorboard"), write_graph=False),
                ]

            fit_phases(model, parse_phases(config.phases, config.phase_repeats), train_data=train_pipe,
                       val_data=val_pipe, out=out, learning_rate=config.learning_rate,
                       finetune_learning_rate=config.finetune_learning_rate, unfreeze_blocks=config.unfreeze_blocks,
                       compile_kwargs={"loss": loss, "metrics": metrics}, callbacks_for_phase=callbacks_for_phase,
                       steps_per_epoch=steps_per_epoch if config.balanced_sampling else None, verbose=config.verbose)

    best = keras.models.load_model(out / "best.keras")
    if config.precision != "float32":
        # the run's files are float32 networks: export, evaluation and serving never see a bfloat16 layer
        best = float32_copy(best, config)
        best.save(out / "best.keras")
    val_probs = best.predict(val_pipe, verbose=0)
    val_acc = float((val_probs.argmax(1) == val_ds.labels).mean())
    swa = None
    if config.swa_start:
        swa = _finish_swa(config, best, train_pipe, val_pipe, val_ds.labels, steps_per_epoch, best_accuracy=val_acc)
        if swa is not None and swa["summary"]["selected"]:
            best, val_acc = swa["model"], swa["summary"][f"{config.val_split}_accuracy"]
    val_metrics = {f"{config.val_split}_accuracy": round(val_acc, 4), **({"swa": swa["summary"]} if swa else {})}
    if calib_ds is not None:
        from training.calibration import calibrate_model

        best, calibration = calibrate_model(best, calib_ds.images, calib_ds.labels, val_ds.images, val_ds.labels,
                                            val_split=config.val_split)
        val_metrics["calibration"] = calibration
        # export ships best.keras: the calibrated network replaces it, the uncalibrated one is kept beside it
        uncalibrated = out / "best_uncalibrated.keras"
        if not uncalibrated.exists():  # a rerun after calibration must not overwrite it with a calibrated copy
            (out / "best.keras").replace(uncalibrated)
        best.save(out / "best.keras")
    model_path = out / "model.keras"
    best.save(model_path)
    elapsed = time.time() - started
    metadata = model_metadata(
        config,
        best,
        command=command or " ".join(shlex.quote(a) for a in sys.argv),
        duration_s=round(elapsed, 1),
        metrics=val_metrics,
        training_extra={
            "n_train": len(train_ds),
            "n_val": len(val_ds),
            "cleaning": train_ds.report.get("cleaning", {}),
        },
    )
    write_metadata(model_path, metadata)
    _record_invocation(out, metadata["training"]["command"], elapsed)
    print(f"best {config.val_split} accuracy {val_acc:.4f}; model written to {model_path}", flush=True)
    return model_path


def _finish_swa(config, best, train_pipe, val_pipe, val_labels, steps_per_epoch, *, best_accuracy):
    """Build the weight-averaged network of an SWA run, recompute its BatchNorm statistics, score it.

    When it scores at least ``best_accuracy`` on the validation split it replaces ``best.keras`` (the
    best epoch is kept as ``best_epoch.keras``), so that ``export`` ships it; it is always saved as
    ``swa.keras``. Returns None (and says so) when no epoch was averaged (e.g. early stopping came first).
    """
    import keras

    from training.swa import load_average, update_batchnorm

    out = Path(config.out)
    weights, count, epochs = load_average(out / "swa_weights.npz")
    if weights is None:
        print(f"SWA: no epoch reached swa_start={config.swa_start}; the best epoch is the model", flush=True)
        return None
    model = keras.models.clone_model(best)
    model.set_weights([w.astype(np.float32) for w in weights])
    n_batches = update_batchnorm(model, train_pipe, max_batches=steps_per_epoch)
    accuracy = float((model.predict(val_pipe, verbose=0).argmax(1) == val_labels).mean())
    model.save(out / "swa.keras")
    selected = accuracy >= best_accuracy
    if selected:
        import shutil

        if not (out / "best_epoch.keras").exists():
            shutil.copyfile(out / "best.keras", out / "best_epoch.keras")
        model.save(out / "best.partial.keras")  # never a moment without a best.keras
        os.replace(out / "best.partial.keras", out / "best.keras")
    print(f"SWA: mean of epochs {epochs[0]}-{epochs[-1]} ({count}), BatchNorm statistics from {n_batches} "
          f"training batches: {config.val_split} accuracy {accuracy:.4f} against the best epoch's "
          f"{best_accuracy:.4f}; {'the average' if selected else 'the best epoch'} is the run's model", flush=True)
    summary = {"epochs_averaged": count, "first_epoch": epochs[0], "last_epoch": epochs[-1],
               f"{config.val_split}_accuracy": round(accuracy, 4),
               f"best_epoch_{config.val_split}_accuracy": round(best_accuracy, 4), "selected": selected}
    return {"model": model, "summary": summary}


def model_metadata(config: TrainConfig, model, *, command: str, duration_s: float, metrics: dict,
                   val_split: str | None = None, training_extra: dict | None = None, extra: dict | None = None) -> dict:
    """Build the metadata stored in a model file (the one definition used by ``train`` and ``export``).

    Parameters
    ----------
    config : TrainConfig
        The run's configuration (preprocessing, architecture, data path and splits).
    model : keras.Model
        The trained network (for its parameter count).
    command : str
        Training command line that reproduces the run.
    duration_s : float
        Training wall time in seconds.
    metrics : dict
        Evaluation figures (accuracies are fractions in [0, 1]).
    val_split : str, optional
        Validation split name; default ``config.val_split``.
    training_extra, extra : dict, optional
        More keys for the ``training`` section and for the top level.

    Returns
    -------
    dict
        JSON-serialisable; passes :func:`fer_core.model_file.check_metadata`. ``training.data_sha256``
        is :func:`training.data.dataset_sha256` of ``config.data``.

    Raises
    ------
    FileNotFoundError
        If ``config.data`` does not exist.
    OSError
        If a file under ``config.data`` cannot be read for hashing.
    """
    import tensorflow as tf

    from training.data import dataset_sha256

    training = {
        "config": asdict(config),
        "data_file": Path(config.data).name,
        "data_sha256": dataset_sha256(config.data),
        "train_split": config.train_split,
        "val_split": val_split or config.val_split,
        **(training_extra or {}),
        "command": command,
        "duration_s": duration_s,
        "tensorflow": tf.__version__,
        "host_cpus": os.cpu_count(),
    }
    return {
        "classes": list(EMOTIONS),
        "preprocessing": config.spec().to_dict(),
        "architecture": config.arch,
        "parameters": int(model.count_params()),
        "training": training,
        "metrics": metrics,
        **(extra or {}),
    }


def epochs_done(out: str | Path) -> int:
    """Epochs a run has finished so far: the rows of its ``history.csv`` (0 for a new run).

    Parameters
    ----------
    out : str or Path
        The run's folder.

    Returns
    -------
    int
    """
    path = Path(out) / "history.csv"
    if not path.is_file():
        return 0
    return max(0, sum(1 for line in path.read_text().splitlines() if line.strip()) - 1)


#: Seed offset per finished epoch for the input pipelines of a resumed run (:func:`pipeline_config`).
RESUME_SEED_STRIDE = 1000


def pipeline_config(config: TrainConfig, done: int) -> TrainConfig:
    """The configuration the training input pipeline draws its randomness from, after ``done`` epochs.

    The pipelines' shuffles, augmentation layers and view draws are seeded from ``config.seed`` and start
    their sequences when built, so a run resumed after ``done`` epochs with the same seed would replay
    epoch 1's batches (the same images in the same order, and the same sequence of augmentation draws,
    which the parallel map hands out to the batches in a nearly fixed order) instead of drawing new ones.
    A new run (``done`` 0) keeps ``config`` as it is (reproducible as before); a resumed one draws from
    ``seed + 1000 * done``: :func:`train` builds its pipelines from it and sets the global seed (random
    erasing, mixup) to it. The calibration hold-out, the augmented views of ``--teacher-views`` (cached,
    drawn from ``views_seed``, else the run's seed) and the saved config keep theirs. Keras deletes a run's backup when
    it finishes, so ``--resume`` of a finished run trains again from the start, and with the moved seed.

    Parameters
    ----------
    config : TrainConfig
    done : int
        Epochs already finished (:func:`epochs_done`).

    Returns
    -------
    TrainConfig
        ``config`` itself, or a copy with the moved ``seed``.

    Raises
    ------
    ValueError
        If ``done`` is negative.
    """
    if done < 0:
        raise ValueError(f"done has to be 0 or more epochs; got {done}")
    return config if done == 0 else replace(config, seed=config.seed + RESUME_SEED_STRIDE * done)


def _record_invocation(out: Path, command: str, duration_s: float) -> None:
    """Append this invocation (command, seconds) to ``out/run.json``; export sums the durations."""
    path = out / "run.json"
    runs = json.loads(path.read_text()) if path.exists() else []
    runs.append({"command": command, "duration_s": round(duration_s, 1), "finished": time.time()})
    path.write_text(json.dumps(runs, indent=2))
