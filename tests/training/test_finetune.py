"""Two-phase fine-tuning: the phases freeze and unfreeze the layers they say, BatchNorm stays frozen."""

from __future__ import annotations

import json

import numpy as np
import pytest

keras = pytest.importorskip("keras")
from keras import layers  # noqa: E402

from training.finetune import Phase, fit_phases, parse_phases, set_trainable_phase  # noqa: E402
from training.models import build_efficientnet  # noqa: E402


def test_parse_phases_repeats_schedule_and_rejects_bad_items():
    assert parse_phases("head:6,top:4", 2) == [Phase("head", 6), Phase("top", 4)] * 2
    for bad in ("head:0", "body:3", "top", ""):
        with pytest.raises(ValueError, match="phase"):
            parse_phases(bad)
    with pytest.raises(ValueError, match="phase_repeats has to be at least 1; got 0"):
        parse_phases("head:1", 0)


@pytest.fixture(scope="module")
def efficientnet():
    return build_efficientnet("efficientnet_b0", 32)


def test_efficientnet_takes_rgb_0_255_and_outputs_probabilities(efficientnet):
    assert efficientnet.input_shape == (None, 32, 32, 3)
    probs = np.asarray(efficientnet(np.random.default_rng(0).uniform(0, 255, (2, 32, 32, 3)).astype("float32"),
                                    training=False))
    assert probs.shape == (2, 7)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)
    with pytest.raises(ValueError, match="weights has to be an existing weights file"):
        build_efficientnet("efficientnet_b0", 32, weights="/nonexistent/notop.h5")
    with pytest.raises(ValueError, match="variant has to be one of"):
        build_efficientnet("efficientnet_b7", 32)


def test_head_phase_trains_only_the_head(efficientnet):
    names = set_trainable_phase(efficientnet, "head")
    assert names == ["head_bn", "logits"]
    trainable = {layer.name for layer in efficientnet.layers if layer.trainable and layer.weights}
    assert trainable == {"head_bn", "logits"}
    assert {v.path.split("/")[0] for v in efficientnet.trainable_weights} == {"head_bn", "logits"}


def test_top_phase_unfreezes_top_blocks_and_keeps_batchnorm_frozen(efficientnet):
    set_trainable_phase(efficientnet, "top", unfreeze_blocks=2)
    by_name = {layer.name: layer for layer in efficientnet.layers}
    assert by_name["block7a_project_conv"].trainable and by_name["block6a_dwconv"].trainable
    assert by_name["top_conv"].trainable and by_name["logits"].trainable
    assert not by_name["block5a_dwconv"].trainable and not by_name["stem_conv"].trainable
    assert not by_name["block7a_project_bn"].trainable and not by_name["top_bn"].trainable
    bn = [layer for layer in efficientnet.layers if isinstance(layer, layers.BatchNormalization)]
    assert bn and not any(layer.trainable for layer in bn)
    set_trainable_phase(efficientnet, "top", unfreeze_blocks=3)
    assert by_name["block5a_dwconv"].trainable and not by_name["block4a_dwconv"].trainable
    with pytest.raises(ValueError, match="unfreeze_blocks has to be in 0-7; got 9"):
        set_trainable_phase(efficientnet, "top", unfreeze_blocks=9)


def _tiny_block_model():
    """A small network whose layer names follow EfficientNet's (block1a_*, block7a_*, top_*, head)."""
    inputs = keras.Input((8, 8, 1))
    x = layers.Conv2D(4, 3, padding="same", name="block1a_conv")(inputs)
    x = layers.BatchNormalization(name="block1a_bn")(x)
    x = layers.Conv2D(4, 3, padding="same", name="block7a_conv")(x)
    x = layers.BatchNormalization(name="block7a_bn")(x)
    x = layers.GlobalAveragePooling2D(name="head_pool")(x)
    outputs = layers.Dense(7, activation="softmax", name="logits")(x)
    return keras.Model(inputs, outputs)


def test_fit_phases_changes_only_the_layers_of_each_phase_and_resumes(tmp_path):
    import tensorflow as tf

    keras.utils.set_random_seed(0)
    model = _tiny_block_model()
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (32, 8, 8, 1)).astype("float32") * 5 + 3
    y = np.eye(7, dtype="float32")[rng.integers(0, 7, 32)]
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    snapshot = {layer.name: [w.copy() for w in layer.get_weights()] for layer in model.layers}

    def changed(name):
        return any(not np.allclose(a, b) for a, b in zip(snapshot[name], model.get_layer(name).get_weights(),
                                                          strict=True))

    kwargs = dict(train_data=data, val_data=data, out=tmp_path, learning_rate=0.1, finetune_learning_rate=0.1,
                  unfreeze_blocks=1, compile_kwargs={"loss": "categorical_crossentropy", "run_eagerly": True},
                  callbacks_for_phase=lambda i: [], verbose=0)
    assert fit_phases(model, [Phase("head", 1)], **kwargs) == 1
    assert changed("logits") and not changed("block7a_conv") and not changed("block1a_conv")
    assert not changed("block7a_bn")  # frozen BatchNorm: neither weights nor moving statistics move
    snapshot = {layer.name: [w.copy() for w in layer.get_weights()] for layer in model.layers}
    assert fit_phases(model, [Phase("head", 1), Phase("top", 2)], **kwargs) == 3
    assert changed("block7a_conv") and changed("logits")
    assert not changed("block1a_conv") and not changed("block7a_bn") and not changed("block1a_bn")
    assert json.loads((tmp_path / "phases.json").read_text()) == {"done": [0, 1], "epoch": 3}
    # Resuming a finished schedule runs nothing more and restores the last phase's weights.
    fresh = _tiny_block_model()
    assert fit_phases(fresh, [Phase("head", 1), Phase("top", 2)], **kwargs) == 3
    np.testing.assert_allclose(fresh.get_layer("block7a_conv").get_weights()[0],
                               model.get_layer("block7a_conv").get_weights()[0])
