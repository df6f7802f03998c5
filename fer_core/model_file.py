"""Model files that carry their own metadata.

A model file is a Keras ``.keras`` archive (a zip) with one extra member, ``fer_metadata.json``,
that records the class names and order, the preprocessing spec, the training data's hash, the
training command and the evaluation metrics. :func:`read_metadata` reads it without loading
TensorFlow, and :func:`check_metadata` is what every loader calls before trusting a model.
"""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

from fer_core.emotions import EMOTIONS
from fer_core.preprocessing import PreprocessSpec

#: Name of the metadata member inside the ``.keras`` zip archive.
METADATA_MEMBER = "fer_metadata.json"
#: Metadata format identifier.
METADATA_FORMAT = "fer_core.model/v1"


class ModelFileError(ValueError):
    """A model file is missing, unreadable, or its metadata does not match this code."""


def write_metadata(path: str | Path, metadata: dict) -> None:
    """Add (or replace) the metadata member of a saved ``.keras`` archive.

    Parameters
    ----------
    path : str or Path
        A ``.keras`` file written by ``keras.Model.save``.
    metadata : dict
        JSON-serialisable; must pass :func:`check_metadata`.

    Raises
    ------
    ModelFileError
        If the file is not a zip archive or the metadata is invalid.
    """
    path = Path(path)
    metadata = {"format": METADATA_FORMAT, **metadata}
    check_metadata(metadata, source=str(path))
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path}: not a .keras (zip) model archive")
    with zipfile.ZipFile(path) as src:
        members = {name: src.read(name) for name in src.namelist() if name != METADATA_MEMBER}
    tmp = path.with_suffix(path.suffix + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for name, data in members.items():
            dst.writestr(name, data)
        dst.writestr(METADATA_MEMBER, json.dumps(metadata, indent=2, sort_keys=True))
    tmp.replace(path)


def read_metadata(path: str | Path) -> dict:
    """Read and check a model file's metadata without loading TensorFlow.

    Returns
    -------
    dict
        The metadata (``classes``, ``preprocessing``, ``training``, ``metrics``...).

    Raises
    ------
    ModelFileError
        If the file does not exist, is not a model archive, has no metadata, or the metadata does
        not match this code (classes, preprocessing scheme).
    """
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"{path}: model file not found")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path}: not a .keras (zip) model archive")
    with zipfile.ZipFile(path) as archive:
        if METADATA_MEMBER not in archive.namelist():
            raise ModelFileError(
                f"{path}: model file has no {METADATA_MEMBER}; export it with `python -m training export`"
            )
        try:
            metadata = json.loads(archive.read(METADATA_MEMBER))
        except json.JSONDecodeError as exc:
            raise ModelFileError(f"{path}: {METADATA_MEMBER} is not valid JSON ({exc})") from exc
    check_metadata(metadata, source=str(path))
    return metadata


def check_metadata(metadata: dict, *, source: str = "model") -> PreprocessSpec:
    """Check that metadata describes a 7-class FER2013 model this code can feed.

    Parameters
    ----------
    metadata : dict
        Parsed ``fer_metadata.json`` (:func:`read_metadata`).
    source : str, default "model"
        Name of the model (usually its path) used in error messages.

    Returns
    -------
    PreprocessSpec
        The preprocessing the model was trained with.

    Raises
    ------
    ModelFileError
        Naming ``source`` and the mismatch (format, classes, or preprocessing).
    """
    if metadata.get("format") != METADATA_FORMAT:
        raise ModelFileError(f"{source}: metadata format {metadata.get('format')!r}, expected {METADATA_FORMAT!r}")
    classes = tuple(metadata.get("classes", ()))
    if classes != EMOTIONS:
        raise ModelFileError(f"{source}: model classes {classes} do not match FER2013 order {EMOTIONS}")
    try:
        return PreprocessSpec.from_dict(metadata["preprocessing"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{source}: bad preprocessing metadata: {exc}") from exc
