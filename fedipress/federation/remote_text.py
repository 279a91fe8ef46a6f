"""Remote text made safe to show: names, handles and URLs from other servers. No network."""

from __future__ import annotations

import html
import re
import unicodedata
from urllib.parse import urlsplit

import nh3

MAX_NAME = 100  # characters of a display name kept
MAX_HANDLE = 320  # characters of a handle kept
_WEB_URL = re.compile(r"https?://[^\s\x00-\x1f\x7f<>\"']+", re.IGNORECASE)
# Embeddings, overrides and isolates (U+202A-202E, U+2066-2069) and the marks (U+200E, 200F,
# 061C): kept, they would reorder the text around them on the page.
_BIDI_CONTROLS = frozenset(
    "\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069\u200e\u200f\u061c"
)


def plain_text(value: object, limit: int) -> str:
    """Remote text as safe plain text on one line: tags dropped, entities decoded, control
    and bidirectional override characters removed (an RTL override in a name would turn the
    rest of the line around), whitespace collapsed, cut to `limit` characters."""
    if not isinstance(value, str):
        return ""
    text = html.unescape(nh3.clean(value[: limit * 4], tags=set()))
    kept = "".join(
        " " if ch.isspace() else ch
        for ch in text
        if ch.isspace() or (unicodedata.category(ch) != "Cc" and ch not in _BIDI_CONTROLS)
    )
    return " ".join(kept.split())[:limit]


def web_url(value: object) -> str | None:
    """An http(s) URL with a host, else None (no `javascript:` or `data:` links)."""
    if isinstance(value, list):
        value = value[0] if value else None
    if isinstance(value, dict):
        value = value.get("href") or value.get("url") or value.get("id")
    if not isinstance(value, str) or len(value) > 2048 or not _WEB_URL.fullmatch(value):
        return None
    try:
        return value if urlsplit(value).hostname else None
    except ValueError:
        return None


def without_bidi_controls(text: str) -> str:
    """`text` without bidirectional embeddings, overrides and isolates: in a reply, one would
    turn the rest of its paragraph around (a spoofed link text, a reversed name)."""
    if not any(ch in _BIDI_CONTROLS for ch in text):
        return text
    return "".join(ch for ch in text if ch not in _BIDI_CONTROLS)
