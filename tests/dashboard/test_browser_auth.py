"""Secure by default, in a real headless Chromium: sign-in gate, throttle, reloads, deep links, no third-party host.

One dashboard server with sign-in on (as shipped) and a seeded study; every person is a separate browser
context (own cookies). The first page load creates the account ``researcher``, whose password the server
prints once in its log, as an operator would read it in the terminal.
"""

from __future__ import annotations

import time
from pathlib import Path
from urllib.parse import urlparse

import pytest

from tests.dashboard import browser

pytestmark = [pytest.mark.browser, pytest.mark.slow]
STUDY, PARTICIPANT, OTHER = "Secret Trailer Study", "P-CONFIDENTIAL-7", "P-SOMEONE-ELSE"
CONSENT = "I have read this and I agree to take part."


@pytest.fixture(scope="module")
def chromium():
    reason = browser.missing_tools()
    if reason:
        pytest.skip(reason)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = browser.launch_chromium(pw)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def site(chromium, tmp_path_factory) -> dict:
    """The running dashboard: its URL, the first account's password and a participant link."""
    from sessions.db import get_engine, session_scope
    from sessions.repository import create_join_token, create_session, get_or_create_study

    folder = tmp_path_factory.mktemp("auth")
    db_url = f"sqlite:///{folder / 'sessions.db'}"
    engine = get_engine(db_url)
    with session_scope(engine) as db:
        study_id = get_or_create_study(db, STUDY).id
        create_session(db, study_id=study_id, participant_code=OTHER)
        token = create_join_token(db, create_session(db, study_id=study_id, participant_code=PARTICIPANT).id)
    engine.dispose()
    log = folder / "streamlit.log"
    with browser.dashboard_server({"FER_DB_URL": db_url}, log=log, auth=True) as url:
        context = chromium.new_context()
        page = context.new_page()
        page.goto(url)  # first page load: the account 'researcher' is created and its password printed
        page.get_by_label("Password", exact=True).wait_for(timeout=120_000)
        context.close()
        yield {"url": url, "password": browser.first_password(log), "join": f"{url}/?join={token}", "log": log}


@pytest.fixture
def context(chromium):
    """One person's browser (own cookies and storage)."""
    context = chromium.new_context(viewport={"width": 1300, "height": 1000})
    yield context
    context.close()


def sign_in_form(page):
    page.get_by_label("Password", exact=True).wait_for(timeout=60_000)
    return page


def heading(page, name: str):
    return page.get_by_role("heading", name=name, exact=True)


def test_without_join_link_only_the_sign_in_form_and_no_study_or_session_name(site, context):
    page = context.new_page()
    page.goto(site["join"])  # the participant's own browser...
    page.get_by_text(CONSENT).first.wait_for(timeout=60_000)
    for path in ("", "studies", "review", "record", "compare", "upload"):  # ...after deleting ?join=TOKEN
        page.goto(f"{site['url']}/{path}")
        sign_in_form(page)
        time.sleep(0.5)  # let anything else the page would render arrive
        content = page.content()
        assert STUDY not in content and PARTICIPANT not in content and OTHER not in content, path
        assert page.locator('[data-testid="stSidebarNav"]').count() == 0
        assert page.get_by_role("button", name="Delete").count() == 0
        assert page.get_by_text("Page not found").count() == 0, path


def test_sign_in_survives_a_reload_and_a_new_tab(site, context, chromium):
    page = context.new_page()
    page.goto(site["url"])
    browser.sign_in(sign_in_form(page), "researcher", site["password"])
    heading(page, "Studies").wait_for(timeout=60_000)
    cookie = next(c for c in context.cookies() if c["name"] == "fer_sign_in")
    assert cookie["sameSite"] == "Strict" and cookie["path"] == "/"
    assert 11.5 * 3600 < cookie["expires"] - time.time() <= 12 * 3600 + 5
    page.reload()
    heading(page, "Studies").wait_for(timeout=60_000)
    assert page.get_by_label("Password", exact=True).count() == 0
    page.get_by_text("Sessions (2)").wait_for(timeout=60_000)  # the seeded study's sessions, for the researcher
    tab = context.new_page()
    tab.goto(f"{site['url']}/compare")
    heading(tab, "Compare").wait_for(timeout=60_000)
    stranger = chromium.new_context()  # another person's browser is not signed in
    other = stranger.new_page()
    other.goto(site["url"])
    sign_in_form(other)
    stranger.close()
    page.get_by_role("button", name="Sign out").click()
    sign_in_form(page)
    page.reload()
    sign_in_form(page)
    assert STUDY not in page.content()


def test_deep_link_signed_out_shows_the_form_then_lands_on_its_page(site, context):
    page = context.new_page()
    page.goto(f"{site['url']}/review")
    sign_in_form(page)
    time.sleep(1.0)
    assert page.get_by_text("Page not found").count() == 0
    assert page.get_by_role("dialog").count() == 0
    browser.sign_in(page, "researcher", site["password"])
    heading(page, "Review").wait_for(timeout=60_000)
    assert urlparse(page.url).path == "/review"
    assert page.get_by_text("Page not found").count() == 0


def test_participant_page_requests_nothing_from_another_host(site, context):
    requests: list[str] = []
    context.on("request", lambda request: requests.append(request.url))
    page = context.new_page()
    page.goto(site["join"])
    page.get_by_text(CONSENT).first.click(timeout=60_000)
    browser.webrtc_frame(page).get_by_role("button", name="START").wait_for(timeout=120_000)
    time.sleep(2.0)  # favicon, fonts, late component assets
    dashboard = urlparse(site["url"]).netloc
    others = sorted({u for u in requests if urlparse(u).scheme in ("http", "https", "ws", "wss") and urlparse(u).netloc != dashboard})
    assert requests and not others, others


def test_fifty_wrong_passwords_take_at_least_ten_seconds(site, context, chromium):
    page = context.new_page()
    page.goto(site["url"])
    sign_in_form(page)
    started = time.monotonic()
    for attempt in range(1, 51):
        page.get_by_label("Username").fill("researcher")
        page.get_by_label("Password", exact=True).fill(f"wrong-guess-{attempt}")
        page.get_by_role("button", name="Sign in").click()
        page.get_by_text(f"Wrong username or password (attempt {attempt})").wait_for(timeout=120_000)
    elapsed = time.monotonic() - started
    print(f"50 wrong passwords took {elapsed:.1f} s")
    assert elapsed >= 10.0
    fresh = chromium.new_context()  # a new browser session does not reset the count: no free attempts there
    other = fresh.new_page()
    other.goto(site["url"])
    sign_in_form(other)
    started = time.monotonic()
    for attempt in range(1, 4):
        other.get_by_label("Username").fill("researcher")
        other.get_by_label("Password", exact=True).fill(f"wrong-guess-again-{attempt}")
        other.get_by_role("button", name="Sign in").click()
        other.get_by_text(f"Wrong username or password (attempt {attempt})").wait_for(timeout=120_000)
    assert time.monotonic() - started >= 1.6  # at least two waits of 0.8 s (a fresh count would let 3 through at once)
    browser.sign_in(other, "researcher", site["password"])  # the right password still works
    heading(other, "Studies").wait_for(timeout=60_000)
    fresh.close()
    log = Path(site["log"]).read_text()
    assert log.count("sign-in failed for account 'researcher'") >= 53
    assert "wrong-guess-" not in log and log.count(site["password"]) == 1  # the password only in the first-start line
