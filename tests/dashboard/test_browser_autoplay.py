"""A browser that blocks the stimulus's autoplay, in real headless Chromium (fake camera): the player says so and
offers a Play button, and the stored events say what happened (``blocked``, then the run once the participant
clicks).

Chromium's own policy (``--autoplay-policy=document-user-activation-required``) cannot be used here: every
Playwright call evaluates with DevTools' user-gesture flag, which counts as the page's user activation, so no
play is ever refused. The page instead gets the policy as a script run before its own (``add_init_script``, top
frame only): an unmuted ``play()`` is refused with the ``NotAllowedError`` a browser gives until the document
has had a trusted click (a real input event; a script's ``element.click()`` is not one). Every click before the
Play button is such a script click, as when a participant's browser refuses to play although they pressed
Start (a stricter policy, an extension); the click on "Play the video" is Playwright's real mouse click.
"""

from __future__ import annotations

import time

import pytest

from sessions.db import session_scope
from tests.dashboard import browser
from tests.dashboard.test_browser_stimulus import RESULTS, _wait, model  # noqa: F401 - the model fixture
from tests.sessions.clips import make_stimulus

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CONSENT = "I have read this and I agree to take part."
BLOCKED_TEXT = "Your browser did not start the video by itself. Click to play it (with sound)."
DURATION_S = 3.0
#: The autoplay policy of a strict browser, as an init script (see the module docstring).
STRICT_AUTOPLAY = """
if (window.top === window) {
  let activated = false;
  window.addEventListener("click", (event) => { if (event.isTrusted) { activated = true; } }, true);
  const play = HTMLMediaElement.prototype.play;
  HTMLMediaElement.prototype.play = function () {
    if (!activated && !this.muted) {
      return Promise.reject(new DOMException("play() can only be initiated by a user gesture.", "NotAllowedError"));
    }
    return play.call(this);
  };
}
"""


def _script_click(locator, timeout_ms: float = 120_000) -> None:
    """Click ``locator`` from a script (untrusted: no user activation), once it is visible and enabled."""
    locator.wait_for(timeout=timeout_ms)
    _wait(locator.is_enabled, "an enabled button", timeout_ms / 1000)
    locator.evaluate("element => element.click()")


def test_blocked_autoplay_shows_a_play_button_and_the_events_say_so(face_clip, model, tmp_path):  # noqa: F811
    from playwright.sync_api import sync_playwright

    from sessions.db import get_engine
    from sessions.playback import load_events, session_playback
    from sessions.repository import create_join_token, create_session, create_study, load_observations
    from sessions.stimuli import add_video_stimulus, set_sequence

    media, db_url = tmp_path / "media", f"sqlite:///{tmp_path / 'sessions.db'}"
    engine = get_engine(db_url)
    with session_scope(engine) as db:
        study_id = create_study(db, "Autoplay").id
        clip = make_stimulus(tmp_path / "ad.mp4", seconds=DURATION_S)
        set_sequence(db, study_id, [add_video_stimulus(db, study_id, "Ad", clip, media_dir=media).id])
        session_id = create_session(db, study_id=study_id, participant_code="P01").id
        token = create_join_token(db, session_id)

    def stored(kind: str):
        with session_scope(engine) as db:
            events = load_events(db, session_id)
        return (events,) if (events["kind"] == kind).any() else None

    env = {"FER_DB_URL": db_url, "FER_MODEL_PATH": str(model), "FER_MEDIA_DIR": str(media)}
    with browser.dashboard_server(env, log=tmp_path / "streamlit.log") as url, sync_playwright() as pw:
        chromium = pw.chromium.launch(executable_path=browser.CHROMIUM, headless=True, args=[
            *browser.CHROMIUM_FLAGS, f"--use-file-for-fake-video-capture={face_clip}"])  # fmt: skip
        try:
            context = chromium.new_context(viewport={"width": 1280, "height": 1400})
            context.add_init_script(STRICT_AUTOPLAY)
            page = context.new_page()
            page.goto(f"{url}/?join={token}")
            _script_click(page.get_by_role("checkbox", name=CONSENT))
            _script_click(browser.webrtc_frame(page).get_by_role("button", name="START"))
            page.get_by_text("We can see your face").wait_for(timeout=120_000)
            _script_click(page.get_by_role("button", name="Start", exact=True), 30_000)
            page.get_by_text(BLOCKED_TEXT).wait_for(timeout=30_000)
            (blocked,) = _wait(lambda: stored("blocked"), "the stored blocked event", 30.0)
            assert "playing" not in set(blocked["kind"])  # nothing played: no stimulus time yet
            RESULTS.mkdir(exist_ok=True)
            page.screenshot(path=str(RESULTS / "stimulus_autoplay_blocked.png"))  # the message and its button
            page.get_by_role("button", name="Play the video").click(timeout=10_000)  # a real click
            (events,) = _wait(lambda: stored("ended"), "the stored ended event", 60.0)
            page.get_by_text("The video is over").wait_for(timeout=30_000)
            assert not page.get_by_text(BLOCKED_TEXT).is_visible()
            time.sleep(1.0)  # let the last rows be stored before the page goes
        finally:
            chromium.close()
    kinds = list(events["kind"])
    assert kinds.count("blocked") == 1
    assert kinds.index("start") < kinds.index("blocked") < kinds.index("play") < kinds.index("playing") < kinds.index("ended")
    blocked_at = float(events.loc[events["kind"] == "blocked", "session_time_s"].iloc[0])
    with session_scope(engine) as db:
        shown, quality, spans = session_playback(db, session_id, load_observations(db, session_id))[:3]
    row = quality.iloc[0]
    assert (row["blocked"], row["played"], row["completed"]) == (1, True, True)
    assert row["share_seen"] == pytest.approx(1.0, abs=0.03) and row["share_seen"] <= 1.0
    assert spans and min(s.start_s for s in spans) > blocked_at  # stimulus time starts at the click's playback
    assert shown.loc[shown["time_s"] < blocked_at, "stimulus_time_s"].isna().all()
    engine.dispose()
