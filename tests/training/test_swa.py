"""Stochastic weight averaging: the running mean, its resume, the BatchNorm pass and a real SWA run."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from training.swa import WeightAverager, load_average, update_batchnorm
from training.train import TrainConfig


def _tiny_model():
    inputs = keras.Input(shape=(3,))
    x = keras.layers.BatchNormalization(name="bn")(inputs)
    outputs = keras.layers.Dense(2, name="dense")(x)
    return keras.Model(inputs, outputs)


def test_weight_averager_keeps_the_mean_of_the_epochs_from_start_and_resumes_without_double_counting(tmp_path):
    model = _tiny_model()
    path = tmp_path / "avg.npz"
    averager = WeightAverager(path, start_epoch=2)
    averager.set_model(model)
    snapshots = []
    for epoch in range(4):  # Keras' 0-based epoch index; epochs 2, 3 and 4 (1-based) are averaged
        model.set_weights([np.full(w.shape, epoch + 1.0, np.float32) for w in model.get_weights()])
        snapshots.append(model.get_weights())
        averager.on_epoch_end(epoch)
    weights, count, epochs = load_average(path)
    assert count == 3 and epochs == [2, 3, 4]
    for mean, *per_epoch in zip(weights, *snapshots[1:], strict=True):
        np.testing.assert_allclose(mean, np.mean(per_epoch, axis=0))
        assert np.allclose(mean, 3.0)

    # a resumed run re-runs epoch 4 (the crash came before its backup): not counted twice; epoch 5 is
    resumed = WeightAverager(path, start_epoch=2)
    resumed.set_model(model)
    model.set_weights([np.full(w.shape, 100.0, np.float32) for w in model.get_weights()])
    resumed.on_epoch_end(3)
    assert load_average(path)[1] == 3
    resumed.on_epoch_end(4)
    weights, count, epochs = load_average(path)
    assert count == 4 and epochs == [2, 3, 4, 5]
    assert np.allclose(weights[0], (2 + 3 + 4 + 100) / 4)
    resumed.on_epoch_begin(5)  # a proper resume starts after the last epoch averaged: accepted

    # a finished run "resumed" with more epochs restarts at epoch 1 (its backup is gone): refused
    restarted = WeightAverager(path, start_epoch=2)
    restarted.set_model(model)
    with pytest.raises(RuntimeError, match="holds epochs up to 5 but training starts at epoch 1"):
        restarted.on_epoch_begin(0)


def test_weight_averager_and_loader_refuse_bad_input(tmp_path):
    with pytest.raises(ValueError, match="at least 1"):
        WeightAverager(tmp_path / "a.npz", start_epoch=0)
    np.savez(tmp_path / "other.npz", x=np.zeros(2))
    with pytest.raises(ValueError, match="other.npz: not a weight average"):
        load_average(tmp_path / "other.npz")
    assert load_average(tmp_path / "absent.npz") == (None, 0, [])


def test_update_batchnorm_sets_the_plain_mean_of_the_batch_statistics():
    model = _tiny_model()
    bn = model.get_layer("bn")
    rng = np.random.default_rng(0)
    batches = [rng.normal(loc=i, scale=1.0 + i, size=(16, 3)).astype(np.float32) for i in range(5)]
    dense_before = model.get_layer("dense").get_weights()
    momentum = bn.momentum
    n = update_batchnorm(model, [(b, None) for b in batches], max_batches=4)
    assert n == 4
    np.testing.assert_allclose(bn.moving_mean.numpy(), np.mean([b.mean(0) for b in batches[:4]], axis=0), rtol=1e-5)
    np.testing.assert_allclose(bn.moving_variance.numpy(), np.mean([b.var(0) for b in batches[:4]], axis=0),
                               rtol=1e-4)
    assert bn.momentum == momentum
    for a, b in zip(dense_before, model.get_layer("dense").get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    with pytest.raises(ValueError, match="yielded nothing"):
        update_batchnorm(model, [])

    # nested models are searched; the momentum comes back even when a batch fails
    inputs = keras.Input(shape=(3,))
    outer = keras.Model(inputs, model(inputs))
    update_batchnorm(outer, [batches[0]])
    np.testing.assert_allclose(bn.moving_mean.numpy(), batches[0].mean(0), rtol=1e-5)
    with pytest.raises(ValueError):
        update_batchnorm(outer, [batches[0], np.zeros((2, 5), np.float32)])
    assert bn.momentum == momentum

    bn.trainable = False  # Keras would not update a frozen layer: refused rather than left at 0 / 1
    with pytest.raises(ValueError, match=r"\['bn'\] are frozen"):
        update_batchnorm(model, batches)


def test_config_checks_the_schedule_and_swa_start():
    with pytest.raises(ValueError, match="lr_schedule"):
        TrainConfig(lr_schedule="step")
    with pytest.raises(ValueError, match="swa_start has to be 0 .* 1..5"):
        TrainConfig(epochs=5, swa_start=6)
    with pytest.raises(ValueError, match="compact_cnn only"):
        TrainConfig(arch="efficientnet_b0", channels=3, swa_start=1)
    with pytest.raises(ValueError, match="compact_cnn only"):
        TrainConfig(arch="efficientnet_b0", channels=3, lr_schedule="constant")


def test_swa_run_averages_its_epochs_and_ships_the_better_of_average_and_best_epoch(small_real_csv, tmp_path):
    from fer_core.model_file import read_metadata
    from training.__main__ import main
    from training.swa import load_average

    out = tmp_path / "swa"
    code = main(["train", "--data", str(small_real_csv), "--out", str(out), "--epochs", "3", "--widths", "8", "16",
                 "--dense-units", "16", "--batch-size", "32", "--verbose", "0", "--lr-schedule", "constant",
                 "--learning-rate", "0.003", "--swa-start", "2"])
    assert code == 0
    weights, count, epochs = load_average(out / "swa_weights.npz")
    assert count == 2 and epochs == [2, 3]
    swa = keras.models.load_model(out / "swa.keras", compile=False)
    # every weight but the recomputed BatchNorm statistics is the average
    names = [v.path for v in swa.weights]
    for name, value, mean in zip(names, swa.get_weights(), weights, strict=True):
        if "moving_" not in name:
            np.testing.assert_allclose(value, mean, rtol=1e-6, atol=1e-7)
    summary = read_metadata(out / "model.keras")["metrics"]["swa"]
    assert summary["epochs_averaged"] == 2 and summary["first_epoch"] == 2
    shipped = keras.models.load_model(out / "best.keras", compile=False)
    same_as_swa = all(np.array_equal(a, b) for a, b in zip(shipped.get_weights(), swa.get_weights(), strict=True))
    assert same_as_swa == summary["selected"]
    assert (out / "best_epoch.keras").is_file() == summary["selected"]
    assert summary["selected"] == (summary["PublicTest_accuracy"] >= summary["best_epoch_PublicTest_accuracy"])
    config = json.loads((out / "config.json").read_text())
    assert config["swa_start"] == 2 and config["lr_schedule"] == "constant"
    model = keras.models.load_model(out / "model.keras", compile=False)
    assert all(np.array_equal(a, b) for a, b in zip(model.get_weights(), shipped.get_weights(), strict=True))
    # the BatchNorm statistics were recomputed, not averaged
    moving = [(v, m) for v, m in zip(swa.weights, weights, strict=True) if "moving_" in v.path]
    assert moving and all(not np.allclose(v.numpy(), m) for v, m in moving)


def test_finish_swa_keeps_the_best_epoch_when_the_average_validates_worse(small_real_csv, tmp_path):
    from training.__main__ import main
    from training.train import _finish_swa, _one_hot, load_training_data, make_dataset

    out = tmp_path / "swa"
    assert main(["train", "--data", str(small_real_csv), "--out", str(out), "--epochs", "2", "--widths", "8", "16",
                 "--dense-units", "16", "--batch-size", "32", "--verbose", "0", "--lr-schedule", "constant",
                 "--swa-start", "1"]) == 0
    config = TrainConfig(**json.loads((out / "config.json").read_text()))
    (out / "best_epoch.keras").unlink(missing_ok=True)
    before = (out / "best.keras").read_bytes()
    train, val = load_training_data(config)
    pipes = [make_dataset(d.images, _one_hot(d.labels), batch_size=32, training=t, config=config)
             for d, t in ((train, True), (val, False))]
    best = keras.models.load_model(out / "best.keras", compile=False)
    result = _finish_swa(config, best, *pipes, val.labels, len(train) // 32, best_accuracy=1.01)
    assert result["summary"]["selected"] is False and result["summary"]["epochs_averaged"] == 2
    assert (out / "best.keras").read_bytes() == before and not (out / "best_epoch.keras").exists()
    result = _finish_swa(config, best, *pipes, val.labels, len(train) // 32, best_accuracy=0.0)
    assert result["summary"]["selected"] is True
    assert (out / "best_epoch.keras").read_bytes() == before
    replaced = keras.models.load_model(out / "best.keras", compile=False)
    swa = keras.models.load_model(out / "swa.keras", compile=False)
    assert all(np.array_equal(a, b) for a, b in zip(replaced.get_weights(), swa.get_weights(), strict=True))
