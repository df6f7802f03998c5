"""Image-folder datasets: one sub-folder per class, optionally inside split folders.

Two layouts are read, as in the common image releases of FER2013 and similar data sets::

    root/train/angry/*.jpg   root/test/happy/*.png   root/validation/...    (split folders)
    root/angry/*.jpg         root/happiness/*.png                           (one split, named "all")

Class folders are mapped to FER2013 codes by name through :func:`fer_core.emotions.emotion_code`
(with its synonyms: anger, happiness, sadness, surprised...), never by sort order: those releases
sort their folders alphabetically (angry, disgust, fear, happy, neutral, sad, surprise), which is
not FER2013's order. Images of any size or colour mode go through
:func:`fer_core.preprocessing.preprocess_faces`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from fer_core.emotions import emotion_code
from fer_core.preprocessing import PreprocessSpec, preprocess_faces
from training.data import DatasetError, FerDataset

#: Folder names recognised as splits (kept as spelled on disk).
SPLIT_FOLDERS: frozenset[str] = frozenset({"train", "training", "test", "testing", "val", "valid", "validation"})
#: Expression classes that some data sets add and FER2013 lacks; their folders are skipped and counted.
EXTRA_CLASSES: frozenset[str] = frozenset({"contempt", "contemptuous"})
#: File suffixes read as images (case-insensitive); other files (README, .DS_Store) are ignored.
IMAGE_SUFFIXES: frozenset[str] = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".pgm", ".ppm", ".pbm"}
)


def _visible_dirs(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _class_code(folder: Path, *, skip_unknown: bool, report: dict) -> int | None:
    """Return the FER2013 code of a class folder, or None when it is skipped (and counted)."""
    name = folder.name.strip().lower()
    if name in EXTRA_CLASSES:
        report["skipped_classes"][folder.name] = report["skipped_classes"].get(folder.name, 0) + _count_images(folder)
        return None
    try:
        return emotion_code(name)
    except KeyError:
        if skip_unknown:
            report["unknown_folders"][str(folder)] = _count_images(folder)
            return None
        raise DatasetError(
            f"{folder}: class folder name {folder.name!r} is not a FER2013 class or a known synonym; "
            "rename it or pass skip_unknown=True (--skip-unknown)"
        ) from None


def _count_images(folder: Path) -> int:
    return sum(1 for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)


def read_image(path: Path, channels: int) -> np.ndarray:
    """Decode one image file as uint8 grayscale (H, W) or BGR (H, W, 3), whatever its mode or bit depth.

    Raises
    ------
    DatasetError
        If OpenCV cannot decode the file; the message names it.
    """
    flag = cv2.IMREAD_GRAYSCALE if channels == 1 else cv2.IMREAD_COLOR
    data = np.fromfile(str(path), dtype=np.uint8)
    image = cv2.imdecode(data, flag) if data.size else None
    if image is None:
        raise DatasetError(f"{path}: unreadable image (not a decodable image file)")
    return image


def load_image_folder(
    root: str | Path,
    *,
    spec: PreprocessSpec | None = None,
    splits: str | list[str] | None = None,
    skip_unknown: bool = False,
    skip_unreadable: bool = False,
    transform: Callable[[np.ndarray], np.ndarray | None] | None = None,
) -> FerDataset:
    """Load an image-folder dataset (``root/<split>/<class>/*`` or ``root/<class>/*``).

    Parameters
    ----------
    root : str or Path
        The dataset folder.
    spec : PreprocessSpec, optional
        Model input size and channels (default 48x48 grayscale).
    splits : str or list of str, optional
        Keep only these split folders (e.g. ``"test"``).
    skip_unknown : bool, default False
        Skip (and count in ``report["unknown_folders"]``) class folders whose name is neither a
        FER2013 class, a synonym nor contempt, instead of raising.
    skip_unreadable : bool, default False
        Skip (and count in ``report["unreadable"]``) files that cannot be decoded, instead of raising.
    transform : callable, optional
        Applied to each decoded image (uint8 gray (H, W) or BGR (H, W, 3)) before preprocessing;
        returns the image to keep (any size) or None to drop it, counted in ``report["no_face"]``
        (used to crop the largest face from full photos).

    Returns
    -------
    FerDataset
        ``splits`` hold the split folder names (``"all"`` for the one-split layout),
        ``source_ids`` the image paths relative to ``root``. ``report["skipped_classes"]`` counts the
        images of skipped classes such as contempt.

    Raises
    ------
    FileNotFoundError
        If ``root`` is not a folder.
    DatasetError
        If a class folder is unknown (and not ``skip_unknown``), an image is unreadable (and not
        ``skip_unreadable``), a requested split is absent, or no image is found.
    """
    root = Path(root)
    spec = spec or PreprocessSpec()
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: image folder not found")
    top = _visible_dirs(root)
    split_dirs = [d for d in top if d.name.lower() in SPLIT_FOLDERS]
    if split_dirs:
        others = [d.name for d in top if d not in split_dirs]
        if others and not skip_unknown:
            raise DatasetError(
                f"{root}: folders {others} sit beside the split folders {[d.name for d in split_dirs]}; "
                "expected only train/test/validation (or pass skip_unknown=True)"
            )
        layout = [(d.name, d) for d in split_dirs]
    else:
        layout = [("all", root)]
    if splits is not None:
        wanted = [splits] if isinstance(splits, str) else list(splits)
        present = [name for name, _ in layout]
        missing = [s for s in wanted if s not in present]
        if missing:
            raise DatasetError(f"{root}: split folder(s) {missing} not found; splits present: {present}")
        layout = [(name, d) for name, d in layout if name in wanted]

    report: dict = {"images": 0, "unreadable": 0, "no_face": 0, "skipped_classes": {}, "unknown_folders": {}}
    images, labels, split_names, ids = [], [], [], []
    for split_name, split_dir in layout:
        for class_dir in _visible_dirs(split_dir):
            code = _class_code(class_dir, skip_unknown=skip_unknown, report=report)
            if code is None:
                continue
            for path in sorted(class_dir.rglob("*")):
                if path.suffix.lower() not in IMAGE_SUFFIXES or path.name.startswith("."):
                    continue
                report["images"] += 1
                try:
                    image = read_image(path, spec.channels)
                except DatasetError:
                    if not skip_unreadable:
                        raise
                    report["unreadable"] += 1
                    continue
                if transform is not None:
                    image = transform(image)
                    if image is None:
                        report["no_face"] += 1
                        continue
                images.append(image)
                labels.append(code)
                split_names.append(split_name)
                ids.append(str(path.relative_to(root)))
    if not images and report["images"] == 0:
        raise DatasetError(f"{root}: no images found in class folders")
    size = spec.input_size
    batch = preprocess_faces(images, spec) if images else np.zeros((0, size, size, spec.channels), np.uint8)
    return FerDataset(
        images=batch,
        labels=np.asarray(labels, dtype=np.int64),
        splits=np.asarray(split_names, dtype=object),
        source_ids=np.asarray(ids, dtype=object),
        report=report,
    )
