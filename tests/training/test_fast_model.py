"""The fast network, knowledge distillation and temperature scaling (issue: model generation 2)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from fer_core.model_file import read_metadata
from training.__main__ import main
from training.calibration import expected_calibration_error, fit_temperature, with_temperature
from training.distill import distillation_targets, teacher_probabilities


def _softmax(z):
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def test_ece_is_near_zero_for_calibrated_and_large_for_overconfident_probabilities():
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2.0, size=(20000, 7))
    probs = _softmax(logits)
    labels = np.array([rng.choice(7, p=p) for p in probs])  # labels drawn from the probabilities themselves
    assert expected_calibration_error(probs, labels) < 0.015
    overconfident = _softmax(logits * 3.0)
    assert expected_calibration_error(overconfident, labels) > 0.1
    assert expected_calibration_error(np.zeros((0, 7)), np.zeros(0, int)) == 0.0
    with pytest.raises(ValueError, match="differ in length"):
        expected_calibration_error(probs, labels[:5])


def test_fit_temperature_recovers_the_temperature_of_the_labels():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3.0, size=(20000, 7))
    labels = np.array([rng.choice(7, p=p) for p in _softmax(logits / 2.0)])
    assert fit_temperature(logits, labels) == pytest.approx(2.0, rel=0.06)
    with pytest.raises(ValueError, match="needs as many labels"):
        fit_temperature(np.zeros((0, 7)), np.zeros(0, int))


def test_with_temperature_divides_the_logits_and_keeps_the_top_class():
    import keras

    from training.models import build_fast_cnn

    model = build_fast_cnn(widths=(8, 16), blocks=(1, 1), stem_widths=(4, 8))
    images = np.random.default_rng(2).integers(0, 256, (5, 48, 48, 1)).astype(np.float32)
    logits = np.asarray(keras.Model(model.input, model.get_layer("logits").output).predict_on_batch(images))
    calibrated = np.asarray(with_temperature(model, 2.5).predict_on_batch(images))
    np.testing.assert_allclose(calibrated, _softmax(logits / 2.5), atol=1e-5)
    assert (calibrated.argmax(1) == np.asarray(model.predict_on_batch(images)).argmax(1)).all()


def test_fast_cnn_is_a_fraction_of_the_compact_cnn_in_weights_and_multiply_adds():
    from training.models import build_compact_cnn, build_fast_cnn, multiply_adds

    fast, compact = build_fast_cnn(), build_compact_cnn(widths=(32, 64, 128, 256))
    assert fast.output_shape == (None, 7) and fast.input_shape == (None, 48, 48, 1)
    assert fast.count_params() < 0.5e6 < 1.2e6 < compact.count_params()
    assert multiply_adds(fast) < 25e6 and multiply_adds(compact) > 100e6
    with pytest.raises(ValueError, match="same, non-zero length"):
        build_fast_cnn(widths=(8, 16), blocks=(1,))


def test_distillation_targets_mix_teacher_and_labels():
    teacher = np.full((3, 7), 1 / 7, np.float32)
    labels = np.eye(7, dtype=np.float32)[[0, 3, 6]]
    mixed = distillation_targets(teacher, labels, 0.7)
    np.testing.assert_allclose(mixed.sum(1), 1.0, atol=1e-6)
    assert mixed[1, 3] == pytest.approx(0.3 + 0.1)
    with pytest.raises(ValueError, match="differ in shape"):
        distillation_targets(teacher, labels[:2], 0.5)
    with pytest.raises(ValueError, match="teacher weight"):
        distillation_targets(teacher, labels, 1.5)


def test_teacher_probabilities_are_cached_for_the_same_teacher_and_images(tmp_path, capsys):
    from training.models import build_fast_cnn

    teacher = tmp_path / "teacher.keras"
    build_fast_cnn(widths=(8,), blocks=(1,), stem_widths=(4, 8)).save(teacher)
    images = np.random.default_rng(3).integers(0, 256, (10, 48, 48, 1)).astype(np.uint8)
    cache = tmp_path / "targets.npz"
    first = teacher_probabilities(teacher, images, cache=cache)
    assert first.shape == (10, 7) and "10 images from" in capsys.readouterr().out
    again = teacher_probabilities(teacher, images, cache=cache)
    np.testing.assert_array_equal(first, again)
    assert "cached" in capsys.readouterr().out
    teacher_probabilities(teacher, images[:5], cache=cache)  # other images: computed again
    assert "5 images from" in capsys.readouterr().out
    with pytest.raises(FileNotFoundError, match="does not exist"):
        teacher_probabilities(tmp_path / "missing.keras", images)


def test_distilled_fast_run_is_calibrated_on_a_training_holdout(small_real_csv, tmp_path):
    from training.models import build_fast_cnn

    teacher = tmp_path / "teacher.keras"
    build_fast_cnn(widths=(8,), blocks=(1,), stem_widths=(4, 8)).save(teacher)
    out = tmp_path / "fast"
    assert main(["train", "--data", str(small_real_csv), "--out", str(out), "--arch", "fast_cnn", "--epochs", "1",
                 "--fast-widths", "8", "16", "--fast-blocks", "1", "1", "--batch-size", "32", "--verbose", "0",
                 "--teacher", str(teacher), "--calibration-fraction", "0.2", "--label-smoothing", "0"]) == 0
    assert (out / "teacher_targets.npz").is_file() and (out / "best_uncalibrated.keras").is_file()
    calibration = read_metadata(out / "model.keras")["metrics"]["calibration"]
    assert calibration["temperature"] > 0 and calibration["bins"] == 15
    assert calibration["calibration_split"]["n"] == pytest.approx(0.2 * 300, abs=7)
    assert {"ece_before", "ece_after"} <= set(calibration["PublicTest"])
    # the fitted temperature does not raise the hold-out's NLL (it minimises it)
    assert calibration["calibration_split"]["nll_after"] <= calibration["calibration_split"]["nll_before"] + 1e-4
    config = json.loads((out / "config.json").read_text())
    assert config["arch"] == "fast_cnn" and config["teacher"] == str(teacher)


def test_export_of_a_calibrated_run_reports_calibration_and_cost(small_real_csv, tmp_path):
    from training.export import export_run
    from training.models import build_fast_cnn

    teacher = tmp_path / "teacher.keras"
    build_fast_cnn(widths=(8,), blocks=(1,), stem_widths=(4, 8)).save(teacher)
    run = tmp_path / "fast"
    assert main(["train", "--data", str(small_real_csv), "--out", str(run), "--arch", "fast_cnn", "--epochs", "1",
                 "--fast-widths", "8", "16", "--fast-blocks", "1", "1", "--batch-size", "32", "--verbose", "0",
                 "--teacher", str(teacher), "--calibration-fraction", "0.2"]) == 0
    metadata = export_run(run, tmp_path / "out" / "fast.keras", tta=False)
    assert metadata["metrics"]["calibration"]["temperature"] > 0
    assert 0 < metadata["multiply_adds_per_face"] < 10e6
    card = (tmp_path / "out" / "fast.md").read_text()
    assert "## Calibration" in card and "Training hold-out (fitted on)" in card and "PublicTest (not fitted on)" in card
    assert "Before and after, expected calibration error (ECE, 15 equal-width bins of the top probability; 0 is " \
           "perfect) and negative log-likelihood (NLL):" in card
    assert "Knowledge distillation" in card and "M multiply-adds per face" in card
    from fer_core.classifier import EmotionClassifier

    probs = EmotionClassifier.load(tmp_path / "out" / "fast.keras").predict([np.zeros((60, 60, 3), np.uint8)])
    assert probs.shape == (1, 7) and abs(float(probs.sum()) - 1) < 1e-4


FAST_MODEL = __import__("pathlib").Path(__file__).resolve().parents[2] / "fer_core" / "models" / "fer2013_fast.keras"


def test_shipped_fast_model_is_calibrated_cheap_and_as_accurate_as_its_metadata_claims(fer2013_csv):
    """The fast candidate model, served by the core's int8 runner, on the real PublicTest split.

    Its figure must be reproducible; its probabilities carry the temperature fitted on the Training hold-out (which
    lowered the NLL there and on PublicTest; ECE moved within its sampling noise, 0.027 -> 0.031 on PublicTest; the
    test allows what earlier fits did, PublicTest NLL a little higher); it costs a fifth of the compact CNN's
    multiply-adds. (It is not the default model: it has not reached the 68.5% target yet.)
    """
    from fer_core.classifier import EmotionClassifier
    from training.data import load_fer2013_csv
    from training.models import multiply_adds

    if not FAST_MODEL.is_file():
        pytest.skip(f"no fast model shipped at {FAST_MODEL}")
    metadata = read_metadata(FAST_MODEL)
    assert metadata["architecture"] == "fast_cnn" and metadata["metrics"]["calibration"]["bins"] == 15
    calibration = metadata["metrics"]["calibration"]
    fitted, unseen = calibration["calibration_split"], calibration["PublicTest"]
    assert fitted["nll_after"] <= fitted["nll_before"]  # what the temperature minimises, on what it was fitted on
    # where unseen: no worse in likelihood than its sampling noise, and calibrated to within 5 points
    assert unseen["nll_after"] <= unseen["nll_before"] + 0.005 and unseen["ece_after"] <= 0.05
    assert metadata["multiply_adds_per_face"] < 0.25 * 118e6
    import keras

    network = keras.models.load_model(FAST_MODEL, compile=False)
    assert network.get_layer("temperature_scaling").scale == pytest.approx(1 / calibration["temperature"], rel=1e-3)
    assert multiply_adds(network) == metadata["multiply_adds_per_face"]
    classifier = EmotionClassifier.load(FAST_MODEL)
    data = load_fer2013_csv(fer2013_csv, usage="PublicTest")
    probs = np.concatenate([classifier.predict(data.images[i : i + 512]) for i in range(0, len(data), 512)])
    accuracy = float((probs.argmax(1) == data.labels).mean())
    assert accuracy == pytest.approx(metadata["metrics"]["PublicTest_accuracy"], abs=0.01)


def test_evaluation_metrics_report_calibration_error_and_log_likelihood():
    """``training evaluate`` reports ECE (15 bins) and NLL beside accuracy: an over-confident model scores worse."""
    from training.evaluate import classification_metrics

    labels = np.array([0, 0, 1, 1])
    honest = np.full((4, 7), 0.05)
    honest[:, 0] = 0.7  # says 0.7 and is right half the time: |0.5 - 0.7| = 0.2
    confident = np.full((4, 7), 0.0005)
    confident[:, 0] = 0.997
    low, high = classification_metrics(labels, honest), classification_metrics(labels, confident)
    assert low["accuracy"] == high["accuracy"] == 0.5
    assert low["ece"] == pytest.approx(0.2) and high["ece"] == pytest.approx(0.497)
    assert low["nll"] == pytest.approx(-(np.log(0.7) + np.log(0.05)) / 2)
    assert high["nll"] > low["nll"]


def test_every_card_notes_file_stands_verbatim_in_its_shipped_model_card():
    """``training export --notes FILE`` puts the file's text after the card's opening paragraph; a card edited
    without its notes file (or the other way round) would drift from what a re-export writes."""
    repo = Path(__file__).resolve().parents[2]
    notes_files = sorted((repo / "training" / "card_notes").glob("*.md"))
    assert notes_files, "training/card_notes holds no notes file"
    for notes in notes_files:
        card = repo / "fer_core" / "models" / notes.name
        assert card.exists(), f"{notes.name}: no shipped model card of that name in fer_core/models"
        card_text = card.read_text(encoding="utf-8")
        opening = card_text.partition("\n\n## ")[0]
        assert notes.read_text(encoding="utf-8").strip() in opening, (
            f"{card.name} does not hold training/card_notes/{notes.name} before its first section")
