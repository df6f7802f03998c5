"""A remote participant in a real headless Chromium (fake camera: the real face clip): the study's consent text
shown literally, the consent stored with its version, frames stored with head pose and attention, and the
completion button with the participant code once the session ends."""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import quote

import pytest

from tests.dashboard import browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]
RESULTS = Path(__file__).resolve().parents[2] / "test-results"
PURPOSE = "We measure **facial expressions** <b>while</b> you watch [a trailer](http://evil.example)."


def _faces_stored(engine, session_id: int, n: int, timeout_s: float):
    from sessions.db import session_scope
    from sessions.repository import load_observations

    deadline = time.monotonic() + timeout_s
    while True:
        with session_scope(engine) as db:
            obs = load_observations(db, session_id)
        faces = obs[obs["face_id"] != -1]
        if len(faces) >= n or time.monotonic() > deadline:
            return faces
        time.sleep(1)


def test_remote_participant_consents_to_the_study_text_is_attentive_and_is_sent_back(face_clip, tmp_path):
    from playwright.sync_api import sync_playwright

    from sessions.db import get_engine, session_scope
    from sessions.fieldwork import (
        ConsentFields,
        consent_of,
        create_participant_links,
        set_completion_url,
        set_consent_text,
    )
    from sessions.repository import get_or_create_study

    db_url = f"sqlite:///{tmp_path / 'sessions.db'}"
    engine = get_engine(db_url)
    with session_scope(engine) as db:
        study_id = get_or_create_study(db, "panel").id
        set_consent_text(db, study_id, ConsentFields(PURPOSE, "Acme Research", "12 months", "privacy@acme.example",
                                                     "Write to us with your code."))  # fmt: skip
        set_completion_url(db, study_id, "https://panel.example.org/done?rid={code}")
        (link,) = create_participant_links(db, study_id, 1).itertuples()
    RESULTS.mkdir(exist_ok=True)
    with browser.dashboard_server({"FER_DB_URL": db_url}, log=tmp_path / "streamlit.log") as url, sync_playwright() as pw:
        chromium = browser.launch_chromium(pw, face_clip)
        page = chromium.new_page(viewport={"width": 1200, "height": 1800})
        page.goto(f"{url}/?join={link.token}")
        page.get_by_text("I have read this and I agree to take part.").wait_for(timeout=120_000)
        body = page.locator("body").inner_text()
        assert "**facial expressions** <b>while</b> you watch [a trailer](http://evil.example)." in body
        # no link (Markdown would autolink the URL and the e-mail address), no tag: the characters as written
        assert page.locator('a[href*="evil.example"]').count() == 0 and page.locator('a[href^="mailto:"]').count() == 0
        assert page.locator("b", has_text="while").count() == 0
        assert "Consent text version 1" in body
        browser.start_camera(page)
        faces = _faces_stored(engine, link.session_id, 20, timeout_s=240)
        page.screenshot(path=str(RESULTS / "participant_fieldwork.png"), full_page=True)
        browser.webrtc_frame(page).get_by_role("button", name="STOP").click()
        button = page.get_by_role("link", name="Finish and return to the panel")
        button.wait_for(timeout=60_000)
        href = button.get_attribute("href")
        chromium.close()
    with session_scope(engine) as db:
        record = consent_of(db, link.session_id)
    engine.dispose()
    assert href == f"https://panel.example.org/done?rid={quote(link.participant_code, safe='')}"
    assert (record["consent_version"], record["consent_source"]) == (1, "participant")
    # the man faces his webcam throughout the clip: stored head angles small, every face attentive
    assert len(faces) >= 20 and faces["yaw_deg"].abs().max() < 15 and faces["pitch_deg"].abs().max() < 15
    assert faces["attentive"].all()
