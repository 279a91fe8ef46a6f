"""WebFinger (RFC 7033) and host-meta documents for the blog's accounts. Pure: no I/O."""

from __future__ import annotations

from typing import Literal
from urllib.parse import unquote, urlsplit, urlunsplit
from xml.sax.saxutils import quoteattr

from fedipress.config import Config
from fedipress.documents.media import AP_MEDIA_TYPE, JSONObject
from fedipress.documents.post import Tag, slugify
from fedipress.documents.urls import Urls

# RFC 7033 §10.2. Mastodon accepts any JSON (webfinger.rb has no type check, FEDERATION.md §1.1),
# but other software may check, and a static file needs an explicit header rule anyway.
PROFILE_PAGE_REL = "http://webfinger.net/rel/profile-page"

ResourceKind = Literal["acct", "url"]


def build_jrd(config: Config, account: str = "") -> JSONObject:
    """The JRD served at `/.well-known/webfinger`, whatever the `resource` query
    (FEDERATION.md §1.5, §1.6).

    No OStatus `subscribe` template: it lets a server's local users follow someone from a
    remote page, and a single-actor blog has no local users to follow with (FEDERATION.md §1.2).
    Mastodon reads only `subject` and the `self` link (webfinger.rb `validate_response!`).
    `account` names a topic account ('' the main one). Raises ValueError when the config has
    no `fediverse` section.
    """
    urls = Urls(config).for_account(account)
    profile = _profile_url(config, urls)
    return {
        # Mastodon confirms the handle against this subject, then webfingers the
        # preferredUsername@actor-host handle again and needs `self` == actor id byte for
        # byte (process_account_service.rb `check_webfinger!`, FEDERATION.md §1.3).
        "subject": f"acct:{urls.handle()}",
        "aliases": [urls.actor(), profile],
        "links": [
            {"rel": "self", "type": AP_MEDIA_TYPE, "href": urls.actor()},
            {"rel": PROFILE_PAGE_REL, "type": "text/html", "href": profile},
        ],
    }


def _profile_url(config: Config, urls: Urls) -> str:
    """The account's profile page: the home page, or a topic account's tag page."""
    if not urls.account:
        return urls.home()
    tag = config.fediverse.account(urls.account).tags[0] if config.fediverse else ""
    return urls.page(Tag(tag, slugify(tag)).url)


def parse_resource(resource: str) -> tuple[ResourceKind, str] | None:
    """Normalise a WebFinger `resource`: ('acct', 'user@host') lower-cased, or ('url', URL)
    with scheme and host lower-cased and the fragment dropped. None when malformed.

    Like Mastodon (webfinger_resource.rb), the `acct:` prefix may be missing.
    """
    text = resource.strip()
    if not text or any(ch.isspace() for ch in text):
        return None
    if text.lower().startswith(("https://", "http://")):
        try:
            parts = urlsplit(text)
            host = parts.hostname  # raises on a malformed netloc too
        except ValueError:  # `http://[`: an unclosed IPv6 literal
            return None
        if not host:
            return None
        path = parts.path.rstrip("/") or "/"
        return "url", urlunsplit(
            (parts.scheme.lower(), parts.netloc.lower(), path, parts.query, "")
        )
    if text.lower().startswith("acct:"):
        text = text[len("acct:") :]
    # RFC 7565 §7 lets the user part be percent-encoded.
    user, at, host = unquote(text).removeprefix("@").partition("@")
    if not at or not user or not host or "@" in host or "/" in host or ":" in user:
        return None
    return "acct", f"{user.lower()}@{host.lower()}"


def jrd_for_resource(config: Config, resource: str | None) -> tuple[int, JSONObject | None]:
    """Status and body for a server that sees the query: 400 when `resource` is missing or
    malformed (RFC 7033 §4.2), 404 for another account, 200 and the JRD of the account asked
    for, the main one or a topic account (FEDERATION.md §13)."""
    parsed = parse_resource(resource) if resource else None
    if parsed is None:
        return 400, None
    kind, value = parsed
    for account in Urls(config).accounts():
        urls = Urls(config, account)
        ours = {
            "acct": {urls.handle().lower()},
            "url": {_url_key(urls.actor()), _url_key(_profile_url(config, urls))},
        }
        if value in ours[kind]:
            return 200, build_jrd(config, account)
    return 404, None


def _url_key(url: str) -> str:
    parsed = parse_resource(url)
    return parsed[1] if parsed else url


def render_host_meta(config: Config) -> str:
    """The XRD at `/.well-known/host-meta`, the format of Mastodon's host_meta/show.xml.ruby.

    Mastodon reads its `lrdd` template only when WebFinger answers 404 (webfinger.rb,
    FEDERATION.md §9).
    """
    template = quoteattr(Urls(config).webfinger() + "?resource={uri}")
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<XRD xmlns="http://docs.oasis-open.org/ns/xri/xrd-1.0">\n'
        f'  <Link rel="lrdd" template={template}/>\n'
        "</XRD>\n"
    )
