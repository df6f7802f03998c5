"""Dataset cleaning steps, each optional and each reporting how many rows it dropped.

FER2013 holds exact duplicate images inside Training (about 1,200), some with different labels,
and about 270 Training images that also appear in PublicTest (see ``../shared/data/README.md``).
The seed projects' "face detection cleaning" drops training images in which a face detector finds
no face. Duplicates are found by hashing the preprocessed pixels (SHA-1 of the uint8 bytes), so
two rows are duplicates exactly when the model would see the same input.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np

from training.data import FerDataset


def image_hashes(images: np.ndarray) -> np.ndarray:
    """Return one hex digest per image.

    Parameters
    ----------
    images : ndarray of shape (N, ...), dtype uint8

    Returns
    -------
    ndarray of shape (N,), dtype object
        SHA-1 of each image's bytes; equal digests mean identical pixels.
    """
    return np.array([hashlib.sha1(np.ascontiguousarray(im).tobytes()).hexdigest() for im in images], dtype=object)


def overlap_mask(dataset: FerDataset, other: FerDataset) -> np.ndarray:
    """Return which images of ``dataset`` also appear (identical pixels) in ``other``.

    Parameters
    ----------
    dataset : FerDataset
        Images to test, (N, S, S, C) uint8.
    other : FerDataset
        Images to look for; compared by :func:`image_hashes`, so both have to share the preprocessing.

    Returns
    -------
    ndarray of shape (len(dataset),), bool
        True where the image's bytes equal those of some image of ``other``.
    """
    seen = set(image_hashes(other.images))
    return np.array([h in seen for h in image_hashes(dataset.images)], dtype=bool)


def _within_split_groups(dataset: FerDataset, split: str):
    """Yield index arrays of rows of ``split`` that share identical pixels (groups of 2 or more)."""
    rows = np.flatnonzero(dataset.splits == split)
    groups: dict[str, list[int]] = {}
    for row, digest in zip(rows, image_hashes(dataset.images[rows]), strict=False):
        groups.setdefault(digest, []).append(int(row))
    return [np.array(g) for g in groups.values() if len(g) > 1]


def drop_conflicting_duplicates(dataset: FerDataset, split: str) -> tuple[FerDataset, int]:
    """Drop every copy of an image that appears in ``split`` more than once with different labels.

    Parameters
    ----------
    dataset : FerDataset
        The whole dataset; only rows of ``split`` are compared and dropped.
    split : str
        Split to clean, e.g. ``"Training"``.

    Returns
    -------
    (FerDataset, int)
        The dataset without those rows, and the number of rows dropped.
    """
    keep = np.ones(len(dataset), dtype=bool)
    for group in _within_split_groups(dataset, split):
        if len(set(dataset.labels[group].tolist())) > 1:
            keep[group] = False
    return dataset.subset(keep), int((~keep).sum())


def drop_exact_duplicates(dataset: FerDataset, split: str) -> tuple[FerDataset, int]:
    """Keep the first of each group of identical images with the same label in ``split``.

    Copies with different labels are left for :func:`drop_conflicting_duplicates`.

    Parameters
    ----------
    dataset : FerDataset
        The whole dataset; only rows of ``split`` are compared and dropped.
    split : str
        Split to clean, e.g. ``"Training"``.

    Returns
    -------
    (FerDataset, int)
        The dataset without the repeated rows, and the number of rows dropped.
    """
    keep = np.ones(len(dataset), dtype=bool)
    for group in _within_split_groups(dataset, split):
        first_of_label: dict[int, int] = {}
        for row in group:
            label = int(dataset.labels[row])
            if label in first_of_label:
                keep[row] = False
            else:
                first_of_label[label] = row
    return dataset.subset(keep), int((~keep).sum())


def drop_overlap(dataset: FerDataset, split: str, other_splits: list[str]) -> tuple[FerDataset, int]:
    """Drop images of ``split`` that also appear in any of ``other_splits`` (e.g. PublicTest).

    Parameters
    ----------
    dataset : FerDataset
        The whole dataset; only rows of ``split`` are dropped.
    split : str
        Split to clean, e.g. ``"Training"``.
    other_splits : list of str
        Splits whose images (identical pixels, :func:`image_hashes`) may not appear in ``split``.

    Returns
    -------
    (FerDataset, int)
        The dataset without those rows of ``split``, and the number dropped.
    """
    others = set(image_hashes(dataset.images[np.isin(dataset.splits, other_splits)]))
    in_split = dataset.splits == split
    hit = np.array([in_split[i] and h in others for i, h in enumerate(image_hashes(dataset.images))], dtype=bool)
    return dataset.subset(~hit), int(hit.sum())


def drop_faceless(
    dataset: FerDataset, split: str, has_face: Callable[[np.ndarray], bool], *, progress: bool = False
) -> tuple[FerDataset, int]:
    """Drop images of ``split`` in which ``has_face`` finds no face (the seed's face-detection cleaning).

    Parameters
    ----------
    dataset : FerDataset
        The whole dataset; only rows of ``split`` are tested and dropped.
    split : str
        Split to clean, e.g. ``"Training"``.
    has_face : callable
        Takes one image (S, S, C) uint8 and returns True when it holds a face; see
        :class:`training.faces.FaceCropper`.
    progress : bool
        Show a tqdm progress bar.

    Returns
    -------
    (FerDataset, int)
        The dataset without those rows of ``split``, and the number dropped.

    Raises
    ------
    Exception
        Whatever ``has_face`` raises (e.g. ``ValueError`` for an unknown detector name), unchanged.
    """
    rows = np.flatnonzero(dataset.splits == split)
    if progress:
        from tqdm import tqdm

        rows = tqdm(rows, desc="face-detection cleaning", unit="image")
    keep = np.ones(len(dataset), dtype=bool)
    for row in rows:
        keep[row] = bool(has_face(dataset.images[row]))
    return dataset.subset(keep), int((~keep).sum())


def clean_dataset(
    dataset: FerDataset,
    *,
    train_split: str,
    holdout_splits: list[str],
    exact_duplicates: bool = False,
    conflicting_duplicates: bool = False,
    overlap: bool = False,
    has_face: Callable[[np.ndarray], bool] | None = None,
    progress: bool = False,
) -> tuple[FerDataset, dict[str, int]]:
    """Apply the chosen cleaning steps to the training split, in a fixed order, counting each.

    Order: conflicting duplicates, exact duplicates, overlap with ``holdout_splits``, face detection.
    Only rows of ``train_split`` are ever dropped; validation and test rows are left as they are.

    Parameters
    ----------
    dataset : FerDataset
        All splits.
    train_split : str
        The split to clean, e.g. ``"Training"``.
    holdout_splits : list of str
        Splits whose images are removed from ``train_split`` when ``overlap`` is True.
    exact_duplicates, conflicting_duplicates, overlap : bool, default False
        Run :func:`drop_exact_duplicates`, :func:`drop_conflicting_duplicates`, :func:`drop_overlap`.
    has_face : callable, optional
        Per-image face test for :func:`drop_faceless`; None skips face-detection cleaning.
    progress : bool, default False
        Show a progress bar during face-detection cleaning.

    Returns
    -------
    (FerDataset, dict)
        The cleaned dataset and ``{step: rows dropped}`` for the steps that ran, also added to the
        dataset's ``report["cleaning"]``. Step keys: ``"conflicting_duplicates"``,
        ``"exact_duplicates"``, ``"overlap_with_<split>+<split>..."``, ``"no_face_detected"``. When no
        step runs, ``dataset`` itself is returned with ``report["cleaning"] = {}`` set on it.

    Raises
    ------
    Exception
        Whatever ``has_face`` raises, unchanged.
    """
    counts: dict[str, int] = {}
    if conflicting_duplicates:
        dataset, counts["conflicting_duplicates"] = drop_conflicting_duplicates(dataset, train_split)
    if exact_duplicates:
        dataset, counts["exact_duplicates"] = drop_exact_duplicates(dataset, train_split)
    if overlap:
        dataset, counts["overlap_with_" + "+".join(holdout_splits)] = drop_overlap(
            dataset, train_split, holdout_splits
        )
    if has_face is not None:
        dataset, counts["no_face_detected"] = drop_faceless(dataset, train_split, has_face, progress=progress)
    dataset.report["cleaning"] = counts
    return dataset, counts
