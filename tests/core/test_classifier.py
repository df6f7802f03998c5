"""EmotionClassifier: loading checks, batch shapes, runners and thread safety (on a tiny model)."""

from __future__ import annotations

import shutil
import zipfile
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from fer_core.classifier import EmotionClassifier
from fer_core.model_file import ModelFileError, write_metadata
from fer_core.preprocessing import PreprocessSpec

from .conftest import build_tiny_model, tiny_metadata


def _faces(n, shape=(60, 50, 3), seed=0):
    return np.random.default_rng(seed).integers(0, 256, (n, *shape), dtype=np.uint8)


@pytest.mark.parametrize("shape", [(60, 50), (60, 50, 1), (60, 50, 3), (48, 48), (120, 90, 4)])
def test_predict_any_face_size_and_mode(tiny_classifier, shape):
    probs = tiny_classifier.predict(_faces(3, shape))
    assert probs.shape == (3, 7) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-5)


def test_predict_list_and_empty_batch(tiny_classifier):
    faces = [_faces(1, (30, 40, 3))[0], _faces(1, (90, 90))[0]]
    assert tiny_classifier.predict(faces).shape == (2, 7)
    assert tiny_classifier.predict(np.zeros((0, 48, 48), np.uint8)).shape == (0, 7)


def test_predict_rejects_bad_faces(tiny_classifier):
    with pytest.raises(ValueError, match="uint8"):
        tiny_classifier.predict(np.zeros((2, 48, 48), np.float32))
    with pytest.raises(ValueError, match="shape"):
        tiny_classifier.predict(np.zeros((48, 48), np.uint8))


def test_metadata_and_spec_are_exposed(tiny_classifier, tiny_model_path):
    assert tiny_classifier.spec_ == PreprocessSpec()
    assert tuple(tiny_classifier.metadata_["classes"])[3] == "happy"
    assert tiny_classifier.path_ == tiny_model_path


@pytest.fixture(scope="module")
def function_classifier(tiny_model_path):
    return EmotionClassifier.load(tiny_model_path, runner="function")


@pytest.mark.parametrize(("runner", "atol"), [("predict_on_batch", 1e-5), ("litert", 1e-5), ("litert_int8", 1e-2)])
def test_runners_agree(tiny_model_path, function_classifier, runner, atol):
    faces = _faces(5)
    expected = function_classifier.predict(faces)
    other = EmotionClassifier.load(tiny_model_path, runner=runner)
    np.testing.assert_allclose(other.predict(faces), expected, atol=atol)
    np.testing.assert_allclose(other.predict(faces[:2]), expected[:2], atol=atol)


def test_unknown_runner_is_named(tiny_model_path):
    with pytest.raises(ValueError, match="runner has to be one of"):
        EmotionClassifier.load(tiny_model_path, runner="onnx")


@pytest.mark.parametrize("runner", ["function", "default"])
def test_one_classifier_serves_many_threads(tiny_classifier, function_classifier, runner):
    classifier = function_classifier if runner == "function" else tiny_classifier
    batches = [_faces(1 + i % 4, seed=i) for i in range(24)]
    expected = [classifier.predict(b) for b in batches]
    with ThreadPoolExecutor(max_workers=6) as pool:
        got = list(pool.map(classifier.predict, batches))
    for e, g in zip(expected, got, strict=True):
        np.testing.assert_allclose(g, e, atol=1e-6)


def test_missing_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.keras"
    with pytest.raises(ModelFileError, match="nope.keras: model file not found"):
        EmotionClassifier.load(missing)


def test_missing_default_model_names_its_path(tmp_path, monkeypatch):
    import fer_core.classifier

    absent = tmp_path / "models" / "fer2013_cnn.keras"
    monkeypatch.setattr(fer_core.classifier, "default_model_path", lambda: absent)
    with pytest.raises(ModelFileError, match=str(absent)):
        EmotionClassifier.load()


def test_model_without_metadata_is_refused(tmp_path):
    path = build_tiny_model(tmp_path / "bare.keras")
    with pytest.raises(ModelFileError, match="bare.keras: model file has no fer_metadata.json"):
        EmotionClassifier.load(path)


