"""What the blog shows of an account that liked, boosted or replied: a display name, a handle,
a profile link and an avatar, read from its actor document. The avatar is fetched once,
through the guarded fetch path, and kept only when it is a small PNG, JPEG, GIF or WebP whose
bytes say so too: the blog then serves it itself, so readers' browsers never ask another
server for it (docs/federation.md, "What readers see")."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from fedipress.documents.media import JSONObject
from fedipress.federation.fetch import Fetcher
from fedipress.federation.remote_text import MAX_HANDLE, MAX_NAME, plain_text, web_url
from fedipress.federation.store.base import ActorProfile

log = logging.getLogger("fedipress.inbox")

MAX_AVATAR_BYTES = 512 * 1024
PROFILE_MAX_AGE = timedelta(days=1)  # a profile is fetched again after this, on a new interaction
FETCH_BUDGET = 5.0  # seconds an inbox request spends on the profile; then it goes without
AVATAR_TYPES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
AVATAR_ACCEPT = "image/png, image/jpeg, image/gif, image/webp"
_HANDLE_PART = re.compile(r"[^\s@/<>\"'`]+")
_SIGNATURES = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
)
DocumentFetch = Callable[[str], Awaitable["JSONObject | None"]]


def parse_profile(document: JSONObject, now: datetime) -> ActorProfile | None:
    """The profile in an actor document, without its avatar bytes; None if it has no id."""
    actor_id = web_url(document.get("id"))
    if actor_id is None:
        return None
    username = plain_text(document.get("preferredUsername"), MAX_HANDLE)
    host = urlsplit(actor_id).hostname or ""
    handle = (
        f"{username}@{host}"[:MAX_HANDLE] if username and _HANDLE_PART.fullmatch(username) else None
    )
    return ActorProfile(
        actor_id=actor_id,
        name=plain_text(document.get("name"), MAX_NAME) or None,
        handle=handle,
        url=web_url(document.get("url")) or actor_id,
        fetched_at=now,
        avatar_url=web_url(document.get("icon")),
    )


def sniff_image(data: bytes) -> str | None:
    """The media type the bytes themselves show, for the four kept types; SVG (which can
    carry scripts) and anything else is None."""
    for magic, kind in _SIGNATURES:
        if data.startswith(magic):
            return kind
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


async def fetch_avatar(fetcher: Fetcher, url: str) -> tuple[str, bytes] | None:
    """The avatar at `url` when it is a kept type, at most MAX_AVATAR_BYTES, and its bytes
    agree with its Content-Type; else None (initials are shown), with a log line."""
    result = await fetcher.fetch_bytes(
        url, AVATAR_ACCEPT, AVATAR_TYPES, MAX_AVATAR_BYTES, signed=False
    )
    if result.data is None:
        log.info("avatar %s not kept: %s %s", url, result.failure, result.reason)
        return None
    sniffed = sniff_image(result.data)
    if sniffed is None or sniffed != result.media_type:
        log.info("avatar %s not kept: served as %s, bytes say %s", url, result.media_type, sniffed)
        return None
    return sniffed, result.data


class ProfileFetcher:
    """Finds the profile of an actor for the inbox: the stored one while it is fresh, else
    from its actor document (fetched, or embedded in an Update), with the avatar fetched
    again only when its URL changed."""

    def __init__(
        self,
        fetcher: Fetcher,
        fetch_document: DocumentFetch,
        stored: Callable[[str], ActorProfile | None],
        recent: Callable[[str], JSONObject | None] = lambda _: None,
        budget: float = FETCH_BUDGET,
    ) -> None:
        """`recent` gives an actor document fetched moments ago (with the signer's key)."""
        self.fetcher = fetcher
        self.fetch_document = fetch_document
        self.stored = stored
        self.recent = recent
        self.budget = budget
        self._pending: dict[str, asyncio.Future[ActorProfile | None]] = {}

    async def profile(
        self, actor_id: str, now: datetime, document: JSONObject | None = None
    ) -> ActorProfile | None:
        """A profile to store, or None when the stored one is fresh or none can be had.
        Concurrent activities of one actor share one lookup."""
        pending = self._pending.get(actor_id)
        if pending is not None and document is None:
            return await asyncio.shield(pending)
        future: asyncio.Future[ActorProfile | None] = asyncio.get_running_loop().create_future()
        self._pending[actor_id] = future
        result: ActorProfile | None = None
        try:
            result = await asyncio.wait_for(self._profile(actor_id, now, document), self.budget)
        except TimeoutError:
            log.info("profile of %s not fetched within %s s", actor_id, self.budget)
        finally:
            if self._pending.get(actor_id) is future:
                del self._pending[actor_id]
            future.set_result(result)  # waiters get None if this one failed
        return result

    async def _profile(
        self, actor_id: str, now: datetime, document: JSONObject | None
    ) -> ActorProfile | None:
        known = await asyncio.to_thread(self.stored, actor_id)
        if document is None:
            if known is not None and now - known.fetched_at < PROFILE_MAX_AGE:
                return None
            document = self.recent(actor_id) or await self.fetch_document(actor_id)
            if document is None:
                return None
        fresh = parse_profile(document, now)
        if fresh is None or fresh.actor_id != actor_id:
            return None
        if fresh.avatar_url is None:
            return fresh
        if known is not None and known.avatar_url == fresh.avatar_url:
            # Fetched once: the same URL keeps the bytes (or the lack of them) it gave.
            return replace(fresh, avatar_type=known.avatar_type, avatar_data=known.avatar_data)
        avatar = await fetch_avatar(self.fetcher, fresh.avatar_url)
        if avatar is None:
            return fresh
        return replace(fresh, avatar_type=avatar[0], avatar_data=avatar[1])
