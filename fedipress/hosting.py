"""Host rules: the response headers and redirects of the deployed site, in one place.

The build writes them as Netlify / Cloudflare Pages `_headers` and `_redirects` files, and
`fedipress serve` applies the same rules to its responses. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

from fedipress.config import Config
from fedipress.documents.media import (
    AP_MEDIA_TYPE,
    JRD_MEDIA_TYPE,
    NODEINFO_20_MEDIA_TYPE,
    NODEINFO_21_MEDIA_TYPE,
)
from fedipress.documents.urls import TOPICS_PATH, WEBFINGER_PATH, dynamic_paths

HEADERS_FILE = "_headers"
REDIRECTS_FILE = "_redirects"
# Hosts read these files and never serve them; the dev server hides them too.
HOST_FILES = frozenset({HEADERS_FILE, REDIRECTS_FILE})

_TOKEN = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
_PLACEHOLDER = re.compile(r"^:([A-Za-z_][A-Za-z0-9_]*)$")
REDIRECT_STATUSES = frozenset({200, 301, 302, 303, 307, 308, 404, 410, 451})


@dataclass(frozen=True)
class HeaderRule:
    """Headers for every URL path matching `pattern` (`/feed.xml`, `/css/*`, `/tags/:tag/`).

    A header may appear twice in one rule: the values are joined with ', ' (Netlify)."""

    pattern: str
    headers: tuple[tuple[str, str], ...]

    def __post_init__(self) -> None:
        _check_pattern(self.pattern)
        for name, value in self.headers:
            if not _TOKEN.match(name) or "\n" in value or "\r" in value:
                raise ValueError(f"bad header {name!r}: {value!r}")


@dataclass(frozen=True)
class RedirectRule:
    """One `_redirects` line: `source target status[!]`.

    `source` uses the same patterns as HeaderRule; `target` may use `:splat` and the
    placeholders of the source. Status 200 is a rewrite (a proxy when the target is absolute).
    Without `force` a rule applies only when no file exists at the path (Netlify "shadowing").
    """

    source: str
    target: str
    status: int = 301
    force: bool = False

    def __post_init__(self) -> None:
        _check_pattern(self.source)
        if self.status not in REDIRECT_STATUSES:
            raise ValueError(f"unsupported redirect status {self.status}")
        if not self.target or any(c.isspace() for c in self.target):
            raise ValueError(f"bad redirect target {self.target!r}")


def _check_pattern(pattern: str) -> None:
    if not pattern.startswith("/") or any(c.isspace() for c in pattern):
        raise ValueError(f"a rule pattern is a path starting with '/' (got {pattern!r})")
    for part in pattern.split("/"):
        if part.startswith(":") and not _PLACEHOLDER.match(part):
            raise ValueError(f"bad placeholder {part!r} in {pattern!r}")


# --- the rules ---------------------------------------------------------------------------

ATOM = "application/atom+xml; charset=utf-8"
JSON_FEED = "application/feed+json; charset=utf-8"
# The theme's CSS and JS are not fingerprinted, so they get a short lifetime, not `immutable`.
ASSET_CACHE = "public, max-age=3600"


# Mastodon refetches a stale actor after a day and at key-rotation time; keep the actor and
# WebFinger fresh in CDN caches so a new key or alias propagates in minutes (FEDERATION.md §10.10).
SHORT_CACHE = "public, max-age=300"
CORS = ("Access-Control-Allow-Origin", "*")


def header_rules(config: Config) -> list[HeaderRule]:
    """Every header rule of the site, in order; both the `_headers` file and the dev server
    follow this list."""
    feed_cors = CORS  # feed readers that run in a browser
    return [
        HeaderRule(
            "/*",
            (
                ("X-Content-Type-Options", "nosniff"),
                ("Referrer-Policy", "strict-origin-when-cross-origin"),
            ),
        ),
        HeaderRule("/css/*", (("Cache-Control", ASSET_CACHE),)),
        HeaderRule("/js/*", (("Cache-Control", ASSET_CACHE),)),
        HeaderRule("/feed.xml", (("Content-Type", ATOM), feed_cors)),
        HeaderRule("/feed.json", (("Content-Type", JSON_FEED), feed_cors)),
        HeaderRule("/tags/:tag/feed.xml", (("Content-Type", ATOM), feed_cors)),
        *(_federation_header_rules() if config.fediverse else []),
        *(
            [HeaderRule(TOPICS_PATH + ":account/actor", (("Cache-Control", SHORT_CACHE),))]
            if config.fediverse and config.fediverse.accounts
            else []
        ),
    ]


def _federation_header_rules() -> list[HeaderRule]:
    """Mastodon ignores AP documents served as application/json (FEDERATION.md §2.1, §10.1), and the
    files have no extension a host could guess a type from."""
    return [
        HeaderRule("/ap/*", (("Content-Type", AP_MEDIA_TYPE), CORS)),
        HeaderRule("/ap/actor", (("Cache-Control", SHORT_CACHE),)),
        HeaderRule(
            "/.well-known/webfinger",
            (("Content-Type", JRD_MEDIA_TYPE), CORS, ("Cache-Control", SHORT_CACHE)),
        ),
        HeaderRule("/.well-known/nodeinfo", (("Content-Type", "application/json"), CORS)),
        HeaderRule("/.well-known/host-meta", (("Content-Type", "application/xrd+xml"), CORS)),
        HeaderRule("/nodeinfo/2.1", (("Content-Type", NODEINFO_21_MEDIA_TYPE), CORS)),
        HeaderRule("/nodeinfo/2.0", (("Content-Type", NODEINFO_20_MEDIA_TYPE), CORS)),
    ]


def redirect_rules(config: Config, extra: Sequence[RedirectRule] = ()) -> list[RedirectRule]:
    """Every redirect and rewrite of the site, first match wins: the proxy to an inbox on
    another host, then rules other parts of the build add (Tombstones answering 410).

    With topic accounts, WebFinger goes to the inbox too: a static file answers every
    `resource` with one account, and only a server that reads the query can tell
    `acct:rust@…` from `acct:blog@…` (FEDERATION.md §13). Netlify passes the query on."""
    rules: list[RedirectRule] = []
    fedi = config.fediverse
    proxy = fedi.inbox_proxy.rstrip("/") if fedi else ""
    if proxy:
        for path in dynamic_paths(config):
            rules.append(RedirectRule(path, proxy + path, 200, force=True))
        if fedi and fedi.accounts:
            rules.append(RedirectRule(WEBFINGER_PATH, proxy + WEBFINGER_PATH, 200, force=True))
    return rules + list(extra)


# --- matching ----------------------------------------------------------------------------


@lru_cache(maxsize=512)
def _regex(pattern: str) -> re.Pattern[str]:
    """Netlify's matching: a `*` segment matches the rest of the path, even nothing
    (`/css/*` matches `/css`); `:name` matches one segment; a trailing '/' is optional;
    case does not matter."""
    regex = ""
    for part in (p for p in pattern.split("/") if p):
        if part == "*":
            regex += "(?:/(?P<splat>.*))?"
        elif placeholder := _PLACEHOLDER.match(part):
            regex += f"/(?P<{placeholder.group(1)}>[^/]+)"
        else:
            regex += "/" + ".*".join(re.escape(piece) for piece in part.split("*"))
    return re.compile(f"^{regex}/?$", re.IGNORECASE)


def match_pattern(pattern: str, path: str) -> dict[str, str] | None:
    """The splat and placeholder values when `path` matches `pattern`, else None."""
    found = _regex(pattern).match(path)
    if found is None:
        return None
    return {k: v for k, v in found.groupdict().items() if v is not None}


def headers_for(path: str, rules: Sequence[HeaderRule]) -> list[tuple[str, str]]:
    """The headers for a URL path: every matching rule applies, in order.

    As on Netlify, a header set by a later rule replaces the same header from an earlier one.
    Cloudflare Pages joins such values instead, so the rules above never set one header in
    two rules that can match the same path (a test checks this)."""
    merged: dict[str, tuple[str, str]] = {}
    for rule in rules:
        if match_pattern(rule.pattern, path) is None:
            continue
        in_rule: dict[str, tuple[str, str]] = {}
        for name, value in rule.headers:
            key = name.lower()
            if key in in_rule:
                value = f"{in_rule[key][1]}, {value}"
            in_rule[key] = (in_rule[key][0] if key in in_rule else name, value)
        merged.update(in_rule)
    return list(merged.values())


def match_redirect(
    path: str, rules: Sequence[RedirectRule], file_exists: bool
) -> tuple[RedirectRule, str] | None:
    """The first rule that applies to `path`, with its target filled in, else None."""
    for rule in rules:
        if file_exists and not rule.force:
            continue
        values = match_pattern(rule.source, path)
        if values is None:
            continue
        target = rule.target
        # Longest names first, so ':tag' does not eat the start of ':tags'.
        for name in sorted(values, key=len, reverse=True):
            target = target.replace(f":{name}", values[name])
        return rule, target
    return None


# --- media types ---------------------------------------------------------------------------

_UTF8 = "; charset=utf-8"
MEDIA_TYPES = {
    "html": "text/html" + _UTF8,
    "css": "text/css" + _UTF8,
    "js": "text/javascript" + _UTF8,
    "mjs": "text/javascript" + _UTF8,
    "json": "application/json",
    "map": "application/json",
    "webmanifest": "application/manifest+json",
    "xml": "application/xml",
    "txt": "text/plain" + _UTF8,
    "md": "text/markdown" + _UTF8,
    "svg": "image/svg+xml",
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "gif": "image/gif",
    "webp": "image/webp",
    "avif": "image/avif",
    "ico": "image/vnd.microsoft.icon",
    "woff": "font/woff",
    "woff2": "font/woff2",
    "ttf": "font/ttf",
    "otf": "font/otf",
    "pdf": "application/pdf",
    "mp3": "audio/mpeg",
    "ogg": "audio/ogg",
    "mp4": "video/mp4",
    "webm": "video/webm",
    "wasm": "application/wasm",
    "pem": "application/x-pem-file",
}
DEFAULT_MEDIA_TYPE = "application/octet-stream"


def media_type(filename: str) -> str:
    """The Content-Type a host infers from a file name (a fixed table, so every machine
    agrees; the system's mime.types differs between hosts)."""
    name = filename.rsplit("/", 1)[-1]
    extension = name.rsplit(".", 1)[-1].lower() if "." in name else ""
    return MEDIA_TYPES.get(extension, DEFAULT_MEDIA_TYPE)


def response_headers(
    path: str, filename: str, rules: Sequence[HeaderRule]
) -> list[tuple[str, str]]:
    """The headers served for `path` (a URL path) answered by `filename`: the rules, plus a
    Content-Type from the file name when no rule sets one."""
    headers = headers_for(path, rules)
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers.append(("Content-Type", media_type(filename)))
    return headers


# --- files -------------------------------------------------------------------------------

_BANNER = "# Written by fedipress from its host rules; edits here are lost on the next build.\n"


def render_headers_file(rules: Sequence[HeaderRule]) -> str:
    """`_headers` for Netlify and Cloudflare Pages: a path line, then indented headers."""
    blocks = [
        rule.pattern + "\n" + "".join(f"  {name}: {value}\n" for name, value in rule.headers)
        for rule in rules
    ]
    return _BANNER + "\n" + "\n".join(blocks)


def render_redirects_file(rules: Sequence[RedirectRule]) -> str:
    """`_redirects` in Netlify syntax (Cloudflare Pages reads the same lines, but proxies
    only to its own paths and has no `!`)."""
    lines = [
        f"{rule.source} {rule.target} {rule.status}{'!' if rule.force else ''}\n" for rule in rules
    ]
    return _BANNER + "".join(lines)
