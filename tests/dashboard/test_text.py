"""``dashboard.text.escape_markdown``: user text shown literally by Streamlit's Markdown, autolinks included.

Streamlit's renderer (react-markdown with remark-gfm and remark-emoji) links URLs, ``www.`` addresses and e-mail
addresses and turns ``:smile:`` into an emoji in the text it has already unescaped, so backslash escapes alone do
not stop them. The pure test applies the renderer's own patterns (copied from ``mdast-util-gfm-autolink-literal``
and ``remark-emoji`` as bundled in Streamlit's ``StreamlitMarkdown`` chunk) to the text the reader gets; the
browser test renders through Streamlit in Chromium and counts the links.
"""

from __future__ import annotations

import re

import pytest

from dashboard.text import WORD_JOINER, escape_markdown

#: Text a participant, a study name or a marker label could hold, each of which Streamlit's Markdown would change.
AUTOLINKED = [
    "see http://evil.example/track?id=1 now",
    "HTTPS://EVIL.EXAMPLE",
    "go to www.evil.example today",
    "WWW.Evil.example",
    "write to privacy@acme.example",
    "mailto:a.b+c@acme.example",
    "[x](https://evil.example) <https://evil.example> <a@b.example>",
    "thumbs :+1: and :smile:",
    "ratio 16:9 at 10:30, www.x.y",
]
#: remark-gfm's autolink literals (protocol and www; e-mail) and remark-emoji's shortcode pattern.
_URL = re.compile(r"(https?://|www(?=\.))([-.\w]+)([^ \t\r\n]*)", re.IGNORECASE)
_EMAIL = re.compile(r"([-.\w+]+)@([-\w]+(?:\.[-\w]+)+)")
_EMOJI = re.compile(r":\+1:|:-1:|:[\w-]+:")
#: CommonMark's backslash escape of ASCII punctuation, as the renderer removes it.
_UNESCAPE = re.compile(r"\\([!-/:-@\[-`{-~])")


@pytest.mark.parametrize("text", AUTOLINKED)
def test_escaped_text_reads_the_same_and_matches_no_autolink_or_emoji_pattern(text):
    assert _URL.search(text) or _EMAIL.search(text) or _EMOJI.search(text)  # the renderer would change the raw text
    unescaped = _UNESCAPE.sub(r"\1", escape_markdown(text))
    assert not _URL.search(unescaped) and not _EMAIL.search(unescaped) and not _EMOJI.search(unescaped), unescaped
    assert unescaped.replace(WORD_JOINER, "") == text


def test_text_without_those_patterns_gets_only_backslashes():
    assert escape_markdown("Ad *A* (30 s) #1") == r"Ad \*A\* \(30 s\) \#1"
    assert escape_markdown(None) == "None"
    assert escape_markdown("line one\nline two") == "line one\nline two"


_PAGE = """
import streamlit as st
from dashboard.text import escape_markdown
texts = {texts!r}
st.markdown("control www.control.example and :smile:")
for text in texts:
    st.markdown(escape_markdown(text))
"""


@pytest.mark.browser
def test_streamlit_renders_escaped_urls_emails_and_shortcodes_as_plain_text(browser_tools, tmp_path):
    from playwright.sync_api import expect, sync_playwright

    from tests.dashboard import browser

    script = tmp_path / "markdown_page.py"
    script.write_text(_PAGE.format(texts=AUTOLINKED))
    with browser.dashboard_server({}, log=tmp_path / "streamlit.log", script=script) as url, sync_playwright() as pw:
        chromium = browser.launch_chromium(pw)
        page = chromium.new_page()
        page.goto(url)
        blocks = page.locator('[data-testid="stMarkdown"]')
        blocks.nth(len(AUTOLINKED)).wait_for(timeout=120_000)
        control = blocks.nth(0)
        # The renderer does autolink. Blocks can be in the page before their Markdown is rendered (CI saw the control
        # block without its link once), so wait for the control's link and emoji; the other blocks render with it.
        expect(control.locator("a")).to_have_count(1, timeout=60_000)
        expect(control).to_contain_text("😄", timeout=60_000)
        for index, text in enumerate(AUTOLINKED, start=1):
            block = blocks.nth(index)
            assert block.locator("a, img").count() == 0, block.inner_html()
            assert block.inner_text().replace(WORD_JOINER, "").strip() == text
        chromium.close()
