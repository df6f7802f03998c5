"""Sessions under several people at once, in real headless Chromium with fake cameras; figures read from the store.

Each person has their own browser context. Every check reads the session store, never only a page: two pages
can show the same stream.
"""

from __future__ import annotations

import signal
import threading
import time
from pathlib import Path

import pytest

from tests.dashboard import browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]
CONSENT = "I have read this and I agree to take part."
RESULTS = Path(__file__).resolve().parents[2] / "test-results"


@pytest.fixture(scope="module")
def clip(face_clip) -> Path:
    return face_clip


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


class Store:
    """Read-only view of the test's session store."""

    def __init__(self, url: str):
        from sessions.db import get_engine

        self.url = url
        self.engine = get_engine(url)

    def session(self, session_id: int):
        from sessions.db import session_scope
        from sessions.repository import get_session

        with session_scope(self.engine) as db:
            session = get_session(db, session_id)
            session.gaps  # noqa: B018 - load while the ORM session is open
            return session

    def observations(self, session_id: int):
        from sessions.db import session_scope
        from sessions.repository import load_observations

        with session_scope(self.engine) as db:
            return load_observations(db, session_id)

    def sessions(self):
        from sessions.db import session_scope
        from sessions.repository import list_sessions

        with session_scope(self.engine) as db:
            return list_sessions(db)

    def wait(self, condition, what: str, timeout_s: float = 120.0):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            value = condition()
            if value:
                return value
            time.sleep(0.5)
        raise TimeoutError(f"{what} not within {timeout_s} s")

    def wait_rows(self, session_id: int, n: int, timeout_s: float = 180.0) -> int:
        return self.wait(lambda: len(self.observations(session_id)) >= n and len(self.observations(session_id)),
                         f"{n} stored rows in session {session_id}", timeout_s)  # fmt: skip

    def new_session(self, code: str, *, link: bool = True) -> tuple[int, str | None]:
        from sessions.db import session_scope
        from sessions.repository import create_join_token, create_session, get_or_create_study

        with session_scope(self.engine) as db:
            sid = create_session(db, study_id=get_or_create_study(db, "browser").id, participant_code=code).id
            return sid, (create_join_token(db, sid) if link else None)

    def close(self):
        self.engine.dispose()


def press(page, name: str) -> None:
    """Press START or STOP in the webrtc component (its buttons live in an iframe)."""
    frame = browser.webrtc_frame(page)
    frame.get_by_role("button", name=name).click(timeout=120_000)
    if name == "START":
        frame.get_by_role("button", name="STOP").wait_for(timeout=120_000)


def open_link(context, url: str, token: str, *, consent: bool = True):
    page = context.new_page()
    page.goto(f"{url}/?join={token}")
    if consent:
        page.get_by_text(CONSENT).first.click(timeout=60_000)
    browser.webrtc_frame(page).get_by_role("button", name="START").wait_for(timeout=120_000)
    return page


def pick_session(page, label: str) -> None:
    """Pick the session whose label starts with ``label`` in the Record page's "Session" box."""
    box = page.locator('[data-testid="stSelectbox"]').filter(has_text="Session").last
    box.locator("input").click(timeout=60_000)
    page.get_by_role("option").filter(has_text=label).first.click(timeout=60_000)


def assert_unique_frames(store: Store, session_id: int) -> None:
    obs = store.observations(session_id)
    frames = obs.drop_duplicates(["frame"])  # a frame with two faces has two rows
    assert frames["frame"].is_unique and frames["frame"].tolist() == sorted(frames["frame"])
    assert obs.groupby("frame")["time_s"].nunique().max() <= 1  # one time per frame index


@pytest.fixture
def server(clip, model, tmp_path):
    """A dashboard on a fresh SQLite store (sign-in off on 127.0.0.1), its store and one Chromium."""
    from playwright.sync_api import sync_playwright

    db_url = f"sqlite:///{tmp_path / 'sessions.db'}"
    env = {"FER_DB_URL": db_url, "FER_MODEL_PATH": str(model), "FER_RESUME_GRACE_S": "60"}
    with browser.dashboard_server(env, log=tmp_path / "streamlit.log") as url, sync_playwright() as pw:
        chromium = browser.launch_chromium(pw, clip)
        store = Store(db_url)
        try:
            yield url, store, chromium
        finally:
            store.close()
            chromium.close()


