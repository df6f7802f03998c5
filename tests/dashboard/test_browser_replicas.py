"""Two dashboard replicas on one PostgreSQL, in real headless Chromium: owners, restarts, crashes, live numbers.

Each replica is a live owner with its own heartbeat; a restart of one never touches the other's sessions, a
researcher on one sees the other's stream from the store, and a crashed replica's session (and only it) ends.
"""

from __future__ import annotations

import signal
import time

import pytest

from tests.dashboard import browser
from tests.dashboard.test_browser_sessions import CONSENT, Store, pick_session, press

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.postgres]
@pytest.fixture(scope="module")
def clip(face_clip):
    return face_clip


def test_replicas_own_their_sessions_and_see_each_others_numbers(postgres_url, clip, tmp_path):
    from playwright.sync_api import sync_playwright

    store = Store(postgres_url)
    env = {"FER_DB_URL": postgres_url, "FER_AUTH_FILE": str(tmp_path / "accounts.json")}
    on_a, token_a = store.new_session("ON-A")
    on_b, token_b = store.new_session("ON-B")
    waiting, _ = store.new_session("NOT-YET")  # a link nobody has opened
    a, url_a = browser.start_dashboard(env, log=tmp_path / "a.log")
    b, url_b = browser.start_dashboard(env, log=tmp_path / "b.log")
    port_b = int(url_b.rsplit(":", 1)[1])
    try:
        with sync_playwright() as pw:
            chromium = browser.launch_chromium(pw, clip)
            for url, token in ((url_a, token_a), (url_b, token_b)):
                page = chromium.new_context().new_page()
                page.goto(f"{url}/?join={token}")
                page.get_by_text(CONSENT).first.click(timeout=60_000)
                press(page, "START")
            store.wait_rows(on_a, 10)
            store.wait_rows(on_b, 10)
            assert store.session(on_a).owner_id != store.session(on_b).owner_id

            researcher = chromium.new_context(viewport={"width": 1400, "height": 1800}).new_page()
            researcher.goto(f"{url_b}/record")  # a researcher on replica B watches A's participant
            pick_session(researcher, f"#{on_a} ON-A")
            researcher.get_by_text("Read from the session store").wait_for(timeout=60_000)
            first = int(browser.metric_value(researcher, "Frames stored") or 0)
            time.sleep(3)
            assert int(browser.metric_value(researcher, "Frames stored") or 0) > first  # refreshed from the store

            b.terminate()  # replica B restarts (its own participant reconnects to it)
            b.wait(20)
            b, _ = browser.start_dashboard(env, log=tmp_path / "b.log", port=port_b)
            fresh = chromium.new_context().new_page()
            fresh.goto(f"{url_b}/record")  # the restarted replica runs its recovery
            time.sleep(6)
            assert store.session(on_a).status == "recording"  # A's live session untouched by B's restart
            assert store.session(on_b).status == "aborted"  # B's own stream ended with its process
            before = len(store.observations(on_a))
            time.sleep(2)
            assert len(store.observations(on_a)) > before

            a.send_signal(signal.SIGKILL)  # replica A crashes
            a.wait(10)
            killed = time.monotonic()
            store.wait(lambda: store.session(on_a).status == "aborted", "A's session aborted", 30)
            took = time.monotonic() - killed
            print(f"replica A's session aborted {took:.1f} s after the kill")
            assert store.session(waiting).status == "pending"  # nothing else is touched
            chromium.close()
        assert took <= 15  # within the stall window (a gone process on this machine is seen at once)
    finally:
        for process in (a, b):
            if process.poll() is None:
                process.kill()
        store.close()
