"""Checks of the text a researcher or a participant link hands to the session store.

The database columns have lengths (``VARCHAR(200)`` and the like) that PostgreSQL enforces and SQLite does not,
and PostgreSQL refuses NUL characters in text. These checks run before any query, so that both backends accept
and refuse exactly the same input, with a message that names the field, the limit and what was given (its
length or the offending character, never the whole text).

Limits (characters, not bytes; ``VARCHAR(n)`` counts characters on PostgreSQL):

========================  =======  ==============================================
field                     limit    column
========================  =======  ==============================================
study name                200      ``studies.name``
study description         5,000    ``studies.description`` (multi-line)
participant code          100      ``study_sessions.participant_code``
stimulus name             300      ``study_sessions.stimulus_name``
stimulus URL              2,000    ``study_sessions.stimulus_url``
tag key                   50       keys of ``study_sessions.tags`` (JSON)
tag value                 200      values of ``study_sessions.tags``
tags per session          20
marker label              200      ``markers.label``
marker note               2,000    ``markers.note`` (multi-line)
join token                64       ``study_sessions.join_token``
========================  =======  ==============================================

Control characters (Unicode category ``Cc``: NUL, the other C0 codes, DEL and the C1 codes), lone surrogates
(which no UTF-8 database can store) and the line and paragraph separators U+2028/U+2029 are refused in every
field; multi-line fields accept line feed, carriage return and tab.
"""

from __future__ import annotations

import unicodedata
from urllib.parse import urlsplit

STUDY_NAME_MAX = 200
STUDY_DESCRIPTION_MAX = 5_000
PARTICIPANT_CODE_MAX = 100
STIMULUS_NAME_MAX = 300
STIMULUS_URL_MAX = 2_000
TAG_KEY_MAX = 50
TAG_VALUE_MAX = 200
TAGS_MAX = 20
MARKER_LABEL_MAX = 200
MARKER_NOTE_MAX = 2_000
JOIN_TOKEN_MAX = 64

#: Whitespace controls a multi-line field (description, note) may hold.
MULTILINE_CONTROLS = frozenset("\n\r\t")


def _bad_character(text: str, multiline: bool) -> tuple[int, str] | None:
    """Position and character of the first character the store refuses, or None."""
    for position, char in enumerate(text):
        if multiline and char in MULTILINE_CONTROLS:
            continue
        if unicodedata.category(char) in ("Cc", "Cs", "Zl", "Zp"):
            return position, char
    return None


def check_text(value: str, field: str, *, max_length: int, multiline: bool = False) -> str:
    """Return ``value`` unchanged when the store accepts it as ``field``; raise otherwise.

    Parameters
    ----------
    value : str
        The text (callers strip it first where the field is stripped).
    field : str
        Name of the field for the message, e.g. ``"study name"``.
    max_length : int
        Most characters allowed (Python ``len``, i.e. code points, as ``VARCHAR(n)`` counts on PostgreSQL).
    multiline : bool, default False
        Accept line feed, carriage return and tab.

    Returns
    -------
    str
        ``value``.

    Raises
    ------
    ValueError
        ``value`` is not a str, is longer than ``max_length``, or holds a control character, a lone surrogate
        or a line/paragraph separator; the message gives the field, the limit or the character's code point and
        position, and the length given, never the text itself.
    """
    if not isinstance(value, str):
        raise ValueError(f"{field} has to be a str; got {type(value).__name__}")
    if len(value) > max_length:
        raise ValueError(f"{field} has to be at most {max_length} characters long; got {len(value)} characters")
    bad = _bad_character(value, multiline)
    if bad is not None:
        position, char = bad
        allowed = " (line breaks and tabs are allowed)" if multiline else ""
        raise ValueError(f"{field} must not contain control characters{allowed}; got U+{ord(char):04X} at "
                         f"position {position} of {len(value)} characters")  # fmt: skip
    return value


def check_web_url(url: str, field: str, *, max_length: int = STIMULUS_URL_MAX, placeholder: str | None = None,
                  example: str = "https://example.org/page") -> str:  # fmt: skip
    """Return ``url`` stripped when it is an absolute web address: the one definition of the links participants
    are sent to (an external task's URL, a study's completion URL).

    Accepted: ``http://`` or ``https://`` (any case) with a host, at most ``max_length`` characters, without
    spaces or control characters. ``placeholder`` (e.g. ``"{code}"``) may appear anywhere and is checked as if
    it were plain text.

    Parameters
    ----------
    url : str
    field : str
        Name of the field for the messages, e.g. ``"task URL"``.
    max_length : int
        Most characters.
    placeholder : str, optional
        A placeholder the URL may hold.
    example : str
        A valid address quoted in the message for a missing host.

    Raises
    ------
    ValueError
        Naming ``field`` and what is wrong: not a str, empty, too long, control characters, spaces, another
        scheme (``javascript:``, ``data:``, none) or no host (``https:///path``).
    """
    if not isinstance(url, str):
        raise ValueError(f"{field} has to be a str; got {type(url).__name__}")
    url = check_text(url.strip(), field, max_length=max_length)
    if not url:
        raise ValueError(f"{field} is empty; give an address such as {example}")
    if any(ch.isspace() for ch in url):
        raise ValueError(f"{field} must not contain spaces; encode them as %20")
    try:
        parts = urlsplit(url.replace(placeholder, "PLACEHOLDER") if placeholder else url)
        host = parts.hostname
    except ValueError:  # e.g. a malformed IPv6 host "http://[::1"
        raise ValueError(f"{field} is not a valid web address; give one such as {example}") from None
    if parts.scheme.lower() not in ("http", "https"):
        raise ValueError(f"{field} has to start with http:// or https://; got the scheme {parts.scheme or 'none'!r}")
    if not host:
        raise ValueError(f"{field} has to name a host, e.g. {example}")
    return url


