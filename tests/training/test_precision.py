"""Mixed-precision training (``--precision mixed_bfloat16``): the run's files are float32 networks."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from training.train import TrainConfig, float32_copy, training_precision


def test_precision_is_checked_and_the_policy_is_restored_after_an_error():
    with pytest.raises(ValueError, match="precision has to be one of"):
        TrainConfig(precision="float16")
    with pytest.raises(RuntimeError, match="inside"):
        with training_precision("mixed_bfloat16"):
            assert keras.mixed_precision.global_policy().name == "mixed_bfloat16"
            raise RuntimeError("inside")
    assert keras.mixed_precision.global_policy().name == "float32"


def test_mixed_bfloat16_run_writes_float32_models_with_the_trained_weights(small_real_csv, tmp_path):
    from training.__main__ import main
    from training.export import export_run

    out = tmp_path / "bf16"
    code = main(["train", "--data", str(small_real_csv), "--out", str(out), "--epochs", "2", "--widths", "8", "16",
                 "--dense-units", "16", "--batch-size", "32", "--verbose", "0", "--precision", "mixed_bfloat16"])
    assert code == 0
    assert json.loads((out / "config.json").read_text())["precision"] == "mixed_bfloat16"
    assert keras.mixed_precision.global_policy().name == "float32"
    last = keras.models.load_model(out / "last.keras", compile=False)  # the checkpoint trained in bfloat16
    assert any(layer.dtype_policy.name == "mixed_bfloat16" for layer in last.layers)
    for name in ("best.keras", "model.keras"):
        model = keras.models.load_model(out / name, compile=False)
        assert {layer.dtype_policy.name for layer in model.layers} == {"float32"}, name
        assert all(w.dtype == np.float32 for w in model.get_weights())
    # the float32 copy of a bfloat16 checkpoint has its weights and nearly its outputs
    config = TrainConfig(**json.loads((out / "config.json").read_text()))
    copy = float32_copy(last, config)
    for a, b in zip(copy.get_weights(), last.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)
    faces = np.random.default_rng(0).uniform(0, 255, (8, 48, 48, 1)).astype(np.float32)
    np.testing.assert_allclose(copy.predict(faces, verbose=0), last.predict(faces, verbose=0), atol=0.05)
    export_run(out, tmp_path / "m.keras", tta=False)
    shipped = keras.models.load_model(tmp_path / "m.keras", compile=False)
    assert {layer.dtype_policy.name for layer in shipped.layers} == {"float32"}
