"""Model builders: a compact CNN and a fast depthwise-separable CNN trained from scratch, and EfficientNet for
two-phase fine-tuning.

Both take ``uint8``-valued input of shape (S, S, C) as produced by
:func:`fer_core.preprocessing.preprocess_faces` and rescale inside the network (keras-io's habit
that removes training/serving skew). Both end in a 7-way softmax in FER2013 order.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import layers

from fer_core.emotions import NUM_CLASSES


def build_compact_cnn(
    input_size: int = 48,
    channels: int = 1,
    *,
    widths: tuple[int, ...] = (64, 128, 256, 512),
    dense_units: int = 256,
    dropout_rate: float = 0.4,
    weight_decay: float = 1e-4,
    num_classes: int = NUM_CLASSES,
) -> keras.Model:
    """Build the default VGG-style classifier trained from scratch on FER2013.

    Four blocks of two 3x3 convolutions (BatchNorm, ReLU) and 2x2 max pooling, global average
    pooling, one dense layer and a softmax; the layout follows the VGG variants that reach about
    73% on FER2013 (Khaireddin & Chen 2021, arXiv 2105.03588), narrowed to train on a CPU.

    Parameters
    ----------
    input_size : int
        Input side in pixels (48 for FER2013).
    channels : int
        1 (grayscale) or 3.
    widths : tuple of int
        Filters per block.
    dense_units : int
        Width of the dense layer before the classifier.
    dropout_rate : float
        Dropout before the dense layer and before the classifier.
    weight_decay : float
        L2 penalty on convolution and dense kernels.

    Returns
    -------
    keras.Model
        Input (None, input_size, input_size, channels) float32 with values 0-255; output
        (None, num_classes) softmax probabilities (float32).
    """
    reg = keras.regularizers.l2(weight_decay) if weight_decay else None
    inputs = keras.Input(shape=(input_size, input_size, channels), name="face")
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    for block, width in enumerate(widths, start=1):
        for conv in (1, 2):
            x = layers.Conv2D(width, 3, padding="same", use_bias=False, kernel_regularizer=reg,
                              name=f"block{block}_conv{conv}")(x)
            x = layers.BatchNormalization(name=f"block{block}_bn{conv}")(x)
            x = layers.ReLU(name=f"block{block}_relu{conv}")(x)
        x = layers.MaxPooling2D(2, name=f"block{block}_pool")(x)
        if block >= 3:
            x = layers.SpatialDropout2D(0.1, name=f"block{block}_drop")(x)
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout_rate, name="head_drop1")(x)
    x = layers.Dense(dense_units, use_bias=False, kernel_regularizer=reg, name="head_dense")(x)
    x = layers.BatchNormalization(name="head_bn")(x)
    x = layers.ReLU(name="head_relu")(x)
    x = layers.Dropout(dropout_rate, name="head_drop2")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="fer_compact_cnn")


def _separable(x, width: int, reg, name: str):
    """Depthwise 3x3 convolution, BatchNorm, pointwise 1x1 convolution to ``width``, BatchNorm, ReLU."""
    x = layers.DepthwiseConv2D(3, padding="same", use_bias=False, depthwise_regularizer=reg, name=f"{name}_dw")(x)
    x = layers.BatchNormalization(name=f"{name}_dw_bn")(x)
    x = layers.Conv2D(width, 1, use_bias=False, kernel_regularizer=reg, name=f"{name}_pw")(x)
    x = layers.BatchNormalization(name=f"{name}_pw_bn")(x)
    return layers.ReLU(name=f"{name}_relu")(x)


def build_fast_cnn(
    input_size: int = 48,
    channels: int = 1,
    *,
    widths: tuple[int, ...] = (48, 96, 192, 288),
    blocks: tuple[int, ...] = (1, 2, 2, 1),
    stem_widths: tuple[int, int] = (24, 48),
    dropout_rate: float = 0.3,
    weight_decay: float = 1e-4,
    num_classes: int = NUM_CLASSES,
) -> keras.Model:
    """Build the fast classifier: early downsampling and residual depthwise-separable blocks.

    Layout: a full 3x3 convolution at input resolution (``stem_widths[0]`` filters), a strided 3x3
    convolution to half resolution (``stem_widths[1]``), then one stage per entry of ``widths`` (the
    first at half resolution, each later one after 2x2 max pooling), each of ``blocks[i]`` residual
    blocks of two depthwise-separable convolutions (Chollet 2017, Xception; the mini-Xception of
    Arriaga et al. 2017 uses the same block on FER2013), global average pooling, dropout, a linear
    ``logits`` layer and a softmax. Nearly all multiply-adds sit at 24x24 and below; with the defaults
    at 48x48 the network has about 0.43 M parameters and about 23 M multiply-adds per face (the
    compact CNN: 1.24 M and 118 M), so it is meant to be served without the mirror pass.

    Parameters
    ----------
    input_size : int
        Input side in pixels (48 for FER2013); divisible by ``2 ** len(widths)`` is best.
    channels : int
        1 (grayscale) or 3.
    widths : tuple of int
        Filters of each stage.
    blocks : tuple of int
        Residual blocks per stage (same length as ``widths``).
    stem_widths : (int, int)
        Filters of the full-resolution and of the strided stem convolution.
    dropout_rate : float
        Dropout before the classifier.
    weight_decay : float
        L2 penalty on convolution and dense kernels.

    Returns
    -------
    keras.Model
        Input (None, input_size, input_size, channels) float32 with values 0-255; output
        (None, num_classes) float32 softmax probabilities from the layer named ``logits``.

    Raises
    ------
    ValueError
        If ``widths`` and ``blocks`` differ in length or are empty.
    """
    if not widths or len(widths) != len(blocks):
        raise ValueError(f"widths and blocks need the same, non-zero length; got {widths} and {blocks}")
    reg = keras.regularizers.l2(weight_decay) if weight_decay else None
    inputs = keras.Input(shape=(input_size, input_size, channels), name="face")
    x = layers.Rescaling(1.0 / 255.0, name="rescale")(inputs)
    for i, (width, stride) in enumerate(zip(stem_widths, (1, 2), strict=True), start=1):
        x = layers.Conv2D(width, 3, strides=stride, padding="same", use_bias=False, kernel_regularizer=reg,
                          name=f"stem_conv{i}")(x)
        x = layers.BatchNormalization(name=f"stem_bn{i}")(x)
        x = layers.ReLU(name=f"stem_relu{i}")(x)
    for stage, (width, count) in enumerate(zip(widths, blocks, strict=True), start=1):
        if stage > 1:
            x = layers.MaxPooling2D(2, name=f"stage{stage}_pool")(x)
        for block in range(1, count + 1):
            name = f"stage{stage}_block{block}"
            shortcut = x
            if x.shape[-1] != width:
                shortcut = layers.Conv2D(width, 1, use_bias=False, kernel_regularizer=reg, name=f"{name}_proj")(x)
                shortcut = layers.BatchNormalization(name=f"{name}_proj_bn")(shortcut)
            y = _separable(x, width, reg, f"{name}_sep1")
            y = _separable(y, width, reg, f"{name}_sep2")
            x = layers.Add(name=f"{name}_add")([shortcut, y])
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    x = layers.Dropout(dropout_rate, name="head_drop")(x)
    x = layers.Dense(num_classes, kernel_regularizer=reg, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name="fer_fast_cnn")


#: EfficientNet variants and their Keras application constructors' names.
EFFICIENTNET_VARIANTS: dict[str, str] = {
    "efficientnet_b0": "EfficientNetB0",
    "efficientnet_b1": "EfficientNetB1",
    "efficientnet_b2": "EfficientNetB2",
}


def build_efficientnet(
    variant: str = "efficientnet_b0",
    input_size: int = 96,
    *,
    weights: str | None = None,
    dropout_rate: float = 0.2,
    num_classes: int = NUM_CLASSES,
) -> keras.Model:
    """Build an EfficientNet (Tan & Le 2019) classifier for two-phase fine-tuning, as in keras-io's example.

    The Keras application is built on the model's own input tensor (``input_tensor=``), so its
    layers (``stem_*``, ``block1a_*`` ... ``block7*``, ``top_*``) are layers of the returned model
    and :func:`training.finetune.set_trainable_phase` can freeze and unfreeze them by block. The
    application rescales and normalises 0-255 pixels itself, so preprocessing stays inside the
    model. Head: global average pooling, BatchNorm, dropout, softmax (keras-io's
    ``image_classification_efficientnet_fine_tuning``).

    Parameters
    ----------
    variant : {"efficientnet_b0", "efficientnet_b1", "efficientnet_b2"}
    input_size : int
        Input side in pixels (at least 32); 3-channel RGB input.
    weights : str, optional
        Path to a local no-top weights file (e.g. ImageNet ``*_notop.h5``); None trains from
        scratch. Nothing is downloaded.
    dropout_rate : float
        Dropout before the classifier.

    Returns
    -------
    keras.Model
        Input (None, input_size, input_size, 3) float32 values 0-255; output (None, num_classes)
        softmax probabilities (float32).

    Raises
    ------
    ValueError
        If ``variant`` is unknown, ``input_size`` is below 32 or ``weights`` is not an existing file.
    """
    from pathlib import Path

    if variant not in EFFICIENTNET_VARIANTS:
        raise ValueError(f"variant has to be one of {sorted(EFFICIENTNET_VARIANTS)}; got {variant!r}")
    if input_size < 32:
        raise ValueError(f"input_size has to be at least 32 pixels for EfficientNet; got {input_size}")
    if weights and not Path(weights).is_file():
        raise ValueError(f"weights has to be an existing weights file (nothing is downloaded); got {weights!r}")
    application = getattr(keras.applications, EFFICIENTNET_VARIANTS[variant])
    inputs = keras.Input(shape=(input_size, input_size, 3), name="face")
    base = application(include_top=False, weights=weights or None, input_tensor=inputs)
    x = layers.GlobalAveragePooling2D(name="head_pool")(base.output)
    x = layers.BatchNormalization(name="head_bn")(x)
    x = layers.Dropout(dropout_rate, name="head_drop")(x)
    x = layers.Dense(num_classes, name="logits")(x)
    outputs = layers.Activation("softmax", dtype="float32", name="probabilities")(x)
    return keras.Model(inputs, outputs, name=variant)


def average_ensemble(members: list, *, name: str = "fer_ensemble") -> keras.Model:
    """One network that averages the probabilities of several trained networks (a mean ensemble).

    The result is an ordinary Keras functional model, so it is saved as one ``.keras`` file, carries
    one metadata record, converts to LiteRT in one piece, and the core serves it like any single
    network (its cost per face is the sum of the members'). Averaging the softmax outputs of
    independently or cyclically trained networks is the ensembling used by the FER2013 results in
    ``../shared/TRAINING-NOTES.md`` (75-77 % for ensembles; Huang et al. 2017, "Snapshot Ensembles").

    Parameters
    ----------
    members : list of keras.Model
        At least two trained networks, each mapping (N, S, S, C) float32 pixel values 0-255 to
        (N, 7) float32 probabilities, with the same input shape. They are copied (renamed
        ``member_1``, ``member_2`` ...), never modified.
    name : str
        Name of the returned model.

    Returns
    -------
    keras.Model
        Input (N, S, S, C) float32 pixels 0-255; output (N, 7) float32, the mean of the members'
        probabilities (rows still sum to 1).

    Raises
    ------
    ValueError
        If fewer than two members are given, or their input or output shapes differ.
    """
    if len(members) < 2:
        raise ValueError(f"an ensemble needs at least two members, got {len(members)}")
    shapes = {(tuple(m.input_shape[1:]), tuple(m.output_shape[1:])) for m in members}
    if len(shapes) != 1:
        raise ValueError(f"ensemble members' input/output shapes differ: {sorted(shapes)}")
    (input_shape, _), = shapes
    inputs = keras.Input(shape=input_shape, name="face")
    outputs = []
    for i, member in enumerate(members, start=1):
        config = member.get_config()
        config["name"] = f"member_{i}"
        copy = keras.Model.from_config(config)
        copy.set_weights(member.get_weights())
        outputs.append(copy(inputs))
    mean = layers.Average(name="mean_probabilities")(outputs)
    return keras.Model(inputs, mean, name=name)


def mirror_average(network: keras.Model, *, name: str = "fer_mirror_tta") -> keras.Model:
    """Wrap a trained network so that its output is the mean over the face and its horizontal mirror.

    Horizontal-flip test-time augmentation (as in the FER2013 recipes of
    ``../shared/TRAINING-NOTES.md`` and Khaireddin & Chen 2021) built into the network, so that the
    exported model file, its LiteRT copy and every runner of the core serve it without code of their
    own. The mirror is made with standard layers only (``Permute``, a fixed anti-identity ``Dense``
    over the width axis, ``Permute``), so the file loads without custom objects. The network's weights
    are shared by both views (it is called twice), and are not copied or modified. Cost per face: twice
    the network's. The mirror is exact in the float network; in the int8 dynamic-range LiteRT copy
    the core serves by default, the mirror's 48x48 kernel is int8 and its input is quantized on the
    fly, so mirrored pixels are off by up to half a gray level (0-255 scale).

    Parameters
    ----------
    network : keras.Model
        Maps (N, H, W, C) float32 pixel values 0-255 to (N, 7) float32 probabilities (H = W = 48 for
        the compact CNN).
    name : str
        Name of the returned model.

    Returns
    -------
    keras.Model
        Input (N, H, W, C) float32 pixels 0-255 named ``face``; output (N, 7) float32 named
        ``mirror_mean``: ``(network(x) + network(x[:, :, ::-1])) / 2`` (rows sum to 1).

    Raises
    ------
    ValueError
        If the network's input is not (H, W, C) with known sizes.
    """

    shape = tuple(network.input_shape[1:])
    if len(shape) != 3 or any(d is None for d in shape):
        raise ValueError(f"mirror_average needs a network with input (H, W, C) of known sizes; got {shape}")
    width = shape[1]
    inputs = keras.Input(shape=shape, name="face")
    columns = layers.Permute((1, 3, 2), name="mirror_to_columns")(inputs)  # (H, C, W)
    anti_identity = np.eye(width, dtype=np.float32)[::-1]
    mirror = layers.Dense(width, use_bias=False, trainable=False, name="mirror_columns",
                          kernel_initializer=keras.initializers.Constant(anti_identity))
    mirrored = layers.Permute((1, 3, 2), name="mirror")(mirror(columns))  # back to (H, W, C), columns reversed
    mean = layers.Average(name="mirror_mean")([network(inputs), network(mirrored)])
    return keras.Model(inputs, mean, name=name)


def multiply_adds(model) -> int:
    """Multiply-adds of one forward pass for one image, counted from the layers' shapes.

    Counts ``Conv2D`` (``H_out * W_out * k_h * k_w * C_in * C_out``), ``DepthwiseConv2D``
    (``H_out * W_out * k_h * k_w * C``), ``SeparableConv2D`` (both parts) and ``Dense`` (``inputs * units``) layers, descending into nested
    models (each call counted once per use); BatchNorm, activations, pooling and additions are left out
    (they are cheap or fused at inference).

    Parameters
    ----------
    model : keras.Model

    Returns
    -------
    int
        Multiply-adds per image.
    """
    total = 0
    for layer in model.layers:
        kind = type(layer).__name__
        if isinstance(layer, keras.Model):
            total += multiply_adds(layer) * max(1, len(getattr(layer, "_inbound_nodes", [])) or 1)
        elif kind == "Conv2D":
            h, w, c_out = layer.output.shape[1:]
            total += h * w * layer.kernel_size[0] * layer.kernel_size[1] * layer.input.shape[-1] * c_out
        elif kind == "SeparableConv2D":
            h, w, c_out = layer.output.shape[1:]
            c_in = layer.input.shape[-1]
            total += h * w * (layer.kernel_size[0] * layer.kernel_size[1] * c_in + c_in * c_out)
        elif kind == "DepthwiseConv2D":
            h, w, c = layer.output.shape[1:]
            total += h * w * layer.kernel_size[0] * layer.kernel_size[1] * c
        elif kind == "Dense":
            total += int(np.prod(layer.input.shape[1:])) * layer.units
    return int(total)


def has_mirror(model: keras.Model) -> bool:
    """Whether ``model``'s output is the mean over the face and its mirror (:func:`mirror_average` outermost).

    Such a model gives a face and its left-right mirror the same probabilities (exactly in float), which
    is what lets ``--teacher-views`` flip a view without asking the teacher again
    (:func:`training.train.make_view_dataset`).

    Parameters
    ----------
    model : keras.Model
        Maps (N, H, W, C) float32 pixels 0-255 to (N, 7) probabilities.

    Returns
    -------
    bool
    """
    return bool(model.layers) and model.layers[-1].name == "mirror_mean"


def unwrap_mirror(model: keras.Model) -> keras.Model:
    """The network inside a :func:`mirror_average` wrapper, or ``model`` itself when it has none.

    Used when a member with the mirror built in joins an ensemble that is mirrored as a whole
    (``export --ensemble-with ... --mirror-tta``): mirroring it twice would add two passes that change
    nothing (the mean over the face and its mirror is the same either way).

    Parameters
    ----------
    model : keras.Model
        Maps (N, H, W, C) float32 pixels 0-255 to (N, 7) probabilities.

    Returns
    -------
    keras.Model
        The wrapped network (the same object, not a copy) or ``model``.

    Raises
    ------
    ValueError
        If ``model`` has a ``mirror_mean`` layer but not exactly one nested network.
    """
    if not has_mirror(model):
        return model
    inner = [layer for layer in model.layers if isinstance(layer, keras.Model)]
    if len(inner) != 1:
        raise ValueError(f"{model.name}: a mirror wrapper around {len(inner)} networks; expected one")
    return inner[0]
