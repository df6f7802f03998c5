"""Loaders: the Kaggle CSV (plain, .gz, .xz), image folders and FER+ votes, on fixtures written here."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

from fer_core.emotions import EMOTIONS
from fer_core.preprocessing import PreprocessSpec
from tests.training.conftest import pixels_text
from training.data import DatasetError, load_dataset, load_fer2013_csv
from training.ferplus import load_ferplus, votes_to_targets
from training.folders import load_image_folder

RNG = np.random.default_rng(0)


def _images(n: int) -> np.ndarray:
    return RNG.integers(0, 256, size=(n, 48, 48), dtype=np.uint8)


def _write_csv(path, images, labels, usages):
    frame = pd.DataFrame({"emotion": labels, "pixels": [pixels_text(im) for im in images], "Usage": usages})
    frame.to_csv(path, index=False)
    return path


@pytest.mark.parametrize("suffix", [".csv", ".csv.gz", ".csv.xz"])
def test_csv_plain_and_compressed(tmp_path, suffix):
    images = _images(4)
    path = _write_csv(tmp_path / f"fer{suffix}", images, [3, 0, 6, 1], ["Training", "Training", "PublicTest", "Training"])
    data = load_fer2013_csv(path)
    assert data.images.shape == (4, 48, 48, 1) and data.images.dtype == np.uint8
    np.testing.assert_array_equal(data.images[..., 0], images)
    assert data.labels.tolist() == [3, 0, 6, 1]
    assert data.splits.tolist() == ["Training", "Training", "PublicTest", "Training"]
    assert data.source_ids.tolist() == [f"fer{suffix}:{i}" for i in range(1, 5)]
    assert len(data.split("PublicTest")) == 1
    rgb = load_dataset(path, spec=PreprocessSpec(input_size=64, channels=3), splits="Training")
    assert rgb.images.shape == (3, 64, 64, 3)


def test_csv_malformed_rows_raise_with_file_and_row_or_are_counted(tmp_path):
    images = _images(5)
    frame = pd.DataFrame({
        "emotion": ["3", "2", "9", "x", "4"],
        "pixels": [pixels_text(images[0]), "1 2 3", pixels_text(images[2]),
                   pixels_text(images[3]), " ".join(["12"] * 2303 + ["abc"])],
        "Usage": ["Training"] * 5,
    })
    path = tmp_path / "bad.csv"
    frame.to_csv(path, index=False)
    with pytest.raises(DatasetError, match=r"bad\.csv: row 2: expected 2304 pixel values, got 3"):
        load_fer2013_csv(path)
    data = load_fer2013_csv(path, skip_malformed=True)
    assert data.labels.tolist() == [3]
    assert data.report["malformed"] == 4
    for text, pattern in [("9", r"row 1: unknown emotion code 9"), ("x", r"row 1: emotion 'x' is not an integer")]:
        one = frame.iloc[[0]].assign(emotion=text)
        one.to_csv(path, index=False)
        with pytest.raises(DatasetError, match=pattern):
            load_fer2013_csv(path)
    frame.iloc[[4]].to_csv(path, index=False)
    with pytest.raises(DatasetError, match=r"row 1: non-numeric pixel value"):
        load_fer2013_csv(path)


def test_csv_missing_column_and_missing_file(tmp_path):
    path = tmp_path / "cols.csv"
    pd.DataFrame({"label": [1], "pixels": ["0"]}).to_csv(path, index=False)
    with pytest.raises(DatasetError, match=r"missing column\(s\) \['emotion'\]"):
        load_fer2013_csv(path)
    with pytest.raises(FileNotFoundError, match="nothere.csv"):
        load_dataset(tmp_path / "nothere.csv")


def _write_image(path, image):
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)


@pytest.fixture
def image_folder(tmp_path):
    """train/ and test/ with synonyms, a contempt folder, mixed sizes and colour modes."""
    root = tmp_path / "faces"
    _write_image(root / "train" / "anger" / "a1.png", RNG.integers(0, 256, (100, 80), dtype=np.uint8))
    _write_image(root / "train" / "happiness" / "h1.jpg", RNG.integers(0, 256, (64, 64, 3), dtype=np.uint8))
    _write_image(root / "train" / "Surprised" / "s1.png", RNG.integers(0, 256, (30, 30, 4), dtype=np.uint8))
    _write_image(root / "train" / "neutral" / "n1.bmp", RNG.integers(0, 256, (48, 48), dtype=np.uint8))
    _write_image(root / "train" / "contempt" / "c1.png", RNG.integers(0, 256, (48, 48), dtype=np.uint8))
    _write_image(root / "train" / "contempt" / "c2.png", RNG.integers(0, 256, (48, 48), dtype=np.uint8))
    _write_image(root / "test" / "sadness" / "x1.png", RNG.integers(0, 256, (200, 150, 3), dtype=np.uint8))
    (root / "test" / "sadness" / "notes.txt").write_text("not an image")
    return root


def test_folders_map_classes_by_name_with_synonyms_and_skip_contempt(image_folder):
    data = load_image_folder(image_folder)
    by_file = {sid.split("/")[-1]: (EMOTIONS[label], split) for sid, label, split in
               zip(data.source_ids, data.labels, data.splits, strict=True)}
    assert by_file == {"a1.png": ("angry", "train"), "h1.jpg": ("happy", "train"), "s1.png": ("surprise", "train"),
                       "n1.bmp": ("neutral", "train"), "x1.png": ("sad", "test")}
    assert data.images.shape == (5, 48, 48, 1) and data.images.dtype == np.uint8
    assert data.report["skipped_classes"] == {"contempt": 2}
    rgb = load_image_folder(image_folder, spec=PreprocessSpec(input_size=64, channels=3), splits="test")
    assert rgb.images.shape == (1, 64, 64, 3) and rgb.splits.tolist() == ["test"]


def test_folders_alphabetical_release_is_not_mapped_by_sort_order(tmp_path):
    names = sorted(EMOTIONS)  # angry, disgust, fear, happy, neutral, sad, surprise
    for name in names:
        _write_image(tmp_path / "train" / name / "1.png", np.full((48, 48), 7, np.uint8))
    data = load_image_folder(tmp_path)
    got = {sid.split("/")[1]: EMOTIONS[label] for sid, label in zip(data.source_ids, data.labels, strict=True)}
    assert got == {name: name for name in names}
    assert data.labels[data.source_ids == "train/neutral/1.png"].tolist() == [6]


def test_folders_unknown_class_and_unreadable_image(image_folder):
    _write_image(image_folder / "train" / "confused" / "q.png", np.zeros((48, 48), np.uint8))
    with pytest.raises(DatasetError, match=r"class folder name 'confused' is not a FER2013 class"):
        load_image_folder(image_folder)
    data = load_image_folder(image_folder, skip_unknown=True)
    assert len(data) == 5 and list(data.report["unknown_folders"].values()) == [1]
    (image_folder / "train" / "anger" / "broken.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(DatasetError, match=r"broken\.jpg: unreadable image"):
        load_image_folder(image_folder, skip_unknown=True)
    data = load_dataset(image_folder, skip_unknown=True, skip_malformed=True)
    assert data.report["unreadable"] == 1 and len(data) == 5


def test_folders_flat_layout_and_missing_split(tmp_path):
    _write_image(tmp_path / "happy" / "1.png", np.zeros((48, 48), np.uint8))
    data = load_image_folder(tmp_path)
    assert data.splits.tolist() == ["all"] and data.labels.tolist() == [3]
    with pytest.raises(DatasetError, match=r"split folder\(s\) \['test'\] not found"):
        load_image_folder(tmp_path, splits="test")


FERPLUS_COLUMNS = ["neutral", "happiness", "surprise", "sadness", "anger", "disgust", "fear", "contempt", "unknown", "NF"]


def _votes(rows):
    return pd.DataFrame(rows, columns=FERPLUS_COLUMNS)


def test_ferplus_votes_map_column_order_to_fer2013():
    votes = _votes([
        [0, 8, 2, 0, 0, 0, 0, 0, 0, 0],  # happiness -> happy (3)
        [6, 0, 0, 0, 4, 0, 0, 0, 0, 0],  # neutral -> neutral (6); soft: 0.6 neutral, 0.4 angry
        [1, 0, 0, 0, 0, 0, 0, 0, 9, 0],  # unknown wins -> dropped
        [0, 0, 0, 0, 0, 0, 0, 0, 0, 10],  # NF -> dropped
        [0, 0, 0, 0, 0, 4, 0, 6, 0, 0],  # contempt wins -> dropped, or folded into disgust
        [0, 0, 0, 5, 0, 0, 5, 0, 0, 0],  # tie sad/fear -> dropped in majority mode
    ])
    keep, labels, soft, report = votes_to_targets(votes, mode="majority")
    assert keep.tolist() == [True, True, False, False, False, False]
    assert labels[:2].tolist() == [3, 6] and soft is None
    assert report == {"ferplus_unknown_or_nf": 2, "ferplus_contempt": 1, "ferplus_tied": 1}
    keep, labels, _, _ = votes_to_targets(votes, mode="majority", contempt="disgust")
    assert keep[4] and labels[4] == 1
    keep, labels, soft, _ = votes_to_targets(votes, mode="soft")
    assert keep.tolist() == [True, True, False, False, False, True]
    np.testing.assert_allclose(soft[1], [0.4, 0, 0, 0, 0, 0, 0.6])
    np.testing.assert_allclose(soft[5], [0, 0, 0.5, 0, 0.5, 0, 0])
    with pytest.raises(ValueError, match="contempt has to be 'exclude' or a FER2013 class name"):
        votes_to_targets(votes, contempt="smirk")


def test_ferplus_aligned_with_csv_and_misalignment_is_an_error(tmp_path):
    images = _images(3)
    csv = _write_csv(tmp_path / "fer.csv", images, [0, 0, 4], ["Training", "Training", "PublicTest"])
    votes = _votes([[0, 9, 1, 0, 0, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0, 0, 0, 0, 10], [3, 0, 0, 7, 0, 0, 0, 0, 0, 0]])
    votes.insert(0, "Image name", [f"fer{i:07d}.png" for i in range(3)])
    votes.insert(0, "Usage", ["Training", "Training", "PublicTest"])
    votes_path = tmp_path / "fer2013new.csv"
    votes.to_csv(votes_path, index=False)
    data = load_ferplus(csv, votes_path)
    assert data.labels.tolist() == [3, 4] and data.source_ids.tolist() == ["fer.csv:1", "fer.csv:3"]
    np.testing.assert_array_equal(data.images[1, ..., 0], images[2])
    assert data.report["ferplus_unknown_or_nf"] == 1 and data.report["ferplus_relabelled"] == 1
    soft = load_dataset(csv, ferplus=votes_path, ferplus_mode="soft", splits="PublicTest")
    np.testing.assert_allclose(soft.soft_labels, [[0, 0, 0, 0, 0.7, 0, 0.3]])
    votes.iloc[:2].to_csv(votes_path, index=False)
    with pytest.raises(DatasetError, match="2 vote rows but .* has 3 data rows"):
        load_ferplus(csv, votes_path)
    votes.assign(Usage=["Training", "PublicTest", "PublicTest"]).to_csv(votes_path, index=False)
    with pytest.raises(DatasetError, match="row 2 has Usage 'PublicTest' .* not aligned"):
        load_ferplus(csv, votes_path)


def test_ferplus_majority_agrees_with_real_fer2013_labels(fer2013_csv, ferplus_csv, tmp_path):
    """On real data FER+ relabels some images but agrees with FER2013 on most; a column-order bug would not."""
    rows = 1500
    pd.read_csv(fer2013_csv, nrows=rows).to_csv(tmp_path / "head.csv", index=False)
    pd.read_csv(ferplus_csv, nrows=rows).to_csv(tmp_path / "head_new.csv", index=False)
    original = load_fer2013_csv(tmp_path / "head.csv")
    plus = load_ferplus(tmp_path / "head.csv", tmp_path / "head_new.csv")
    assert 0.7 * rows < len(plus) < rows
    kept = np.isin(original.source_ids, plus.source_ids)
    agreement = float((original.labels[kept] == plus.labels).mean())
    assert agreement > 0.6, agreement
    # FER+'s own column order read as if it were FER2013's would agree far less often.
    order = [6, 3, 5, 4, 0, 1, 2]  # FER2013 code of FER+ column i
    positional = np.array([order.index(c) for c in plus.labels])
    assert float((original.labels[kept] == positional).mean()) < agreement - 0.3


def test_training_config_skips_unknown_class_folders_when_asked(image_folder):
    from training.train import TrainConfig, load_training_data

    _write_image(image_folder / "train" / "confused" / "q.png", np.zeros((48, 48), np.uint8))
    config = TrainConfig(data=str(image_folder), train_split="train", val_split="test", verbose=0)
    with pytest.raises(DatasetError, match="'confused' is not a FER2013 class"):
        load_training_data(config)
    train, val = load_training_data(TrainConfig(data=str(image_folder), train_split="train", val_split="test",
                                                verbose=0, skip_unknown=True))
    assert (len(train), len(val)) == (4, 1) and train.report["unknown_folders"]
