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


def escape_markdown(text: object) -> str:
    """Return ``text`` so that Streamlit's Markdown shows it literally: no image, link, emphasis, heading,
    list, code, math (``$``), colour directive (``:red[...]``) or HTML entity.

    Each ASCII punctuation character gets a backslash (CommonMark's escape, which the renderer removes again),
    so the reader sees exactly the original characters. Line breaks are kept.

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
    >>> escape_markdown("**bold** [link](http://evil)")
    '\\\\*\\\\*bold\\\\*\\\\* \\\\[link\\\\]\\\\(http\\\\:\\\\/\\\\/evil\\\\)'
    """
    return _MARKDOWN_PUNCTUATION.sub(r"\\\1", str(text))
