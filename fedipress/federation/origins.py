"""How ids are compared: origins, RFC 3986 normalisation, and "is this URL the actor's".

Pure: str in, values out; a URL that does not parse compares equal to nothing.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

Origin = tuple[str, str, int | None]


def origin_of(url: str) -> Origin:
    """(scheme, host, port) with the default port filled in; ("", "", None) if unparsable."""
    try:
        parts = urlsplit(url)
        port = parts.port or {"http": 80, "https": 443}.get(parts.scheme.lower())
    except ValueError:
        return ("", "", None)
    return (parts.scheme.lower(), (parts.hostname or "").lower(), port)


_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
_PERCENT = re.compile(r"%([0-9A-Fa-f]{2})")
_PLAIN_SEGMENT = re.compile(r"[A-Za-z0-9_~-][A-Za-z0-9._~-]*")


def normalize_url(url: str) -> str | None:
    """An http(s) URL in RFC 3986 normal form (RFC 3986 §6.2.2-6.2.3), without its fragment:
    scheme and host in lower case, no default port, unreserved characters decoded and other escapes
    in upper case, dot segments removed (what httpx sends, and what a server that decodes
    `%2e` would see), empty path as "/". None for anything else, credentials included. Pure."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), (parts.hostname or "").lower()
    if scheme not in ("http", "https") or not host or "@" in parts.netloc:
        return None
    netloc = f"[{host}]" if ":" in host else host
    if port is not None and port != {"http": 80, "https": 443}[scheme]:
        netloc += f":{port}"
    path = _remove_dot_segments(_normalize_escapes(parts.path)) or "/"
    return urlunsplit((scheme, netloc, path, _normalize_escapes(parts.query), ""))


def _normalize_escapes(text: str) -> str:
    def one(match: re.Match[str]) -> str:
        char = chr(int(match.group(1), 16))
        return char if char in _UNRESERVED else match.group(0).upper()

    return _PERCENT.sub(one, text)


def _remove_dot_segments(path: str) -> str:
    """RFC 3986 §5.2.4 for an absolute path: `.` dropped, `..` removes the segment before."""
    segments = path.split("/")
    kept: list[str] = []
    for segment in segments:
        if segment == "..":
            if len(kept) > 1:  # kept[0] is the "" before the leading slash
                kept.pop()
        elif segment != ".":
            kept.append(segment)
    if segments[-1] in (".", ".."):
        kept.append("")  # "/a/b/.." is "/a/", a directory
    return "/".join(kept)


def within_actor(url: str, actor: str) -> bool:
    """Whether `url` (its fragment ignored) is the actor's id, or one plain path segment
    below it (GoToSocial's `actor/main-key`), compared in normal form. No other URL speaks
    for the actor: `actor/../other` is another account, `actor/statuses/1` one post. Pure."""
    mine, theirs = normalize_url(url), normalize_url(actor)
    if mine is None or theirs is None:
        return False
    if mine == theirs:
        return True
    below, actor_parts = urlsplit(mine), urlsplit(theirs)
    if below.query or actor_parts.query or below[:2] != actor_parts[:2]:
        return False
    parent, _, segment = below.path.rpartition("/")
    return parent == actor_parts.path.rstrip("/") and bool(_PLAIN_SEGMENT.fullmatch(segment))