def test_two_researchers_record_their_own_sessions_while_a_third_records(server):
    """Each stream's rows land in its own session, even with another session recording and a double-click."""
    from sessions.db import session_scope
    from sessions.lifecycle import beat, claim_stream, register_owner
    from sessions.models import utc_now

    url, store, chromium = server
    colleague, _ = store.new_session("COLLEAGUE", link=False)
    with session_scope(store.engine) as db:  # a colleague's session recording on another (live) server
        register_owner(db, "colleague-server")
        claim_stream(db, colleague, stream_id="elsewhere", owner_id="colleague-server", role="participant",
                     capture_at=utc_now())  # fmt: skip
    alive = threading.Event()

    def heartbeat():
        while not alive.wait(1.0):
            with session_scope(store.engine) as db:
                beat(db, "colleague-server")

    threading.Thread(target=heartbeat, daemon=True).start()
    try:
        pages = {}
        for code, double in (("R1-A", True), ("R2-B", False)):
            page = chromium.new_context(viewport={"width": 1400, "height": 1800}).new_page()
            page.goto(f"{url}/record")
            page.get_by_label("Participant code (a pseudonym)").fill(code)
            button = page.get_by_role("button", name="Create session")
            button.dblclick() if double else button.click()
            try:
                page.get_by_text(CONSENT).first.wait_for(timeout=120_000)
            except Exception:
                page.screenshot(path=str(RESULTS / f"sessions-{code}.png"), full_page=True)
                raise
            page.get_by_text(CONSENT).first.click()
            press(page, "START")
            pages[code] = page
        table = store.sessions()
        ids = {code: table[table["participant_code"] == code]["session_id"].tolist() for code in ("R1-A", "R2-B")}
        for code in ids:
            store.wait(lambda c=code: any(len(store.observations(s)) >= 15 for s in ids[c]), f"rows of {code}")
        time.sleep(3)
        for page in pages.values():
            press(page, "STOP")
        table = store.sessions()
        streamed = {}
        for code in ("R1-A", "R2-B"):
            rows = {int(s): len(store.observations(int(s))) for s in table[table["participant_code"] == code]["session_id"]}
            recorded = [s for s, n in rows.items() if n]
            assert len(recorded) == 1, f"{code}: rows in sessions {rows}"  # a double-click's spare stays empty
            streamed[code] = recorded[0]
            assert_unique_frames(store, recorded[0])
            store.wait(lambda s=recorded[0]: store.session(s).status == "complete", f"{code} complete after STOP", 60)
        assert streamed["R1-A"] != streamed["R2-B"]
        assert len(store.observations(colleague)) == 0  # nothing recorded into the colleague's session
        assert store.session(colleague).status == "recording" and store.session(colleague).consent_at is None
    finally:
        alive.set()


def test_one_camera_per_session_and_no_row_after_the_end(server):
    """The same link in a second browser and the researcher's Record page get no camera into a streaming session."""
    url, store, chromium = server
    sid, token = store.new_session("TWICE")
    first = open_link(chromium.new_context(), url, token)
    press(first, "START")
    store.wait_rows(sid, 10)
    second = open_link(chromium.new_context(), url, token, consent=False)  # consent is stored: not asked again
    press(second, "START")
    second.get_by_text("already open in another window").wait_for(timeout=60_000)
    researcher = chromium.new_context(viewport={"width": 1400, "height": 1800}).new_page()
    researcher.goto(f"{url}/record")
    pick_session(researcher, f"#{sid} TWICE")
    researcher.get_by_text("is streaming this session").wait_for(timeout=60_000)
    researcher.get_by_text("Connected: the participant").wait_for(timeout=60_000)
    assert researcher.locator('iframe[title*="webrtc"]').count() == 0  # no second START offered
    time.sleep(2)
    press(first, "STOP")
    store.wait(lambda: store.session(sid).status == "complete", "complete after STOP", 60)
    ended = store.session(sid)
    after_stop = len(store.observations(sid))
    time.sleep(4)  # the second browser's camera is still running
    assert len(store.observations(sid)) == after_stop  # no row after the end
    assert_unique_frames(store, sid)
    obs = store.observations(sid)
    assert obs["time_s"].max() <= (ended.ended_at - ended.started_at).total_seconds() + 0.5
    assert store.session(sid).status == "complete"  # and it stays complete (no late abort)


def test_a_participant_reload_resumes_the_same_session(server):
    url, store, chromium = server
    sid, token = store.new_session("RELOAD")
    context = chromium.new_context()
    page = open_link(context, url, token)
    press(page, "START")
    store.wait_rows(sid, 15)
    page.reload()
    page.get_by_text("Welcome back").wait_for(timeout=60_000)
    assert page.get_by_text(CONSENT).count() == 0  # no second consent
    time.sleep(1.0)  # the old stream's last rows are flushed
    before = len(store.observations(sid))
    press(page, "START")
    store.wait(lambda: len(store.observations(sid)) >= before + 15, "rows after the reload")
    press(page, "STOP")
    store.wait(lambda: store.session(sid).status == "complete", "complete after STOP", 60)
    session = store.session(sid)
    assert len(session.gaps) == 1
    gap = session.gaps[0]
    obs = store.observations(sid)
    assert (obs["time_s"] <= gap.start_s + 1e-6).sum() >= 15 and (obs["time_s"] >= gap.end_s - 1e-6).sum() >= 15
    assert gap.end_s > gap.start_s
    assert_unique_frames(store, sid)
    assert obs["time_s"].is_monotonic_increasing


