"""The study report made from the Compare page opens in Chromium with its charts (Debian chromium, playwright).

A study of six stored sessions (two groups) is compared by tag on the page; the "Study report (HTML)" button's
download is opened from disk in a fresh browser page: its plotly charts render (a ``.main-svg`` in every chart
div), the browser logs no error, nothing is fetched from any host, and a chart's SVG button saves an SVG file.
The screenshot is saved to ``test-results/report.png``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.dashboard import browser
from tests.dashboard.seed import seed_session

pytestmark = [pytest.mark.browser, pytest.mark.slow]
RESULTS = Path(__file__).resolve().parents[2] / "test-results"


def test_study_report_from_the_compare_page_opens_with_its_charts(browser_tools, engine, db_url, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    for i, variant in enumerate("AABBAB"):
        seed_session(engine, study="Ad <test>", participant=f"P{i}", tags={"variant": variant},
                     timeline=(("neutral", 2.0), ("happy", 2.0 + i)))  # fmt: skip
    RESULTS.mkdir(exist_ok=True)
    env = {"FER_DB_URL": db_url}
    with browser.dashboard_server(env, log=tmp_path / "streamlit.log") as url, sync_playwright() as pw:
        chromium = browser.launch_chromium(pw)
        context = chromium.new_context(viewport={"width": 1300, "height": 1800}, accept_downloads=True)
        page = context.new_page()
        page.goto(f"{url}/compare")
        page.get_by_role("heading", name="Compare").wait_for(timeout=60_000)
        # the first render ("Sessions": the first two, each its own group) has to finish before the click, or a
        # rerun still in flight can swallow it under load
        page.get_by_text("2 sessions, 2 groups").first.wait_for(timeout=120_000)
        page.get_by_text("Groups by tag", exact=True).click()
        expect(page.get_by_role("radio", name="Groups by tag")).to_be_checked(timeout=60_000)
        page.get_by_text("6 sessions, 2 groups").first.wait_for(timeout=120_000)
        with page.expect_download(timeout=120_000) as download:
            page.get_by_role("button", name="Study report (HTML)").click()
        report = tmp_path / "report.html"
        download.value.save_as(report)

        viewer = context.new_page()
        errors: list[str] = []
        requests: list[str] = []
        viewer.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        viewer.on("pageerror", lambda e: errors.append(str(e)))
        viewer.on("request", lambda r: requests.append(r.url) if not r.url.startswith(("file:", "data:", "blob:")) else None)
        viewer.goto(report.as_uri())
        viewer.get_by_role("heading", name="Study report: Ad <test>").wait_for(timeout=30_000)
        charts = viewer.locator(".plotly-graph-div")
        charts.last.locator(".main-svg").first.wait_for(timeout=60_000)
        n_charts = charts.count()
        drawn = viewer.locator(".plotly-graph-div .main-svg").count()
        viewer.screenshot(path=str(RESULTS / "report.png"), full_page=True)
        with viewer.expect_download(timeout=60_000) as svg:
            viewer.locator(".buttons").first.get_by_role("button", name="SVG").click()
        svg_text = Path(svg.value.path()).read_text(encoding="utf-8", errors="replace")
        chromium.close()
    assert n_charts >= 12  # curves, share, means, segments for happy, valence and engagement
    assert drawn >= n_charts  # every chart div holds plotly's drawn SVG
    assert errors == [] and requests == []
    assert svg_text.lstrip().startswith("<svg") and "Mean happy over sessions" in svg_text
    text = report.read_text(encoding="utf-8")
    assert "Group differences" in text and "variant=A" in text and "Ad &lt;test&gt;" in text
