"""Calibration of the classifier's probabilities: temperature scaling and expected calibration error.

Temperature scaling (Guo, Pleiss, Sun & Weinberger 2017, "On Calibration of Modern Neural Networks",
ICML) divides the network's logits by one scalar ``T`` fitted by minimising the negative log-likelihood on
images held out of training (a stratified part of FER2013 ``Training``, never PublicTest); the top class,
and so the accuracy, is unchanged. Expected calibration error (ECE; Naeini et al. 2015, in the form of
Guo et al. 2017) with 15 equal-width confidence bins measures how far the top probability is from the
accuracy it claims. The dashboard thresholds probabilities (the share of participants expressing an
emotion), so the shipped probabilities should mean what they say.
"""

from __future__ import annotations

import numpy as np

#: Number of equal-width confidence bins of :func:`expected_calibration_error` (Guo et al. 2017 use 15).
ECE_BINS = 15


def expected_calibration_error(probs: np.ndarray, labels: np.ndarray, n_bins: int = ECE_BINS) -> float:
    """Expected calibration error of the top-class probability.

    ``ECE = sum_b (n_b / N) * |accuracy_b - mean confidence_b|`` over ``n_bins`` equal-width bins of the
    top probability in (0, 1].

    Parameters
    ----------
    probs : ndarray of shape (N, K), float
        Class probabilities (rows sum to 1).
    labels : ndarray of shape (N,), int
        True class codes 0..K-1.
    n_bins : int
        Number of bins.

    Returns
    -------
    float
        ECE in [0, 1] (0 = perfectly calibrated); 0.0 for no images.

    Raises
    ------
    ValueError
        If ``probs`` and ``labels`` differ in length or ``n_bins`` is below 1.
    """
    probs, labels = np.asarray(probs, dtype=np.float64), np.asarray(labels)
    if len(probs) != len(labels):
        raise ValueError(f"probs ({len(probs)}) and labels ({len(labels)}) differ in length")
    if n_bins < 1:
        raise ValueError(f"n_bins has to be at least 1; got {n_bins}")
    if len(probs) == 0:
        return 0.0
    confidence = probs.max(axis=1)
    correct = (probs.argmax(axis=1) == labels).astype(np.float64)
    bins = np.clip(np.ceil(confidence * n_bins).astype(int) - 1, 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        mask = bins == b
        if mask.any():
            ece += mask.mean() * abs(correct[mask].mean() - confidence[mask].mean())
    return float(ece)


def _nll(logits: np.ndarray, labels: np.ndarray, temperature: float) -> float:
    z = logits / temperature
    z = z - z.max(axis=1, keepdims=True)
    log_probs = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    return float(-log_probs[np.arange(len(labels)), labels].mean())


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> float:
    """The temperature ``T`` minimising the negative log-likelihood of ``softmax(logits / T)``.

    Parameters
    ----------
    logits : ndarray of shape (N, K), float
        Pre-softmax outputs of the network on held-out images.
    labels : ndarray of shape (N,), int
        True class codes.

    Returns
    -------
    float
        ``T`` in [0.05, 20] (above 1 softens over-confident probabilities).

    Raises
    ------
    ValueError
        If there are no images or the lengths differ.
    """
    from scipy.optimize import minimize_scalar

    logits, labels = np.asarray(logits, dtype=np.float64), np.asarray(labels)
    if len(logits) == 0 or len(logits) != len(labels):
        raise ValueError(f"fit_temperature needs as many labels as logits rows (> 0); got {len(logits)}, {len(labels)}")
    result = minimize_scalar(lambda log_t: _nll(logits, labels, float(np.exp(log_t))),
                             bounds=(np.log(0.05), np.log(20.0)), method="bounded")
    return float(np.exp(result.x))


def logits_model(model):
    """The sub-network of ``model`` that outputs its ``logits`` layer (pre-softmax, (N, 7) float32).

    Raises
    ------
    ValueError
        If ``model`` has no layer named ``logits`` (ensembles and mirror-wrapped files: calibrate the
        network before wrapping it).
    """
    import keras

    names = {layer.name for layer in model.layers}
    if "logits" not in names:
        raise ValueError(f"{model.name}: no 'logits' layer to calibrate (calibrate the network before wrapping it)")
    return keras.Model(model.input, model.get_layer("logits").output)


def with_temperature(model, temperature: float):
    """``model`` with its logits divided by ``temperature`` before the softmax (standard layers only).

    Returns
    -------
    keras.Model
        Same input; output (N, 7) float32 probabilities named ``calibrated_probabilities``. Shares
        ``model``'s layers (weights are not copied).
    """
    import keras
    from keras import layers

    logits = model.get_layer("logits").output
    scaled = layers.Rescaling(1.0 / float(temperature), name="temperature_scaling")(logits)
    probs = layers.Activation("softmax", dtype="float32", name="calibrated_probabilities")(scaled)
    return keras.Model(model.input, probs, name=f"{model.name}_calibrated")


def calibrate_model(model, calib_images, calib_labels, val_images=None, val_labels=None, *,
                    val_split: str = "PublicTest", batch_size: int = 256):
    """Fit temperature scaling on held-out training images and report ECE before and after.

    Parameters
    ----------
    model : keras.Model
        Trained network with a ``logits`` layer; input (N, S, S, C) float32 pixels 0-255.
    calib_images : ndarray of shape (M, S, S, C), dtype uint8
        Images held out of training (part of ``Training``).
    calib_labels : ndarray of shape (M,), int
        Their FER2013 codes.
    val_images, val_labels : optional
        The validation split, for reporting only (never fitted on).
    val_split : str
        Name of the validation split in the report.

    Returns
    -------
    (keras.Model, dict)
        The calibrated network (:func:`with_temperature`) and ``{"method", "temperature", "bins",
        "calibration_split": {"n", "ece_before", "ece_after", "nll_before", "nll_after"}, val_split: {...}}``
        (the validation split's entry only when it is given).

    Raises
    ------
    ValueError
        As :func:`logits_model` and :func:`fit_temperature`.
    """
    head = logits_model(model)

    def logits_of(images):
        return np.concatenate([np.asarray(head.predict_on_batch(images[i:i + batch_size].astype(np.float32)))
                               for i in range(0, len(images), batch_size)])

    calib_logits = logits_of(calib_images)
    temperature = fit_temperature(calib_logits, calib_labels)

    def report(logits, labels):
        return {"n": int(len(labels)),
                "ece_before": round(expected_calibration_error(_softmax(logits), labels), 4),
                "ece_after": round(expected_calibration_error(_softmax(logits / temperature), labels), 4),
                "nll_before": round(_nll(logits, labels, 1.0), 4),
                "nll_after": round(_nll(logits, labels, temperature), 4)}

    summary = {"method": "Temperature scaling (Guo et al. 2017), fitted on a stratified hold-out of Training",
               "temperature": round(temperature, 4), "bins": ECE_BINS,
               "calibration_split": report(calib_logits, np.asarray(calib_labels))}
    if val_images is not None and len(val_images):
        summary[val_split] = report(logits_of(val_images), np.asarray(val_labels))
    print(f"temperature scaling: T = {temperature:.3f}; ECE on the hold-out {summary['calibration_split']['ece_before']}"
          f" -> {summary['calibration_split']['ece_after']}", flush=True)
    return with_temperature(model, temperature), summary