def test_markers_land_within_a_fifth_of_a_second_of_the_click(server):
    url, store, chromium = server
    page = chromium.new_context(viewport={"width": 1400, "height": 1800}).new_page()
    browser.create_session(page, url, "MARK")
    browser.start_camera(page)
    sid = int(store.sessions()["session_id"].max())
    store.wait_rows(sid, 10)
    # the moment of each click as the page saw it (the event's creation time; same machine, same clock as the
    # server): Playwright's own delay before it clicks is not the product's error
    page.evaluate("window.__clicks = []; document.addEventListener('click', "
                  "e => window.__clicks.push(performance.timeOrigin + e.timeStamp), true)")  # fmt: skip
    labels = []
    for label in ("boss fight", "ad break", "boss fight"):
        button = page.get_by_role("button", name=label, exact=True)
        button.wait_for(timeout=60_000)
        time.sleep(1.0)
        button.click()
        labels.append(label)
    page.get_by_role("textbox", name="Free-text marker").fill("logo shown")
    page.get_by_role("button", name="Add marker").click()
    labels.append("logo shown")
    clicks = list(zip(labels, [ms / 1000.0 for ms in page.evaluate("window.__clicks")], strict=True))
    started = store.session(sid).started_at.timestamp()

    def markers():
        from sessions.db import session_scope
        from sessions.repository import load_markers

        with session_scope(store.engine) as db:
            return load_markers(db, sid)

    store.wait(lambda: len(markers()) >= len(clicks), "all markers stored", 60)
    placed = markers()
    assert list(placed["label"]) == [label for label, _ in clicks]
    errors = [abs(t - (clicked - started)) for t, (_, clicked) in zip(placed["time_s"], clicks, strict=True)]
    print(f"marker errors (s): {[round(e, 3) for e in errors]}")
    assert max(errors) < 0.2
    press(page, "STOP")


def test_stored_dropped_frames_equal_the_live_panel(server):
    url, store, chromium = server
    page = chromium.new_context(viewport={"width": 1400, "height": 1800}).new_page()
    browser.create_session(page, url, "DROPS")
    browser.start_camera(page)
    sid = int(store.sessions()["session_id"].max())
    browser.wait_for_frames(page, 40, timeout_s=240)
    shown = int(browser.metric_value(page, "Dropped frames") or 0)
    press(page, "STOP")
    store.wait(lambda: store.session(sid).status == "complete", "complete after STOP", 60)
    session = store.session(sid)
    print(f"live panel: {shown} dropped; stored: {session.skipped_frames} skipped + {session.refused_frames} refused")
    assert session.dropped_frames == session.skipped_frames + session.refused_frames
    # the panel refreshes every second: the store may hold the last second's drops more, never fewer
    assert shown <= session.dropped_frames <= shown + 30
    assert store.observations(sid)["frame"].nunique() >= 40
    from sessions.db import session_scope
    from sessions.repository import list_sessions

    with session_scope(store.engine) as db:  # what the Studies and Review pages list
        listed = list_sessions(db, session_ids=[sid]).iloc[0]
    assert (listed["skipped_frames"], listed["refused_frames"], listed["dropped_frames"]) == (
        session.skipped_frames, session.refused_frames, session.dropped_frames)


def test_a_killed_server_restarted_after_a_second_aborts_its_session(clip, model, tmp_path):
    from playwright.sync_api import sync_playwright

    db_url = f"sqlite:///{tmp_path / 'sessions.db'}"
    env = {"FER_DB_URL": db_url, "FER_MODEL_PATH": str(model)}
    port = browser.free_port()
    store = Store(db_url)
    sid, token = store.new_session("CRASH")
    process, _ = browser.start_dashboard(env, log=tmp_path / "streamlit.log", port=port)
    try:
        with sync_playwright() as pw:
            chromium = browser.launch_chromium(pw, clip)
            page = open_link(chromium.new_context(), f"http://127.0.0.1:{port}", token)
            press(page, "START")
            store.wait_rows(sid, 10)
            process.send_signal(signal.SIGKILL)
            process.wait(10)
            time.sleep(1.0)
            killed_at = time.monotonic()
            process, _ = browser.start_dashboard(env, log=tmp_path / "streamlit.log", port=port)  # the page reconnects
            store.wait(lambda: store.session(sid).status == "aborted", "aborted after the restart", 20)
            took = time.monotonic() - killed_at
            print(f"aborted {took:.1f} s after the restart")
            fresh = chromium.new_context().new_page()
            fresh.goto(f"http://127.0.0.1:{port}/?join={token}")
            fresh.get_by_text("This session has ended").wait_for(timeout=60_000)
            chromium.close()
        assert took <= 20
        assert len(store.observations(sid)) >= 10  # what was recorded before the kill is kept
    finally:
        process.kill()
        store.close()
