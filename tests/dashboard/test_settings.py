"""Settings: defaults, TOML file, environment precedence and error messages."""

from __future__ import annotations

import pytest

from dashboard.settings import Settings, load_settings


def test_defaults_work_on_one_machine(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no fer-dashboard.toml here
    settings = load_settings({})
    assert settings == Settings()
    assert (settings.db_url, settings.model_path, settings.ice_servers) == (None, None, [])
    assert (settings.frame_width, settings.preview_width, settings.detect_every) == (640, 320, 2)
    assert settings.detector == "blazeface" and settings.researcher_password is None
    assert settings.rtc_configuration == {"iceServers": []}
    assert settings.resolved_model_path.name == "fer2013_cnn.keras"
    assert settings.auth == "accounts" and settings.auth_cookie_hours == 12.0
    assert settings.resolved_auth_file.name == "accounts.json" and settings.resolved_auth_file.parent.name == "fer-platform"


def test_environment_overrides_config_file(tmp_path):
    config = tmp_path / "fer.toml"
    config.write_text('[dashboard]\nframe_width = 480\ndetect_every = 2\nice_servers = [{urls = ["stun:stun.example.org:3478"]}]\n')
    env = {"FER_CONFIG": str(config), "FER_DETECT_EVERY": "3", "FER_RESEARCHER_PASSWORD": "first password", "FER_DB_URL": "sqlite:///x.db"}
    settings = load_settings(env)
    assert settings.frame_width == 480 and settings.detect_every == 3
    assert load_settings({"FER_PREVIEW_WIDTH": "480"}).preview_width == 480
    assert settings.ice_servers == [{"urls": ["stun:stun.example.org:3478"]}]
    assert settings.researcher_password == "first password" and settings.db_url == "sqlite:///x.db"


def test_ice_servers_from_json_env():
    turn = '[{"urls": "turn:turn.example.org:3478", "username": "u", "credential": "c"}]'
    assert load_settings({"FER_ICE_SERVERS": turn}).rtc_configuration["iceServers"][0]["username"] == "u"


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"FER_ICE_SERVERS": "stun:x"}, "FER_ICE_SERVERS has to be a JSON list"),
        ({"FER_ICE_SERVERS": '{"urls": "stun:x"}'}, "ice_servers has to be a list"),
        ({"FER_FRAME_WIDTH": "wide"}, "FER_FRAME_WIDTH has to be an integer"),
        ({"FER_FRAME_WIDTH": "10"}, "frame_width has to be at least 64"),
        ({"FER_DETECT_EVERY": "0"}, "detect_every has to be at least 1"),
        ({"FER_PREVIEW_WIDTH": "wide"}, "FER_PREVIEW_WIDTH has to be an integer"),
        ({"FER_PREVIEW_WIDTH": "32"}, "preview_width has to be at least 64"),
        ({"FER_DETECTOR": "yolo"}, "detector has to be one of blazeface, blazeface_full, ssd, haar; got 'yolo'"),
        ({"FER_CONFIG": "/nonexistent/fer.toml"}, "does not exist"),
        ({"FER_AUTH": "off"}, "auth has to be one of accounts, none; got 'off'"),
        ({"FER_AUTH_COOKIE_HOURS": "long"}, "FER_AUTH_COOKIE_HOURS has to be a number of hours"),
        ({"FER_AUTH_COOKIE_HOURS": "0"}, "auth_cookie_hours has to be more than 0"),
        ({"FER_RESEARCHER_PASSWORD": " "}, "FER_RESEARCHER_PASSWORD is set but blank"),
        ({"FER_RESEARCHER_PASSWORD": ""}, "FER_RESEARCHER_PASSWORD is set but blank"),
        ({"FER_RESEARCHER_PASSWORD": "short"}, "FER_RESEARCHER_PASSWORD.* has to be at least 8 characters"),
        ({"FER_ATTENTION_ANGLE_DEG": "wide"}, "FER_ATTENTION_ANGLE_DEG has to be a number of degrees; got 'wide'"),
        ({"FER_ATTENTION_ANGLE_DEG": "0"}, "attention_angle_deg has to be more than 0 and at most 90 degrees"),
        ({"FER_ATTENTION_ANGLE_DEG": "nan"}, "attention_angle_deg has to be more than 0 and at most 90 degrees"),
        ({"FER_ANALYSIS_FPS": "fast"}, "FER_ANALYSIS_FPS has to be a number of frames per second; got 'fast'"),
        ({"FER_ANALYSIS_FPS": "-1"}, r"analysis_fps has to be between 0 \(every frame\) and 120 frames per second"),
    ],
)
def test_bad_values_name_the_setting(env, message):
    with pytest.raises(ValueError, match=message):
        load_settings(env)


@pytest.mark.parametrize(
    "raw",
    [
        '[{"urls": ["turn:turn.example.org:3478"], "username": "fer", "credential": "TURN-SECRET-1"]',  # ] for }
        '[{"urls": ["turn:turn.example.org"], "credential": "TURN-SECRET-1"}, "TURN-SECRET-1"]',
        '{"urls": ["turn:turn.example.org"], "credential": "TURN-SECRET-1"}',
    ],
)
def test_malformed_ice_servers_never_echo_the_credential(raw):
    with pytest.raises(ValueError) as info:
        load_settings({"FER_ICE_SERVERS": raw})
    message = str(info.value)
    assert "TURN-SECRET-1" not in message and "turn.example.org" not in message
    assert "FER_ICE_SERVERS" in message or "ice_servers" in message
    assert "not valid JSON" in message or "list of objects" in message


def test_unknown_config_key_is_rejected(tmp_path):
    config = tmp_path / "fer.toml"
    config.write_text("frame_witdh = 480\n")
    with pytest.raises(ValueError, match="unknown keys \\['frame_witdh'\\]"):
        load_settings({}, config_file=config)


def test_live_model_defaults_to_the_offline_model_and_can_differ(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    settings = load_settings({})
    assert settings.live_model_path is None and settings.resolved_live_model_path == settings.resolved_model_path
    settings = load_settings({"FER_MODEL_PATH": "offline.keras"})
    assert settings.resolved_live_model_path.name == "offline.keras"
    settings = load_settings({"FER_MODEL_PATH": "offline.keras", "FER_LIVE_MODEL_PATH": "live.keras"})
    assert (settings.resolved_model_path.name, settings.resolved_live_model_path.name) == ("offline.keras", "live.keras")
    same = load_settings({"FER_MODEL_PATH": "offline.keras", "FER_LIVE_MODEL_PATH": str(tmp_path / "offline.keras")})
    assert same.resolved_live_model_path == same.resolved_model_path  # one file named two ways is one model


def test_live_streams_and_uploads_get_their_own_model(db_url, monkeypatch):
    import streamlit as st

    from dashboard import resources
    from fer_core.classifier import default_model_path

    offline = default_model_path()
    live = offline.with_name("fer2013_fast.keras")
    if not (offline.is_file() and live.is_file()):
        pytest.skip(f"needs both shipped models in {offline.parent}")
    monkeypatch.setenv("FER_LIVE_MODEL_PATH", str(live))
    st.cache_resource.clear()
    live_model, offline_model = resources.get_classifier(live=True), resources.get_classifier()
    assert live_model.model_id.startswith("fer2013_fast.keras") and offline_model.model_id.startswith("fer2013_cnn.keras")
    assert resources.new_analyzer(live=True).classifier is live_model
    assert resources.new_analyzer(live=False).classifier is offline_model
    assert resources.get_classifier(live=True) is live_model  # loaded once