def check_optional_text(value: str | None, field: str, *, max_length: int, multiline: bool = False) -> str | None:
    """:func:`check_text` for a field that may be None (returned as None).

    Raises
    ------
    ValueError
        As :func:`check_text`.
    """
    return None if value is None else check_text(value, field, max_length=max_length, multiline=multiline)


def check_study(name: str, description: str | None = "") -> None:
    """Check a study's ``name`` (at most ``STUDY_NAME_MAX``) and ``description`` (multi-line, ``STUDY_DESCRIPTION_MAX``).

    Raises
    ------
    ValueError
        As :func:`check_text`, naming ``study name`` or ``study description``.
    """
    check_text(name, "study name", max_length=STUDY_NAME_MAX)
    check_optional_text(description, "study description", max_length=STUDY_DESCRIPTION_MAX, multiline=True)


def check_tags(tags: dict[str, str]) -> dict[str, str]:
    """Return ``tags`` when every key and value is a str the store accepts; raise otherwise.

    Parameters
    ----------
    tags : dict of str to str
        Group or condition labels; at most ``TAGS_MAX`` entries, non-empty keys of at most ``TAG_KEY_MAX``
        characters, values of at most ``TAG_VALUE_MAX``.

    Returns
    -------
    dict of str to str
        ``tags``.

    Raises
    ------
    ValueError
        Too many tags, a non-str or empty key, a non-str value, or a key or value :func:`check_text` refuses
        (the message names the key, shortened to its first 20 characters when it is long).
    """
    if len(tags) > TAGS_MAX:
        raise ValueError(f"tags have to be at most {TAGS_MAX} per session; got {len(tags)}")
    for key, value in tags.items():
        if not isinstance(key, str) or not isinstance(value, str):
            raise ValueError(f"tags have to map str to str; got the {type(key).__name__} key with a "
                             f"{type(value).__name__} value")  # fmt: skip
        if not key.strip():
            raise ValueError("tag keys have to be non-empty; got an empty key")
        check_text(key, "tag key", max_length=TAG_KEY_MAX)
        shown = key if len(key) <= 20 else f"{key[:20]}..."
        check_text(value, f"value of tag {shown!r}", max_length=TAG_VALUE_MAX)
    return tags


def check_session_fields(*, participant_code: str, tags: dict[str, str], stimulus_name: str | None = None,
                         stimulus_url: str | None = None) -> None:  # fmt: skip
    """Check the text fields of a new session (see the module's table of limits).

    Parameters
    ----------
    participant_code : str
        The pseudonym, already stripped.
    tags : dict of str to str
        Group or condition labels (:func:`check_tags`).
    stimulus_name, stimulus_url : str, optional
        What the participant watched and where it is.

    Raises
    ------
    ValueError
        As :func:`check_text` or :func:`check_tags`, naming the field.
    """
    check_text(participant_code, "participant code", max_length=PARTICIPANT_CODE_MAX)
    check_tags(tags)
    check_optional_text(stimulus_name, "stimulus name", max_length=STIMULUS_NAME_MAX)
    check_optional_text(stimulus_url, "stimulus URL", max_length=STIMULUS_URL_MAX)


def check_marker(label: str | None = None, note: str | None = None) -> None:
    """Check a marker's ``label`` (``MARKER_LABEL_MAX``) and ``note`` (multi-line, ``MARKER_NOTE_MAX``); None skips.

    Raises
    ------
    ValueError
        As :func:`check_text`, naming ``marker label`` or ``marker note``.
    """
    check_optional_text(label, "marker label", max_length=MARKER_LABEL_MAX)
    check_optional_text(note, "marker note", max_length=MARKER_NOTE_MAX, multiline=True)


def is_plausible_token(token: object) -> bool:
    """Whether ``token`` could be a join token at all: a non-empty str of at most ``JOIN_TOKEN_MAX`` characters
    without control characters. Anything else is no session's token, and needs no database query to say so.

    Parameters
    ----------
    token : object
        What a participant link carried (``?join=...``).

    Returns
    -------
    bool
        False for non-str, empty, over-long or control-character tokens; True otherwise.
    """
    return (isinstance(token, str) and 0 < len(token) <= JOIN_TOKEN_MAX
            and _bad_character(token, multiline=False) is None)  # fmt: skip
