"""The training augmentation draws its six transforms independently (version 2); version 1 reproduces older runs."""

from __future__ import annotations

import itertools

import numpy as np
import pytest


def _draws(seed, version):
    import tensorflow as tf

    from training.augment import build_augmenter

    x = tf.zeros((512, 48, 48, 1)) + 128.0
    t = [layer.get_random_transformation(x, training=True)
         for layer in build_augmenter(seed=seed, version=version).layers]
    return {
        "flip": np.asarray(t[0]["flips"], np.float32).ravel(),
        "rotation": np.asarray(t[1]["angle"]).ravel(),
        "shift": np.asarray(t[2]["translations"])[:, 0],
        "zoom": np.asarray(t[3]["height_zoom"]).ravel(),
        "brightness": np.asarray(t[4]["rgb_delta"]).ravel(),
        "contrast": np.asarray(t[5]["contrast_factor"]).ravel(),
    }


def test_augmentation_layers_draw_independently_and_follow_the_seed():
    first = _draws(7, 2)
    for a, b in itertools.combinations(first, 2):
        r = np.corrcoef(first[a], first[b])[0, 1]
        assert abs(r) < 0.2, f"{a} and {b} are drawn together (r = {r:.2f})"
    again, other = _draws(7, 2), _draws(8, 2)
    assert all(np.array_equal(first[k], again[k]) for k in first)  # a seed reproduces the draws
    assert not np.array_equal(first["rotation"], other["rotation"])


def test_version_1_keeps_the_correlated_draws_of_older_runs_and_old_configs_read_as_version_1():
    from training.export import reconstruct_command
    from training.train import TrainConfig

    old = _draws(7, 1)  # one seed for every layer: the generators advance in step
    assert abs(np.corrcoef(old["rotation"], old["zoom"])[0, 1]) > 0.99
    assert TrainConfig().augmenter == 2 and TrainConfig.from_saved({"epochs": 3}).augmenter == 1
    assert TrainConfig.from_saved({"augmenter": 2}).augmenter == 2
    assert "--augmenter 1" in reconstruct_command(TrainConfig(augmenter=1))
    assert "--augmenter" not in reconstruct_command(TrainConfig())
    with pytest.raises(ValueError, match="augmenter has to be one of"):
        TrainConfig(augmenter=3)


def test_a_resumed_run_draws_new_augmentations_instead_of_replaying_epoch_one(tmp_path):
    from training.train import TrainConfig, epochs_done, make_dataset, pipeline_config

    assert epochs_done(tmp_path) == 0
    (tmp_path / "history.csv").write_text("epoch,accuracy\n0,0.5\n1,0.55\n2,0.6\n")
    assert epochs_done(tmp_path) == 3
    config = TrainConfig(seed=4, random_erasing=0.0)
    assert pipeline_config(config, 0) is config  # a new run is reproducible as before
    resumed = pipeline_config(config, 3)
    assert resumed.seed == 3004 and resumed.augmenter == config.augmenter and resumed.epochs == config.epochs
    with pytest.raises(ValueError, match="got -1"):
        pipeline_config(config, -1)
    images = np.random.default_rng(0).integers(0, 256, (64, 48, 48, 1), dtype=np.uint8)
    targets = np.eye(7, dtype=np.float32)[np.arange(64) % 7] + np.arange(64, dtype=np.float32)[:, None]  # row ids

    def first_batch_rows(cfg):  # as a new process builds it: train() sets the global seed from the run's first
        import keras

        keras.utils.set_random_seed(config.seed)
        batch = next(iter(make_dataset(images, targets, batch_size=16, training=True, config=cfg)))
        return batch[1].numpy()[:, 0].round().astype(int)  # which rows, in which order

    # the augmentations' own draws are not repeatable batch for batch (the map runs in parallel), the order is:
    assert np.array_equal(first_batch_rows(config), first_batch_rows(config))  # same seed: epoch 1's batches again
    assert not np.array_equal(first_batch_rows(config), first_batch_rows(resumed))  # resumed: new batches


def test_train_builds_a_resumed_runs_pipeline_and_global_seed_from_the_moved_seed(small_real_csv, tmp_path, monkeypatch):
    import keras

    import training.train
    from training.__main__ import main

    seeds = []
    build, set_seed = training.train.make_dataset, keras.utils.set_random_seed

    def recording(*args, **kwargs):
        if kwargs.get("training"):
            seeds.append(("pipeline", kwargs["config"].seed))
        return build(*args, **kwargs)

    monkeypatch.setattr(training.train, "make_dataset", recording)
    monkeypatch.setattr(keras.utils, "set_random_seed", lambda seed: (seeds.append(("global", seed)), set_seed(seed)))
    out = tmp_path / "run"
    args = ["train", "--data", str(small_real_csv), "--out", str(out), "--arch", "fast_cnn", "--epochs", "1",
            "--fast-widths", "8", "--fast-blocks", "1", "--batch-size", "32", "--verbose", "0", "--seed", "7"]
    assert main(args) == 0
    assert main([*args, "--resume"]) == 0  # the finished run's one epoch is in its history: seed 7 + 1000
    assert seeds == [("global", 7), ("pipeline", 7), ("global", 1007), ("pipeline", 1007)]
    assert training.train.epochs_done(out) == 2  # CSVLogger appends rows under the one header
