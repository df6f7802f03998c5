"""The Model page: the card's images once each (no broken image), figures named in words, one-decimal shares."""

from __future__ import annotations

from pathlib import Path

import pytest

from dashboard.model_card import card_parts, evaluation_name, figure_tables, format_figure
from fer_core.classifier import default_model_path
from tests.dashboard.test_pages import _texts


def test_figures_are_named_in_words_and_formatted_by_kind():
    headline, rows = figure_tables({"PublicTest_accuracy": 0.6832, "n_overlap_with_Training": 279.0,
                                    "all/accuracy": 0.6832, "all/macro_f1": 0.65571, "all/n": 3579.0,
                                    "no_overlap_tta/macro_f1": 0.617, "single_view/all/accuracy": 0.6781})  # fmt: skip
    assert headline == {"PublicTest accuracy": "68.3%", "PublicTest images also in Training": "279"}
    assert rows[0] == {"evaluation": "PublicTest, all images", "accuracy": "68.3%", "macro F1": "0.656", "images": "3,579"}
    assert rows[1]["evaluation"] == ("PublicTest without the images also in Training, with 6-view test-time "
                                     "augmentation")  # fmt: skip
    assert rows[2]["evaluation"] == "PublicTest, all images; the network alone (one view)"
    assert evaluation_name("all_tta") == "PublicTest, all images, with 6-view test-time augmentation"
    assert format_figure("recall", 0.4642857) == "0.464"


def test_card_images_are_placed_once_where_the_card_puts_them(tmp_path):
    (tmp_path / "m_history.png").write_bytes(b"png")
    (tmp_path / "m_extra.png").write_bytes(b"png")
    card = tmp_path / "m.md"
    card.write_text("# Card\n\n![history](m_history.png)\n\ntext\n\n![again](m_history.png)\n![gone](missing.png)\n"
                    "![out](../secret.png)\n", encoding="utf-8")  # fmt: skip
    parts = card_parts(card, sorted(tmp_path.glob("*.png")))
    images = [(p.path.name, p.text) for p in parts if p.kind == "image"]
    assert images == [("m_history.png", "Training curves (accuracy and loss per epoch)"), ("m_extra.png", "m extra")]
    assert all("![" not in p.text for p in parts if p.kind == "markdown")
    assert [p.kind for p in parts][:3] == ["markdown", "image", "markdown"]


def test_model_page_renders_each_card_image_once_and_no_internal_key(app, db_url, monkeypatch):
    import streamlit

    model = default_model_path()
    if not model.is_file():
        pytest.skip(f"no shipped model at {model}")
    shown: list[Path] = []
    real = streamlit.image

    def record(image, caption=None, **kwargs):
        shown.append(Path(image))
        return real(image, caption=caption, **kwargs)

    monkeypatch.setattr(streamlit, "image", record)
    at = app("model")
    assert not at.exception
    assert shown and all(path.is_file() for path in shown)  # no broken image
    assert len(set(shown)) == len(shown)  # each once
    assert sorted(p.name for p in shown) == sorted(p.name for p in model.parent.glob(f"{model.stem}_*.png"))
    assert all("![" not in m.value for m in at.markdown)
    labels = {m.label: m.value for m in at.metric}
    from fer_core.model_file import read_metadata

    accuracy = read_metadata(model)["metrics"]["PublicTest_accuracy"]  # the shipped model's own figure
    assert labels["PublicTest accuracy"] == f"{100 * accuracy:.1f}%"
    table = next(d.value for d in at.dataframe if "evaluation" in d.value.columns)
    words = " ".join(map(str, table["evaluation"])) + " " + " ".join(labels) + " " + _texts(at)
    assert "no overlap" not in words and "no_overlap" not in words and "tta/" not in words
    assert "PublicTest without the images also in Training, with 6-view test-time augmentation" in words
    assert all(v.endswith("%") and len(v.split(".")[-1]) == 2 for v in table["accuracy"].dropna())  # one decimal


def test_model_page_shows_the_live_model_when_live_streams_use_another(app, db_url, monkeypatch):
    from fer_core.model_file import read_metadata

    offline = default_model_path()
    live = offline.with_name("fer2013_fast.keras")
    if not (offline.is_file() and live.is_file()):
        pytest.skip(f"needs both shipped models in {offline.parent}")
    monkeypatch.setenv("FER_LIVE_MODEL_PATH", str(live))
    at = app("model")
    assert not at.exception
    radio = at.radio(key="model_use")
    assert radio.value == "Offline analysis (Upload)"
    accuracy = {m.label: m.value for m in at.metric}["PublicTest accuracy"]
    assert accuracy == f"{100 * read_metadata(offline)['metrics']['PublicTest_accuracy']:.1f}%"
    radio.set_value("Live camera streams").run()
    assert not at.exception
    accuracy = {m.label: m.value for m in at.metric}["PublicTest accuracy"]
    assert accuracy == f"{100 * read_metadata(live)['metrics']['PublicTest_accuracy']:.1f}%"
    captions = [c.value for c in at.caption]
    assert any("fer2013\\_fast" in c and "sha256" in c for c in captions), captions  # escaped Markdown
    from dashboard.text import WORD_JOINER

    plain = [c.replace("\\", "").replace(WORD_JOINER, "") for c in captions]
    assert not any(str(live.parent) in c for c in plain)  # the file's name and digest, no server path


def test_card_files_are_the_models_own(tmp_path):
    from dashboard.model_card import card_files

    for name in ("a.keras", "a.md", "a_history.png", "a_recall.png", "ab.md", "ab_history.png", "b.md", "b_recall.png"):
        (tmp_path / name).write_bytes(b"x")
    card, images = card_files(tmp_path / "a.keras")
    assert card == tmp_path / "a.md" and [p.name for p in images] == ["a_history.png", "a_recall.png"]
    assert card_files(tmp_path / "c.keras") == (None, [])


def test_the_report_quotes_the_model_that_analysed_the_sessions(tmp_path):
    from dashboard.model_card import analysing_model
    from fer_core.classifier import model_file_id

    offline, live = tmp_path / "offline.keras", tmp_path / "live.keras"
    offline.write_bytes(b"offline")
    live.write_bytes(b"live")
    assert analysing_model([offline, live], [model_file_id(live)]) == live
    assert analysing_model([offline, live], [model_file_id(offline), model_file_id(live)]) == offline
    assert analysing_model([offline, live], []) == offline  # nothing recorded: the offline model
    assert analysing_model([offline, live], ["other.keras sha256:000000000000"]) is None
    assert analysing_model([tmp_path / "gone.keras", live], [model_file_id(live)]) == live
