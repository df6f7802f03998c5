"""Cleaning steps: each drops what it says, only from the training split, and reports its count."""

from __future__ import annotations

import numpy as np
import pytest

from training.cleaning import clean_dataset, drop_faceless, overlap_mask
from training.data import FerDataset, load_fer2013_csv


def _image(value: int) -> np.ndarray:
    image = np.zeros((48, 48, 1), np.uint8)
    image[0, 0, 0] = value
    return image


@pytest.fixture
def dataset():
    #          a  a  a  b  b  c  d  c(test)  e(test)  a(test)
    values = [1, 1, 1, 2, 2, 3, 4, 3, 5, 1]
    labels = [3, 3, 3, 0, 4, 6, 2, 6, 1, 3]
    splits = ["Training"] * 7 + ["PublicTest"] * 3
    return FerDataset(
        images=np.stack([_image(v) for v in values]),
        labels=np.array(labels),
        splits=np.array(splits, dtype=object),
        source_ids=np.array([f"f:{i + 1}" for i in range(10)], dtype=object),
    )


def test_each_step_counts_what_it_drops(dataset):
    cleaned, counts = clean_dataset(dataset, train_split="Training", holdout_splits=["PublicTest"],
                                    exact_duplicates=True, conflicting_duplicates=True, overlap=True)
    # b twice with labels 0 and 4 -> both dropped; a three times -> two copies dropped; then a and c are
    # in PublicTest too -> dropped from Training; d stays. PublicTest keeps all 3.
    assert counts == {"conflicting_duplicates": 2, "exact_duplicates": 2, "overlap_with_PublicTest": 2}
    assert cleaned.source_ids.tolist() == ["f:7", "f:8", "f:9", "f:10"]
    assert cleaned.report["cleaning"] == counts


def test_steps_are_optional_and_independent(dataset):
    cleaned, counts = clean_dataset(dataset, train_split="Training", holdout_splits=["PublicTest"])
    assert counts == {} and len(cleaned) == len(dataset)
    cleaned, counts = clean_dataset(dataset, train_split="Training", holdout_splits=["PublicTest"],
                                    exact_duplicates=True)
    assert counts == {"exact_duplicates": 2}
    assert sorted(cleaned.source_ids.tolist()) == sorted(["f:1", "f:4", "f:5", "f:6", "f:7", "f:8", "f:9", "f:10"])
    mask = overlap_mask(dataset.split("PublicTest"), dataset.split("Training"))
    assert mask.tolist() == [True, False, True]


def test_face_detection_step_uses_the_given_detector(dataset):
    cleaned, dropped = drop_faceless(dataset, "Training", lambda image: image[0, 0, 0] != 2)
    assert dropped == 2 and "f:4" not in cleaned.source_ids and len(cleaned.split("PublicTest")) == 3


def test_real_fer2013_duplicates_are_found(fer2013_csv):
    """The first 3,000 real rows hold a few exact duplicates; each found pair has identical pixels."""
    data = load_fer2013_csv(fer2013_csv, max_rows=3000)
    cleaned, counts = clean_dataset(data, train_split="Training", holdout_splits=[], exact_duplicates=True,
                                    conflicting_duplicates=True)
    assert counts["exact_duplicates"] + counts["conflicting_duplicates"] > 0
    assert len(cleaned) == len(data) - sum(counts.values())
    flat = cleaned.images.reshape(len(cleaned), -1)
    assert len(np.unique(flat, axis=0)) == len(cleaned)


def test_face_cropper_on_real_fer2013_crops():
    """The core's detector finds faces in most real 48x48 FER2013 crops once upsampled, and none in a blank image."""
    pytest.importorskip("fer_core.detection")
    from tests.conftest import FER2013_CSV

    if not FER2013_CSV.exists():
        pytest.skip(f"real data not available: {FER2013_CSV}")
    from training.faces import FaceCropper

    data = load_fer2013_csv(FER2013_CSV, max_rows=60)
    cropper = FaceCropper("ssd")
    found = sum(cropper.has_face(image) for image in data.images)
    assert found >= 0.6 * len(data), found
    assert not cropper.has_face(np.full((48, 48, 1), 128, np.uint8))
    with_face = next(image for image in data.images if cropper.has_face(image))
    crop = cropper(with_face[:, :, 0])
    assert crop is not None and crop.dtype == np.uint8 and crop.ndim == 2 and min(crop.shape) > 10
