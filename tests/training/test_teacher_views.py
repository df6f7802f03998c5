"""Consistent teaching: the teacher labels augmented copies, and training draws one copy per image (issue 14)."""

from __future__ import annotations

import numpy as np
import pytest

from fer_core.model_file import read_metadata
from training.__main__ import main
from training.distill import augmented_views
from training.train import TrainConfig, make_view_dataset


def _epoch(ds):
    images, targets = [], []
    for x, y in ds:
        images.append(x.numpy())
        targets.append(y.numpy())
    return np.concatenate(images), np.concatenate(targets)


def test_view_dataset_draws_one_view_per_image_with_its_own_target_and_redraws_each_epoch():
    n, k = 64, 4
    views = (np.arange(n)[:, None] * k + np.arange(k)[None, :]).astype(np.uint8)  # value = image * k + view
    views = np.broadcast_to(views[:, :, None, None, None], (n, k, 8, 8, 1)).copy()
    targets = np.zeros((n, k, 7), np.float32)
    targets[np.arange(n)[:, None], np.arange(k)[None, :], np.arange(k)[None, :]] = 1.0  # view v -> class v
    ds = make_view_dataset(views, targets, batch_size=16, config=TrainConfig(seed=3))
    drawn = []
    for _ in range(3):
        x, y = _epoch(ds)
        value = x[:, 0, 0, 0].astype(int)
        image, view = value // k, value % k
        assert sorted(image.tolist()) == list(range(n))  # every image once per epoch
        assert (x == x[:, :1, :1, :]).all()  # whole views, no further augmentation
        assert (y.argmax(1) == view).all()  # each view carries its own target
        drawn.append(view[np.argsort(image)])
    assert len(set(np.concatenate(drawn).tolist())) == k  # every view gets drawn
    assert (drawn[0] != drawn[1]).any() and (drawn[1] != drawn[2]).any()  # redrawn each epoch
    with pytest.raises(ValueError, match="differ in images or views"):
        make_view_dataset(views, targets[:, :2], batch_size=16, config=TrainConfig())


def test_mirror_flips_about_half_of_the_drawn_views_keeping_their_targets_and_redraws_each_epoch():
    n, k = 256, 2
    views = np.zeros((n, k, 4, 6, 1), np.uint8)
    views[:, :, 0, 0, 0] = np.arange(n)[:, None]  # image number, top-left pixel
    views[:, :, 1, 0, 0] = np.arange(k)[None, :]  # view number, below it
    views[:, :, 3, 5, 0] = 255  # bottom-right marker: at the left edge once mirrored
    targets = np.zeros((n, k, 7), np.float32)
    targets[:, 0, 0] = targets[:, 1, 1] = 1.0
    plain = make_view_dataset(views, targets, batch_size=32, config=TrainConfig(seed=5))
    assert not (_epoch(plain)[0][:, 3, 0, 0] == 255).any()  # off by default
    ds = make_view_dataset(views, targets, batch_size=32, config=TrainConfig(seed=5), mirror=True)
    flips = []
    for _ in range(2):
        x, y = _epoch(ds)
        flipped = x[:, 3, 0, 0] == 255
        assert (flipped ^ (x[:, 3, 5, 0] == 255)).all()  # whole views mirrored, not anything else
        image = np.where(flipped, x[:, 0, 5, 0], x[:, 0, 0, 0]).astype(int)
        view = np.where(flipped, x[:, 1, 5, 0], x[:, 1, 0, 0]).astype(int)
        assert sorted(image.tolist()) == list(range(n))
        assert (y.argmax(1) == view).all()  # a mirrored view keeps its own target
        assert 0.35 < flipped.mean() < 0.65
        assert all(0.3 < flipped[view == v].mean() < 0.7 for v in range(k))  # the flip is not tied to the view
        flips.append(flipped[np.argsort(image)])
    assert (flips[0] != flips[1]).any()  # redrawn each epoch


def test_augmented_views_are_distinct_augmentations_and_cached(tmp_path, capsys):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (20, 48, 48, 1), dtype=np.uint8)
    cache = tmp_path / "views.npz"
    views = augmented_views(images, 3, seed=1, random_erasing=0.5, cache=cache)
    assert views.shape == (20, 3, 48, 48, 1) and views.dtype == np.uint8
    # without erasing (unseeded noise) the views still differ from each other and from the image, nearly all of them
    plain = augmented_views(images, 3, seed=1, random_erasing=0.0)
    for a, b in ((plain[:, 0], plain[:, 1]), (plain[:, 1], plain[:, 2]), (plain[:, 0], images)):
        assert (a != b).any(axis=(1, 2, 3)).mean() > 0.9
    again = augmented_views(images, 3, seed=1, random_erasing=0.5, cache=cache)
    assert "cached" in capsys.readouterr().out and (again == views).all()
    assert augmented_views(images, 2, seed=1, random_erasing=0.5, cache=cache).shape[1] == 2  # other key: made again
    with pytest.raises(ValueError, match="at least 1"):
        augmented_views(images, 0, seed=1, random_erasing=0.5)
    cache.write_bytes(b"PK\x03\x04 cut short")  # a run killed while writing it: made again, not a crash
    assert augmented_views(images, 2, seed=1, random_erasing=0.5, cache=cache).shape == (20, 2, 48, 48, 1)
    assert "unreadable cache" in capsys.readouterr().out and not list(tmp_path.glob("*.partial.npz"))