def test_metadata_that_disagrees_with_the_network_is_refused(tmp_path, tiny_model_path):
    path = tmp_path / "wrong_size.keras"
    shutil.copy(tiny_model_path, path)
    write_metadata(path, tiny_metadata(PreprocessSpec(input_size=64)))
    with pytest.raises(ModelFileError, match="wrong_size.keras: network input"):
        EmotionClassifier.load(path)


def test_non_model_file_is_refused(tmp_path):
    path = tmp_path / "notes.keras"
    path.write_text("not a zip")
    with pytest.raises(ModelFileError, match="notes.keras: not a .keras"):
        EmotionClassifier.load(path)
    broken = tmp_path / "broken.keras"
    with zipfile.ZipFile(broken, "w") as archive:
        archive.writestr("fer_metadata.json", '{"format": "fer_core.model/v1", "classes": []}')
    with pytest.raises(ModelFileError, match="broken.keras: model classes"):
        EmotionClassifier.load(broken)


def test_embedded_litert_loads_without_tensorflow_and_matches_conversion(tmp_path, tiny_model_path):
    import subprocess
    import sys

    from fer_core.classifier import embed_litert

    path = tmp_path / "embedded.keras"
    shutil.copy(tiny_model_path, path)
    sizes = embed_litert(path)
    assert list(sizes) == ["litert_int8"] and sizes["litert_int8"] > 1000
    faces = _faces(4)
    np.save(tmp_path / "faces.npy", faces)
    script = (
        "import sys, numpy as np\n"
        "from fer_core.classifier import EmotionClassifier\n"
        f"c = EmotionClassifier.load({str(path)!r})\n"
        "assert c._model is None, 'built from the stored flatbuffer'\n"
        f"np.save({str(tmp_path / 'probs.npy')!r}, c.predict(np.load({str(tmp_path / 'faces.npy')!r})))\n"
        "print(sorted(m for m in ('tensorflow', 'keras') if m in sys.modules))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"  # neither TensorFlow nor Keras was imported
    converted_now = EmotionClassifier.load(tiny_model_path, runner="litert_int8").predict(faces)
    np.testing.assert_allclose(np.load(tmp_path / "probs.npy"), converted_now, atol=1e-6)


def test_stale_embedded_litert_is_ignored(tmp_path, tiny_model_path, caplog):
    from fer_core.classifier import embed_litert
    from fer_core.model_file import LITERT_SOURCE_MEMBER, read_litert, write_litert

    path = tmp_path / "stale.keras"
    shutil.copy(tiny_model_path, path)
    embed_litert(path)
    assert read_litert(path, "litert_int8") is not None
    assert read_litert(path, "litert") is None  # only the default runner is stored
    with zipfile.ZipFile(path) as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    members[LITERT_SOURCE_MEMBER] = b"0" * 64  # converted from other weights
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    assert read_litert(path, "litert_int8") is None
    with caplog.at_level("WARNING", logger="fer_core.classifier"):
        loaded = EmotionClassifier.load(path)  # falls back to converting the Keras network
    assert loaded._model is not None and loaded.predict(_faces(2)).shape == (2, 7)
    assert "stale.keras: no stored LiteRT flatbuffer" in caplog.text
    with pytest.raises(ModelFileError, match="unknown LiteRT runner"):
        write_litert(path, {"onnx": b""})


def test_embedded_litert_of_another_input_size_is_refused(tmp_path, tiny_model_path):
    from fer_core.model_file import read_litert, write_litert

    other = build_tiny_model(tmp_path / "other.keras", input_size=64)
    write_metadata(other, tiny_metadata(PreprocessSpec(input_size=64)))
    from fer_core.classifier import embed_litert

    embed_litert(other)
    path = tmp_path / "mixed.keras"
    shutil.copy(tiny_model_path, path)
    write_litert(path, {"litert_int8": read_litert(other, "litert_int8")})
    with pytest.raises(ModelFileError, match="mixed.keras: LiteRT network input"):
        EmotionClassifier.load(path)
