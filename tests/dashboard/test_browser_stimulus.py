"""A participant link plays a generated 10 s stimulus in real headless Chromium (fake camera): the stored play and
ended events map to session times whose difference is the stimulus's duration, and the rows recorded during
playback carry stimulus times that increase with session time. Review then shows the stimulus timeline."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from sessions.db import session_scope
from tests.dashboard import browser
from tests.sessions.clips import make_stimulus

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CONSENT = "I have read this and I agree to take part."
RESULTS = Path(__file__).resolve().parents[2] / "test-results"
DURATION_S = 10.0


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """The shipped model when present (real timing), else a tiny random one (the flow is the same)."""
    from fer_core.classifier import default_model_path

    if default_model_path().is_file():
        return default_model_path()
    from fer_core.model_file import write_metadata
    from tests.core.conftest import build_tiny_model, tiny_metadata

    path = build_tiny_model(tmp_path_factory.mktemp("model") / "tiny.keras")
    write_metadata(path, tiny_metadata())
    return path


def _wait(condition, what: str, timeout_s: float):
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.5)
    raise TimeoutError(f"{what} not within {timeout_s} s")


def test_a_participant_link_plays_the_stimulus_and_every_row_knows_its_stimulus_time(face_clip, model, tmp_path):
    from playwright.sync_api import sync_playwright

    from sessions.db import get_engine
    from sessions.playback import load_events, session_playback
    from sessions.repository import create_join_token, create_session, create_study, load_observations
    from sessions.stimuli import list_stimuli

    media, db_url = tmp_path / "media", f"sqlite:///{tmp_path / 'sessions.db'}"
    clip = make_stimulus(tmp_path / "trailer.mp4", seconds=DURATION_S, fps=25, width=640, height=360)
    engine = get_engine(db_url)
    with session_scope(engine) as db:
        study_id = create_study(db, "Trailer test").id
        session_id = create_session(db, study_id=study_id, participant_code="P01").id
        token = create_join_token(db, session_id)
    env = {"FER_DB_URL": db_url, "FER_MODEL_PATH": str(model), "FER_MEDIA_DIR": str(media)}
    with browser.dashboard_server(env, log=tmp_path / "streamlit.log") as url, sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=browser.CHROMIUM, headless=True, args=[
            *browser.CHROMIUM_FLAGS, f"--use-file-for-fake-video-capture={face_clip}",
            "--autoplay-policy=no-user-gesture-required"])  # fmt: skip
        try:
            researcher = chromium.new_context(viewport={"width": 1400, "height": 1800}).new_page()
            researcher.goto(url)  # Studies: upload the stimulus through the page (probed, thumbnailed, in the sequence)
            researcher.get_by_text("Add a video stimulus").click(timeout=120_000)
            researcher.locator('input[type="file"]').first.set_input_files(str(clip))
            researcher.get_by_placeholder("e.g. Trailer v2 (default: the file name)").fill("Trailer")
            researcher.get_by_role("button", name="Add video").click(timeout=60_000)

            def uploaded():
                with session_scope(engine) as db:
                    listing = list_stimuli(db, study_id)
                return (listing,) if len(listing) else None

            (listing,) = _wait(uploaded, "the uploaded stimulus", 120.0)
            assert list(listing["name"]) == ["Trailer"] and listing["n_thumbnails"].item() == DURATION_S
            assert listing["duration_s"].item() == pytest.approx(DURATION_S) and listing["in_sequence"].item()
            page = chromium.new_context(viewport={"width": 1280, "height": 1400}).new_page()
            page.goto(f"{url}/?join={token}")
            page.get_by_text(CONSENT).first.click(timeout=60_000)
            frame = browser.webrtc_frame(page)
            frame.get_by_role("button", name="START").click(timeout=120_000)
            page.get_by_text("We can see your face").wait_for(timeout=120_000)
            assert frame.locator("video").count() == 0  # send-only: the server sends no video back
            own = page.locator(".fer-self-view video")  # the participant's own camera, from their browser: small
            own.wait_for(timeout=60_000)
            video = own.bounding_box()
            check = page.get_by_text("We can see your face").bounding_box()
            print(f"participant video {video['width']:.0f}x{video['height']:.0f} px; face check at y={check['y']:.0f} px")
            assert video["width"] <= 241 and check["y"] + check["height"] < 800  # the player in view without scrolling
            page.get_by_role("button", name="Start", exact=True).click(timeout=30_000)
            time.sleep(3.0)
            RESULTS.mkdir(exist_ok=True)
            page.screenshot(path=str(RESULTS / "stimulus_playing.png"))  # what the participant sees while it plays

            def ended():
                with session_scope(engine) as db:
                    events = load_events(db, session_id)
                return (events,) if (events["kind"] == "ended").any() else None

            (events,) = _wait(ended, "the stored ended event", 90.0)
            page.get_by_text("The video is over").wait_for(timeout=30_000)
            time.sleep(2.0)  # rows after the end, then stop the camera
            frame.get_by_role("button", name="STOP").click(timeout=30_000)
            RESULTS.mkdir(exist_ok=True)
            page.screenshot(path=str(RESULTS / "stimulus_participant.png"), full_page=True)
            review = chromium.new_context(viewport={"width": 1400, "height": 2400}).new_page()
            review.goto(f"{url}/review")
            review.get_by_text("On the stimulus timeline").wait_for(timeout=120_000)
            chart = review.locator('[data-testid="stPlotlyChart"]').filter(has_text="stimulus time (s)").first
            chart.wait_for(timeout=60_000)
            _wait(lambda: chart.locator("image").count() >= DURATION_S, "the thumbnail strip", 30.0)
            review.get_by_text("Key moments").wait_for(timeout=30_000)
            chart.scroll_into_view_if_needed()
            review.screenshot(path=str(RESULTS / "stimulus_review.png"), full_page=True)
            review.get_by_text("Frame at stimulus second").scroll_into_view_if_needed()
            review.locator('[data-testid="stImage"]').last.wait_for(timeout=30_000)
            review.screenshot(path=str(RESULTS / "stimulus_review_frame.png"), full_page=True)
            compare = chromium.new_context(viewport={"width": 1400, "height": 2400}).new_page()
            compare.goto(f"{url}/compare")
            compare.get_by_text("On the stimulus timeline: Trailer").wait_for(timeout=120_000)
            strip = compare.locator('[data-testid="stPlotlyChart"]').filter(has_text="stimulus time (s)").first
            _wait(lambda: strip.locator("image").count() >= DURATION_S, "the Compare thumbnail strip", 60.0)
            strip.scroll_into_view_if_needed()
            compare.screenshot(path=str(RESULTS / "stimulus_compare.png"), full_page=True)
        finally:
            chromium.close()
    with session_scope(engine) as db:
        observations, quality = session_playback(db, session_id, load_observations(db, session_id))[:2]
    kinds = list(events["kind"])
    assert kinds.index("start") < kinds.index("play") < kinds.index("playing") < kinds.index("ended")
    at = dict(zip(events["kind"], events["session_time_s"], strict=False))  # first of each kind wins below
    first = {k: float(events.loc[events["kind"] == k, "session_time_s"].iloc[0]) for k in ("play", "playing", "ended")}
    # "play" is the request; the stimulus starts moving at "playing" (after loading): that is its session time
    print(f"stored playing-to-ended span {first['ended'] - first['playing']:.3f} s for a {DURATION_S:.0f} s stimulus")
    assert first["play"] <= first["playing"] and first["ended"] - first["playing"] == pytest.approx(DURATION_S, abs=0.25), at
    assert float(events.loc[events["kind"] == "ended", "media_time_s"].iloc[0]) == pytest.approx(DURATION_S, abs=0.05)
    shown = observations[observations["stimulus"].notna()].drop_duplicates("frame")
    assert (shown["stimulus"] == "Trailer").all() and len(shown) >= 5 * DURATION_S  # at least 5 analysed frames a second
    assert (np.diff(shown["time_s"]) > 0).all() and (np.diff(shown["stimulus_time_s"]) > 0).all()
    assert shown["stimulus_time_s"].min() < 0.5 and shown["stimulus_time_s"].max() > DURATION_S - 0.5
    outside = observations[observations["stimulus"].isna()]
    end = min(first["ended"], first["playing"] + DURATION_S)  # a run never outlasts the stimulus
    assert len(outside) and ((outside["time_s"] < first["playing"]) | (outside["time_s"] > end)).all()
    row = quality.iloc[0]
    assert row["played"] and row["completed"] and row["pauses"] == 0 and row["share_seen"] == pytest.approx(1.0, abs=0.03)
    engine.dispose()
