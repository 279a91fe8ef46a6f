"""A remote actor's handle (`user@domain`), as Mastodon finds it: from the WebFinger answer
of the actor's own host, whose `subject` names the account and whose `self` link must lead
back to the actor (process_account_service.rb, FEDERATION.md §1.3). A guess from
`preferredUsername` and the actor's host is only the fallback, and keeps the port."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from urllib.parse import quote, urlsplit

from fedipress.documents.media import JSONObject, is_activity_media_type

JrdFetch = Callable[[str], Awaitable[JSONObject | None]]  # WebFinger URL -> the JRD, or None
MAX_HANDLE_LENGTH = 256


def guessed_handle(actor_id: str, username: object) -> str | None:
    """`preferredUsername@host[:port]` of the actor's id: what a handle would be if the
    actor's host were its WebFinger domain. None without a usable username."""
    if not isinstance(username, str) or not username or len(username) > MAX_HANDLE_LENGTH:
        return None
    parts = urlsplit(actor_id)
    if not parts.hostname:
        return None
    host = parts.hostname + (f":{parts.port}" if parts.port else "")
    return f"{username}@{host}"


async def confirmed_handle(fetch_jrd: JrdFetch, actor_id: str, username: object) -> str | None:
    """The handle the actor's WebFinger confirms, or the guess when none does.

    Asks the actor's host for `acct:<preferredUsername>@<host>`; a JRD whose `self` link is
    the actor gives its `subject`. A subject on another domain (an account at
    `example.com` served from `social.example.com`) counts only when that domain's
    WebFinger also leads back to the actor, as Mastodon checks."""
    guess = guessed_handle(actor_id, username)
    if guess is None:
        return None
    scheme = urlsplit(actor_id).scheme
    subject = await _lookup(fetch_jrd, scheme, guess, actor_id)
    if subject is None:
        return guess
    if _domain(subject) == _domain(guess):
        return subject
    confirmed = await _lookup(fetch_jrd, scheme, subject, actor_id)
    return subject if confirmed == subject else guess


async def _lookup(fetch_jrd: JrdFetch, scheme: str, handle: str, actor_id: str) -> str | None:
    """The `subject` (without `acct:`) of the JRD for `handle` at its own domain, when its
    `self` link is `actor_id`; else None."""
    url = f"{scheme}://{_domain(handle)}/.well-known/webfinger?resource=" + quote(
        f"acct:{handle}", safe=":@"
    )
    jrd = await fetch_jrd(url)
    if jrd is None:
        return None
    subject = jrd.get("subject")
    links = jrd.get("links")
    if not isinstance(subject, str) or not isinstance(links, list):
        return None
    subject = subject.removeprefix("acct:")
    if (
        subject.count("@") != 1
        or len(subject) > MAX_HANDLE_LENGTH
        or any(c.isspace() for c in subject)
    ):
        return None
    for link in links:
        if (
            isinstance(link, dict)
            and link.get("rel") == "self"
            and isinstance(link.get("type"), str)
            and is_activity_media_type(link["type"])
            and link.get("href") == actor_id
        ):
            return subject
    return None


def _domain(handle: str) -> str:
    return handle.rsplit("@", 1)[-1].lower()
