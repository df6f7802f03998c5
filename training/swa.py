"""Stochastic weight averaging (SWA): the mean of the weights a run visits at its last epochs.

Izmailov, Podoprikhin, Garipov, Vetrov & Wilson, "Averaging Weights Leads to Wider Optima and Better
Generalization", UAI 2018 (arXiv 1803.05407): train at a constant (or cyclic) learning rate, average
the weights at the end of each epoch, then recompute the BatchNorm statistics of the averaged
network with one pass over the training data (PyTorch's ``torch.optim.swa_utils.update_bn``).

:class:`WeightAverager` keeps the running mean on disk, so an interrupted run resumed with
``--resume`` continues the average; :func:`update_batchnorm` recomputes the statistics.
"""

from __future__ import annotations

import os
from pathlib import Path

import keras
import numpy as np


class WeightAverager(keras.callbacks.Callback):
    """Keras callback: running mean of all model weights at the end of epochs ``start_epoch``, ``start_epoch + 1``...

    The mean covers every weight array of ``model.get_weights()`` (BatchNorm moving statistics
    included; :func:`update_batchnorm` replaces those afterwards) and is written to ``path`` (``.npz``:
    arrays ``w0``..``wK`` float64, ``count`` and ``epochs``, the 1-based epochs averaged) after each
    averaged epoch. An epoch already in the file (an epoch re-run after ``--resume``) is not counted twice.

    Parameters
    ----------
    path : str or Path
        The ``.npz`` file; loaded if it exists (resume), written atomically (temporary name, then replace).
    start_epoch : int
        First epoch (1-based, as Keras prints it) whose weights enter the mean; at least 1.

    Raises
    ------
    ValueError
        If ``start_epoch`` is below 1.
    RuntimeError
        At the first epoch, if the file holds epochs after the one training starts at (an ended run
        restarted from scratch: its average would mix two runs).
    """

    def __init__(self, path, start_epoch: int):
        super().__init__()
        if start_epoch < 1:
            raise ValueError(f"start_epoch has to be at least 1 (1-based); got {start_epoch}")
        self.path = Path(path)
        self.start_epoch = int(start_epoch)
        self.mean, self.count, self.epochs = load_average(self.path)

    def on_epoch_begin(self, epoch, logs=None):
        # After a proper --resume, Keras restarts at the first epoch not backed up; the file may hold that
        # epoch at most (saved just before a crash). More means the backup is gone (a finished run
        # resumed with more epochs restarts from its initial weights) and the average would mix two runs.
        if self.epochs and max(self.epochs) > epoch + 1:
            raise RuntimeError(f"{self.path} holds epochs up to {max(self.epochs)} but training starts at epoch "
                               f"{epoch + 1}: the run's backup is gone (a finished run cannot be extended); "
                               "start a new run (--out) with --init-weights instead")

    def on_epoch_end(self, epoch, logs=None):
        number = epoch + 1
        if number < self.start_epoch or number in self.epochs:
            return
        weights = self.model.get_weights()
        if self.mean is None:
            self.mean = [np.zeros(w.shape, np.float64) for w in weights]
        self.count += 1
        for mean, w in zip(self.mean, weights, strict=True):
            mean += (w.astype(np.float64) - mean) / self.count
        self.epochs.append(number)
        partial = self.path.with_name(self.path.stem + ".partial.npz")
        np.savez(partial, count=self.count, epochs=np.array(self.epochs, np.int64),
                 **{f"w{i}": m for i, m in enumerate(self.mean)})
        os.replace(partial, self.path)
        print(f"SWA: epoch {number} added to the weight average ({self.count} epochs)", flush=True)


def load_average(path) -> tuple[list[np.ndarray] | None, int, list[int]]:
    """Read a weight average written by :class:`WeightAverager`.

    Parameters
    ----------
    path : str or Path

    Returns
    -------
    (weights, count, epochs)
        List of float64 arrays in ``model.get_weights()`` order (None when ``path`` does not exist),
        the number of epochs averaged and their 1-based numbers.

    Raises
    ------
    ValueError
        If the file exists but is not such an average (missing ``count`` or weight arrays).
    """
    path = Path(path)
    if not path.exists():
        return None, 0, []
    with np.load(path) as data:
        if "count" not in data.files or "w0" not in data.files:
            raise ValueError(f"{path}: not a weight average written by training.swa.WeightAverager")
        n = sum(1 for name in data.files if name.startswith("w"))
        return [data[f"w{i}"] for i in range(n)], int(data["count"]), [int(e) for e in data["epochs"]]


def update_batchnorm(model, batches, *, max_batches: int | None = None) -> int:
    """Recompute every BatchNormalization layer's moving mean and variance as the plain average over ``batches``.

    Runs the model eagerly in training mode (as :func:`torch.optim.swa_utils.update_bn` does), with each
    layer's momentum set so that after batch k the moving statistics are the mean of the k batch
    statistics (Keras 3 updates ``moving * momentum + batch * (1 - momentum)``; the variance is each
    batch's biased variance, as Keras computes it); momenta are restored afterwards, also on error.
    Other weights are unchanged (the forward passes apply no gradient; dropout is active, as in training).

    Parameters
    ----------
    model : keras.Model
        Network whose BatchNorm layers are updated in place.
    batches : iterable
        Elements ``x`` or tuples whose first item is ``x``: float32 (B, S, S, C) model input.
    max_batches : int, optional
        Stop after this many batches (needed for an infinite pipeline).

    Returns
    -------
    int
        The number of batches used.

    Raises
    ------
    ValueError
        If ``batches`` yields no batch, or a BatchNormalization layer (or the model) is frozen
        (``trainable=False``: Keras would not update its statistics, leaving them reset).
    """
    layers = [layer for layer in _all_layers(model) if isinstance(layer, keras.layers.BatchNormalization)]
    frozen = [layer.name for layer in layers if not layer.trainable]
    if frozen:
        raise ValueError(f"update_batchnorm: BatchNormalization layers {frozen} are frozen (trainable=False); "
                         "Keras updates the statistics of trainable layers only")
    momenta = [layer.momentum for layer in layers]
    for layer in layers:
        layer.moving_mean.assign(np.zeros(layer.moving_mean.shape, np.float32))
        layer.moving_variance.assign(np.ones(layer.moving_variance.shape, np.float32))
    n = 0
    try:
        for batch in batches:
            x = batch[0] if isinstance(batch, (tuple, list)) else batch
            for layer in layers:
                layer.momentum = n / (n + 1)  # new = old * n/(n+1) + batch/(n+1): the running mean
            model(x, training=True)
            n += 1
            if max_batches is not None and n >= max_batches:
                break
    finally:
        for layer, momentum in zip(layers, momenta, strict=True):
            layer.momentum = momentum
    if n == 0:
        raise ValueError("update_batchnorm: the batches yielded nothing")
    return n


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if isinstance(layer, keras.Model):
            yield from _all_layers(layer)
