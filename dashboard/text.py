"""User text (study names, descriptions, tags, stimuli, markers, file names) made safe for where it is shown.

Streamlit renders Markdown in captions, messages, toasts and metric labels, so a study named
``![x](http://evil/t.png)`` would load a tracking image in every researcher's browser; plotly renders a subset
of HTML (``<a href>``, ``<b>``) in annotations and legend entries. Every piece of user text goes through one of
these functions on its way into such a string. Select-box options (``format_func``) and table cells are plain
text already and need neither.
"""

from __future__ import annotations

import re
import string

from sessions.figures import escape_chart_text  # noqa: F401 - one definition, used by the study report too

#: Every ASCII punctuation character: CommonMark lets a backslash escape any of them, and no other.
_MARKDOWN_PUNCTUATION = re.compile("([" + re.escape(string.punctuation) + "])")


#: U+2060 WORD JOINER: zero width and invisible, not a word character nor punctuation, so it breaks the patterns
#: below without changing what the reader sees (unlike U+200D ZERO WIDTH JOINER, it never fuses emoji).
WORD_JOINER = "\u2060"
#: Where Streamlit's Markdown turns text into something else *after* CommonMark's backslash escapes are gone:
#: remark-gfm's autolink literals (``mdast-util-gfm-autolink-literal``: ``https?://``, ``www.``, and
#: ``name@domain.tld``) and remark-emoji's shortcodes (``:smile:``, ``:+1:``). A word joiner goes after every
#: ``:`` (breaks ``://`` and every shortcode), between ``www`` and its dot, and after every ``@``.
_AUTOLINK_BREAKS = re.compile(r"(?<=:)|(?<=@)|(?i:(?<=www)(?=\.))")


def escape_markdown(text: object) -> str:
    """Return ``text`` so that Streamlit's Markdown shows it literally: no image, link (written or automatic:
    a URL, ``www.`` address or e-mail address), emphasis, heading, list, code, math (``$``), colour directive
    (``:red[...]``), emoji shortcode (``:smile:``) or HTML entity.

    Each ASCII punctuation character gets a backslash (CommonMark's escape, which the renderer removes again),
    so the reader sees exactly the original characters. Escapes do not stop GFM's autolinks or emoji
    shortcodes, which Streamlit's renderer finds in the text after unescaping; an invisible :data:`WORD_JOINER`
    after each ``:`` and ``@`` and inside ``www.`` breaks those patterns (the text looks the same; copied, it
    carries the joiners). Line breaks are kept.

    Parameters
    ----------
    text : object
        User text; anything else is converted with ``str`` first (None becomes ``"None"``).

    Returns
    -------
    str
        The escaped text, to be put into an f-string passed to ``st.caption``, ``st.markdown``, ``st.success``,
        ``st.info``, ``st.warning``, ``st.error``, ``st.toast``, a ``st.metric`` label or a progress text.

    Examples
    --------
    >>> escape_markdown("**bold** [link](http://evil)") == (
    ...     "\\\\*\\\\*bold\\\\*\\\\* \\\\[link\\\\]\\\\(http\\\\:\\u2060\\\\/\\\\/evil\\\\)")
    True
    """
    broken = _AUTOLINK_BREAKS.sub(WORD_JOINER, str(text))
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", broken)
