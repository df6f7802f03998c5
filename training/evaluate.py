"""Evaluation of a model file on any dataset format: accuracy, macro F1, per-class scores, confusion matrix.

Optional test-time augmentation (TTA) averages the predicted probabilities over the image, its
horizontal mirror and a few shifted crops, as in the FER2013 literature (e.g. Khaireddin & Chen
2021, "Facial Emotion Recognition: State of the Art Performance on FER2013", which averages
ten-crop predictions).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fer_core.classifier import default_model_path
from fer_core.emotions import EMOTIONS, NUM_CLASSES
from fer_core.model_file import ModelFileError, read_metadata
from fer_core.preprocessing import PreprocessSpec

#: The shipped default model, used when ``--model`` is not given (the core's one definition).
DEFAULT_MODEL_PATH = default_model_path()


def tta_views(images: np.ndarray, *, shift_fraction: float = 0.08) -> list[np.ndarray]:
    """Return the test-time augmentation views of a batch: identity, mirror and four shifted copies.

    Parameters
    ----------
    images : ndarray of shape (N, S, S, C), uint8
    shift_fraction : float
        Shift of the four diagonal crops as a fraction of the side (edge pixels repeated).

    Returns
    -------
    list of ndarray of shape (N, S, S, C), uint8
        Six views: the images, their horizontal mirror, and the images shifted by ``d`` pixels
        towards each corner (``d = round(shift_fraction * S)``, at least 1).

    Raises
    ------
    ValueError
        If ``images`` is not 4-dimensional.
    """
    if images.ndim != 4:
        raise ValueError(f"images has to have shape (N, S, S, C); got {images.shape}")
    size = images.shape[1]
    d = max(1, int(round(shift_fraction * size)))
    padded = np.pad(images, ((0, 0), (d, d), (d, d), (0, 0)), mode="edge")
    views = [images, images[:, :, ::-1, :]]
    for dy, dx in ((0, 0), (0, 2 * d), (2 * d, 0), (2 * d, 2 * d)):
        views.append(padded[:, dy : dy + size, dx : dx + size, :])
    return views


def predict_probabilities(model, images: np.ndarray, *, tta: bool = False, batch_size: int = 256) -> np.ndarray:
    """Predict class probabilities, optionally averaged over :func:`tta_views`.

    Parameters
    ----------
    model : keras.Model
        Takes (N, S, S, C) float32 pixel values 0-255, returns (N, 7) probabilities.
    images : ndarray of shape (N, S, S, C), uint8

    Returns
    -------
    ndarray of shape (N, 7), float32
    """
    if len(images) == 0:
        return np.zeros((0, NUM_CLASSES), np.float32)
    views = tta_views(images) if tta else [images]
    probs = [model.predict(np.ascontiguousarray(v, dtype=np.float32), batch_size=batch_size, verbose=0)
             for v in views]
    return np.mean(probs, axis=0).astype(np.float32)


def classification_metrics(labels: np.ndarray, probs: np.ndarray) -> dict:
    """Score predictions against FER2013 labels.

    Parameters
    ----------
    labels : ndarray of shape (N,), int
        FER2013 codes.
    probs : ndarray of shape (N, 7), float

    Returns
    -------
    dict
        ``accuracy``, ``macro_f1``, ``n``, ``ece`` (expected calibration error of the top probability,
        15 equal-width bins, :func:`training.calibration.expected_calibration_error`; Guo et al. 2017), ``nll``
        (mean negative log-likelihood of the true class, nats), ``per_class`` (class name -> precision, recall,
        f1, support), ``confusion_matrix`` (7x7 list, rows true class, columns predicted, FER2013 order) and
        ``classes``.
    """
    from sklearn.metrics import confusion_matrix, f1_score, precision_recall_fscore_support

    from training.calibration import expected_calibration_error

    labels = np.asarray(labels, dtype=np.int64)
    pred = np.asarray(probs).argmax(axis=1) if len(labels) else np.zeros(0, np.int64)
    codes = list(range(NUM_CLASSES))
    precision, recall, f1, support = precision_recall_fscore_support(labels, pred, labels=codes, zero_division=0)
    return {
        "n": int(len(labels)),
        "accuracy": float((pred == labels).mean()) if len(labels) else float("nan"),
        "macro_f1": float(f1_score(labels, pred, labels=codes, average="macro", zero_division=0)),
        "ece": expected_calibration_error(probs, labels) if len(labels) else 0.0,
        "nll": float(-np.log(np.clip(np.asarray(probs, np.float64)[np.arange(len(labels)), labels], 1e-12, 1.0)).mean())
        if len(labels) else float("nan"),
        "per_class": {
            name: {"precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
            for name, p, r, f, s in zip(EMOTIONS, precision, recall, f1, support, strict=False)
        },
        "confusion_matrix": confusion_matrix(labels, pred, labels=codes).tolist(),
        "classes": list(EMOTIONS),
    }


def load_model(path: str | Path | None = None):
    """Load a model file and its preprocessing spec.

    Parameters
    ----------
    path : str or Path, optional
        Default: the shipped model :data:`DEFAULT_MODEL_PATH`.

    Returns
    -------
    (keras.Model, PreprocessSpec, dict)
        The model, its preprocessing and its metadata.

    Raises
    ------
    ModelFileError
        If the file does not exist or its metadata does not match this code.
    """
    path = Path(path) if path else DEFAULT_MODEL_PATH
    if not path.is_file():
        hint = " (the default model is not shipped yet; pass --model PATH)" if path == DEFAULT_MODEL_PATH else ""
        raise ModelFileError(f"{path}: model file not found{hint}")
    metadata = read_metadata(path)
    import keras

    model = keras.models.load_model(path, compile=False)
    return model, PreprocessSpec.from_dict(metadata["preprocessing"]), metadata


def default_split(splits) -> str:
    """Pick the split to evaluate when none is named: PublicTest, then test, validation, all.

    Raises
    ------
    ValueError
        If ``splits`` holds none of those names.
    """
    present = set(map(str, splits))
    for name in ("PublicTest", "test", "Test", "testing", "validation", "val", "valid", "all"):
        if name in present:
            return name
    raise ValueError(f"no split to evaluate on; name one with --split (splits present: {sorted(present)})")


def evaluate(
    data: str | Path,
    *,
    model_path: str | Path | Sequence[str | Path] | None = None,
    split: str | None = None,
    detect_faces: bool = False,
    detector: str | None = None,
    tta: bool = False,
    exclude_overlap_with: str | None = None,
    skip_malformed: bool = False,
    skip_unknown: bool = False,
) -> dict:
    """Evaluate a model file on one split of a dataset (what ``python -m training evaluate`` runs).

    Parameters
    ----------
    data : str or Path
        Any format :func:`training.data.load_dataset` reads.
    model_path : str or Path or sequence of them, optional
        Default: the shipped model. Several files are evaluated as an ensemble: the mean of their
        probabilities (each member's own figures are in ``members``); they must share one
        preprocessing spec.
    split : str, optional
        ``Usage`` value or split folder; default :func:`default_split`.
    detect_faces : bool
        Crop the largest face of each image with the core's detector first (for full photos);
        images without a face count as errors in ``accuracy`` and are reported in ``n_no_face``.
    detector : str, optional
        Detector backend for ``detect_faces``; default the live analyzer's
        (:data:`fer_core.detection.DEFAULT_DETECTOR`), with the model's own margin, so the figures
        describe the crops the dashboard classifies.
    tta : bool
        Average over :func:`tta_views`.
    exclude_overlap_with : str, optional
        Leave out images whose pixels also appear in this split (e.g. ``Training``).

    Returns
    -------
    dict
        :func:`classification_metrics` plus ``model``, ``data``, ``split``, ``tta``,
        ``n_no_face``, ``n_excluded_overlap``, ``accuracy_detected`` (with ``detect_faces``) and
        the loader's ``report``; for an ensemble also ``members`` (``model``, ``accuracy``,
        ``macro_f1`` of each file on the same images). With ``detect_faces``, ``per_class`` and ``confusion_matrix``
        cover the images where a face was found.

    Raises
    ------
    ModelFileError, FileNotFoundError, DatasetError, KeyError
        For a missing or mismatched model (or ensemble members with different preprocessing), a
        missing or malformed dataset, or an absent split.
    """
    from training.cleaning import overlap_mask
    from training.data import load_dataset

    paths = [model_path] if model_path is None or isinstance(model_path, (str, Path)) else list(model_path)
    loaded = [load_model(path) for path in paths]
    spec = loaded[0][1]
    for path, (_, other, _) in zip(paths[1:], loaded[1:], strict=True):
        if other != spec:
            raise ModelFileError(f"{path}: preprocessing {other.to_dict()} differs from {paths[0]}'s "
                                 f"{spec.to_dict()}; ensemble members must share one")
    transform = None
    if detect_faces:
        from fer_core.detection import DEFAULT_DETECTOR
        from training.faces import FaceCropper

        transform = FaceCropper(detector or DEFAULT_DETECTOR, margin=spec.margin)
    wanted = None if split is None else [s for s in (split, exclude_overlap_with) if s]
    dataset = load_dataset(data, spec=spec, splits=wanted, skip_malformed=skip_malformed,
                           skip_unknown=skip_unknown, transform=transform)
    split = split or default_split(dataset.splits)
    target = dataset.split(split)
    n_excluded = 0
    if exclude_overlap_with:
        mask = overlap_mask(target, dataset.split(exclude_overlap_with))
        n_excluded = int(mask.sum())
        target = target.subset(~mask)
    member_probs = [predict_probabilities(model, target.images, tta=tta) for model, _, _ in loaded]
    probs = np.mean(member_probs, axis=0)
    result = classification_metrics(target.labels, probs)
    n_no_face = int(dataset.report.get("no_face", 0)) if detect_faces else 0
    if detect_faces:
        result["accuracy_detected"] = result["accuracy"]
        total = result["n"] + n_no_face
        result["accuracy"] = result["accuracy"] * result["n"] / total if total else float("nan")
        result["n"] = total
    names = [str(Path(path) if path else DEFAULT_MODEL_PATH) for path in paths]
    if len(paths) > 1:
        result["members"] = [{"model": name, **{k: v for k, v in classification_metrics(target.labels, p).items()
                                                if k in ("accuracy", "macro_f1")}}
                             for name, p in zip(names, member_probs, strict=True)]
    result.update({
        "model": " + ".join(names),
        "data": str(data),
        "split": split,
        "tta": tta,
        "n_no_face": n_no_face,
        "exclude_overlap_with": exclude_overlap_with,
        "n_excluded_overlap": n_excluded,
        "report": {k: v for k, v in dataset.report.items() if k != "cleaning"},
    })
    return result


def format_report(result: dict) -> str:
    """Return a plain-text summary of :func:`evaluate`'s result (what the CLI prints without ``--json``)."""
    lines = [
        f"model {result['model']}",
        f"data {result['data']} split {result['split']}: n={result['n']}"
        + (f" (excluded {result['n_excluded_overlap']} also in {result['exclude_overlap_with']})"
           if result.get("exclude_overlap_with") else "")
        + (f", no face {result['n_no_face']}" if result.get("n_no_face") else "")
        + (", TTA" if result.get("tta") else ""),
        f"accuracy {result['accuracy']:.4f}  macro F1 {result['macro_f1']:.4f}"
        + (f"  ECE (15 bins) {result['ece']:.4f}  NLL {result['nll']:.4f}" if "ece" in result else ""),
        *(f"  member {m['model']}: accuracy {m['accuracy']:.4f}  macro F1 {m['macro_f1']:.4f}"
          for m in result.get("members", [])),
        f"{'class':<10}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}",
    ]
    for name, s in result["per_class"].items():
        lines.append(f"{name:<10}{s['precision']:>10.3f}{s['recall']:>10.3f}{s['f1']:>10.3f}{s['support']:>10d}")
    return "\n".join(lines)
