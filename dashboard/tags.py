"""Session tags as the researcher types them (``variant=A, age=18-24``) and as they are shown."""

from __future__ import annotations


def parse_tags(text: str) -> dict[str, str]:
    """Parse ``"key=value, key=value"`` into a dict (whitespace around keys and values is dropped).

    Raises
    ------
    ValueError
        If an entry has no ``=`` or an empty key, naming the entry.
    """
    tags: dict[str, str] = {}
    for entry in (part.strip() for part in (text or "").split(",")):
        if not entry:
            continue
        key, sep, value = entry.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"tags have to be written key=value, separated by commas; got {entry!r}")
        tags[key.strip()] = value.strip()
    return tags


def format_tags(tags: dict[str, str] | None) -> str:
    """The inverse of :func:`parse_tags`: ``{"variant": "A"}`` -> ``"variant=A"``."""
    return ", ".join(f"{key}={value}" for key, value in (tags or {}).items())
