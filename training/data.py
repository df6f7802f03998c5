"""FER2013 dataset loading: the Kaggle CSV (plain, .gz or .xz), and :func:`load_dataset` for any format.

Every loader returns a :class:`FerDataset`: images as uint8 arrays already passed through
:func:`fer_core.preprocessing.preprocess_faces`, labels as FER2013 codes, split names and source ids
(``file:row`` or file paths) so that any image can be traced back to where it came from.
Image folders are read by :mod:`training.folders`, FER+ votes by :mod:`training.ferplus`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from fer_core.emotions import EMOTIONS, NUM_CLASSES
from fer_core.preprocessing import PreprocessSpec, preprocess_faces


class DatasetError(ValueError):
    """A dataset file or row is malformed; the message names the file and row.

    A subclass of ``ValueError``. Raised by :func:`load_fer2013_csv`, :func:`load_dataset`,
    :func:`training.ferplus.load_ferplus` and :func:`training.folders.load_image_folder`.
    """


@dataclass
class FerDataset:
    """Images with FER2013 labels.

    Attributes
    ----------
    images : ndarray of shape (N, S, S, C), dtype uint8
        Model input as produced by :func:`fer_core.preprocessing.preprocess_faces`.
    labels : ndarray of shape (N,), dtype int64
        FER2013 codes 0-6 (argmax of ``soft_labels`` when those are given).
    splits : ndarray of shape (N,), dtype object
        Split name per image (``Training``, ``PublicTest``, ``PrivateTest``, or a folder name).
    source_ids : ndarray of shape (N,), dtype object
        Where each image came from (``fer2013.csv.xz:123`` or a file path).
    soft_labels : ndarray of shape (N, 7), dtype float32, optional
        Per-class target distribution (FER+ votes), rows summing to 1.
    report : dict
        Counts of rows skipped or dropped, by reason.
    """

    images: np.ndarray
    labels: np.ndarray
    splits: np.ndarray
    source_ids: np.ndarray
    soft_labels: np.ndarray | None = None
    report: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.labels)

    def subset(self, mask) -> FerDataset:
        """Return the rows selected by a boolean mask or an index array.

        Parameters
        ----------
        mask : ndarray of shape (N,), bool, or ndarray of int
            Boolean mask over the N rows, or row indices (order and repeats are kept).

        Returns
        -------
        FerDataset
            New arrays (numpy fancy indexing copies) with the same dtypes; ``report`` is a shallow copy.

        Raises
        ------
        IndexError
            If a boolean mask does not have length N or an index is out of range.
        """
        return FerDataset(
            images=self.images[mask],
            labels=self.labels[mask],
            splits=self.splits[mask],
            source_ids=self.source_ids[mask],
            soft_labels=None if self.soft_labels is None else self.soft_labels[mask],
            report=dict(self.report),
        )

    def split(self, name: str) -> FerDataset:
        """Return the rows of one split.

        Parameters
        ----------
        name : str
            Split name, e.g. ``"Training"``, ``"PublicTest"``, ``"PrivateTest"`` or a folder name.

        Returns
        -------
        FerDataset
            The rows whose ``splits`` equal ``name``, in their original order (:meth:`subset`).

        Raises
        ------
        KeyError
            If no row belongs to ``name``; the message lists the splits present.
        """
        mask = self.splits == name
        if not mask.any():
            raise KeyError(f"no rows in split {name!r}; splits present: {sorted(set(self.splits))}")
        return self.subset(mask)

    def class_counts(self) -> dict[str, int]:
        """Return the number of images per class name.

        Returns
        -------
        dict of str to int
            Class name (``EMOTIONS``, FER2013 order) to its image count; all seven classes, 0 when absent.
        """
        counts = np.bincount(self.labels, minlength=NUM_CLASSES)
        return {name: int(c) for name, c in zip(EMOTIONS, counts, strict=False)}


def file_sha256(path: str | Path, chunk: int = 1 << 20) -> str:
    """Return the hex SHA-256 of a file (recorded in model metadata as the training data hash).

    Parameters
    ----------
    path : str or Path
        The file.
    chunk : int, default 1 MiB
        Bytes read at a time.

    Returns
    -------
    str
        64 lowercase hex digits.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    OSError
        If it cannot be read (e.g. no permission, or a folder).
    """
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def dataset_sha256(path: str | Path) -> str:
    """Return the SHA-256 of a dataset: of the file, or of a folder's sorted relative paths and file contents.

    Parameters
    ----------
    path : str or Path
        A dataset file, or a folder whose files (at any depth) are hashed in sorted path order.

    Returns
    -------
    str
        64 lowercase hex digits; for a file, equal to :func:`file_sha256`.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist (a model's recorded data hash must name real data).
    OSError
        If a file cannot be read.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: dataset not found (cannot hash it)")
    if path.is_file():
        return file_sha256(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        digest.update(str(file.relative_to(path)).encode())
        digest.update(bytes.fromhex(file_sha256(file)))
    return digest.hexdigest()


def _parse_pixels(text: str, side: int, *, path: Path, row: int) -> np.ndarray:
    values = text.split()
    if len(values) != side * side:
        raise DatasetError(f"{path}: row {row}: expected {side * side} pixel values, got {len(values)}")
    try:
        pixels = np.array(values, dtype=np.int32)
    except ValueError as exc:
        raise DatasetError(f"{path}: row {row}: non-numeric pixel value ({exc})") from exc
    if pixels.min() < 0 or pixels.max() > 255:
        raise DatasetError(f"{path}: row {row}: pixel values outside 0-255")
    return pixels.astype(np.uint8).reshape(side, side)


def load_fer2013_csv(
    path: str | Path,
    *,
    spec: PreprocessSpec | None = None,
    skip_malformed: bool = False,
    usage: str | list[str] | None = None,
    max_rows: int | None = None,
    transform: Callable[[np.ndarray], np.ndarray | None] | None = None,
) -> FerDataset:
    """Load the Kaggle FER2013 CSV (``emotion,pixels,Usage``), plain or compressed (.gz, .xz, .bz2, .zip).

    Parameters
    ----------
    path : str or Path
        The CSV file. Row numbers in errors are 1-based data rows (the header is row 0).
    spec : PreprocessSpec, optional
        Target model input; 48x48 grayscale keeps the images as they are.
    skip_malformed : bool, default False
        Skip (and count in ``report["malformed"]``) rows with a wrong pixel count, a non-numeric
        value or an unknown emotion code, instead of raising.
    usage : str or list of str, optional
        Keep only these ``Usage`` splits.
    max_rows : int, optional
        Read only the first ``max_rows`` data rows (quick looks and tests).
    transform : callable, optional
        Applied to each 48x48 uint8 image before preprocessing; returns the image to keep (any size)
        or None to drop the row, counted in ``report["no_face"]`` (used to crop faces with a detector).

    Returns
    -------
    FerDataset
        ``source_ids`` are ``"<file name>:<row>"``.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    DatasetError
        If the file cannot be read as CSV, a required column (``emotion``, ``pixels``) is missing, or a
        row is malformed and ``skip_malformed`` is False.
    ValueError
        If ``transform`` returns an image that :func:`fer_core.preprocessing.preprocess_faces` rejects.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: FER2013 CSV not found")
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, nrows=max_rows)
    except (pd.errors.ParserError, UnicodeDecodeError, EOFError, OSError) as exc:
        raise DatasetError(f"{path}: cannot be read as CSV ({exc})") from exc
    frame.columns = [c.strip() for c in frame.columns]
    missing = {"emotion", "pixels"} - set(frame.columns)
    if missing:
        raise DatasetError(f"{path}: missing column(s) {sorted(missing)}; columns are {list(frame.columns)}")
    if "Usage" not in frame.columns:
        frame["Usage"] = "Training"
    if usage is not None:
        wanted = [usage] if isinstance(usage, str) else list(usage)
        frame = frame[frame["Usage"].isin(wanted)]
    images, labels, splits, ids = [], [], [], []
    malformed = no_face = 0
    for row, emotion, pixels, split in zip(frame.index + 1, frame["emotion"], frame["pixels"], frame["Usage"], strict=False):
        try:
            try:
                code = int(emotion)
            except ValueError as exc:
                raise DatasetError(f"{path}: row {row}: emotion {emotion!r} is not an integer code") from exc
            if not 0 <= code < NUM_CLASSES:
                raise DatasetError(f"{path}: row {row}: unknown emotion code {code}; expected 0-6")
            image = _parse_pixels(pixels, 48, path=path, row=row)
        except DatasetError:
            if not skip_malformed:
                raise
            malformed += 1
            continue
        if transform is not None:
            image = transform(image)
            if image is None:
                no_face += 1
                continue
        images.append(image)
        labels.append(code)
        splits.append(split)
        ids.append(f"{path.name}:{row}")
    if transform is not None:
        batch = images if images else np.zeros((0, 48, 48), np.uint8)
    else:
        batch = np.stack(images) if images else np.zeros((0, 48, 48), np.uint8)
    return FerDataset(
        images=preprocess_faces(batch, spec),
        labels=np.asarray(labels, dtype=np.int64),
        splits=np.asarray(splits, dtype=object),
        source_ids=np.asarray(ids, dtype=object),
        report={"rows": len(frame), "malformed": malformed, "no_face": no_face},
    )


def load_dataset(
    path: str | Path,
    *,
    spec: PreprocessSpec | None = None,
    splits: str | list[str] | None = None,
    ferplus: str | Path | None = None,
    ferplus_mode: str = "majority",
    contempt: str = "exclude",
    skip_malformed: bool = False,
    skip_unknown: bool = False,
    transform: Callable[[np.ndarray], np.ndarray | None] | None = None,
) -> FerDataset:
    """Load any supported dataset: a Kaggle CSV (plain or compressed), optionally with FER+ votes, or an image folder.

    Parameters
    ----------
    path : str or Path
        A CSV file (``.csv``, ``.csv.gz``, ``.csv.xz``...) or a folder of class folders.
    spec : PreprocessSpec, optional
        Model input (default 48x48 grayscale).
    splits : str or list of str, optional
        Keep only these splits (``Usage`` values or split folder names).
    ferplus : str or Path, optional
        ``fer2013new.csv`` aligned with the CSV; its votes replace the FER2013 labels.
    ferplus_mode, contempt : str
        See :func:`training.ferplus.votes_to_targets`.
    skip_malformed : bool
        Skip and count malformed CSV rows and unreadable images instead of raising.
    skip_unknown : bool
        Skip and count class folders with unknown names instead of raising.
    transform : callable, optional
        Per-image transform before preprocessing (see :func:`load_fer2013_csv`); not with ``ferplus``.

    Returns
    -------
    FerDataset

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    DatasetError
        As raised by the format's loader.
    ValueError
        If ``ferplus`` is given for an image folder or together with ``transform``.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: dataset not found (expected a FER2013 CSV or an image folder)")
    if path.is_dir():
        if ferplus:
            raise ValueError(f"ferplus votes are aligned with the FER2013 CSV; got an image folder {path}")
        from training.folders import load_image_folder

        return load_image_folder(path, spec=spec, splits=splits, skip_unknown=skip_unknown,
                                 skip_unreadable=skip_malformed, transform=transform)
    if ferplus:
        if transform is not None:
            raise ValueError("ferplus votes cannot be combined with a per-image transform")
        from training.ferplus import load_ferplus

        return load_ferplus(path, ferplus, mode=ferplus_mode, contempt=contempt, spec=spec, usage=splits,
                            skip_malformed=skip_malformed)
    return load_fer2013_csv(path, spec=spec, skip_malformed=skip_malformed, usage=splits, transform=transform)
