"""Model files that carry their own metadata.

A model file is a Keras ``.keras`` archive (a zip) with one extra member, ``fer_metadata.json``,
that records the class names and order, the preprocessing spec, the training data's hash, the
training command and the evaluation metrics. :func:`read_metadata` reads it without loading
TensorFlow, and :func:`check_metadata` is what every loader calls before trusting a model.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

from fer_core.emotions import EMOTIONS
from fer_core.preprocessing import PreprocessSpec

#: Name of the metadata member inside the ``.keras`` zip archive.
METADATA_MEMBER = "fer_metadata.json"
#: Metadata format identifier.
METADATA_FORMAT = "fer_core.model/v1"
#: Members holding the network converted to LiteRT flatbuffers, by classifier runner.
LITERT_MEMBERS = {"litert_int8": "litert/int8.tflite", "litert": "litert/float32.tflite"}
#: Member recording the SHA-256 of the Keras weights the flatbuffers were converted from.
LITERT_SOURCE_MEMBER = "litert/weights.sha256"
#: The Keras weights member of a ``.keras`` archive.
KERAS_WEIGHTS_MEMBER = "model.weights.h5"
#: Figure keys of the metadata's ``metrics`` (``training.export``) in words, for every page and report that
#: shows them (``per_class`` figures: ``precision``, ``recall``, ``f1``, ``support``).
FIGURE_WORDS: dict[str, str] = {
    "accuracy": "accuracy", "macro_f1": "macro F1", "n": "images", "PublicTest_accuracy": "PublicTest accuracy",
    "n_overlap_with_Training": "PublicTest images also in Training", "f1": "F1", "precision": "precision",
    "recall": "recall", "support": "images",
}  # fmt: skip


def figure_name(key: str) -> str:
    """A metadata figure key in words (``"macro_f1"`` -> ``"macro F1"``, ``"support"`` -> ``"images"``); an
    unknown key with its underscores as spaces."""
    return FIGURE_WORDS.get(key, key.replace("_", " "))


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


def write_litert(path: str | Path, flatbuffers: dict[str, bytes]) -> None:
    """Store LiteRT flatbuffers of the archive's network inside the ``.keras`` archive.

    With them, :meth:`fer_core.classifier.EmotionClassifier.load` serves the LiteRT runners without
    importing TensorFlow or Keras (a process such as the dashboard then never loads them). The SHA-256
    of the archive's Keras weights is stored alongside, so flatbuffers of other weights are never used.

    Parameters
    ----------
    path : str or Path
        A ``.keras`` archive.
    flatbuffers : dict
        Runner name (a key of :data:`LITERT_MEMBERS`) to flatbuffer bytes.

    Raises
    ------
    ModelFileError
        If the file is not a zip archive with Keras weights, or a runner name is unknown.
    """
    path = Path(path)
    unknown = set(flatbuffers) - set(LITERT_MEMBERS)
    if unknown:
        raise ModelFileError(f"{path}: unknown LiteRT runner(s) {sorted(unknown)}; expected {sorted(LITERT_MEMBERS)}")
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path}: not a .keras (zip) model archive")
    with zipfile.ZipFile(path) as src:
        members = {name: src.read(name) for name in src.namelist()}
    if KERAS_WEIGHTS_MEMBER not in members:
        raise ModelFileError(f"{path}: archive has no {KERAS_WEIGHTS_MEMBER}")
    members[LITERT_SOURCE_MEMBER] = hashlib.sha256(members[KERAS_WEIGHTS_MEMBER]).hexdigest().encode()
    for runner, data in flatbuffers.items():
        members[LITERT_MEMBERS[runner]] = bytes(data)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as dst:
        for name, data in members.items():
            dst.writestr(name, data)
    tmp.replace(path)


def read_litert(path: str | Path, runner: str) -> bytes | None:
    """The archive's LiteRT flatbuffer for ``runner``, or None when absent or stale.

    Stale means the flatbuffer was converted from other weights than the archive's (the recorded
    SHA-256 of ``model.weights.h5`` differs), e.g. after the Keras model was saved again.

    Raises
    ------
    ModelFileError
        If the file is not a zip archive.
    """
    path = Path(path)
    if runner not in LITERT_MEMBERS:
        return None
    if not zipfile.is_zipfile(path):
        raise ModelFileError(f"{path}: not a .keras (zip) model archive")
    with zipfile.ZipFile(path) as archive:
        names = set(archive.namelist())
        if not {LITERT_MEMBERS[runner], LITERT_SOURCE_MEMBER, KERAS_WEIGHTS_MEMBER} <= names:
            return None
        recorded = archive.read(LITERT_SOURCE_MEMBER).decode().strip()
        if recorded != hashlib.sha256(archive.read(KERAS_WEIGHTS_MEMBER)).hexdigest():
            return None
        return archive.read(LITERT_MEMBERS[runner])


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