def test_teacher_views_need_a_teacher_and_two_views_and_exclude_balanced_sampling():
    with pytest.raises(ValueError, match="teacher_views"):
        TrainConfig(teacher_views=4)
    for views in (-1, 1):  # one fixed copy per image would take the per-step randomness away
        with pytest.raises(ValueError, match="at least 2"):
            TrainConfig(teacher="t.keras", teacher_views=views)
    with pytest.raises(ValueError, match="balanced_sampling"):
        TrainConfig(teacher="t.keras", teacher_views=4, balanced_sampling=True)
    with pytest.raises(ValueError, match="views_seed"):  # it would be ignored without views: said, not silent
        TrainConfig(teacher="t.keras", views_seed=3)


def test_distilled_run_with_teacher_views_labels_every_view(small_real_csv, tmp_path, capsys, monkeypatch):
    import keras

    import training.train
    from training.models import build_fast_cnn, mirror_average

    mirror_args = []
    build_views = training.train.make_view_dataset

    def recording(*args, **kwargs):
        mirror_args.append(kwargs.get("mirror"))
        return build_views(*args, **kwargs)

    monkeypatch.setattr(training.train, "make_view_dataset", recording)

    teacher = tmp_path / "teacher.keras"
    network = build_fast_cnn(widths=(8,), blocks=(1,), stem_widths=(4, 8))
    network.save(teacher)
    args = ["train", "--data", str(small_real_csv), "--arch", "fast_cnn", "--epochs", "1", "--fast-widths", "8", "16",
            "--fast-blocks", "1", "1", "--batch-size", "32", "--verbose", "0", "--teacher-views", "2",
            "--label-smoothing", "0"]
    out = tmp_path / "fast"
    assert main([*args, "--out", str(out), "--teacher", str(teacher)]) == 0
    assert "mirror-averaged" not in capsys.readouterr().out
    mirrored = tmp_path / "mirrored_teacher.keras"
    mirror_average(network).save(mirrored)
    assert main([*args, "--out", str(tmp_path / "fast_mirrored"), "--teacher", str(mirrored)]) == 0
    assert "teacher is mirror-averaged" in capsys.readouterr().out
    assert mirror_args == [False, True]  # so only the second run mirrors half of the drawn views
    views = np.load(out / "teacher_views.npz")["views"]
    probs = np.load(out / "teacher_targets.npz")["probabilities"]
    assert views.shape == (300, 2, 48, 48, 1) and probs.shape == (600, 7)
    # the cached targets are the teacher's output for each view (not for the unaugmented image)
    model = keras.models.load_model(teacher, compile=False)
    expected = np.asarray(model.predict_on_batch(views[:4].reshape(8, 48, 48, 1).astype(np.float32)))
    np.testing.assert_allclose(probs[:8], expected / expected.sum(1, keepdims=True), atol=1e-5)
    assert read_metadata(out / "model.keras")["training"]["config"]["teacher_views"] == 2


def test_views_seed_draws_other_views_but_keeps_the_calibration_hold_out(small_real_csv, tmp_path, monkeypatch):
    import training.distill
    import training.train
    from training.export import load_run_config, reconstruct_command
    from training.models import build_fast_cnn

    seeds = {}
    make_views, split = training.distill.augmented_views, training.train.holdout_split

    def recording_views(*args, **kwargs):
        seeds["views"] = kwargs["seed"]
        return make_views(*args, **kwargs)

    def recording_split(dataset, fraction, seed):
        seeds["hold-out"] = seed
        return split(dataset, fraction, seed)

    monkeypatch.setattr(training.distill, "augmented_views", recording_views)
    monkeypatch.setattr(training.train, "holdout_split", recording_split)
    teacher = tmp_path / "teacher.keras"
    build_fast_cnn(widths=(8,), blocks=(1,), stem_widths=(4, 8)).save(teacher)
    out = tmp_path / "fast"
    assert main(["train", "--data", str(small_real_csv), "--arch", "fast_cnn", "--epochs", "1", "--fast-widths", "8",
                 "16", "--fast-blocks", "1", "1", "--batch-size", "32", "--verbose", "0", "--teacher-views", "2",
                 "--teacher", str(teacher), "--calibration-fraction", "0.1", "--seed", "7", "--views-seed", "99",
                 "--out", str(out)]) == 0
    assert seeds == {"views": 99, "hold-out": 7}
    assert "--views-seed 99" in reconstruct_command(load_run_config(out))
    assert TrainConfig().views_seed < 0  # by default the views follow --seed (runs made before the option)
